//! The dashboard's behaviour, written once and run on every engine (see `dashboard_suite!`).

use std::collections::HashSet;
use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::{json, Value};
use tasque_durable::{JobId, JobState, Spawn, SpawnOptions, Store};
use tasque_web::{Access, Dashboard};

use super::fixture::{self, Fixture};
use super::http::Client;

/// A dashboard client on `store` (no cache delay, so every page sees the latest counts).
pub fn client(store: Arc<dyn Store>) -> Client {
    let router = Dashboard::new(store, Access::open())
        .cache_ttl(std::time::Duration::ZERO)
        .router();
    Client::new(router, "")
}

fn queue<'a>(rows: &'a Value, name: &str) -> &'a Value {
    rows.as_array()
        .unwrap()
        .iter()
        .find(|q| q["name"] == name)
        .unwrap_or_else(|| panic!("queue {name} in {rows}"))
}

async fn state_of(store: &dyn Store, id: JobId) -> JobState {
    store.get_job(id).await.expect("job").state
}

pub async fn overview_shows_counts_throughput_and_timings(store: Arc<dyn Store>) {
    fixture::build(&*store).await;
    let mut web = client(store);
    // The snapshot refreshes in the background: the second read sees the first's refresh.
    let data = web.get_json("/api/overview").await;
    assert_eq!(data["totals"]["completed"], 1, "{data}");
    assert_eq!(data["totals"]["failed"], 1);
    assert_eq!(data["totals"]["waiting"], 1);
    assert_eq!(data["totals"]["running"], 1);
    assert_eq!(data["totals"]["scheduled"], 1);
    assert_eq!(data["totals"]["available"], 3);
    let minutes = data["minutes"].as_array().unwrap();
    assert_eq!(minutes.len(), 60);
    let completed: u64 = minutes
        .iter()
        .map(|m| m["completed"].as_u64().unwrap())
        .sum();
    let failed: u64 = minutes.iter().map(|m| m["failed"].as_u64().unwrap()).sum();
    assert_eq!(
        (completed, failed),
        (1, 1),
        "finished jobs land in the last hour's minutes"
    );
    let timing = data["timings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["queue"] == "work")
        .expect("work timings");
    assert_eq!(timing["samples"], 2);
    assert!(timing["run_p95_ms"].as_i64().unwrap() >= timing["run_p50_ms"].as_i64().unwrap());
    let page = web.get("/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("<svg") && page.body.contains("Throughput"),
        "{}",
        page.body
    );
}

pub async fn queues_page_shows_depth_and_acts(store: Arc<dyn Store>) {
    fixture::build(&*store).await;
    let mut web = client(store.clone());
    let rows = web.get_json("/api/queues").await;
    let mail = queue(&rows, "mail");
    assert_eq!(mail["counts"]["available"], 3);
    assert_eq!(mail["paused"], false);
    assert!(mail["oldest_ready_ms"].as_i64().is_some(), "{mail}");
    assert!(
        queue(&rows, "later")["oldest_ready_ms"].is_null(),
        "nothing ready in later"
    );

    let reply = web.post_form("/queues/mail/pause", &[]).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    assert_eq!(
        queue(&web.get_json("/api/queues").await, "mail")["paused"],
        true
    );
    let page = web.get("/queues").await;
    assert!(page.body.contains("Resume"), "a paused queue offers resume");
    web.post_form("/queues/mail/resume", &[]).await;
    assert_eq!(
        queue(&web.get_json("/api/queues").await, "mail")["paused"],
        false
    );

    web.post_form("/queues/mail/limit", &[("limit", "2")]).await;
    assert_eq!(
        queue(&web.get_json("/api/queues").await, "mail")["limit"],
        2
    );
    let refused = web.post_form("/queues/mail/limit", &[("limit", "0")]).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        queue(&web.get_json("/api/queues").await, "mail")["limit"],
        2,
        "bad input changes nothing"
    );
    web.post_form("/queues/mail/limit", &[("limit", "")]).await;
    assert!(queue(&web.get_json("/api/queues").await, "mail")["limit"].is_null());
}

