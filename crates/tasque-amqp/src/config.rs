//! Consumer configuration: the builder and its validation.

use std::time::Duration;

use lapin::uri::{AMQPScheme, AMQPUri};
use tasque_core::Timeout;

use crate::{Consumer, Error, HandlerRegistry};

/// Default per-message timeout: a handler still running after this long is a
/// failed attempt.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Default number of attempts before a failing message is dead-lettered.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;
/// Default time running handlers get to finish on shutdown.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Where messages that cannot or must not be retried are sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeadLetter {
    /// Publish to this exchange, with `routing_key` or, when `None`, the
    /// message's original routing key.
    Exchange {
        /// The exchange's name.
        exchange: String,
        /// The routing key to publish with; `None` keeps the original one.
        routing_key: Option<String>,
    },
    /// Publish straight to this queue (through the default exchange).
    Queue(String),
}

impl DeadLetter {
    /// Dead-letter to `exchange`, keeping each message's routing key.
    pub fn exchange(exchange: impl Into<String>) -> Self {
        DeadLetter::Exchange {
            exchange: exchange.into(),
            routing_key: None,
        }
    }

    /// Dead-letter straight into `queue`.
    pub fn queue(queue: impl Into<String>) -> Self {
        DeadLetter::Queue(queue.into())
    }

    /// The exchange and routing key to publish a message with.
    pub(crate) fn target<'a>(&'a self, original_routing_key: &'a str) -> (&'a str, &'a str) {
        match self {
            DeadLetter::Exchange {
                exchange,
                routing_key,
            } => (
                exchange,
                routing_key.as_deref().unwrap_or(original_routing_key),
            ),
            DeadLetter::Queue(queue) => ("", queue),
        }
    }
}

/// How a failed attempt is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RetryMode {
    /// Attempts are counted (the default). A failed message is republished to
    /// the tail of the queue it came from, with `x-tasque-attempts` raised by
    /// one and the error in `x-tasque-last-error`; once the publish is
    /// confirmed the original is acked. After `max_attempts` failures the
    /// message is dead-lettered instead. RabbitMQ's own requeue cannot carry a
    /// count, since it never changes headers; this is why a copy is made.
    ///
    /// If the connection is lost between the confirmed publish and the ack,
    /// the broker redelivers the original as well: one extra attempt, never a
    /// lost message.
    #[default]
    Republish,
    /// `basic.nack` with requeue: the message goes back in place, attempts
    /// are not counted and there is no limit. Use it when the queue itself
    /// bounds redeliveries (a quorum queue's `x-delivery-limit`).
    Requeue,
}

/// The validated settings a consumer runs with.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) uri: AMQPUri,
    pub(crate) queues: Vec<String>,
    pub(crate) max_concurrency: u16,
    pub(crate) handlers: HandlerRegistry,
    pub(crate) timeout: Timeout,
    pub(crate) max_attempts: u32,
    pub(crate) retry: RetryMode,
    pub(crate) dead_letter: Option<DeadLetter>,
    pub(crate) reconnect_initial: Duration,
    pub(crate) reconnect_max: Duration,
    pub(crate) connection_name: String,
    pub(crate) shutdown_grace: Duration,
}

/// Configures a [`Consumer`]; every value is checked by
/// [`build`](ConsumerBuilder::build).
///
/// ```
/// use std::time::Duration;
/// use tasque_amqp::{Consumer, DeadLetter, HandlerRegistry};
///
/// let handlers = HandlerRegistry::new().handler("ping", |_: serde_json::Value| async {
///     Ok::<(), String>(())
/// });
/// let consumer = Consumer::builder("amqp://guest:guest@127.0.0.1:5672/%2f")
///     .queue("work")
///     .max_concurrency(20)
///     .handlers(handlers)
///     .timeout(Duration::from_secs(30))
///     .max_attempts(3)
///     .dead_letter(DeadLetter::queue("work.dead"))
///     .build()?;
/// # let _ = consumer;
/// # Ok::<(), tasque_amqp::Error>(())
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct ConsumerBuilder {
    url: String,
    queues: Vec<String>,
    max_concurrency: usize,
    handlers: HandlerRegistry,
    timeout: Timeout,
    max_attempts: u32,
    retry: RetryMode,
    dead_letter: Option<DeadLetter>,
    reconnect: (Duration, Duration),
    connection_name: String,
    shutdown_grace: Duration,
}

impl ConsumerBuilder {
    pub(crate) fn new(url: String) -> Self {
        Self {
            url,
            queues: Vec::new(),
            max_concurrency: tasque_core::DEFAULT_MAX_CONCURRENCY,
            handlers: HandlerRegistry::new(),
            timeout: Timeout::After(DEFAULT_TIMEOUT),
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            retry: RetryMode::default(),
            dead_letter: None,
            reconnect: (Duration::from_millis(100), Duration::from_secs(10)),
            connection_name: "tasque-amqp consumer".to_owned(),
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
        }
    }

