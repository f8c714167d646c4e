//! Option documents and the outcome each must get, the same from the Rust parser
//! ([`parse_options`](crate::validate::parse_options)) and from every engine's SQL
//! (PostgreSQL `tasque_<ns>.spawn`, MySQL `CALL tasque_<ns>_spawn`). Engine tests feed each to
//! their SQL and check the refusals (SQLSTATE 22023, the option named) and what was stored.

use proptest::prelude::*;
use serde_json::{json, Map, Value};

use crate::{JobInfo, RunAt, SpawnOptions};

/// One document and its outcome.
#[derive(Clone, Debug)]
pub struct DocumentCase {
    /// The option document.
    pub document: Value,
    /// The option its refusal names (`options` for the document itself), or `None` when it is
    /// accepted.
    pub refused: Option<&'static str>,
}

fn ok(document: Value) -> DocumentCase {
    DocumentCase {
        document,
        refused: None,
    }
}

fn refused(option: &'static str, document: Value) -> DocumentCase {
    DocumentCase {
        document,
        refused: Some(option),
    }
}

/// Every class of refusal, and accepted documents at the edges of each rule (issue 12).
pub fn option_document_cases() -> Vec<DocumentCase> {
    vec![
        ok(json!({})),
        ok(
            json!({"max_attempts": 3.0, "priority": -1.0, "timeout_ms": 30000.0, "delay_ms": 1000.0}),
        ),
        ok(json!({"max_attempts": 2147483647, "priority": -2147483648_i64})),
        ok(json!({"run_at": "2030-01-31T09:00:00.250+01:00"})),
        ok(json!({"run_at": "2030-01-31 08:00:00.123456789z"})),
        ok(json!({"run_at": "1000-01-01T00:00:00Z"})),
        ok(json!({"run_at": "9999-12-31T23:59:59.999999Z"})),
        ok(json!({"run_at": "0999-12-31T23:30:00-01:00"})),
        ok(json!({"delay_ms": 31557600000000_i64, "max_duration_ms": 1, "max_delay_ms": 1e3})),
        ok(json!({"retry": {"kind": "none"}})),
        ok(json!({"retry": {"kind": "fixed", "delay": 500.0}})),
        ok(json!({"retry": {"kind": "exponential", "base": 1000, "factor": 1000, "cap": null}})),
        ok(json!({"retry": {"kind": "exponential", "base": 1000, "factor": 1, "cap": 1000}})),
        ok(json!({"headers": null})),
        ok(json!({"headers": {"trace": "abc"}, "idempotency_key": "order-7 ✓"})),
        refused("options", json!([])),
        refused("options", json!("max_attempts")),
        refused("options", json!(null)),
        refused("options", json!({"colour": "blue", "max_attempts": 0})),
        refused("max_attempts", json!({"max_attempts": 3.5})),
        refused("max_attempts", json!({"max_attempts": "3"})),
        refused("max_attempts", json!({"max_attempts": 0})),
        refused("max_attempts", json!({"max_attempts": 2147483648_i64})),
        refused("priority", json!({"priority": true})),
        refused("priority", json!({"priority": 1e300})),
        refused(
            "run_at",
            json!({"run_at": "2030-01-01T00:00:00Z", "delay_ms": 5}),
        ),
        refused("run_at", json!({"run_at": "infinity"})),
        refused("run_at", json!({"run_at": "-infinity"})),
        refused("run_at", json!({"run_at": "now"})),
        refused("run_at", json!({"run_at": "tomorrow 10:00"})),
        refused("run_at", json!({"run_at": "2030-02-30T00:00:00Z"})),
        refused("run_at", json!({"run_at": "2030-01-31T08:00:00"})),
        refused("run_at", json!({"run_at": "2030-01-31T08:00:00+16:00:00"})),
        refused("run_at", json!({"run_at": "0999-12-31T23:59:59.999999Z"})),
        refused("run_at", json!({"run_at": "9999-12-31T23:59:59-00:01"})),
        refused("run_at", json!({"run_at": 1_900_000_000})),
        refused("delay_ms", json!({"delay_ms": i64::MAX})),
        refused("delay_ms", json!({"delay_ms": 9.2e18})),
        refused("delay_ms", json!({"delay_ms": 31557600000001_i64})),
        refused("delay_ms", json!({"delay_ms": 0})),
        refused("delay_ms", json!({"delay_ms": -1})),
        refused("timeout_ms", json!({"timeout_ms": 1.5})),
        refused("retry", json!({"retry": "fixed"})),
        refused("retry.kind", json!({"retry": {"kind": "sometimes"}})),
        refused("retry", json!({"retry": {"kind": "none", "delay": 1}})),
        refused("retry.delay", json!({"retry": {"kind": "fixed"}})),
        refused(
            "retry.base",
            json!({"retry": {"kind": "exponential", "base": 0.5, "factor": 2}}),
        ),
        refused(
            "retry.factor",
            json!({"retry": {"kind": "exponential", "base": 10, "factor": 0.5}}),
        ),
        refused(
            "retry.factor",
            json!({"retry": {"kind": "exponential", "base": 10, "factor": "2"}}),
        ),
        refused(
            "retry.cap",
            json!({"retry": {"kind": "exponential", "base": 10, "factor": 2, "cap": 5}}),
        ),
        refused("max_duration_ms", json!({"max_duration_ms": null})),
        refused("max_delay_ms", json!({"max_delay_ms": "1"})),
        refused("headers", json!({"headers": [1]})),
        refused("idempotency_key", json!({"idempotency_key": ""})),
        refused("idempotency_key", json!({"idempotency_key": "a\nb"})),
        refused("idempotency_key", json!({"idempotency_key": "a\u{85}b"})),
        refused(
            "idempotency_key",
            json!({"idempotency_key": "k".repeat(256)}),
        ),
        refused("idempotency_key", json!({"idempotency_key": 7})),
    ]
}

