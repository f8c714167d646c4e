//! The consumer: its handle, and the supervising loop that (re)connects.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tasque_core::{Queue, Supervisor};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::session::{Session, SessionEnd};
use crate::stats::Counters;
use crate::{ConsumerBuilder, ConsumerState, ConsumerStats, Error};

/// How long connecting and setting up a session may take before it counts
/// as a failed attempt (a broker that accepts TCP but never answers).
const CONNECT_LIMIT: Duration = Duration::from_secs(30);

/// A validated RabbitMQ consumer, ready to [`start`](Consumer::start).
///
/// Build one with [`Consumer::builder`]. Starting it spawns a supervising
/// task on the current tokio runtime that connects, consumes, runs each
/// delivery as one task of an in-process [`tasque_core::Queue`], settles it
/// with the broker, and reconnects with backoff whenever the connection is
/// lost. See the [crate documentation](crate) for the full model.
#[derive(Debug)]
pub struct Consumer {
    config: Config,
}

impl Consumer {
    /// Starts configuring a consumer of the broker at `url`
    /// (`amqp://user:password@host:port/vhost`; `%2f` is the default vhost).
    pub fn builder(url: impl Into<String>) -> ConsumerBuilder {
        ConsumerBuilder::new(url.into())
    }

    pub(crate) fn from_config(config: Config) -> Self {
        Self { config }
    }

    /// The queues this consumer reads.
    pub fn queues(&self) -> &[String] {
        &self.config.queues
    }

    /// The concurrency budget, which is also the broker prefetch.
    pub fn max_concurrency(&self) -> usize {
        self.config.max_concurrency.into()
    }

    /// Starts consuming in the background on the current tokio runtime and
    /// returns at once; connection failures are retried, not returned.
    ///
    /// Fails only if the engine cannot start (outside a tokio runtime).
    pub fn start(self) -> Result<ConsumerHandle, Error> {
        let engine = Queue::builder(format!("amqp:{}", self.config.queues.join(",")))
            .max_concurrency(self.config.max_concurrency.into())
            .build()?;
        let (state, state_receiver) = watch::channel(ConsumerState::Connecting {
            attempt: 1,
            last_error: None,
        });
        let shared = Arc::new(Shared {
            config: self.config,
            counters: Counters::default(),
            engine,
            state,
        });
        let (stop, stop_receiver) = watch::channel(None);
        // The connection loop runs supervised: a panic anywhere in it (a session, a
        // settlement) drops that session's connection, so the broker takes its unacked
        // deliveries back, and a fresh loop reconnects after a backoff.
        let looping = Arc::clone(&shared);
        let stopping = stop_receiver.clone();
        let task = Supervisor::new("AMQP consumer loop")
            .count_restarts(Arc::clone(&shared.counters.restarts))
            .spawn(
                move || connection_loop(Arc::clone(&looping), stop_receiver.clone()),
                move || {
                    let mut stop = stopping.clone();
                    async move {
                        let _ = stop.wait_for(Option::is_some).await;
                    }
                },
            );
        Ok(ConsumerHandle {
            shared,
            stop,
            state: state_receiver,
            task: Some(task),
        })
    }

    /// Runs until `signal` completes (say, `tokio::signal::ctrl_c()`), then
    /// shuts down gracefully with the configured
    /// [`shutdown_grace`](ConsumerBuilder::shutdown_grace). Returns the
    /// final counters. This is all a worker binary needs.
    pub async fn run_until<F: Future>(self, signal: F) -> Result<ConsumerStats, Error> {
        let grace = self.config.shutdown_grace;
        let handle = self.start()?;
        signal.await;
        handle.shutdown(grace).await
    }
}

/// State shared by the supervisor, its sessions and the handle.
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) counters: Counters,
    pub(crate) engine: Queue,
    state: watch::Sender<ConsumerState>,
}

impl Shared {
    pub(crate) fn set_state(&self, state: ConsumerState) {
        self.state.send_replace(state);
    }
}

/// A running consumer. Read its [`stats`](ConsumerHandle::stats) and
/// [`state`](ConsumerHandle::state), and stop it with
/// [`shutdown`](ConsumerHandle::shutdown).
///
/// Dropping the handle also stops the consumer gracefully, in the
/// background, with the configured shutdown grace.
pub struct ConsumerHandle {
    shared: Arc<Shared>,
    stop: watch::Sender<Option<Duration>>,
    state: watch::Receiver<ConsumerState>,
    task: Option<JoinHandle<()>>,
}

impl ConsumerHandle {
    /// A snapshot of the counters and the engine's counts.
    pub fn stats(&self) -> ConsumerStats {
        self.shared.counters.snapshot(self.shared.engine.stats())
    }

    /// What the consumer is doing now.
    pub fn state(&self) -> ConsumerState {
        self.state.borrow().clone()
    }