pub async fn job_list_filters_searches_and_pages(store: Arc<dyn Store>) {
    let fx: Fixture = fixture::build(&*store).await;
    let mut web = client(store.clone());
    let list = web.get_json("/api/jobs?state=available&queue=mail").await;
    let ids: Vec<i64> = list["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, fx.mail.iter().map(|j| j.0).collect::<Vec<_>>());
    let found = web.get_json("/api/jobs?q=needle").await;
    assert_eq!(found["jobs"].as_array().unwrap().len(), 1);
    assert_eq!(found["jobs"][0]["id"], fx.mail[2].0);
    let kind = web.get_json("/api/jobs?kind=flow").await;
    assert_eq!(kind["jobs"][0]["id"], fx.waiting.0);
    let bad = web.get("/api/jobs?state=bogus").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);

    let spawns = (0..120)
        .map(|i| Spawn::new("bulk", "noop", json!({"i": i})))
        .collect();
    store.spawn_many(spawns).await.unwrap();
    let mut seen = HashSet::new();
    let mut path = "/api/jobs?queue=bulk".to_string();
    let mut pages = 0;
    loop {
        let page = web.get_json(&path).await;
        pages += 1;
        for job in page["jobs"].as_array().unwrap() {
            assert!(
                seen.insert(job["id"].as_i64().unwrap()),
                "a job listed twice"
            );
        }
        match page["next"].as_i64() {
            Some(next) => path = format!("/api/jobs?queue=bulk&after={next}"),
            None => break,
        }
    }
    assert_eq!((seen.len(), pages), (120, 3));
    // The search pages too: every job whose args contain "1" (i = 1, 10..19, 21, ...).
    let mut matched = 0;
    let mut path = "/api/jobs?queue=bulk&q=1".to_string();
    loop {
        let page = web.get_json(&path).await;
        matched += page["jobs"].as_array().unwrap().len();
        match page["next"].as_i64() {
            Some(next) => path = format!("/api/jobs?queue=bulk&q=1&after={next}"),
            None => break,
        }
    }
    assert_eq!(
        matched,
        (0..120).filter(|i| i.to_string().contains('1')).count()
    );
    let html = web.get("/jobs?queue=bulk").await;
    assert!(
        html.body.contains("next page"),
        "the HTML list links the next page"
    );
}