/// Bad `unique` documents and the option each refusal names (the Rust parser and both SQL
/// entry points, PostgreSQL's `spawn` and MySQL's procedure, must agree).
pub fn unique_refusal_cases() -> Vec<(Value, &'static str)> {
    vec![
        (json!({"unique": "k"}), "unique"),
        (json!({"unique": {"key": "k", "colour": 1}}), "unique"),
        (json!({"unique": {"key": 7}}), "unique.key"),
        (json!({"unique": {"key": ""}}), "unique.key"),
        (json!({"unique": {"period_ms": 10}}), "unique.key"),
        (
            json!({"unique": {"key": "k", "period_ms": 0}}),
            "unique.period_ms",
        ),
        (
            json!({"unique": {"key": "k", "period_ms": 1.5}}),
            "unique.period_ms",
        ),
        (
            json!({"unique": {"key": "k", "states": "running"}}),
            "unique.states",
        ),
        (
            json!({"unique": {"key": "k", "states": ["running"]}}),
            "unique.states",
        ),
        (
            json!({"unique": {"key": "k", "states": ["bogus"]}}),
            "unique.states",
        ),
        (
            json!({"unique": {"key": "k", "states": ["available", "scheduled", "running"]}}),
            "unique.states",
        ),
    ]
}

/// The option a refusal message names: `invalid option `X`: ...` gives `X`; an invalid queue
/// or task name gives `queue` or `task`.
pub fn option_named_in(message: &str) -> Option<String> {
    if let Some(rest) = message.split("invalid option `").nth(1) {
        return rest.split('`').next().map(str::to_string);
    }
    ["queue", "task"]
        .into_iter()
        .find(|kind| message.contains(&format!("invalid {kind} name")))
        .map(str::to_string)
}

