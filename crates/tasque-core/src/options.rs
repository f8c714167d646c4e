//! Per-task options: timeout and priority.

use std::time::Duration;

use crate::Error;

/// A per-task timeout: a positive duration, or none at all.
///
/// The timeout is counted **from enqueue**, so it covers time spent waiting in
/// the queue as well as running. A zero duration is refused at enqueue with
/// [`Error::InvalidOption`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Timeout {
    /// No timeout: the task may wait and run for as long as it takes.
    #[default]
    Infinity,
    /// The task must finish within this duration of being enqueued.
    After(Duration),
}

impl From<Duration> for Timeout {
    fn from(duration: Duration) -> Self {
        Timeout::After(duration)
    }
}

/// Options for one task. Build with [`TaskOptions::new`] and the `with`-style
/// setters; they are validated when the task is enqueued.
///
/// ```
/// use std::time::Duration;
/// use tasque_core::TaskOptions;
///
/// let options = TaskOptions::new()
///     .timeout(Duration::from_secs(5))
///     .priority(-1);
/// assert_eq!(options.priority_value(), -1);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TaskOptions {
    timeout: Timeout,
    priority: i32,
}

impl TaskOptions {
    /// Default options: no timeout, priority 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the per-task timeout, counted from enqueue. Accepts a
    /// [`Duration`] or a [`Timeout`].
    pub fn timeout(mut self, timeout: impl Into<Timeout>) -> Self {
        self.timeout = timeout.into();
        self
    }

    /// Sets the priority. **Lower values run first**; the default is 0, so a
    /// negative priority jumps ahead of default work. Equal priorities run in
    /// FIFO order.
    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }

    /// The configured timeout.
    pub fn timeout_value(&self) -> Timeout {
        self.timeout
    }

    /// The configured priority.
    pub fn priority_value(&self) -> i32 {
        self.priority
    }

    /// The timeout as an optional duration, refusing zero.
    pub(crate) fn validated_timeout(&self) -> Result<Option<Duration>, Error> {
        match self.timeout {
            Timeout::Infinity => Ok(None),
            Timeout::After(duration) if duration.is_zero() => Err(Error::invalid_option(
                "timeout",
                "must be a positive duration or Timeout::Infinity",
            )),
            Timeout::After(duration) => Ok(Some(duration)),
        }
    }
}

/// How long [`TaskHandle::wait`](crate::TaskHandle::wait) waits by default.
pub const DEFAULT_AWAIT_LIMIT: Duration = Duration::from_secs(5);

/// The default `max_concurrency` of a queue.
pub const DEFAULT_MAX_CONCURRENCY: usize = 10;
