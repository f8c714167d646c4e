//! Wake-ups: the namespace's LISTEN connection, shared by every subscriber of a store.
//!
//! The first [`Wakeups::subscribe`] starts a background task that opens its own connection
//! (not one of the pool's), runs `LISTEN` on the namespace's channel and broadcasts each
//! notification's payload (a queue name). When the connection is lost (terminated, network
//! failure) the task broadcasts an empty name ("any queue": announcements may have been missed)
//! and reconnects with a growing delay, up to 2 s; each successful `LISTEN` bumps the generation
//! and also broadcasts an empty name. The task ends once every subscriber is gone; it runs
//! supervised, so a panic in it restarts it instead of silencing wake-ups.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::postgres::{PgListener, PgPoolOptions};
use sqlx::PgPool;
use tasque_core::Supervisor;
use tokio::sync::{broadcast, watch};

/// How many announcements a slow subscriber may fall behind before it sees `Lagged` (which a
/// worker treats as a wake-up too).
const CAPACITY: usize = 1024;
/// How often an idle listener checks whether anyone still subscribes.
const CHECK_SUBSCRIBERS: Duration = Duration::from_secs(1);

/// The wake-up listener of one store (shared by its clones).
#[derive(Debug)]
pub(crate) struct Wakeups {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    pool: PgPool,
    channel: String,
    sender: Mutex<Option<broadcast::Sender<String>>>,
    generation: watch::Sender<u64>,
}

impl Wakeups {
    /// A listener for `channel`, connecting like `pool` (started on first subscription).
    pub(crate) fn new(pool: PgPool, channel: String) -> Self {
        Wakeups {
            shared: Arc::new(Shared {
                pool,
                channel,
                sender: Mutex::new(None),
                generation: watch::channel(0).0,
            }),
        }
    }

    /// A new subscription, starting the listener if needed; `None` outside a tokio runtime.
    pub(crate) fn subscribe(&self) -> Option<broadcast::Receiver<String>> {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let mut slot = self.shared.sender.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(sender) = slot.as_ref() {
            return Some(sender.subscribe());
        }
        let (sender, receiver) = broadcast::channel(CAPACITY);
        *slot = Some(sender.clone());
        let shared = self.shared.clone();
        // Supervised: a panic in the listener restarts it after a backoff (logged at `error`);
        // it finishes by returning once nobody subscribes.
        let _guard = runtime.enter();
        Supervisor::new("wake-up listener")
            .finishes_by_returning()
            .spawn(
                move || listen(shared.clone(), sender.clone()),
                std::future::pending::<()>,
            );
        Some(receiver)
    }

    /// How many times the listener has started listening.
    pub(crate) fn generation(&self) -> u64 {
        *self.shared.generation.borrow()
    }

    /// Waits until the generation reaches `at_least`.
    pub(crate) async fn wait_generation(&self, at_least: u64) {
        let mut watch = self.shared.generation.subscribe();
        let _ = watch.wait_for(|g| *g >= at_least).await;
    }
}

impl Shared {
    /// Forgets the sender if nobody subscribes any more; true if the task should end.
    fn retire(&self, sender: &broadcast::Sender<String>) -> bool {
        let mut slot = self.sender.lock().unwrap_or_else(|e| e.into_inner());
        if sender.receiver_count() > 0 {
            return false;
        }
        *slot = None;
        true
    }
}

/// Resolves once nobody subscribes to `sender` any more.
async fn abandoned(sender: &broadcast::Sender<String>) {
    loop {
        tokio::time::sleep(CHECK_SUBSCRIBERS).await;
        if sender.receiver_count() == 0 {
            return;
        }
    }
}

/// Connects a listener on its own one-connection pool and starts listening.
async fn connect(shared: &Shared) -> Result<PgListener, sqlx::Error> {
    let options = (*shared.pool.connect_options()).clone();
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        .connect_lazy_with(options);
    let mut listener = PgListener::connect_with(&pool).await?;
    listener.listen(&shared.channel).await?;
    Ok(listener)
}

/// The listener task: listen, broadcast, reconnect, until nobody subscribes.
async fn listen(shared: Arc<Shared>, sender: broadcast::Sender<String>) {
    let mut backoff = Duration::from_millis(50);
    loop {
        let mut listener = tokio::select! {
            connected = connect(&shared) => match connected {
                Ok(listener) => listener,
                Err(error) => {
                    tracing::warn!(%error, channel = %shared.channel, ?backoff, "cannot listen for wake-ups; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                    if sender.receiver_count() == 0 && shared.retire(&sender) {
                        return;
                    }
                    continue;
                }
            },
            _ = abandoned(&sender) => if shared.retire(&sender) { return } else { continue },
        };
        backoff = Duration::from_millis(50);
        shared.generation.send_modify(|g| *g += 1);
        // Anything announced while we were not listening is picked up by this wake-up.
        let _ = sender.send(String::new());
        loop {
            // Cancelling `try_recv` only happens when the task ends, so its cancel safety
            // does not matter.
            let received = tokio::select! {
                received = listener.try_recv() => received,
                _ = abandoned(&sender) => {
                    if shared.retire(&sender) {
                        return;
                    }
                    // A subscriber arrived meanwhile: start afresh on a new connection.
                    let _ = sender.send(String::new());
                    break;
                }
            };
            match received {
                Ok(Some(notification)) => {
                    let _ = sender.send(notification.payload().to_string());
                }
                Ok(None) | Err(_) => {
                    tracing::warn!(channel = %shared.channel, "wake-up listener lost its connection; reconnecting");
                    let _ = sender.send(String::new());
                    break;
                }
            }
        }
    }
}
