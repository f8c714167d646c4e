//! Waiting for a job to finish: re-read when an announcement names it, poll as a fallback.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast::{self, error::RecvError};
use tokio::time::Instant;

use super::hub;
use super::ClientError;
use crate::model::{JobId, JobResult};
use crate::Store;

/// The first fallback poll interval; it doubles up to [`MAX_POLL`].
const FIRST_POLL: Duration = Duration::from_millis(25);
/// The longest fallback poll interval.
const MAX_POLL: Duration = Duration::from_secs(1);

/// Waits until `job` is finished (completed, failed or cancelled) or `limit` passes.
pub(crate) async fn until_finished<S: Store + ?Sized>(
    store: &S,
    job: JobId,
    limit: Duration,
) -> Result<JobResult, ClientError> {
    let deadline = deadline_after(limit);
    // Subscribe, and tell the engine someone waits, before the first read, so an announcement
    // between the two is not missed. Without the interest (an engine that does not announce,
    // or an error) the wait polls.
    let mut local = hub::subscribe(store.namespace());
    let mut engine = store.subscribe_wakeups();
    let watch = match engine {
        Some(_) => store.watch_finished(job).await.unwrap_or(None),
        None => None,
    };
    let outcome = wait_loop(store, job, limit, deadline, &mut local, engine.as_mut()).await;
    if let Some(token) = watch {
        // Withdrawn when the wait ends; an announcement of the job already withdrew it.
        let _ = store.unwatch_finished(job, token).await;
    }
    outcome
}

/// Re-reads the job at each announcement that names it (or may have missed it) and at each
/// fallback poll, until it is finished or the deadline passes.
async fn wait_loop<S: Store + ?Sized>(
    store: &S,
    job: JobId,
    limit: Duration,
    deadline: Instant,
    local: &mut broadcast::Receiver<Arc<[JobId]>>,
    mut engine: Option<&mut broadcast::Receiver<String>>,
) -> Result<JobResult, ClientError> {
    let mut poll = FIRST_POLL;
    loop {
        let result = store.get_result(job).await?;
        if result.state.is_finished() {
            return Ok(result);
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(ClientError::TimedOut {
                job,
                state: result.state,
                limit,
            });
        }
        let sleep = tokio::time::sleep_until(deadline.min(now + poll));
        let announced = tokio::select! {
            _ = local_mention(local, job) => true,
            _ = engine_mention(engine.as_deref_mut(), job) => true,
            _ = sleep => false,
        };
        poll = if announced {
            FIRST_POLL
        } else {
            (poll * 2).min(MAX_POLL)
        };
    }
}

/// Resolves when a local announcement names `job` (or some may have been missed).
async fn local_mention(local: &mut broadcast::Receiver<Arc<[JobId]>>, job: JobId) {
    loop {
        match local.recv().await {
            Ok(jobs) if jobs.contains(&job) => return,
            Ok(_) => {}
            Err(RecvError::Lagged(_)) => return,
            Err(RecvError::Closed) => return std::future::pending().await,
        }
    }
}

/// Resolves when the engine announces `job` finished (or announcements may have been missed);
/// never for engines without announcements.
async fn engine_mention(engine: Option<&mut broadcast::Receiver<String>>, job: JobId) {
    let Some(engine) = engine else {
        return std::future::pending().await;
    };
    loop {
        match engine.recv().await {
            Ok(message) if message.is_empty() => return,
            Ok(message) => {
                if hub::parse_finished(&message).is_some_and(|jobs| jobs.contains(&job)) {
                    return;
                }
            }
            Err(RecvError::Lagged(_)) => return,
            Err(RecvError::Closed) => return std::future::pending().await,
        }
    }
}

/// `limit` from now, saturating far in the future.
fn deadline_after(limit: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(60 * 60 * 24 * 365 * 30);
    let now = Instant::now();
    now.checked_add(limit).unwrap_or_else(|| now + FAR)
}
