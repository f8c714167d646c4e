//! Named tasks: functions looked up by name and called with JSON arguments.
//!
//! This is the analogue of an MFA tuple (`{Module, :function, [args]}`): the
//! task is *data* (a name and serialisable arguments), so it can be built by
//! code that cannot hold a closure: a config file, another service, the
//! durable queue. The name is resolved and the arguments decoded **at
//! enqueue**: an unknown name gives [`Error::UnknownTask`], undecodable
//! arguments give [`Error::InvalidArgs`], and nothing is queued.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::{CancelToken, Error, ExitReason, Outcome};

/// A decoded named task, ready to be queued.
pub(crate) enum PreparedCall {
    Async(Pin<Box<dyn Future<Output = Outcome<Value>> + Send>>),
    Blocking(Box<dyn FnOnce(CancelToken) -> Outcome<Value> + Send>),
}

type Preparer = dyn Fn(Value) -> Result<PreparedCall, serde_json::Error> + Send + Sync;

/// A set of named task functions, shared by the queues that are built with it.
///
/// ```
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use serde_json::json;
/// use tasque_core::{Outcome, Queue, TaskOptions, TaskRegistry};
///
/// let tasks = TaskRegistry::new()
///     .register("upcase", |(text,): (String,)| async move { text.to_uppercase() })
///     .register_blocking("add", |(a, b): (i64, i64)| a + b);
/// let queue = Queue::builder("docs-registry").tasks(tasks).build()?;
///
/// let handle = queue.call("upcase", json!(["hello"]), TaskOptions::new())?;
/// assert_eq!(handle.await, Outcome::Ok(json!("HELLO")));
///
/// // Unknown names and bad arguments are refused at enqueue; nothing is queued.
/// assert!(queue.call("nope", json!([]), TaskOptions::new()).unwrap_err().is_invalid_task());
/// assert!(queue.call("add", json!(["x"]), TaskOptions::new()).unwrap_err().is_invalid_task());
/// # Ok(()) }
/// ```
#[derive(Clone, Default)]
pub struct TaskRegistry {
    functions: HashMap<String, Arc<Preparer>>,
}

impl TaskRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers an async function under `name`. Its arguments are decoded
    /// from JSON into `A`; its value is encoded back to JSON. Registering a
    /// name again replaces the earlier function.
    pub fn register<A, R, F, Fut>(mut self, name: impl Into<String>, function: F) -> Self
    where
        A: DeserializeOwned + Send + 'static,
        R: Serialize + Send + 'static,
        F: Fn(A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
    {
        let function = Arc::new(function);
        let preparer = move |args: Value| -> Result<PreparedCall, serde_json::Error> {
            let args: A = serde_json::from_value(args)?;
            let function = Arc::clone(&function);
            Ok(PreparedCall::Async(Box::pin(async move {
                encode(function(args).await)
            })))
        };
        self.functions.insert(name.into(), Arc::new(preparer));
        self
    }

    /// Registers a blocking function under `name`; it runs on tokio's blocking
    /// thread pool, never on the async workers.
    pub fn register_blocking<A, R, F>(mut self, name: impl Into<String>, function: F) -> Self
    where
        A: DeserializeOwned + Send + 'static,
        R: Serialize + Send + 'static,
        F: Fn(A) -> R + Send + Sync + 'static,
    {
        let function = Arc::new(function);
        let preparer = move |args: Value| -> Result<PreparedCall, serde_json::Error> {
            let args: A = serde_json::from_value(args)?;
            let function = Arc::clone(&function);
            Ok(PreparedCall::Blocking(Box::new(move |_cancel| {
                encode(function(args))
            })))
        };
        self.functions.insert(name.into(), Arc::new(preparer));
        self
    }

    /// Removes the function registered under `name`, if any.
    pub fn unregister(mut self, name: &str) -> Self {
        self.functions.remove(name);
        self
    }

    /// Whether a function is registered under `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.functions.contains_key(name)
    }

    /// The registered names, in no particular order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.functions.keys().map(String::as_str)
    }

    /// Resolves `name` and decodes `args`, or says why the task is invalid.
    pub(crate) fn prepare(&self, name: &str, args: Value) -> Result<PreparedCall, Error> {
        let preparer = self.functions.get(name).ok_or_else(|| Error::UnknownTask {
            name: name.to_owned(),
        })?;
        preparer(args).map_err(|source| Error::InvalidArgs {
            name: name.to_owned(),
            source,
        })
    }
}

impl std::fmt::Debug for TaskRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&str> = self.names().collect();
        names.sort_unstable();
        f.debug_struct("TaskRegistry")
            .field("names", &names)
            .finish()
    }
}

fn encode<R: Serialize>(value: R) -> Outcome<Value> {
    match serde_json::to_value(value) {
        Ok(value) => Outcome::Ok(value),
        Err(error) => Outcome::Exit(ExitReason::Unserializable(error.to_string())),
    }
}
