//! Cases: the worker registry.

use std::time::Duration;

use super::{eventually, Backend, LONG, SHORT};
use crate::registry::{served_queues, WorkerBeat, WorkerRegistry};

fn beat(id: &str, queues: &[&str], ttl: Duration) -> WorkerBeat {
    WorkerBeat {
        id: id.to_string(),
        host: "host-1".to_string(),
        pid: 4242,
        queues: queues.iter().map(|q| q.to_string()).collect(),
        ttl,
    }
}

/// Workers record themselves and renew their row; one that stops beating is no longer alive
/// (its queues are no longer served), is pruned once dead long enough, and a worker that
/// stops forgets itself.
pub async fn the_worker_registry_tracks_live_workers(b: &dyn Backend) {
    let store = b.open("main").await;
    let registry: &dyn WorkerRegistry = store.registry().expect("this engine has a registry");
    assert!(registry.worker_list().await.unwrap().is_empty());
    registry
        .worker_beat(&beat("a", &["default", "mail"], LONG))
        .await
        .unwrap();
    registry
        .worker_beat(&beat("b", &["reports"], SHORT))
        .await
        .unwrap();
    let listed = registry.worker_list().await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].id, "a");
    assert_eq!(listed[0].host, "host-1");
    assert_eq!(listed[0].pid, 4242);
    assert_eq!(listed[0].queues, ["default", "mail"]);
    assert!(listed[0].alive);
    let first = listed[0].clone();
    eventually("b's beat expires", || async {
        let listed = registry.worker_list().await.unwrap();
        (!listed[1].alive).then_some(())
    })
    .await;
    let served: Vec<String> = served_queues(&registry.worker_list().await.unwrap())
        .into_iter()
        .collect();
    assert_eq!(served, ["default", "mail"]);
    registry
        .worker_beat(&beat("a", &["default"], LONG))
        .await
        .unwrap();
    let again = registry.worker_list().await.unwrap();
    assert_eq!(again[0].started_at, first.started_at, "started stays");
    assert!(again[0].heartbeat_at >= first.heartbeat_at);
    assert_eq!(again[0].queues, ["default"]);
    assert_eq!(registry.worker_prune(LONG).await.unwrap(), 0);
    assert_eq!(registry.worker_prune(Duration::ZERO).await.unwrap(), 1);
    let left = registry.worker_list().await.unwrap();
    assert_eq!(left.len(), 1);
    assert!(registry.worker_forget("a").await.unwrap());
    assert!(!registry.worker_forget("a").await.unwrap());
    assert!(registry.worker_list().await.unwrap().is_empty());
    let other = b.open("other").await;
    registry
        .worker_beat(&beat("c", &["default"], LONG))
        .await
        .unwrap();
    let elsewhere = other.registry().expect("registry");
    assert!(
        elsewhere.worker_list().await.unwrap().is_empty(),
        "namespaces are apart"
    );
}