    /// Adds a queue to consume from (at least one is required). The queue
    /// must exist: declaring topology is left to the application.
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queues.push(queue.into());
        self
    }

    /// Adds several queues to consume from.
    pub fn queues<I: IntoIterator<Item = S>, S: Into<String>>(mut self, queues: I) -> Self {
        self.queues.extend(queues.into_iter().map(Into::into));
        self
    }

    /// How many messages run at once; also the broker prefetch (`basic.qos`),
    /// so the broker never hands this consumer more than it can run. Default
    /// 10; must be between 1 and 65535.
    pub fn max_concurrency(mut self, max_concurrency: usize) -> Self {
        self.max_concurrency = max_concurrency;
        self
    }

    /// The handlers, by task name (at least one is required).
    pub fn handlers(mut self, handlers: HandlerRegistry) -> Self {
        self.handlers = handlers;
        self
    }

    /// Per-message timeout (default 60 s): a handler running longer is
    /// aborted and the attempt counts as failed. `Timeout::Infinity` turns it
    /// off; zero is refused.
    pub fn timeout(mut self, timeout: impl Into<Timeout>) -> Self {
        self.timeout = timeout.into();
        self
    }

    /// Attempts before a failing message is dead-lettered (default 5; at
    /// least 1). Used by [`RetryMode::Republish`].
    pub fn max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = max_attempts;
        self
    }

    /// How failed attempts are retried (default [`RetryMode::Republish`]).
    pub fn retry_mode(mut self, retry: RetryMode) -> Self {
        self.retry = retry;
        self
    }

    /// Where exhausted, undecodable and unknown-task messages go. Without
    /// one, such messages are rejected without requeue, so the broker
    /// dead-letters them through the queue's own `x-dead-letter-exchange`
    /// when it has one, and drops them otherwise.
    pub fn dead_letter(mut self, dead_letter: DeadLetter) -> Self {
        self.dead_letter = Some(dead_letter);
        self
    }

    /// Reconnect backoff: the first wait after a failure and the cap it
    /// doubles up to (defaults 100 ms and 10 s; a random jitter of up to a
    /// quarter is added).
    pub fn reconnect_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.reconnect = (initial, max);
        self
    }

    /// The connection name the broker shows (`connection_name` client
    /// property); default `"tasque-amqp consumer"`.
    pub fn connection_name(mut self, name: impl Into<String>) -> Self {
        self.connection_name = name.into();
        self
    }

    /// How long running handlers may finish when the consumer is stopped
    /// without an explicit grace (handle dropped, or
    /// [`Consumer::run_until`]). Default 30 s.
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }

    /// Validates the settings and returns a consumer ready to start.
    pub fn build(self) -> Result<Consumer, Error> {
        let uri: AMQPUri = self.url.parse().map_err(Error::InvalidUrl)?;
        if uri.scheme == AMQPScheme::AMQPS {
            return Err(Error::InvalidUrl(
                "amqps:// needs TLS, which this build of tasque-amqp does not include".into(),
            ));
        }
        self.check_queues()?;
        let max_concurrency = u16::try_from(self.max_concurrency)
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| Error::invalid("max_concurrency", "must be between 1 and 65535"))?;
        if let Some(task) = self.handlers.first_duplicate() {
            return Err(Error::DuplicateHandler {
                task: task.to_owned(),
            });
        }
        if self.handlers.is_empty() {
            return Err(Error::invalid("handlers", "register at least one handler"));
        }
        if self.timeout == Timeout::After(Duration::ZERO) {
            return Err(Error::invalid(
                "timeout",
                "must be a positive duration or Timeout::Infinity",
            ));
        }
        if self.max_attempts == 0 {
            return Err(Error::invalid("max_attempts", "must be at least 1"));
        }
        self.check_dead_letter()?;
        let (reconnect_initial, reconnect_max) = self.reconnect;
        if reconnect_initial.is_zero() || reconnect_max < reconnect_initial {
            return Err(Error::invalid(
                "reconnect_backoff",
                "initial must be positive and no larger than max",
            ));
        }
        Ok(Consumer::from_config(Config {
            uri,
            queues: self.queues,
            max_concurrency,
            handlers: self.handlers,
            timeout: self.timeout,
            max_attempts: self.max_attempts,
            retry: self.retry,
            dead_letter: self.dead_letter,
            reconnect_initial,
            reconnect_max,
            connection_name: self.connection_name,
            shutdown_grace: self.shutdown_grace,
        }))
    }

    fn check_queues(&self) -> Result<(), Error> {
        if self.queues.is_empty() {
            return Err(Error::invalid("queues", "name at least one queue"));
        }
        for (index, queue) in self.queues.iter().enumerate() {
            if queue.is_empty() {
                return Err(Error::invalid("queues", "queue names must not be empty"));
            }
            if self.queues[..index].contains(queue) {
                return Err(Error::invalid(
                    "queues",
                    format!("{queue:?} is listed twice"),
                ));
            }
        }
        Ok(())
    }

    fn check_dead_letter(&self) -> Result<(), Error> {
        let bad = match &self.dead_letter {
            Some(DeadLetter::Queue(queue)) => queue.is_empty() || self.queues.contains(queue),
            Some(DeadLetter::Exchange { exchange, .. }) => exchange.is_empty(),
            None => false,
        };
        if bad {
            return Err(Error::invalid(
                "dead_letter",
                "needs a non-empty name, and a dead-letter queue must not be a consumed queue",
            ));
        }
        Ok(())
    }
}
