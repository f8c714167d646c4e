//! Option documents and the outcome each must get, the same from the Rust parser
//! ([`parse_options`](crate::validate::parse_options)) and from every engine's SQL
//! (PostgreSQL `tasque_<ns>.spawn`, MySQL `CALL tasque_<ns>_spawn`). Engine tests feed each to
//! their SQL and check the refusals (SQLSTATE 22023, the option named) and what was stored.

use serde_json::{json, Value};

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