/// Checks that two jobs spawned with the same parsed document (one from SQL, one from the
/// Rust API) stored the same options, and that each runs when `options` says: at its instant,
/// or its delay after its creation, or at its creation.
pub fn same_stored_options(a: &JobInfo, b: &JobInfo, options: &SpawnOptions) -> Result<(), String> {
    let stored = |job: &JobInfo| {
        format!(
            "priority {}, attempts {}, retry {:?}, timeout {:?}, {:?}, headers {}, key {:?}",
            job.priority,
            job.max_attempts,
            job.retry,
            job.timeout,
            job.cancellation,
            job.headers,
            job.idempotency_key
        )
    };
    if stored(a) != stored(b) {
        return Err(format!("stored {} and {}", stored(a), stored(b)));
    }
    for job in [a, b] {
        let runs_as_said = match options.run_at {
            Some(RunAt::At(at)) => job.run_at == at,
            Some(RunAt::After(delay)) => (job.run_at - job.created_at).to_std().ok() == Some(delay),
            Some(RunAt::Now) | None => job.run_at == job.created_at,
        };
        if !runs_as_said {
            return Err(format!(
                "job {} runs at {} (created {}), options say {:?}",
                job.id, job.run_at, job.created_at, options.run_at
            ));
        }
    }
    Ok(())
}

/// A random value of an integer option: in range, at and past its ends, integral and
/// fractional floats, huge numbers and other types.
fn int_value(lo: i64, hi: i64) -> BoxedStrategy<Value> {
    prop_oneof![
        4 => (lo..=hi).prop_map(Value::from),
        2 => prop::sample::select(vec![lo - 1, lo, hi, hi + 1, 0, -1]).prop_map(Value::from),
        2 => (lo..=hi).prop_map(|n| json!(n as f64)),
        1 => (lo..hi).prop_map(|n| json!(n as f64 + 0.5)),
        1 => prop::sample::select(vec![
            json!(i64::MAX), json!(i64::MIN), json!(u64::MAX), json!(1e300), json!(-1e300),
            json!(9.2e18), json!(1e-300), json!(2.5e-7),
        ]),
        1 => prop::sample::select(vec![json!("3"), json!(true), json!(null), json!([1]), json!({})]),
    ]
    .boxed()
}

/// A random duration option (milliseconds).
fn millis_value() -> BoxedStrategy<Value> {
    int_value(1, 31_557_600_000_000)
}

/// A random timestamp text: mostly the documented shape with random (sometimes impossible)
/// fields, sometimes other formats; or not a string.
fn run_at_value() -> BoxedStrategy<Value> {
    let shaped = (
        prop_oneof![
            Just(0u32),
            Just(998),
            Just(999),
            Just(1000),
            Just(9999),
            0u32..=9999
        ],
        0u32..=13,
        0u32..=32,
        prop::sample::select(vec!["T", "t", " ", "X"]),
        (0u32..=24, 0u32..=60, 0u32..=60),
        prop_oneof![Just(String::new()), "\\.[0-9]{1,10}"],
        prop_oneof![
            Just("Z".to_string()),
            Just("z".to_string()),
            Just(String::new()),
            (prop::sample::select(vec!['+', '-']), 0u32..=24, 0u32..=60)
                .prop_map(|(sign, h, m)| format!("{sign}{h:02}:{m:02}")),
        ],
    )
        .prop_map(|(y, mo, d, sep, (h, mi, s), frac, zone)| {
            json!(format!(
                "{y:04}-{mo:02}-{d:02}{sep}{h:02}:{mi:02}:{s:02}{frac}{zone}"
            ))
        });
    prop_oneof![
        8 => shaped,
        1 => prop::sample::select(vec![
            json!("infinity"), json!("-infinity"), json!("now"), json!(""), json!("2030-01-31"),
            json!("2030-01-31T08:00:00+0100"), json!("epoch"), json!(" 2030-01-31T08:00:00Z"),
        ]),
        1 => prop::sample::select(vec![json!(1_900_000_000), json!(null), json!({})]),
    ]
    .boxed()
}