    /// A receiver that sees every state change, for waiting on one (for
    /// example [`ConsumerState::Consuming`] after a reconnect).
    pub fn watch_state(&self) -> watch::Receiver<ConsumerState> {
        self.state.clone()
    }

    /// Stops gracefully and returns the final counters: cancels the broker
    /// consumers so no new deliveries arrive, lets running handlers finish
    /// for up to `grace` (their messages are acked or retried as usual), then
    /// cancels what still runs and nacks it with requeue, and closes the
    /// connection. Nothing is acked that did not succeed.
    pub async fn shutdown(mut self, grace: Duration) -> Result<ConsumerStats, Error> {
        self.stop.send_replace(Some(grace));
        if let Some(task) = self.task.take() {
            task.await
                .map_err(|error| Error::Stopped(error.to_string()))?;
        }
        Ok(self.stats())
    }
}

impl Drop for ConsumerHandle {
    fn drop(&mut self) {
        if self.task.is_some() {
            self.stop.send_if_modified(|stop| {
                stop.get_or_insert(self.shared.config.shutdown_grace);
                true
            });
        }
    }
}

impl std::fmt::Debug for ConsumerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsumerHandle")
            .field("queues", &self.shared.config.queues)
            .field("state", &*self.state.borrow())
            .finish()
    }
}

/// Waits for a stop request and returns its grace. A vanished handle counts
/// as a request with the configured grace.
pub(crate) async fn stop_requested(
    stop: &mut watch::Receiver<Option<Duration>>,
    default_grace: Duration,
) -> Duration {
    match stop.wait_for(Option::is_some).await {
        Ok(grace) => grace.unwrap_or(default_grace),
        Err(_) => default_grace,
    }
}

/// The connection loop: connect, consume until lost or stopped, back off,
/// reconnect.
async fn connection_loop(shared: Arc<Shared>, mut stop: watch::Receiver<Option<Duration>>) {
    let config = &shared.config;
    let default_grace = config.shutdown_grace;
    let mut backoff = Backoff::new(config.reconnect_initial, config.reconnect_max);
    let mut sessions = 0u64;
    loop {
        let opened = tokio::select! {
            grace = stop_requested(&mut stop, default_grace) => break stop_idle(&shared, grace).await,
            opened = tokio::time::timeout(CONNECT_LIMIT, Session::open(&shared)) => opened,
        };
        let error = match opened {
            Ok(Ok(session)) => {
                sessions += 1;
                if sessions > 1 {
                    Counters::bump(&shared.counters.reconnects);
                }
                backoff.reset();
                shared.set_state(ConsumerState::Consuming { session: sessions });
                tracing::info!(session = sessions, queues = ?config.queues, "consuming");
                match session.run(&shared, &mut stop).await {
                    SessionEnd::Stopped => break shared.set_state(ConsumerState::Stopped),
                    SessionEnd::Lost(error) => error,
                }
            }
            Ok(Err(error)) => error.to_string(),
            Err(_) => format!("connecting took longer than {CONNECT_LIMIT:?}"),
        };
        let wait = backoff.next_wait();
        tracing::warn!(%error, retry_in = ?wait, "AMQP connection lost or refused; reconnecting");
        shared.set_state(ConsumerState::Connecting {
            attempt: backoff.failures + 1,
            last_error: Some(error),
        });
        tokio::select! {
            grace = stop_requested(&mut stop, default_grace) => break stop_idle(&shared, grace).await,
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// Stops while not connected: only the engine is left to shut down.
async fn stop_idle(shared: &Shared, grace: Duration) {
    shared.engine.shutdown(grace).await;
    shared.set_state(ConsumerState::Stopped);
}

/// Exponential reconnect backoff with jitter.
#[derive(Debug)]
struct Backoff {
    initial: Duration,
    max: Duration,
    current: Duration,
    failures: u32,
}

impl Backoff {
    fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max,
            current: initial,
            failures: 0,
        }
    }

    fn reset(&mut self) {
        self.current = self.initial;
        self.failures = 0;
    }

    /// The next wait: the current step plus up to a quarter of jitter; the
    /// step doubles up to the cap.
    fn next_wait(&mut self) -> Duration {
        let base = self.current;
        self.current = (self.current * 2).min(self.max);
        self.failures = self.failures.saturating_add(1);
        let jitter = rand::thread_rng().gen_range(0.0..=0.25);
        base + base.mul_f64(jitter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_cap_and_resets() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(350));
        let waits: Vec<Duration> = (0..4).map(|_| backoff.next_wait()).collect();
        let bounds = [100, 200, 350, 350];
        for (wait, base) in waits.iter().zip(bounds) {
            let base = Duration::from_millis(base);
            assert!(
                *wait >= base && *wait <= base.mul_f64(1.25),
                "{wait:?} vs {base:?}"
            );
        }
        backoff.reset();
        assert!(backoff.next_wait() <= Duration::from_millis(125));
    }
}
