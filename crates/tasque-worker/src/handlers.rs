//! Handlers: typed functions registered by task name, and the context they get.

use std::collections::HashMap;
use std::fmt::Display;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use parking_lot::RwLock;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use tasque_core::CancelToken;
use tasque_durable::{FailureKind, FailureReason};

use crate::context::JobContext;

/// What a handler's run produced, as JSON: a result, or a failure reason.
pub(crate) type HandlerResult = Result<Value, Value>;

/// A handler future with its types erased.
pub(crate) type ErasedFuture = Pin<Box<dyn Future<Output = HandlerResult> + Send>>;

/// How a run's task in the in-process queue ended.
#[derive(Debug)]
pub(crate) enum RunOutput {
    /// The handler returned.
    Finished(HandlerResult),
    /// The handler was stopped by its context: the run suspended (a sleep or an event wait,
    /// already written to the store) or lost its lease. Nothing more is written.
    Interrupted,
}

/// A started handler, ready to run in the in-process queue.
pub(crate) type HandlerFuture = Pin<Box<dyn Future<Output = RunOutput> + Send>>;

/// A blocking handler's work with its types erased.
pub(crate) type ErasedBlocking = Box<dyn FnOnce(CancelToken) -> HandlerResult + Send>;

/// What a started handler runs: a future, or a closure for a thread of tokio's blocking pool.
pub(crate) enum HandlerWork {
    /// An async handler.
    Async(HandlerFuture),
    /// A blocking handler: it cannot be killed, only told through its [`CancelToken`].
    Blocking(Box<dyn FnOnce(CancelToken) -> RunOutput + Send>),
}

/// A handler's work before the worker wraps it.
pub(crate) enum Erased {
    Async(ErasedFuture),
    Blocking(ErasedBlocking),
}

/// A handler with its types erased.
pub(crate) trait ErasedHandler: Send + Sync {
    /// Decodes `params` and prepares the handler's work, or says why the params do not decode.
    /// The handler function itself is first called inside the returned work, so that even
    /// its synchronous part runs (and may panic) in the in-process queue's task, never in the
    /// claim loop.
    fn start(
        self: Arc<Self>,
        context: JobContext,
        params: Value,
    ) -> Result<Erased, serde_json::Error>;
}

struct TypedHandler<F, P> {
    function: F,
    _params: std::marker::PhantomData<fn(P)>,
}

impl<F, P, Fut, R, E> ErasedHandler for TypedHandler<F, P>
where
    F: Fn(JobContext, P) -> Fut + Send + Sync + 'static,
    P: DeserializeOwned + Send + 'static,
    Fut: Future<Output = Result<R, E>> + Send + 'static,
    R: Serialize + Send + 'static,
    E: Display + Send + 'static,
{
    fn start(
        self: Arc<Self>,
        context: JobContext,
        params: Value,
    ) -> Result<Erased, serde_json::Error> {
        let params: P = serde_json::from_value(params)?;
        Ok(Erased::Async(Box::pin(async move {
            to_json((self.function)(context, params).await)
        })))
    }
}

struct JsonHandler<F, P> {
    function: F,
    _params: std::marker::PhantomData<fn(P)>,
}

impl<F, P, Fut, R> ErasedHandler for JsonHandler<F, P>
where
    F: Fn(JobContext, P) -> Fut + Send + Sync + 'static,
    P: DeserializeOwned + Send + 'static,
    Fut: Future<Output = Result<R, Value>> + Send + 'static,
    R: Serialize + Send + 'static,
{
    fn start(
        self: Arc<Self>,
        context: JobContext,
        params: Value,
    ) -> Result<Erased, serde_json::Error> {
        let params: P = serde_json::from_value(params)?;
        Ok(Erased::Async(Box::pin(async move {
            let result = (self.function)(context, params).await?;
            serde_json::to_value(result).map_err(|error| unserializable(&error))
        })))
    }
}

struct BlockingHandler<F, P> {
    function: Arc<F>,
    _params: std::marker::PhantomData<fn(P)>,
}

impl<F, P, R, E> ErasedHandler for BlockingHandler<F, P>
where
    F: Fn(JobContext, P, CancelToken) -> Result<R, E> + Send + Sync + 'static,
    P: DeserializeOwned + Send + 'static,
    R: Serialize + Send + 'static,
    E: Display + Send + 'static,
{
    fn start(
        self: Arc<Self>,
        context: JobContext,
        params: Value,
    ) -> Result<Erased, serde_json::Error> {
        let params: P = serde_json::from_value(params)?;
        Ok(Erased::Blocking(Box::new(move |cancel| {
            to_json((*self.function)(context, params, cancel))
        })))
    }
}

/// A handler's typed result as JSON: the result, or the error's message as the reason.
pub(crate) fn to_json<R: Serialize, E: Display>(result: Result<R, E>) -> HandlerResult {
    match result {
        Ok(result) => serde_json::to_value(result).map_err(|error| unserializable(&error)),
        Err(error) => Err(FailureReason::error(error.to_string()).to_json()),
    }
}

/// The reason of a result that does not encode as JSON.
fn unserializable(error: &serde_json::Error) -> Value {
    FailureReason::new(FailureKind::UnserializableResult, error.to_string()).to_json()
}

