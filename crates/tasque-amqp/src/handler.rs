//! Handlers: typed functions registered by task name.

use std::collections::HashMap;
use std::fmt::Display;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::de::DeserializeOwned;

/// What a handler's future resolves to once its error is turned into text.
pub(crate) type HandlerFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// A type-erased handler: decodes the payload, then returns the work to run.
type ErasedHandler =
    Arc<dyn Fn(&[u8], MessageContext) -> Result<HandlerFuture, serde_json::Error> + Send + Sync>;

/// What a handler is told about the message it runs, besides its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MessageContext {
    /// The task name the message was routed to this handler by.
    pub task: String,
    /// The queue the message was consumed from.
    pub queue: String,
    /// The message's `message_id` property, if the publisher set one.
    pub message_id: Option<String>,
    /// Which attempt this is, from 1: one more than the
    /// [`x-tasque-attempts`](crate::headers::ATTEMPTS) header.
    pub attempt: u32,
    /// The broker's redelivered flag: a previous delivery of this very message
    /// was not acknowledged (a nack with requeue, or a lost connection).
    pub redelivered: bool,
}

/// Why a delivery could not even be started; such messages are dead-lettered
/// at once, since retrying them cannot help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Rejection {
    /// No handler is registered under the task name (or none was given).
    UnknownTask(String),
    /// The payload does not decode into the handler's payload type.
    Undecodable(String),
}

impl Rejection {
    /// The reason recorded in the dead-letter header.
    pub(crate) fn reason(&self) -> String {
        match self {
            Rejection::UnknownTask(task) if task.is_empty() => {
                "unknown task: the message names no task (no x-tasque-task header, empty routing key)"
                    .to_owned()
            }
            Rejection::UnknownTask(task) => format!("unknown task: no handler for {task:?}"),
            Rejection::Undecodable(error) => format!("undecodable payload: {error}"),
        }
    }
}

/// The handlers a consumer can run, by task name.
///
/// A handler is an async function from a JSON payload (any
/// `serde::de::DeserializeOwned` type) to `Result<(), E>` where `E` is
/// anything `Display`: `Ok` acks the message, `Err` is a failed attempt whose
/// text is recorded. Registering the same name twice is reported by
/// [`ConsumerBuilder::build`](crate::ConsumerBuilder::build).
///
/// ```
/// use serde::Deserialize;
/// use tasque_amqp::HandlerRegistry;
///
/// #[derive(Deserialize)]
/// struct Resize { image: String, width: u32 }
///
/// let handlers = HandlerRegistry::new()
///     .handler("resize", |job: Resize| async move {
///         if job.width == 0 {
///             return Err(format!("cannot resize {} to zero width", job.image));
///         }
///         Ok(())
///     })
///     .handler_with_context("audit", |line: String, context| async move {
///         tracing::info!(attempt = context.attempt, "{line}");
///         Ok::<(), std::convert::Infallible>(())
///     });
/// assert!(handlers.contains("resize"));
/// ```
#[derive(Clone, Default)]
pub struct HandlerRegistry {
    handlers: HashMap<String, ErasedHandler>,
    duplicates: Vec<String>,
}

impl HandlerRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `handler` for messages whose task name is `task`; it gets
    /// the decoded payload.
    pub fn handler<P, E, F, Fut>(self, task: impl Into<String>, handler: F) -> Self
    where
        P: DeserializeOwned + Send + 'static,
        E: Display,
        F: Fn(P) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
    {
        self.handler_with_context(task, move |payload: P, _context| handler(payload))
    }

    /// Registers `handler` for `task`; it gets the decoded payload and the
    /// message's [`MessageContext`] (attempt, message id, queue…).
    pub fn handler_with_context<P, E, F, Fut>(mut self, task: impl Into<String>, handler: F) -> Self
    where
        P: DeserializeOwned + Send + 'static,
        E: Display,
        F: Fn(P, MessageContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        let erased: ErasedHandler = Arc::new(move |payload: &[u8], context: MessageContext| {
            let payload: P = serde_json::from_slice(payload)?;
            let handler = Arc::clone(&handler);
            // The handler is first called inside the task, so even its synchronous part
            // runs (and may panic) in the engine, never in the consumer's loop.
            let future: HandlerFuture = Box::pin(async move {
                handler(payload, context)
                    .await
                    .map_err(|error| error.to_string())
            });
            Ok(future)
        });
        let task = task.into();
        if self.handlers.insert(task.clone(), erased).is_some() {
            self.duplicates.push(task);
        }
        self
    }

    /// Whether a handler is registered under `task`.
    pub fn contains(&self, task: &str) -> bool {
        self.handlers.contains_key(task)
    }

    /// The registered task names, in no particular order.
    pub fn tasks(&self) -> impl Iterator<Item = &str> {
        self.handlers.keys().map(String::as_str)
    }

    /// The number of registered handlers.
    pub fn len(&self) -> usize {
        self.handlers.len()
    }

    /// Whether no handler is registered.
    pub fn is_empty(&self) -> bool {
        self.handlers.is_empty()
    }

    /// The first name registered twice, if any.
    pub(crate) fn first_duplicate(&self) -> Option<&str> {
        self.duplicates.first().map(String::as_str)
    }

    /// Finds the handler and decodes the payload, giving the work to run.
    pub(crate) fn prepare(
        &self,
        payload: &[u8],
        context: MessageContext,
    ) -> Result<HandlerFuture, Rejection> {
        let handler = self
            .handlers
            .get(&context.task)
            .ok_or_else(|| Rejection::UnknownTask(context.task.clone()))?;
        handler(payload, context).map_err(|error| Rejection::Undecodable(error.to_string()))
    }
}

impl std::fmt::Debug for HandlerRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut tasks: Vec<&str> = self.tasks().collect();
        tasks.sort_unstable();
        f.debug_struct("HandlerRegistry")
            .field("tasks", &tasks)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(task: &str) -> MessageContext {
        MessageContext {
            task: task.to_owned(),
            queue: "q".to_owned(),
            message_id: None,
            attempt: 1,
            redelivered: false,
        }
    }

    #[test]
    fn unknown_tasks_and_bad_payloads_are_rejected_before_running() {
        let registry = HandlerRegistry::new().handler("add", |n: u32| async move {
            if n > 0 {
                Ok(())
            } else {
                Err("zero")
            }
        });
        assert!(matches!(
            registry.prepare(b"1", context("nope")),
            Err(Rejection::UnknownTask(task)) if task == "nope"
        ));
        assert!(matches!(
            registry.prepare(b"\"text\"", context("add")),
            Err(Rejection::Undecodable(_))
        ));
        assert!(registry.prepare(b"1", context("add")).is_ok());
    }

    #[test]
    fn duplicates_are_remembered_for_build() {
        let registry = HandlerRegistry::new()
            .handler("a", |_: ()| async { Ok::<(), String>(()) })
            .handler("a", |_: ()| async { Ok::<(), String>(()) });
        assert_eq!(registry.first_duplicate(), Some("a"));
    }
}
