//! Supervised loops: a long-lived background loop (a worker's claim loop, its heartbeat, a
//! broker consumer's connection loop) that must keep running for as long as its owner does.
//!
//! A [`Supervisor`] runs the loop as its own tokio task and watches it. When the loop panics,
//! or returns while its owner is not stopping, the supervisor logs at `error` what happened
//! (`"claim loop panicked: <message>; restarting in 200ms"`), waits out a capped exponential
//! backoff (200 ms, 400 ms, ... up to 10 s by default; back to the start after a loop that ran
//! healthy for a minute) and starts a fresh instance from the same factory, until the owner
//! stops. The backoff wait ends at once when the owner stops, so shutdown never waits for it.
//!
//! State that must survive a restart (slots, in-flight tables, channels) lives outside the
//! loop, in what the factory captures: each instance starts from that shared state, never from
//! scratch.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use std::sync::atomic::{AtomicU32, Ordering};
//! use std::sync::Arc;
//! use std::time::Duration;
//! use tasque_core::Supervisor;
//! use tokio::sync::watch;
//!
//! let (stop, stopped) = watch::channel(false);
//! let runs = Arc::new(AtomicU32::new(0));
//! let counter = runs.clone();
//! let looping = Supervisor::new("demo loop")
//!     .backoff(Duration::from_millis(1), Duration::from_millis(10))
//!     .spawn(
//!         move || {
//!             let run = counter.fetch_add(1, Ordering::SeqCst);
//!             async move {
//!                 if run == 0 {
//!                     panic!("first run fails");
//!                 }
//!                 std::future::pending::<()>().await
//!             }
//!         },
//!         move || {
//!             let mut stopped = stopped.clone();
//!             async move {
//!                 let _ = stopped.wait_for(|stop| *stop).await;
//!             }
//!         },
//!     );
//! while runs.load(Ordering::SeqCst) < 2 {
//!     tokio::task::yield_now().await;
//! }
//! stop.send_replace(true);
//! looping.abort(); // the second run never returns by itself
//! # }
//! ```

use std::any::Any;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The first wait before a restart.
pub const DEFAULT_RESTART_DELAY: Duration = Duration::from_millis(200);

/// The longest wait before a restart.
pub const DEFAULT_MAX_RESTART_DELAY: Duration = Duration::from_secs(10);

/// A loop instance that ran this long before failing was healthy: the next wait starts over
/// from the first delay.
const HEALTHY_AFTER: Duration = Duration::from_secs(60);

/// Runs a long-lived loop as a task and restarts it when it panics or ends unexpectedly. See
/// the [module documentation](self).
#[derive(Debug, Clone)]
pub struct Supervisor {
    name: String,
    initial: Duration,
    max: Duration,
    restarts: Arc<AtomicU64>,
    returning_ends: bool,
}

impl Supervisor {
    /// A supervisor for the loop called `name` in logs (e.g. `"claim loop"`).
    pub fn new(name: impl Into<String>) -> Self {
        Supervisor {
            name: name.into(),
            initial: DEFAULT_RESTART_DELAY,
            max: DEFAULT_MAX_RESTART_DELAY,
            restarts: Arc::default(),
            returning_ends: false,
        }
    }

