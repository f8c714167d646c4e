//! The engine-agnostic conformance suite: every behaviour of the [`Store`] contract, as one
//! async function per behaviour, run against any engine.
//!
//! An engine crate enables the `conformance` feature in its dev-dependencies and hands a
//! factory to [`conformance_tests!`](crate::conformance_tests), which generates one
//! `#[tokio::test]` per behaviour (so cases run in parallel and each shows up by name):
//!
//! ```ignore
//! // tests/conformance.rs of an engine crate
//! struct Fresh(/* a fresh database: temp file, schema... */);
//! #[async_trait::async_trait]
//! impl tasque_durable::conformance::Backend for Fresh {
//!     async fn open(&self, namespace: &str) -> std::sync::Arc<dyn tasque_durable::Store> { todo!() }
//! }
//! async fn fresh() -> Fresh { todo!() }
//! tasque_durable::conformance_tests!(fresh);
//! ```
//!
//! The factory is called once per case and must return a [`Backend`] on a database no other
//! case uses; [`Backend::open`] opens migrated stores on that database in any namespace.
//! The engine crate needs `tokio` (with `macros` and `rt-multi-thread`) as a dev-dependency.
//!
//! Cases that need time to pass use short leases and delays (tens of milliseconds) and poll
//! with a deadline ([`eventually`]); none sleeps to wait for something it can observe.

mod cancel_retry;
mod claim;
mod deps;
pub mod documents;
mod flow;
mod gated;
mod inspect;
mod registry;
mod rescue;
mod runs;
pub mod schedules;
mod spawn;
mod undecodable;
mod unique;
mod workflow;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

pub use cancel_retry::*;
pub use claim::*;
pub use deps::*;
pub use flow::*;
pub use gated::*;
pub use inspect::*;
pub use registry::*;
pub use rescue::*;
pub use runs::*;
pub use schedules::*;
pub use spawn::*;
pub use undecodable::*;
pub use unique::*;
pub use workflow::*;

use crate::{Claim, ClaimParams, JobId, PollOrder, Spawn, SpawnOptions, Store};

/// A fresh database for one case.
#[async_trait::async_trait]
pub trait Backend: Send + Sync {
    /// A migrated store on this backend's database, in `namespace`. Stores opened with
    /// different namespaces share the database.
    async fn open(&self, namespace: &str) -> Arc<dyn Store>;

    /// Makes job `job` of `namespace` undecodable with raw SQL (see [`Corruption`]), as a
    /// foreign producer, a manual edit or an older build could; the job stays in its state.
    /// Every engine implements it: the default fails the case.
    async fn corrupt(&self, namespace: &str, job: JobId, what: Corruption) {
        panic!("this backend cannot corrupt job {job} of {namespace} ({what:?}): implement Backend::corrupt");
    }
}

#[async_trait::async_trait]
impl<B: Backend + ?Sized> Backend for Box<B> {
    async fn open(&self, namespace: &str) -> Arc<dyn Store> {
        (**self).open(namespace).await
    }

    async fn corrupt(&self, namespace: &str, job: JobId, what: Corruption) {
        (**self).corrupt(namespace, job, what).await
    }
}

/// How long [`eventually`] waits before failing a case.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// A short lease or delay, for cases that need one to run out.
pub const SHORT: Duration = Duration::from_millis(50);

/// A lease that never runs out during a case.
pub const LONG: Duration = Duration::from_secs(3600);

/// Polls `check` every few milliseconds until it returns `Some`, failing the case with `what`
/// after [`DEADLINE`].
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A job with params `{"n": n}` in `queue`, task `task`.
pub fn job(queue: &str, task: &str, n: i64) -> Spawn {
    Spawn::new(queue, task, json!({ "n": n }))
}

/// A job with options.
pub fn job_with(queue: &str, options: SpawnOptions) -> Spawn {
    job(queue, "work", 0).with_options(options)
}