fn reasons(detail: &Value) -> Vec<String> {
    detail["why"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reason"].as_str().unwrap().to_string())
        .collect()
}

/// Records a live worker serving `queues` in the store's worker registry.
async fn worker_serving(store: &dyn Store, id: &str, queues: &[&str]) {
    let beat = tasque_durable::registry::WorkerBeat {
        id: id.to_string(),
        host: "test-host".to_string(),
        pid: 7,
        queues: queues.iter().map(|q| q.to_string()).collect(),
        ttl: std::time::Duration::from_secs(3600),
    };
    let registry = store
        .registry()
        .expect("the engine keeps a worker registry");
    registry.worker_beat(&beat).await.unwrap();
}

pub async fn job_detail_explains_why_it_is_not_running(store: Arc<dyn Store>) {
    let fx = fixture::build(&*store).await;
    let mut web = client(store.clone());
    // Without a live worker for its queue, a ready job says so, exactly.
    let unserved = web.get_json(&format!("/api/jobs/{}", fx.mail[0])).await;
    assert_eq!(reasons(&unserved), ["no_live_worker"]);
    assert_eq!(unserved["why"][0]["queue"], "mail");
    let all: Vec<String> = store
        .list_queues()
        .await
        .unwrap()
        .into_iter()
        .map(|q| q.name)
        .collect();
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    worker_serving(&*store, "w-all", &all).await;
    let workers = web.get_json("/api/workers").await;
    assert_eq!(workers["workers"][0]["id"], "w-all");
    assert_eq!(workers["workers"][0]["alive"], true);
    let page = web.get("/workers").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("w-all"), "{}", page.body);
    let failed = web.get_json(&format!("/api/jobs/{}", fx.failed)).await;
    assert_eq!(failed["state"], "failed");
    assert_eq!(failed["attempts"].as_array().unwrap().len(), 1);
    assert_eq!(failed["attempts"][0]["error"]["error"], "boom");
    assert_eq!(failed["can_retry"], true);
    assert_eq!(reasons(&failed), ["finished"]);
    let completed = web.get_json(&format!("/api/jobs/{}", fx.completed)).await;
    assert_eq!(completed["result"], json!({"rows": 3}));

    let waiting = web.get_json(&format!("/api/jobs/{}", fx.waiting)).await;
    assert_eq!(reasons(&waiting), ["waiting_for_event"]);
    assert_eq!(waiting["why"][0]["event"], "go");
    let running = web.get_json(&format!("/api/jobs/{}", fx.running)).await;
    assert_eq!(running["why"][0]["reason"], "lease_held");
    assert_eq!(running["why"][0]["worker"], "w1");
    let scheduled = web.get_json(&format!("/api/jobs/{}", fx.scheduled)).await;
    assert_eq!(reasons(&scheduled), ["scheduled_later"]);
    assert!(scheduled["why"][0]["in_ms"].as_i64().unwrap() > 3_000_000);

    let ready = web.get_json(&format!("/api/jobs/{}", fx.mail[0])).await;
    assert_eq!(reasons(&ready), ["next_in_line"]);
    store.pause_queue("mail").await.unwrap();
    store.set_queue_limit("work", Some(1)).await.unwrap();
    let paused = web.get_json(&format!("/api/jobs/{}", fx.mail[0])).await;
    assert_eq!(reasons(&paused), ["queue_paused"]);
    let work_job = store
        .spawn(Spawn::new("work", "report", json!({})))
        .await
        .unwrap()
        .job_id;
    let limited = web.get_json(&format!("/api/jobs/{work_job}")).await;
    assert_eq!(reasons(&limited), ["queue_at_limit"], "{limited}");

    let page = web.get(&format!("/jobs/{}", fx.waiting)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Why is this job not running?"));
    assert!(page.body.contains("waits for event"), "{}", page.body);
    let missing = web.get("/api/jobs/999999").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    // A job held by its parents says which ones it waits on.
    let held = store
        .spawn(
            Spawn::new("work", "report", json!({}))
                .with_options(SpawnOptions::new().with_depends_on([fx.waiting, fx.completed])),
        )
        .await
        .unwrap()
        .job_id;
    let detail = web.get_json(&format!("/api/jobs/{held}")).await;
    assert_eq!(reasons(&detail), ["waiting_on_parents"], "{detail}");
    assert_eq!(detail["why"][0]["waiting"], 1);
    assert_eq!(detail["why"][0]["total"], 2);
    assert_eq!(detail["parents"].as_array().map(Vec::len), Some(2));
    let page = web.get(&format!("/jobs/{held}")).await;
    let expected = format!("waiting on 1 of 2 parents ({})", fx.waiting);
    assert!(page.body.contains(&expected), "{}", page.body);
}

pub async fn job_actions_retry_cancel_and_delete(store: Arc<dyn Store>) {
    let fx = fixture::build(&*store).await;
    let mut web = client(store.clone());
    let reply = web
        .post_form(&format!("/jobs/{}/retry", fx.failed), &[])
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert!(reply
        .location()
        .starts_with(&format!("/jobs/{}?notice=", fx.failed)));
    assert_eq!(state_of(&*store, fx.failed).await, JobState::Available);

    web.post_form(&format!("/jobs/{}/cancel", fx.scheduled), &[])
        .await;
    assert_eq!(state_of(&*store, fx.scheduled).await, JobState::Cancelled);
    web.post_form(&format!("/jobs/{}/delete", fx.scheduled), &[])
        .await;
    assert!(store.get_job(fx.scheduled).await.is_err(), "deleted");

    let noop = web
        .post_form(&format!("/jobs/{}/retry", fx.completed), &[])
        .await;
    assert!(
        noop.location().contains("does+not+apply"),
        "{}",
        noop.location()
    );
    assert_eq!(state_of(&*store, fx.completed).await, JobState::Completed);
    let refused = web
        .post_form(&format!("/jobs/{}/delete", fx.running), &[])
        .await;
    assert_eq!(refused.status, StatusCode::SEE_OTHER);
    assert_eq!(
        state_of(&*store, fx.running).await,
        JobState::Running,
        "running jobs are never deleted"
    );
}

pub async fn bulk_actions_on_a_filter_and_a_selection(store: Arc<dyn Store>) {
    let fx = fixture::build(&*store).await;
    let mut web = client(store.clone());
    let count = web.get_json("/api/jobs/bulk/count?queue=mail").await;
    assert_eq!(count["count"], 3);
    let confirm = web.get("/jobs/bulk?action=cancel&queue=mail").await;
    assert_eq!(confirm.status, StatusCode::OK);
    assert!(
        confirm.body.contains("data-count=\"3\""),
        "{}",
        confirm.body
    );
    let searched = web
        .get_json("/api/jobs/bulk/count?queue=mail&q=needle")
        .await;
    assert_eq!(searched["count"], 1);

    let reply = web
        .post_form(
            "/jobs/bulk",
            &[
                ("action", "cancel"),
                ("all", "1"),
                ("queue", "mail"),
                ("q", "needle"),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    assert_eq!(state_of(&*store, fx.mail[2]).await, JobState::Cancelled);
    assert_eq!(
        state_of(&*store, fx.mail[0]).await,
        JobState::Available,
        "the search narrowed it"
    );

    web.post_form(
        "/jobs/bulk",
        &[("action", "cancel"), ("all", "1"), ("queue", "mail")],
    )
    .await;
    for id in &fx.mail {
        assert_eq!(state_of(&*store, *id).await, JobState::Cancelled);
    }
    let a = fx.mail[0].to_string();
    let b = fx.mail[1].to_string();
    let reply = web
        .post_form(
            "/jobs/bulk",
            &[("action", "retry"), ("ids", &a), ("ids", &b)],
        )
        .await;
    assert!(
        reply.location().contains("2+jobs+done"),
        "{}",
        reply.location()
    );
    assert_eq!(state_of(&*store, fx.mail[0]).await, JobState::Available);
    assert_eq!(state_of(&*store, fx.mail[1]).await, JobState::Available);
    let reply = web
        .post_form(
            "/jobs/bulk",
            &[
                ("action", "delete"),
                ("ids", &a),
                ("ids", &fx.running.to_string()),
            ],
        )
        .await;
    assert!(
        reply.location().contains("1+jobs+done%2C+1+skipped"),
        "{}",
        reply.location()
    );
    let empty = web.post_form("/jobs/bulk", &[("action", "delete")]).await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);
}

/// One `#[tokio::test]` per suite case on the engine `$engine` (a `support::` constructor).
#[macro_export]
macro_rules! dashboard_suite {
    ($engine:ident: $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some(engine) = support::$engine().await else { return };
                support::suite::$case(engine.store.clone()).await;
                engine.finish().await;
            }
        )*
    };
    ($engine:ident) => {
        $crate::dashboard_suite!($engine:
            overview_shows_counts_throughput_and_timings,
            queues_page_shows_depth_and_acts,
            job_list_filters_searches_and_pages,
            job_detail_explains_why_it_is_not_running,
            job_actions_retry_cancel_and_delete,
            bulk_actions_on_a_filter_and_a_selection,
        );
    };
}