/// A random retry strategy document.
fn retry_value() -> BoxedStrategy<Value> {
    let factor = prop_oneof![
        (1.0f64..3.0).prop_map(|f| json!(f)),
        prop::sample::select(vec![
            json!(1),
            json!(1000),
            json!(1000.5),
            json!(0.5),
            json!("2")
        ]),
    ];
    let cap = prop_oneof![
        Just(None),
        Just(Some(Value::Null)),
        millis_value().prop_map(Some)
    ];
    prop_oneof![
        Just(json!({"kind": "none"})),
        millis_value().prop_map(|delay| json!({"kind": "fixed", "delay": delay})),
        (millis_value(), factor, cap).prop_map(|(base, factor, cap)| {
            let mut r = json!({"kind": "exponential", "base": base, "factor": factor});
            if let Some(cap) = cap {
                r["cap"] = cap;
            }
            r
        }),
        prop::sample::select(vec![
            json!({"kind": "sometimes"}),
            json!({"kind": "none", "delay": 1}),
            json!({"kind": "fixed"}),
            json!({"kind": "fixed", "delay": 5, "zz": 1}),
            json!("fixed"),
            json!(null),
            json!({}),
        ]),
    ]
    .boxed()
}

/// A random option document (for property tests): a random subset of the known options with random values, and
/// sometimes an unknown key or no object at all.
pub fn option_document() -> impl Strategy<Value = Value> {
    let values = (
        (
            prop::option::of(int_value(1, 2_147_483_647)),
            prop::option::of(int_value(-2_147_483_648, 2_147_483_647)),
            prop::option::weighted(0.3, run_at_value()),
            prop::option::weighted(0.3, millis_value()),
            prop::option::weighted(0.3, millis_value()),
        ),
        (
            prop::option::weighted(0.3, retry_value()),
            prop::option::weighted(0.2, millis_value()),
            prop::option::weighted(0.2, millis_value()),
            prop::option::weighted(
                0.2,
                prop_oneof![
                    Just(json!({"trace": "t"})),
                    Just(json!(null)),
                    Just(json!([1])),
                    Just(json!("h"))
                ],
            ),
            prop::option::weighted(
                0.2,
                prop_oneof![
                    "[a-z0-9é ✓-]{1,20}".prop_map(Value::from),
                    Just(json!("")),
                    Just(json!("a\u{7}b")),
                    Just(json!("a\u{9f}b")),
                    Just(json!("k".repeat(256))),
                    Just(json!(5)),
                ],
            ),
            prop::option::weighted(
                0.05,
                prop::sample::select(vec!["colour", "zz", "b", "runat"]),
            ),
        ),
    );
    let object = values.prop_map(
        |(
            (attempts, priority, run_at, delay, timeout),
            (retry, duration, max_delay, headers, key, unknown),
        )| {
            let mut m = Map::new();
            let mut put = |k: &str, v: Option<Value>| {
                if let Some(v) = v {
                    m.insert(k.to_string(), v);
                }
            };
            put("max_attempts", attempts);
            put("priority", priority);
            put("run_at", run_at);
            put("delay_ms", delay);
            put("timeout_ms", timeout);
            put("retry", retry);
            put("max_duration_ms", duration);
            put("max_delay_ms", max_delay);
            put("headers", headers);
            put("idempotency_key", key);
            if let Some(k) = unknown {
                put(k, Some(json!(1)));
            }
            Value::Object(m)
        },
    );
    prop_oneof![
        30 => object,
        1 => prop::sample::select(vec![json!([]), json!(null), json!("{}"), json!(3)]),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::parse_options;

    #[test]
    fn the_rust_parser_gives_every_listed_outcome() {
        for case in option_document_cases() {
            let got = parse_options(&case.document)
                .err()
                .and_then(|e| option_named_in(&e.to_string()));
            assert_eq!(got.as_deref(), case.refused, "{}", case.document);
        }
    }
}
