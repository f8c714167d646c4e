//! The sleeper wake-up (leader only): makes sleepers whose time came and event waiters whose
//! timeout passed claimable again ([`Store::wake_due`]), so claims never pay for it.
//!
//! Each pass also learns when the next one is due, and the service sleeps until then, but never
//! longer than its interval: a job that starts sleeping in another process after the pass is
//! seen at the next pass. A sleeper is therefore woken at most one interval late (200 ms by
//! default), and on time when it was already asleep at the previous pass. The wake announces
//! the woken jobs' queues, so idle workers claim them at once where the engine can tell them.

use std::sync::Arc;
use std::time::Duration;

use tasque_durable::Store;

use super::{until_leading, Leadership};
use crate::stop::Stop;

/// The shortest pause between passes, so a clock step cannot make the service spin.
const MIN_PAUSE: Duration = Duration::from_millis(5);

/// Wakes due sleepers and waiters while this process leads, until `stop`.
pub(crate) async fn run(
    store: Arc<dyn Store>,
    mut leadership: Leadership,
    interval: Duration,
    stop: Arc<Stop>,
) {
    loop {
        if !until_leading(&mut leadership, &stop).await {
            return;
        }
        let pause = match store.wake_due().await {
            Ok(report) => {
                if report.woken > 0 {
                    tracing::debug!(woken = report.woken, "woke sleeping and waiting jobs");
                }
                next_pause(report.next_in, interval)
            }
            Err(error) => {
                tracing::warn!(%error, "waking sleeping jobs failed; will retry");
                interval
            }
        };
        if stop.sleep(pause).await {
            return;
        }
    }
}

/// How long to sleep before the next pass: until the next sleeper is due, at most `interval`.
fn next_pause(next_in: Option<Duration>, interval: Duration) -> Duration {
    next_in
        .map_or(interval, |due| due.min(interval))
        .max(MIN_PAUSE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pause_ends_when_the_next_sleeper_is_due_but_never_after_the_interval() {
        let interval = Duration::from_millis(200);
        assert_eq!(next_pause(None, interval), interval);
        assert_eq!(
            next_pause(Some(Duration::from_millis(30)), interval),
            Duration::from_millis(30)
        );
        assert_eq!(
            next_pause(Some(Duration::from_secs(60)), interval),
            interval
        );
        assert_eq!(next_pause(Some(Duration::ZERO), interval), MIN_PAUSE);
    }
}