    /// The first wait before a restart and its cap (the wait doubles after each failure).
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial = initial;
        self.max = max.max(initial);
        self
    }

    /// Adds one to `counter` at each restart (for the owner's stats).
    pub fn count_restarts(mut self, counter: Arc<AtomicU64>) -> Self {
        self.restarts = counter;
        self
    }

    /// For a loop that finishes by returning (a reporter whose input channel closed): its return
    /// always ends supervision, and a panic always restarts it, stopping or not, so that it can
    /// finish its work (the stop future only cuts a backoff wait short).
    pub fn finishes_by_returning(mut self) -> Self {
        self.returning_ends = true;
        self
    }

    /// Spawns the supervised loop: `make` builds each instance; `stop` returns a future that
    /// resolves once the owner is stopping (at once when it already is). Returns the
    /// supervisor's task, which ends when the loop ended for good; aborting it aborts the loop.
    pub fn spawn<M, Fut, S, SFut>(self, make: M, stop: S) -> JoinHandle<()>
    where
        M: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
        S: Fn() -> SFut + Send + Sync + 'static,
        SFut: Future<Output = ()> + Send + 'static,
    {
        tokio::spawn(self.run(make, stop))
    }

    async fn run<M, Fut, S, SFut>(self, mut make: M, stop: S)
    where
        M: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
        S: Fn() -> SFut + Send + Sync + 'static,
        SFut: Future<Output = ()> + Send + 'static,
    {
        let name = &self.name;
        let mut delay = self.initial;
        loop {
            let started = Instant::now();
            let mut instance = AbortOnDrop(tokio::spawn(make()));
            let ended = (&mut instance.0).await;
            let stopping = stop().now_or_never().is_some();
            let what = match ended {
                Ok(()) if self.returning_ends || stopping => return,
                Ok(()) => "ended unexpectedly".to_owned(),
                Err(error) if error.is_panic() => {
                    format!("panicked: {}", panic_message(error.into_panic()))
                }
                // Cancelled: the runtime is shutting down.
                Err(_) => return,
            };
            if stopping && !self.returning_ends {
                tracing::error!(task = %name, "{name} {what}; not restarted: stopping");
                return;
            }
            if started.elapsed() >= HEALTHY_AFTER {
                delay = self.initial;
            }
            self.restarts.fetch_add(1, Ordering::Relaxed);
            tracing::error!(task = %name, "{name} {what}; restarting in {delay:?}");
            if self.returning_ends {
                tokio::time::sleep(delay).await;
            } else {
                tokio::select! {
                    () = stop() => return,
                    () = tokio::time::sleep(delay) => {}
                }
            }
            delay = (delay * 2).min(self.max);
        }
    }
}

