//! Schema version 12 made the single `spawn` function cheaper (an inlined check, a plain insert
//! for jobs with neither `idempotency_key` nor `unique`, unique helpers only for unique jobs).
//! The contract is version 11's: for the listed and for random option documents (with and
//! without keys, unique slots and ordering keys, into notifying and quiet queues), a namespace
//! at version 11 and one at this build's version refuse the same documents with the same
//! SQLSTATE and message, store the same row, return the same columns (a repeated call finds
//! the same holder), flag the same queues keyed and send the same notifications.

mod support;

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{json, Value};
use sqlx::postgres::PgListener;
use sqlx::{PgPool, Row};
use tasque_durable::conformance::documents::{
    option_document, option_document_cases, unique_refusal_cases,
};

/// The version whose `spawn` this build's must match.
const BEFORE: i64 = 11;

/// What one `spawn` call gave: its row (job id, run_seq, attempt, created), or the refusal's
/// SQLSTATE and message.
type Outcome = Result<(i64, i64, i32, bool), (String, String)>;

/// One namespace under test: its schema (also its channel).
struct Side {
    schema: String,
}

impl Side {
    async fn spawn(&self, pool: &PgPool, queue: &str, document: &Value) -> Outcome {
        let call = format!(
            "SELECT * FROM \"{}\".spawn($1, 'work', '{{\"p\": 1}}', $2::jsonb)",
            self.schema
        );
        match sqlx::query(&call)
            .bind(queue)
            .bind(document.to_string())
            .fetch_one(pool)
            .await
        {
            Ok(row) => Ok((row.get(0), row.get(1), row.get(2), row.get(3))),
            Err(err) => {
                let db = err.as_database_error().expect("a database error");
                Err((
                    db.code().unwrap_or_default().to_string(),
                    db.message().to_string(),
                ))
            }
        }
    }

    /// The stored job without its id and clock readings; its run time relative to its creation
    /// (absolute, with its unique bucket, when the document gave `run_at`), its deadline
    /// relative to its run time; and its queue's flags.
    async fn stored(&self, pool: &PgPool, id: i64, absolute: bool) -> Value {
        let sql = format!(
            "SELECT jsonb_build_object('job', to_jsonb(j) - '{{id,created_at,run_at,cancel_at}}'::text[] \
             - CASE WHEN $2 THEN '' ELSE 'unique_bucket' END, \
             'run_at', CASE WHEN $2 THEN to_jsonb(j.run_at) ELSE to_jsonb(j.run_at - j.created_at) END, \
             'cancel_at', to_jsonb(j.cancel_at - j.run_at), \
             'queue', (SELECT to_jsonb(q) - '{{name,created_at}}'::text[] FROM \"{0}\".queues AS q WHERE q.name = j.queue)) \
             FROM \"{0}\".jobs AS j WHERE j.id = $1",
            self.schema
        );
        sqlx::query_scalar(&sql)
            .bind(id)
            .bind(absolute)
            .fetch_one(pool)
            .await
            .expect("the stored job")
    }

    /// The queues announced on this side's channel since the last mark: sends a mark and reads
    /// up to it (notifications arrive in commit order).
    async fn announced(&self, pool: &PgPool, listener: &mut PgListener) -> BTreeSet<String> {
        sqlx::query("SELECT pg_notify($1, '#mark')")
            .bind(&self.schema)
            .execute(pool)
            .await
            .expect("mark");
        let mut queues = BTreeSet::new();
        loop {
            let note = tokio::time::timeout(Duration::from_secs(30), listener.recv())
                .await
                .expect("the mark within 30 s")
                .expect("listening");
            if note.channel() != self.schema {
                panic!(
                    "a notification on {} while reading {}",
                    note.channel(),
                    self.schema
                );
            }
            if note.payload() == "#mark" {
                return queues;
            }
            queues.insert(note.payload().to_string());
        }
    }
}

/// Two namespaces, one at version 11 and one at this build's version, and a listener on both
/// channels.
struct Pair {
    pool: PgPool,
    before: Side,
    now: Side,
    listener: PgListener,
    _fresh: support::Fresh,
}

impl Pair {
    async fn new() -> Option<Pair> {
        let pool = support::server().await?;
        let fresh = support::Fresh::new("v");
        let old = fresh.unmigrated("old").await;
        old.migrate_to(BEFORE).await.expect("migrate to 11");
        let new = fresh.store("new").await;
        let (before, now) = (
            Side {
                schema: old.schema().to_string(),
            },
            Side {
                schema: new.schema().to_string(),
            },
        );
        old.close().await;
        new.close().await;
        let mut listener = PgListener::connect(&support::url())
            .await
            .expect("listener");
        listener
            .listen_all([before.schema.as_str(), now.schema.as_str()])
            .await
            .expect("listen");
        Some(Pair {
            pool,
            before,
            now,
            listener,
            _fresh: fresh,
        })
    }

