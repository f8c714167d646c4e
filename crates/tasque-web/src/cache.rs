//! The snapshot of expensive numbers (counts by state per queue, oldest-ready ages, the sample
//! of recently finished jobs), refreshed in the background.
//!
//! # Contract
//!
//! A page never waits for these queries except on the very first request: a snapshot older
//! than the time to live is served as it is while one background task (never two) takes a new
//! one. Actions refresh it at once ([`Cache::refresh`]) so their effect shows on the next page.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tasque_durable::insight::FinishedJob;
use tasque_durable::{QueueInfo, Result, Store};

/// How far back the overview's charts and percentiles look, in milliseconds.
pub const WINDOW_MS: i64 = 60 * 60 * 1000;
/// The most finished jobs sampled for the charts and percentiles.
pub const SAMPLE_LIMIT: u32 = 20_000;

/// One snapshot of the expensive numbers.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// Every queue with its counts by state.
    pub queues: Vec<QueueInfo>,
    /// The age of the oldest ready job, per queue with ready jobs (milliseconds).
    pub oldest_ready_ms: HashMap<String, i64>,
    /// Jobs finished within [`WINDOW_MS`], newest first, at most [`SAMPLE_LIMIT`].
    pub finished: Vec<FinishedJob>,
}

impl Snapshot {
    /// Takes a snapshot (the queries a page must never run itself).
    pub async fn take(store: &dyn Store) -> Result<Snapshot> {
        let queues = store.list_queues().await?;
        let (oldest_ready_ms, finished) = match store.insight() {
            Some(insight) => (
                insight
                    .oldest_ready()
                    .await?
                    .into_iter()
                    .map(|age| (age.queue, age.oldest_ready_ms))
                    .collect(),
                insight.recent_finished(WINDOW_MS, SAMPLE_LIMIT).await?,
            ),
            None => (HashMap::new(), Vec::new()),
        };
        Ok(Snapshot {
            queues,
            oldest_ready_ms,
            finished,
        })
    }

    /// One queue of the snapshot.
    pub fn queue(&self, name: &str) -> Option<&QueueInfo> {
        self.queues.iter().find(|q| q.name == name)
    }
}

/// A snapshot and when it was taken.
type Taken = (Instant, Arc<Snapshot>);

/// The cached snapshot of one store. Cheap to clone.
#[derive(Clone)]
pub struct Cache {
    store: Arc<dyn Store>,
    ttl: Duration,
    current: Arc<Mutex<Option<Taken>>>,
    refreshing: Arc<AtomicBool>,
}

impl Cache {
    /// A cache of `store`'s snapshot, stale after `ttl`.
    pub fn new(store: Arc<dyn Store>, ttl: Duration) -> Self {
        Cache {
            store,
            ttl,
            current: Arc::default(),
            refreshing: Arc::default(),
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The snapshot: the cached one (starting a background refresh when it is stale), or a
    /// new one on first use (and always, with a time to live of zero).
    pub async fn get(&self) -> Result<Arc<Snapshot>> {
        if self.ttl.is_zero() {
            return self.refresh().await;
        }
        let cached = self.current.lock().clone();
        match cached {
            Some((at, snapshot)) => {
                if at.elapsed() >= self.ttl && !self.refreshing.swap(true, Ordering::AcqRel) {
                    let cache = self.clone();
                    tokio::spawn(async move {
                        if let Err(error) = cache.refresh().await {
                            tracing::warn!(%error, "dashboard snapshot refresh failed");
                        }
                        cache.refreshing.store(false, Ordering::Release);
                    });
                }
                Ok(snapshot)
            }
            None => self.refresh().await,
        }
    }

    /// Takes a new snapshot now and caches it.
    pub async fn refresh(&self) -> Result<Arc<Snapshot>> {
        let snapshot = Arc::new(Snapshot::take(&*self.store).await?);
        *self.current.lock() = Some((Instant::now(), snapshot.clone()));
        Ok(snapshot)
    }
}