/// Aborts the loop's task if the supervisor itself is dropped or aborted.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The message of a panic payload, when it is a string.
pub(crate) fn panic_message(payload: Box<dyn Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(message) => *message,
        Err(payload) => match payload.downcast::<&'static str>() {
            Ok(message) => (*message).to_owned(),
            Err(_) => "panic with a non-string payload".to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU32;

    use tokio::sync::watch;

    use super::*;

    const PATIENCE: Duration = Duration::from_secs(10);

    type StopFuture = futures_util::future::BoxFuture<'static, ()>;

    fn stop_signal() -> (watch::Sender<bool>, impl Fn() -> StopFuture + Send + Sync) {
        let (sender, receiver) = watch::channel(false);
        let stop = move || {
            let mut receiver = receiver.clone();
            async move {
                let _ = receiver.wait_for(|stop| *stop).await;
            }
            .boxed()
        };
        (sender, stop)
    }

    fn fast(name: &str, restarts: &Arc<AtomicU64>) -> Supervisor {
        Supervisor::new(name)
            .backoff(Duration::from_millis(1), Duration::from_millis(5))
            .count_restarts(restarts.clone())
    }

    #[tokio::test]
    async fn a_loop_that_panics_twice_then_works_keeps_running() {
        let (stop, stopped) = stop_signal();
        let restarts = Arc::new(AtomicU64::new(0));
        let runs = Arc::new(AtomicU32::new(0));
        let (working, mut is_working) = watch::channel(false);
        let working = Arc::new(working);
        let counter = runs.clone();
        let supervised = fast("test loop", &restarts).spawn(
            move || {
                let run = counter.fetch_add(1, Ordering::SeqCst);
                let working = working.clone();
                async move {
                    if run < 2 {
                        panic!("failure number {run}");
                    }
                    working.send_replace(true);
                    std::future::pending::<()>().await;
                }
            },
            stopped,
        );
        tokio::time::timeout(PATIENCE, is_working.wait_for(|w| *w))
            .await
            .expect("the third instance started")
            .expect("watch");
        assert_eq!(runs.load(Ordering::SeqCst), 3);
        assert_eq!(restarts.load(Ordering::SeqCst), 2);
        tokio::task::yield_now().await;
        assert!(!supervised.is_finished(), "the working loop keeps running");
        assert_eq!(runs.load(Ordering::SeqCst), 3, "no restart while it works");
        stop.send_replace(true);
        // This instance never returns by itself; aborting the supervisor aborts it.
        supervised.abort();
        assert!(supervised.await.is_err_and(|e| e.is_cancelled()));
    }

    #[tokio::test]
    async fn a_loop_that_panics_while_stopping_ends() {
        let (stop, stopped) = stop_signal();
        stop.send_replace(true);
        let restarts = Arc::new(AtomicU64::new(0));
        let runs = Arc::new(AtomicU32::new(0));
        let counter = runs.clone();
        let supervised = fast("stopping loop", &restarts).spawn(
            move || {
                counter.fetch_add(1, Ordering::SeqCst);
                async { panic!("fails on the way out") }
            },
            stopped,
        );
        tokio::time::timeout(PATIENCE, supervised)
            .await
            .expect("supervision ended")
            .expect("the supervisor itself did not panic");
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(restarts.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_loop_that_returns_while_not_stopping_is_restarted() {
        let (stop, stopped) = stop_signal();
        let restarts = Arc::new(AtomicU64::new(0));
        let runs = Arc::new(AtomicU32::new(0));
        let counter = runs.clone();
        let stop = Arc::new(stop);
        let stopper = stop.clone();
        let supervised = fast("returning loop", &restarts).spawn(
            move || {
                let run = counter.fetch_add(1, Ordering::SeqCst);
                let stopper = stopper.clone();
                async move {
                    if run == 2 {
                        // The owner stops; this return is the expected one.
                        stopper.send_replace(true);
                    }
                }
            },
            stopped,
        );
        tokio::time::timeout(PATIENCE, supervised)
            .await
            .expect("supervision ended")
            .expect("the supervisor itself did not panic");
        assert_eq!(runs.load(Ordering::SeqCst), 3);
        assert_eq!(restarts.load(Ordering::SeqCst), 2);
        drop(stop);
    }

    #[tokio::test]
    async fn stopping_during_the_backoff_ends_at_once() {
        let (stop, stopped) = stop_signal();
        let restarts = Arc::new(AtomicU64::new(0));
        let supervised = Supervisor::new("slow backoff")
            .backoff(Duration::from_secs(3600), Duration::from_secs(3600))
            .count_restarts(restarts.clone())
            .spawn(|| async { panic!("always") }, stopped);
        let deadline = Instant::now() + PATIENCE;
        while restarts.load(Ordering::SeqCst) == 0 {
            assert!(Instant::now() < deadline, "the loop never failed");
            tokio::task::yield_now().await;
        }
        stop.send_replace(true);
        tokio::time::timeout(PATIENCE, supervised)
            .await
            .expect("stop cut the hour-long backoff short")
            .expect("the supervisor itself did not panic");
    }

    #[tokio::test]
    async fn a_loop_that_finishes_by_returning_is_restarted_after_a_panic_even_when_stopping() {
        let (stop, stopped) = stop_signal();
        stop.send_replace(true);
        let restarts = Arc::new(AtomicU64::new(0));
        let runs = Arc::new(AtomicU32::new(0));
        let counter = runs.clone();
        let supervised = fast("reporter", &restarts).finishes_by_returning().spawn(
            move || {
                let run = counter.fetch_add(1, Ordering::SeqCst);
                async move {
                    assert!(run > 0, "first instance fails");
                }
            },
            stopped,
        );
        tokio::time::timeout(PATIENCE, supervised)
            .await
            .expect("supervision ended")
            .expect("the supervisor itself did not panic");
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        assert_eq!(restarts.load(Ordering::SeqCst), 1);
    }
}
