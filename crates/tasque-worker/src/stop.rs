//! A stop signal shared by a worker's loops.

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

/// Raised once; every waiter (now or later) sees it.
#[derive(Default)]
pub(crate) struct Stop {
    raised: AtomicBool,
    notify: Notify,
}

impl Stop {
    /// Raises the signal.
    pub(crate) fn raise(&self) {
        self.raised.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    /// Whether the signal is raised.
    pub(crate) fn is_raised(&self) -> bool {
        self.raised.load(Ordering::SeqCst)
    }

    /// Resolves once the signal is raised.
    pub(crate) async fn raised(&self) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_raised() {
                return;
            }
            notified.await;
        }
    }

    /// Sleeps for `duration` unless the signal is raised first; true if raised.
    pub(crate) async fn sleep(&self, duration: std::time::Duration) -> bool {
        tokio::select! {
            _ = self.raised() => true,
            _ = tokio::time::sleep(duration) => self.is_raised(),
        }
    }
}