/// The handlers a worker knows, by task name. Cheap to clone; clones share the
/// set, so handlers can be learned and forgotten while the worker runs.
#[derive(Clone, Default)]
pub struct Handlers {
    by_name: Arc<RwLock<HashMap<String, Arc<dyn ErasedHandler>>>>,
}

impl Handlers {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `function` for jobs whose task name is `task`, replacing any
    /// earlier handler of that name.
    ///
    /// The job's params are decoded into `P` (a job whose params do not decode
    /// fails for good at once, reason kind `undecodable_job`: retrying cannot help); `Ok(R)` completes the job with `R`
    /// as its JSON result; `Err(E)` fails the attempt with `E`'s message, and the
    /// job's retry options decide what happens next.
    pub fn learn<P, R, E, F, Fut>(&self, task: impl Into<String>, function: F) -> &Self
    where
        F: Fn(JobContext, P) -> Fut + Send + Sync + 'static,
        P: DeserializeOwned + Send + 'static,
        Fut: Future<Output = Result<R, E>> + Send + 'static,
        R: Serialize + Send + 'static,
        E: Display + Send + 'static,
    {
        let handler = TypedHandler {
            function,
            _params: std::marker::PhantomData,
        };
        self.insert(task.into(), Arc::new(handler))
    }

    /// Registers an erased handler under `task`, replacing any earlier one.
    pub(crate) fn insert(&self, task: String, handler: Arc<dyn ErasedHandler>) -> &Self {
        self.by_name.write().insert(task, handler);
        self
    }

    /// Like [`learn`](Handlers::learn), for handlers that describe their
    /// failures as JSON: `Err(reason)` is recorded as the attempt's reason as
    /// it is (e.g. `{"exit_code": 3, "stderr_tail": "..."}`).
    pub fn learn_json<P, R, F, Fut>(&self, task: impl Into<String>, function: F) -> &Self
    where
        F: Fn(JobContext, P) -> Fut + Send + Sync + 'static,
        P: DeserializeOwned + Send + 'static,
        Fut: Future<Output = Result<R, Value>> + Send + 'static,
        R: Serialize + Send + 'static,
    {
        let handler = JsonHandler {
            function,
            _params: std::marker::PhantomData,
        };
        self.by_name.write().insert(task.into(), Arc::new(handler));
        self
    }

    /// Registers a **blocking** handler for `task`: `function` runs on a thread of tokio's
    /// blocking pool, so CPU-bound or synchronous code never stalls the worker's async
    /// threads. Results and errors are as for [`learn`](Handlers::learn).
    ///
    /// A thread cannot be killed. When the job's timeout passes (or the job is cancelled,
    /// its lease lost, or the worker's shutdown grace ends) the attempt ends at once as
    /// usual and the handler's [`CancelToken`] is raised; a handler should check
    /// [`CancelToken::is_cancelled`] and return early. One that ignores it keeps its worker
    /// slot taken until its thread really returns, so the worker's concurrency stays a true
    /// bound on running work (see [`WorkerStats::busy_slots`](crate::WorkerStats)).
    /// Blocking handlers cannot use the async workflow calls of their [`JobContext`].
    pub fn learn_blocking<P, R, E, F>(&self, task: impl Into<String>, function: F) -> &Self
    where
        F: Fn(JobContext, P, CancelToken) -> Result<R, E> + Send + Sync + 'static,
        P: DeserializeOwned + Send + 'static,
        R: Serialize + Send + 'static,
        E: Display + Send + 'static,
    {
        let handler = BlockingHandler {
            function: Arc::new(function),
            _params: std::marker::PhantomData,
        };
        self.by_name.write().insert(task.into(), Arc::new(handler));
        self
    }

    /// Forgets the handler of `task`; its jobs are deferred from now on.
    pub fn forget(&self, task: &str) -> &Self {
        self.by_name.write().remove(task);
        self
    }

    /// Whether a handler is registered for `task`.
    pub fn knows(&self, task: &str) -> bool {
        self.by_name.read().contains_key(task)
    }

    /// The registered task names, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.by_name.read().keys().cloned().collect();
        names.sort();
        names
    }

    /// Starts the handler of the claim's task: `None` for an unknown task,
    /// `Some(Err)` when the params do not decode.
    ///
    /// The handler races its context's interruption: when a workflow call suspends the run
    /// (or finds its lease lost), the handler's future is dropped at once, so the slot frees
    /// without waiting for the handler to notice.
    pub(crate) fn start(
        &self,
        context: JobContext,
        params: Value,
    ) -> Option<Result<HandlerWork, serde_json::Error>> {
        let handler = self.by_name.read().get(context.task()).cloned()?;
        let run = context.run_state();
        let started = handler.start(context, params).map(|work| match work {
            Erased::Async(future) => HandlerWork::Async(Box::pin(async move {
                tokio::select! {
                    biased;
                    _ = run.interrupted() => RunOutput::Interrupted,
                    result = future => RunOutput::Finished(result),
                }
            })),
            Erased::Blocking(work) => {
                HandlerWork::Blocking(Box::new(move |cancel| RunOutput::Finished(work(cancel))))
            }
        });
        Some(started)
    }
}

impl std::fmt::Debug for Handlers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handlers")
            .field("names", &self.names())
            .finish()
    }
}