/// Claim parameters: `limit` jobs of `queue`, a long lease, priority order.
pub fn claim_of(queue: &str, limit: u32) -> ClaimParams {
    ClaimParams {
        queues: vec![queue.to_string()],
        limit,
        lease: LONG,
        worker_id: "worker-1".to_string(),
        order: PollOrder::PriorityThenAge,
    }
}

/// Claims exactly one job of `queue`, failing the case otherwise.
pub async fn claim_one(store: &dyn Store, queue: &str) -> Claim {
    let mut claims = store.claim(claim_of(queue, 1)).await.expect("claim");
    assert_eq!(claims.len(), 1, "expected one claimable job in {queue}");
    claims.remove(0)
}

/// Claims one job of `queue` under a lease of `lease`.
pub async fn claim_leased(store: &dyn Store, queue: &str, lease: Duration) -> Claim {
    let params = ClaimParams {
        lease,
        ..claim_of(queue, 1)
    };
    let mut claims = store.claim(params).await.expect("claim");
    assert_eq!(claims.len(), 1, "expected one claimable job in {queue}");
    claims.remove(0)
}

/// Asserts that nothing of `queue` is claimable now.
pub async fn assert_nothing_claimable(store: &dyn Store, queue: &str) {
    let claims = store.claim(claim_of(queue, 100)).await.expect("claim");
    assert!(
        claims.is_empty(),
        "expected nothing claimable in {queue}, got {claims:?}"
    );
}

/// The source of every file of the suite, which [`unregistered_cases`] reads for the cases
/// written. A new case file is added here too (a unit test checks that none is missing).
pub const SOURCES: &[(&str, &str)] = &[
    ("cancel_retry.rs", include_str!("cancel_retry.rs")),
    ("claim.rs", include_str!("claim.rs")),
    ("deps.rs", include_str!("deps.rs")),
    ("documents.rs", include_str!("documents.rs")),
    ("flow.rs", include_str!("flow.rs")),
    ("gated.rs", include_str!("gated.rs")),
    ("inspect.rs", include_str!("inspect.rs")),
    ("mod.rs", include_str!("mod.rs")),
    ("registry.rs", include_str!("registry.rs")),
    ("rescue.rs", include_str!("rescue.rs")),
    ("runs.rs", include_str!("runs.rs")),
    ("schedules.rs", include_str!("schedules.rs")),
    ("spawn.rs", include_str!("spawn.rs")),
    ("undecodable.rs", include_str!("undecodable.rs")),
    ("unique.rs", include_str!("unique.rs")),
    ("workflow.rs", include_str!("workflow.rs")),
];

/// Every case written in the suite: each public async function of [`SOURCES`] whose one
/// argument is the backend.
pub fn written_cases() -> Vec<&'static str> {
    let mut cases = Vec::new();
    for (_, source) in SOURCES {
        let mut rest = *source;
        while let Some(at) = rest.find("pub async fn ") {
            rest = &rest[at + "pub async fn ".len()..];
            let name_end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            let args = rest[name_end..].trim_start();
            let first_arg = args.strip_prefix('(').unwrap_or("").trim_start();
            if first_arg.starts_with("b: &dyn Backend") {
                cases.push(&rest[..name_end]);
            }
        }
    }
    cases
}

/// The cases written in the suite but missing from `registered` (the names
/// [`conformance_tests!`](crate::conformance_tests) generates tests for), sorted.
pub fn unregistered_cases(registered: &[&str]) -> Vec<&'static str> {
    let mut missing: Vec<&'static str> = written_cases()
        .into_iter()
        .filter(|case| !registered.contains(case))
        .collect();
    missing.sort_unstable();
    missing
}

