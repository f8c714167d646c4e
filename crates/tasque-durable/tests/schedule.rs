//! Schedules as pure functions of a given instant: ticks, daylight-saving changes, the
//! missed-tick policies and validation. No test waits for real time.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;
use tasque_durable::schedule::{
    compile_all, plan, tick_key, MissedTicks, Schedule, ScheduleError, Step, HEADER_ID,
    HEADER_TICK, SKIP_GRACE,
};

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|e| panic!("bad instant {s}: {e}"))
}

fn paris(id: &str, expr: &str) -> Schedule {
    Schedule::cron(id, expr)
        .zone("Europe/Paris")
        .task("report", json!({}))
}

#[test]
fn every_ticks_on_multiples_of_the_interval_since_the_epoch() {
    let s = Schedule::every("s", Duration::from_secs(10))
        .task("t", json!(null))
        .compile()
        .unwrap();
    assert_eq!(
        s.upcoming(at("2026-01-01T00:00:03.5Z"), 3),
        vec![
            at("2026-01-01T00:00:10Z"),
            at("2026-01-01T00:00:20Z"),
            at("2026-01-01T00:00:30Z")
        ]
    );
    // Strictly after: a tick instant itself is not "next".
    assert_eq!(
        s.next_after(at("2026-01-01T00:00:10Z")),
        Some(at("2026-01-01T00:00:20Z"))
    );
}

#[test]
fn cron_with_and_without_seconds_reads_the_zone() {
    let five = paris("five", "30 9 * * MON-FRI").compile().unwrap();
    // Friday 2026-01-02 09:30 Paris (CET, UTC+1) = 08:30 UTC.
    assert_eq!(
        five.next_after(at("2026-01-02T00:00:00Z")),
        Some(at("2026-01-02T08:30:00Z"))
    );
    // The next one skips the weekend.
    assert_eq!(
        five.next_after(at("2026-01-02T08:30:00Z")),
        Some(at("2026-01-05T08:30:00Z"))
    );
    let six = Schedule::cron("six", "*/15 * * * * *")
        .task("t", json!(null))
        .compile()
        .unwrap();
    assert_eq!(
        six.upcoming(at("2026-01-01T00:00:00Z"), 2),
        vec![at("2026-01-01T00:00:15Z"), at("2026-01-01T00:00:30Z")]
    );
}

#[test]
fn dst_a_fixed_time_in_the_skipped_hour_fires_once_at_the_first_valid_instant() {
    // Paris springs forward on 2026-03-29: 02:00 CET becomes 03:00 CEST (01:00 UTC).
    let s = paris("gap", "0 30 2 * * *").compile().unwrap();
    let fires = s.upcoming(at("2026-03-28T12:00:00Z"), 2);
    assert_eq!(
        fires[0],
        at("2026-03-29T01:00:00Z"),
        "03:00 CEST, right after the gap"
    );
    assert_eq!(
        fires[1],
        at("2026-03-30T00:30:00Z"),
        "02:30 CEST the next day"
    );
}

#[test]
fn dst_a_fixed_time_in_the_repeated_hour_fires_once() {
    // Paris falls back on 2026-10-25: 03:00 CEST becomes 02:00 CET, so 02:30 happens twice
    // (00:30 UTC and 01:30 UTC).
    let s = paris("overlap", "0 30 2 * * *").compile().unwrap();
    let fires = s.upcoming(at("2026-10-24T12:00:00Z"), 2);
    assert_eq!(fires[0], at("2026-10-25T00:30:00Z"), "first pass only");
    assert_eq!(
        fires[1],
        at("2026-10-26T01:30:00Z"),
        "02:30 CET the next day"
    );
}

#[test]
fn dst_interval_patterns_follow_real_time() {
    let s = paris("quarter", "*/30 * * * *").compile().unwrap();
    // Across the spring gap: 01:30 CET (00:30Z), then 03:00 CEST (01:00Z); no 02:xx.
    assert_eq!(
        s.upcoming(at("2026-03-29T00:15:00Z"), 2),
        vec![at("2026-03-29T00:30:00Z"), at("2026-03-29T01:00:00Z")]
    );
    // Across the autumn repeat every half hour of real time fires.
    assert_eq!(
        s.upcoming(at("2026-10-25T00:15:00Z"), 3),
        vec![
            at("2026-10-25T00:30:00Z"),
            at("2026-10-25T01:00:00Z"),
            at("2026-10-25T01:30:00Z")
        ]
    );
}

fn every_second(policy: MissedTicks) -> tasque_durable::schedule::CompiledSchedule {
    Schedule::every("tick", Duration::from_secs(1))
        .task("t", json!(null))
        .missed(policy)
        .compile()
        .unwrap()
}

#[test]
fn nothing_is_due_before_the_next_tick() {
    let s = every_second(MissedTicks::Coalesce);
    let last = at("2026-01-01T00:00:10Z");
    assert!(plan(&s, Some(last), last, at("2026-01-01T00:00:10.900Z")).is_empty());
    assert_eq!(
        plan(&s, Some(last), last, at("2026-01-01T00:00:11Z")),
        vec![Step::Fire(at("2026-01-01T00:00:11Z"))]
    );
}