    /// Spawns `document` twice on each side into a fresh queue (quiet when `quiet`) and checks
    /// both sides did the same.
    async fn check(&mut self, document: &Value, quiet: bool) -> Result<(), TestCaseError> {
        static CASE: AtomicU64 = AtomicU64::new(0);
        let queue = format!("q{}", CASE.fetch_add(1, Ordering::Relaxed));
        let mut seen = Vec::new();
        for side in [&self.before, &self.now] {
            // No job of an earlier case: a unique key holds its slot across queues, so an
            // earlier case's job (created at another moment on each side) would be returned.
            let sql = format!("DELETE FROM \"{}\".jobs", side.schema);
            sqlx::query(&sql)
                .execute(&self.pool)
                .await
                .expect("clear earlier cases");
            if quiet {
                let sql = format!(
                    "INSERT INTO \"{}\".queues (name, notify) VALUES ($1, false)",
                    side.schema
                );
                sqlx::query(&sql)
                    .bind(&queue)
                    .execute(&self.pool)
                    .await
                    .expect("quiet queue");
            }
            let first = side.spawn(&self.pool, &queue, document).await;
            let announced_first = side.announced(&self.pool, &mut self.listener).await;
            let again = side.spawn(&self.pool, &queue, document).await;
            let announced_again = side.announced(&self.pool, &mut self.listener).await;
            let absolute = document.get("run_at").is_some();
            let stored = match &first {
                Ok((id, ..)) => Some(side.stored(&self.pool, *id, absolute).await),
                Err(_) => None,
            };
            // The repeated call: created again, or the first job returned.
            let repeated = match (&first, &again) {
                (Ok((id, ..)), Ok((again_id, seq, attempt, created))) => {
                    Ok((again_id == id, *seq, *attempt, *created))
                }
                (_, Ok(_)) => Err(("accepted".to_string(), "only the second time".to_string())),
                (_, Err(refusal)) => Err(refusal.clone()),
            };
            let first = first.map(|(_, seq, attempt, created)| (seq, attempt, created));
            seen.push((first, repeated, stored, announced_first, announced_again));
        }
        if let Some(Err((code, message))) = seen.first().map(|s| &s.0) {
            prop_assert_eq!(code.as_str(), "22023", "{}: {}", document, message);
        }
        prop_assert_eq!(&seen[0], &seen[1], "{} (quiet: {})", document, quiet);
        Ok(())
    }
}

/// A `unique` or `ordering_key` option to add to a random document (valid or not).
fn extra_option() -> impl Strategy<Value = Option<(&'static str, Value)>> {
    let mut uniques = vec![
        json!({"key": "slot"}),
        json!({"key": "slot", "period_ms": 3_600_000}),
        json!({"key": "slot", "states": ["available", "scheduled", "running", "sleeping",
            "waiting", "completed"]}),
    ];
    uniques.extend(
        unique_refusal_cases()
            .into_iter()
            .map(|(document, _)| document["unique"].clone()),
    );
    prop::option::weighted(
        0.4,
        prop_oneof![
            prop::sample::select(uniques).prop_map(|u| ("unique", u)),
            prop::sample::select(vec![json!("k1"), json!("k2"), json!(""), json!(7)])
                .prop_map(|k| ("ordering_key", k)),
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listed_documents_get_the_same_outcome_as_version_11() {
    let Some(mut pair) = Pair::new().await else {
        return;
    };
    let mut documents: Vec<Value> = option_document_cases()
        .into_iter()
        .map(|case| case.document)
        .collect();
    documents.extend(
        unique_refusal_cases()
            .into_iter()
            .map(|(document, _)| document),
    );
    documents.extend([
        json!({}),
        json!(null),
        json!({"priority": 1, "max_attempts": 5, "timeout_ms": 30000}),
        json!({"idempotency_key": "k", "delay_ms": 5000}),
        json!({"unique": {"key": "u", "period_ms": 60000}, "run_at": "2031-05-01T10:00:00Z"}),
        json!({"ordering_key": "o", "max_delay_ms": 1000}),
        json!({"ordering_key": "o", "idempotency_key": "k2", "retry": {"kind": "none"}}),
    ]);
    for (n, document) in documents.iter().enumerate() {
        let checked = pair.check(document, n % 3 == 0).await;
        assert!(checked.is_ok(), "{checked:?}");
    }
}

/// Random documents (the property test's generator, plus unique slots and ordering keys).
#[test]
fn random_documents_get_the_same_outcome_as_version_11() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    // The pair's listener and pool are dropped in the runtime's context, also on a failure.
    let _context = runtime.enter();
    let Some(pair) = runtime.block_on(Pair::new()) else {
        return;
    };
    let pair = RefCell::new(pair);
    let mut runner = TestRunner::new(Config {
        cases: 200,
        failure_persistence: None,
        ..Config::default()
    });
    let documents = (option_document(), extra_option(), any::<bool>());
    let outcome = runner.run(&documents, |(mut document, extra, quiet)| {
        if let (Some(object), Some((name, value))) = (document.as_object_mut(), extra) {
            object.insert(name.to_string(), value);
        }
        runtime.block_on(pair.borrow_mut().check(&document, quiet))
    });
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
    // The schemas are dropped outside the runtime, by the pair's `Fresh`.
    let pair = pair.into_inner();
    runtime.block_on(pair.pool.close());
    drop(pair);
}