/// Generates one `#[tokio::test]` per conformance case, given an async factory returning a
/// fresh [`Backend`](crate::conformance::Backend) (or a `Box<dyn Backend>`). With a list of case
/// names after a semicolon, generates only those. The full form also generates
/// `every_written_case_is_registered`, which fails when a case written in the suite is missing
/// from this macro's list.
#[macro_export]
macro_rules! conformance_tests {
    ($factory:path) => {
        $crate::conformance_tests!(@every $factory;
            spawn_returns_job_run_and_attempt_one,
            spawn_applies_documented_defaults,
            spawn_stores_every_option,
            idempotency_key_returns_existing_job,
            idempotency_key_is_scoped_to_its_queue,
            spawn_many_inserts_a_batch_in_order,
            spawn_many_with_one_invalid_job_changes_nothing,
            bad_input_is_refused_and_changes_nothing,
            ends_of_the_timestamp_range_are_stored_and_read_back,
            payload_over_the_limit_is_refused,
            queues_are_created_on_first_use,
            delayed_job_is_scheduled_and_not_claimable_early,
            scheduled_job_becomes_claimable_when_due,
            run_at_in_the_past_is_available_at_once,
            claim_carries_everything_the_handler_needs,
            claim_respects_its_limit,
            claim_orders_by_priority_then_age,
            claim_orders_by_age_when_asked,
            claimed_job_is_invisible_to_other_claimers,
            claim_takes_only_the_named_queues,
            paused_queue_is_not_claimed_until_resumed,
            concurrent_claimers_never_get_the_same_job,
            namespaces_are_isolated,
            claim_refuses_bad_parameters,
            complete_stores_the_result,
            complete_with_delete_on_success_removes_the_job,
            complete_many_reports_each_run,
            complete_many_with_a_run_listed_twice_applies_the_first_and_stales_the_rest,
            completing_twice_is_stale,
            fail_schedules_a_retry_with_the_strategy_delay,
            fail_on_the_last_attempt_fails_for_good,
            fail_without_retry_strategy_fails_at_once,
            fail_with_retry_at_forces_the_time,
            retry_after_backoff_is_claimable_as_next_attempt,
            extend_lease_pushes_the_expiry,
            extend_leases_reports_extended_cancelled_and_lost,
            schedule_run_does_not_count_an_attempt,
            release_makes_runs_claimable_at_once_without_counting,
            stale_run_writes_are_rejected,
            expired_lease_is_rescued_as_a_failed_attempt,
            completing_after_rescue_is_rejected_as_stale,
            expired_lease_on_last_attempt_fails_the_job,
            rescue_leaves_live_leases_alone,
            max_duration_policy_cancels_a_running_job,
            max_delay_policy_cancels_an_unstarted_job,
            cancel_pending_job_never_runs,
            cancel_running_job_signals_the_worker,
            cancel_finished_job_is_a_reported_noop,
            cancel_unknown_job_is_not_found,
            cancel_under_contention_never_reports_an_unfinished_job_as_finished,
            retry_failed_job_runs_again_from_attempt_one,
            retry_cancelled_job_with_new_options,
            retry_refuses_jobs_that_are_not_failed_or_cancelled,
            refused_retry_leaves_the_job_claimable_at_once,
            get_result_reports_state_result_and_failure,
            count_filters_by_state_task_and_queue,
            scan_pages_by_cursor,
            scan_pages_by_offset,
            delete_refuses_running_jobs,
            delete_removes_finished_jobs,
            purge_deletes_matching_jobs_but_never_running_ones,
            cleaner_deletes_old_finished_jobs_in_batches,
            list_queues_reports_counts_by_state,
            create_queue_is_idempotent,
            migrate_is_idempotent,
            checkpoint_is_stored_and_extends_the_lease,
            stale_run_cannot_write_a_checkpoint,
            sleep_frees_the_run_and_wakes_at_its_time,
            the_wake_up_wakes_due_sleepers_and_tells_the_next,
            event_emitted_before_the_wait_returns_at_once,
            event_emitted_after_the_wait_wakes_the_job,
            event_wait_times_out,
            emit_wakes_every_waiter,
            events_are_scoped_to_their_namespace,
            queue_limit_caps_running_jobs,
            queue_limit_holds_under_concurrent_claimers,
            blocking_queue_runs_one_job_at_a_time_in_order,
            blocking_queue_failure_holds_the_jobs_behind_it,
            blocking_queue_gives_up_and_continues,
            blocking_queue_stays_blocked_until_an_operator_acts,
            blocking_mode_can_be_turned_off,
            keyed_jobs_run_one_at_a_time_in_enqueue_order,
            key_concurrency_lets_k_jobs_of_a_key_run,
            a_busy_key_does_not_starve_other_keys,
            keys_that_arrive_later_keep_order_and_windows,
            keyed_order_holds_under_concurrent_claimers,
            an_exhausted_keyed_job_holds_its_key_until_an_operator_acts,
            an_exhausted_keyed_job_lets_its_key_go_on_by_default,
            a_rate_limit_caps_starts_per_window,
            a_rate_limit_per_key_skips_throttled_keys,
            a_rate_limit_holds_a_blocking_queue,
            bad_flow_settings_are_refused,
            claim_fails_an_undecodable_job_for_good_and_returns_the_others,
            rescuer_fails_an_expired_undecodable_job_for_good,
            concurrent_passes_fire_each_tick_once,
            a_lost_compare_and_swap_writes_nothing,
            a_fired_job_records_its_schedule_and_tick,
            downtime_with_coalesce_fires_one_job,
            downtime_with_catch_up_fires_the_latest_n_ticks,
            downtime_with_skip_fires_nothing_late,
            skip_if_running_waits_for_the_previous_job,
            paused_schedules_do_not_fire,
            a_deleted_schedule_stops_firing,
            a_manual_trigger_and_the_fire_share_the_tick,
            upsert_keeps_the_firing_state_and_namespaces_are_isolated,
            the_leader_lease_has_one_holder_at_a_time,
            unique_conflict_returns_the_existing_job,
            unique_period_buckets_by_scheduled_time,
            unique_states_decide_which_jobs_hold_the_slot,
            concurrent_unique_enqueuers_create_one_job,
            client_unique_by_args_reports_duplicates,
            retrying_a_unique_job_whose_slot_is_taken_names_the_holder,
            one_seat_leads_and_hands_over_when_it_resigns_or_goes,
            the_worker_registry_tracks_live_workers,
            dependencies_fan_out_releases_every_child,
            dependencies_fan_in_releases_after_the_last_parent,
            a_failed_parent_cancels_its_dependents_transitively,
            policy_run_treats_a_failed_parent_as_resolved,
            an_unknown_parent_is_refused_and_nothing_is_inserted,
            parents_finished_at_enqueue_count_at_once,
            concurrent_parent_completions_release_the_child_exactly_once,
        );
    };
    (@every $factory:path; $($case:ident),+ $(,)?) => {
        $crate::conformance_tests!($factory; $($case),+);

        #[test]
        fn every_written_case_is_registered() {
            let missing = $crate::conformance::unregistered_cases(&[$(stringify!($case)),+]);
            assert!(
                missing.is_empty(),
                "conformance cases written but missing from conformance_tests!: {missing:?}"
            );
        }
    };
    ($factory:path; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let backend = $factory().await;
                $crate::conformance::$case(&backend).await;
            }
        )+
    };
}

#[cfg(test)]
mod tests {
    use super::{unregistered_cases, written_cases, SOURCES};

    #[test]
    fn sources_list_every_file_of_the_suite() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/conformance");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .expect("conformance dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".rs"))
            .collect();
        files.sort();
        let listed: Vec<&str> = SOURCES.iter().map(|(name, _)| *name).collect();
        assert_eq!(files, listed);
    }

    #[test]
    fn a_written_case_missing_from_the_list_is_reported() {
        let written = written_cases();
        assert!(written.contains(&"cancel_unknown_job_is_not_found"));
        assert!(written.contains(&"rescuer_fails_an_expired_undecodable_job_for_good"));
        assert!(!written.contains(&"claim_one"), "helpers are not cases");
        let all_but_one: Vec<&str> = written[1..].to_vec();
        assert_eq!(unregistered_cases(&all_but_one), [written[0]]);
        assert!(unregistered_cases(&written).is_empty());
    }
}