#[test]
fn a_new_schedule_never_fires_ticks_before_its_registration() {
    let s = every_second(MissedTicks::CatchUp(100));
    let registered = at("2026-01-01T00:00:10.5Z");
    assert_eq!(
        plan(&s, None, registered, at("2026-01-01T00:00:12Z")),
        vec![
            Step::Fire(at("2026-01-01T00:00:11Z")),
            Step::Fire(at("2026-01-01T00:00:12Z"))
        ]
    );
}

#[test]
fn coalesce_fires_one_job_for_all_missed_ticks() {
    let s = every_second(MissedTicks::Coalesce);
    let last = at("2026-01-01T00:00:00Z");
    assert_eq!(
        plan(&s, Some(last), last, at("2026-01-01T01:00:00.3Z")),
        vec![Step::Fire(at("2026-01-01T01:00:00Z"))]
    );
}

#[test]
fn catch_up_fires_the_latest_n_missed_ticks_in_order() {
    let s = every_second(MissedTicks::CatchUp(3));
    let last = at("2026-01-01T00:00:00Z");
    assert_eq!(
        plan(&s, Some(last), last, at("2026-01-01T00:00:10Z")),
        vec![
            Step::Fire(at("2026-01-01T00:00:08Z")),
            Step::Fire(at("2026-01-01T00:00:09Z")),
            Step::Fire(at("2026-01-01T00:00:10Z"))
        ]
    );
    // Fewer missed than n: all of them.
    assert_eq!(
        plan(&s, Some(last), last, at("2026-01-01T00:00:02Z")).len(),
        2
    );
}

#[test]
fn skip_passes_over_late_ticks_and_fires_on_time_ones() {
    let s = every_second(MissedTicks::Skip);
    let last = at("2026-01-01T00:00:00Z");
    assert_eq!(
        plan(&s, Some(last), last, at("2026-01-01T01:00:00.2Z")),
        vec![Step::Fire(at("2026-01-01T01:00:00Z"))],
        "the latest tick is on time"
    );
    let hourly = Schedule::cron("hourly", "0 * * * *")
        .task("t", json!(null))
        .missed(MissedTicks::Skip)
        .compile()
        .unwrap();
    let late = at("2026-01-01T05:00:00Z") + SKIP_GRACE + Duration::from_secs(1);
    assert_eq!(
        plan(&hourly, Some(last), last, late),
        vec![Step::Pass(at("2026-01-01T05:00:00Z"))]
    );
}

#[test]
fn the_job_of_a_tick_carries_its_key_and_headers() {
    let s = Schedule::every("tick", Duration::from_secs(1))
        .task("t", json!({"a": 1}))
        .queue("q")
        .priority(3)
        .compile()
        .unwrap();
    let tick = at("2026-01-01T00:00:01Z");
    let spawn = s.spawn_for(tick);
    assert_eq!(spawn.queue, "q");
    assert_eq!(spawn.params, json!({"a": 1}));
    assert_eq!(spawn.options.priority, Some(3));
    assert_eq!(
        spawn.options.idempotency_key.as_deref(),
        Some("cron:tick:2026-01-01T00:00:01Z")
    );
    assert_eq!(tick_key("tick", tick), "cron:tick:2026-01-01T00:00:01Z");
    let headers = spawn.options.headers.unwrap();
    assert_eq!(headers[HEADER_ID], json!("tick"));
    assert_eq!(headers[HEADER_TICK], json!("2026-01-01T00:00:01Z"));
}

#[test]
fn invalid_schedules_get_typed_errors() {
    let bad_expr = Schedule::cron("a", "61 * * * *").task("t", json!(null));
    assert!(matches!(
        bad_expr.compile(),
        Err(ScheduleError::InvalidExpression { .. })
    ));
    let bad_zone = Schedule::cron("b", "* * * * *")
        .zone("Mars/Olympus")
        .task("t", json!(null));
    assert!(matches!(
        bad_zone.compile(),
        Err(ScheduleError::UnknownZone { .. })
    ));
    let no_task = Schedule::every("c", Duration::from_secs(1));
    assert!(matches!(
        no_task.compile(),
        Err(ScheduleError::Invalid { field: "task", .. })
    ));
    let fractional = Schedule::every("d", Duration::from_millis(1500)).task("t", json!(null));
    assert!(matches!(
        fractional.compile(),
        Err(ScheduleError::Invalid {
            field: "every_seconds",
            ..
        })
    ));
    let twice = [
        Schedule::every("e", Duration::from_secs(1)).task("t", json!(null)),
        Schedule::every("e", Duration::from_secs(2)).task("t", json!(null)),
    ];
    assert_eq!(
        compile_all(&twice).unwrap_err(),
        ScheduleError::DuplicateId { id: "e".into() }
    );
}
