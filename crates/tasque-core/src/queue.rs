//! The public queue handle and its builder.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::runtime::Handle;
use tokio::time::Instant;

use crate::cell::{AsyncWork, BlockingWork, Control, Launch, Outbox, TaskCell};
use crate::entry::Entry;
use crate::names::{global_names, NameRegistry};
use crate::registry::PreparedCall;
use crate::shared::Shared;
use crate::task_ref::next_task_id;
use crate::{
    CancelToken, Error, Mailbox, Outcome, QueueStats, ShutdownReport, TaskHandle, TaskOptions,
    TaskRef, TaskRegistry, DEFAULT_MAX_CONCURRENCY,
};

static NEXT_QUEUE_ID: AtomicU64 = AtomicU64::new(1);

/// `limit` from now, saturating far in the future for huge limits
/// (`Duration::MAX` means "no limit").
pub(crate) fn deadline_after(limit: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(60 * 60 * 24 * 365 * 30);
    let now = Instant::now();
    now.checked_add(limit).unwrap_or_else(|| now + FAR)
}

/// Configures and starts a [`Queue`]. Values are validated by
/// [`build`](QueueBuilder::build).
#[derive(Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct QueueBuilder {
    name: String,
    max_concurrency: usize,
    tasks: TaskRegistry,
    names: Option<Arc<dyn NameRegistry>>,
}

impl QueueBuilder {
    /// Sets the concurrency budget: at most this many tasks run at once.
    /// Default [`DEFAULT_MAX_CONCURRENCY`] (10); 0 is refused by `build`.
    pub fn max_concurrency(mut self, max_concurrency: usize) -> Self {
        self.max_concurrency = max_concurrency;
        self
    }

    /// The named functions that [`Queue::call`] can run.
    pub fn tasks(mut self, tasks: TaskRegistry) -> Self {
        self.tasks = tasks;
        self
    }

    /// Registers the queue under its name in the process-wide registry, so
    /// [`Queue::lookup`] finds it. `build` fails with [`Error::NameTaken`] if
    /// the name is taken.
    pub fn register(self) -> Self {
        let names: Arc<dyn NameRegistry> = global_names();
        self.register_in(names)
    }

    /// Registers the queue under its name in a registry of your own (the
    /// analogue of a `{:via, module, term}` name).
    pub fn register_in(mut self, names: Arc<dyn NameRegistry>) -> Self {
        self.names = Some(names);
        self
    }

    /// Starts the queue on the current tokio runtime.
    ///
    /// Fails with [`Error::InvalidOption`] for `max_concurrency` 0,
    /// [`Error::NameTaken`] when registering under a taken name, and
    /// [`Error::NoRuntime`] outside a tokio runtime.
    pub fn build(self) -> Result<Queue, Error> {
        if self.max_concurrency == 0 {
            return Err(Error::invalid_option(
                "max_concurrency",
                "must be at least 1",
            ));
        }
        let runtime = Handle::try_current().map_err(|_| Error::NoRuntime)?;
        let shared = Arc::new(Shared::new(
            NEXT_QUEUE_ID.fetch_add(1, Ordering::Relaxed),
            self.name.into(),
            self.max_concurrency,
            runtime,
            self.tasks,
            self.names,
        ));
        let queue = Queue { shared };
        if let Some(names) = &queue.shared.names {
            names.register(&queue.shared.name, queue.clone())?;
        }
        Ok(queue)
    }
}

/// A bounded-concurrency FIFO task queue. Cheap to clone; all clones drive the
/// same queue.
///
/// See the [crate documentation](crate) for the model and guarantees.
///
/// ```
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use tasque_core::{ExitReason, Outcome, Queue, TaskOptions};
///
/// let queue = Queue::builder("docs-queue").max_concurrency(2).build()?;
/// let fast = queue.enqueue(async { 1 + 1 })?;
/// let slow = queue.enqueue_with(
///     TaskOptions::new().timeout(Duration::from_millis(20)),
///     std::future::pending::<()>(),
/// )?;
/// assert_eq!(fast.await, Outcome::Ok(2));
/// assert_eq!(slow.await, Outcome::Exit(ExitReason::Timeout));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Queue {
    shared: Arc<Shared>,
}

/// A submitted task's ref and, for the handle target, where its outcome arrives.
type Submitted<T> = (TaskRef, Option<Arc<dyn Outbox<T>>>);

/// Where an outcome should go, while submitting.
enum Target<'a, T> {
    Handle,
    Mailbox(&'a Mailbox<T>),
}

impl Queue {
    /// Starts configuring a queue called `name` (the name shows in stats,
    /// traces and, if registered, the name registry).
    pub fn builder(name: impl Into<String>) -> QueueBuilder {
        QueueBuilder {
            name: name.into(),
            max_concurrency: DEFAULT_MAX_CONCURRENCY,
            tasks: TaskRegistry::new(),
            names: None,
        }
    }

    /// Finds a queue registered under `name` in the process-wide registry.
    pub fn lookup(name: &str) -> Option<Queue> {
        global_names().lookup(name)
    }

    /// The queue's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The queue's concurrency budget.
    pub fn max_concurrency(&self) -> usize {
        self.shared.max_concurrency
    }

    /// Enqueues an async task with default options; returns at once.
    pub fn enqueue<F, T>(&self, future: F) -> Result<TaskHandle<T>, Error>
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        self.enqueue_with(TaskOptions::new(), future)
    }

    /// Enqueues an async task with options; returns at once.
    pub fn enqueue_with<F, T>(
        &self,
        options: TaskOptions,
        future: F,
    ) -> Result<TaskHandle<T>, Error>
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        self.submit_future(
            options,
            Target::Handle,
            async move { Outcome::Ok(future.await) },
        )
        .map(|(task_ref, receiver)| TaskHandle::new(task_ref, receiver.expect("handle target")))
    }

    /// Enqueues a blocking closure. It runs on tokio's blocking pool and never
    /// stalls the async workers. It cannot be killed: on timeout or cancel the
    /// caller gets its outcome at once and the closure's [`CancelToken`] is
    /// raised, but its slot stays taken until it returns, so
    /// `max_concurrency` remains a true bound on running work.
    pub fn enqueue_blocking<F, T>(
        &self,
        options: TaskOptions,
        work: F,
    ) -> Result<TaskHandle<T>, Error>
    where
        F: FnOnce(CancelToken) -> T + Send + 'static,
        T: Send + 'static,
    {
        self.submit_blocking(options, Target::Handle, move |cancel| {
            Outcome::Ok(work(cancel))
        })
        .map(|(task_ref, receiver)| TaskHandle::new(task_ref, receiver.expect("handle target")))
    }

    /// Enqueues an async task whose outcome is posted to `mailbox`.
    pub fn enqueue_to<F, T>(
        &self,
        mailbox: &Mailbox<T>,
        options: TaskOptions,
        future: F,
    ) -> Result<TaskRef, Error>
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        self.submit_future(options, Target::Mailbox(mailbox), async move {
            Outcome::Ok(future.await)
        })
        .map(|(task_ref, _)| task_ref)
    }

    /// Enqueues a blocking closure whose outcome is posted to `mailbox`.
    pub fn enqueue_blocking_to<F, T>(
        &self,
        mailbox: &Mailbox<T>,
        options: TaskOptions,
        work: F,
    ) -> Result<TaskRef, Error>
    where
        F: FnOnce(CancelToken) -> T + Send + 'static,
        T: Send + 'static,
    {
        self.submit_blocking(options, Target::Mailbox(mailbox), move |cancel| {
            Outcome::Ok(work(cancel))
        })
        .map(|(task_ref, _)| task_ref)
    }

    /// Enqueues the named function `name` with JSON `args`, looked up in the
    /// queue's [`TaskRegistry`]. An unknown name or undecodable arguments
    /// fail here with an invalid-task error and nothing is queued.
    pub fn call(
        &self,
        name: &str,
        args: Value,
        options: TaskOptions,
    ) -> Result<TaskHandle<Value>, Error> {
        self.submit_call(name, args, options, Target::Handle)
            .map(|(task_ref, receiver)| TaskHandle::new(task_ref, receiver.expect("handle target")))
    }

    /// Like [`call`](Queue::call), posting the outcome to `mailbox`.
    pub fn call_to(
        &self,
        mailbox: &Mailbox<Value>,
        name: &str,
        args: Value,
        options: TaskOptions,
    ) -> Result<TaskRef, Error> {
        self.submit_call(name, args, options, Target::Mailbox(mailbox))
            .map(|(task_ref, _)| task_ref)
    }

    /// Cancels a task by ref. A waiting task is dropped and never starts; a
    /// running async task is aborted; a running blocking task is signalled
    /// through its [`CancelToken`]. The caller gets `Exit(Cancelled)`.
    /// Returns `false` if the task had already ended (or is not this queue's).
    pub fn cancel(&self, task_ref: &TaskRef) -> bool {
        if task_ref.queue_id != self.shared.id {
            return false;
        }
        match task_ref.control.upgrade() {
            Some(control) => self.shared.stop(&*control, crate::ExitReason::Cancelled),
            None => false,
        }
    }

    /// A snapshot of the queue's counts (row 1.14); cheap.
    pub fn stats(&self) -> QueueStats {
        self.shared.stats()
    }

    /// Whether the queue still accepts work.
    pub fn is_accepting(&self) -> bool {
        self.shared.is_accepting()
    }

    /// Waits up to `limit` until no task is running or waiting; returns
    /// whether the queue became idle. Useful in tests and before shutdown.
    pub async fn wait_idle(&self, limit: Duration) -> bool {
        self.shared.wait_idle(deadline_after(limit)).await
    }

    /// Shuts the queue down gracefully (row 1.13).
    ///
    /// At once: enqueue starts failing with [`Error::ShutDown`], every waiting
    /// task gets `Exit(Shutdown)`, and the queue leaves its name registry.
    /// Running tasks may finish until `grace` has passed; those still running
    /// then get `Exit(Shutdown)` (async ones are aborted, blocking ones are
    /// signalled and keep their slot until they return).
    pub async fn shutdown(&self, grace: Duration) -> ShutdownReport {
        self.shared.shutdown(deadline_after(grace)).await
    }

    /// Arms a one-shot failure of the queue's own machinery: the next runner
    /// to finish a task panics outside any task. Exists to test supervision
    /// (row 1.12); never needed in production code.
    #[doc(hidden)]
    pub fn inject_machinery_fault(&self) {
        self.shared.inject_fault();
    }

    fn submit_call(
        &self,
        name: &str,
        args: Value,
        options: TaskOptions,
        target: Target<'_, Value>,
    ) -> Result<Submitted<Value>, Error> {
        match self.shared.tasks.prepare(name, args)? {
            PreparedCall::Async(future) => self.submit_future(options, target, future),
            PreparedCall::Blocking(work) => self.submit_blocking(options, target, work),
        }
    }

    fn submit_future<T, F>(
        &self,
        options: TaskOptions,
        target: Target<'_, T>,
        future: F,
    ) -> Result<Submitted<T>, Error>
    where
        T: Send + 'static,
        F: Future<Output = Outcome<T>> + Send + 'static,
    {
        self.submit(options, target, AsyncWork(future))
    }

    fn submit_blocking<T, F>(
        &self,
        options: TaskOptions,
        target: Target<'_, T>,
        work: F,
    ) -> Result<Submitted<T>, Error>
    where
        T: Send + 'static,
        F: FnOnce(CancelToken) -> Outcome<T> + Send + 'static,
    {
        self.submit(options, target, BlockingWork(work))
    }

    /// Validates, builds the task's cell (which holds its work, unboxed, until
    /// it starts), queues it and arms its timer.
    fn submit<T: Send + 'static, W: Launch<T>>(
        &self,
        options: TaskOptions,
        target: Target<'_, T>,
        work: W,
    ) -> Result<Submitted<T>, Error> {
        let timeout = options.validated_timeout()?;
        let id = next_task_id();
        let queue_id = self.shared.id;
        // A timeout too large to represent is no timeout at all.
        let deadline = timeout.and_then(|timeout| Instant::now().checked_add(timeout));
        let (control, task_ref, outbox): (Arc<dyn Control>, _, _) = match target {
            Target::Handle => {
                let (cell, task_ref) = TaskCell::for_handle(id, queue_id, deadline, work);
                let outbox: Arc<dyn Outbox<T>> = cell.clone();
                (cell, task_ref, Some(outbox))
            }
            Target::Mailbox(mailbox) => {
                let (cell, task_ref) =
                    TaskCell::for_mailbox(id, queue_id, deadline, work, mailbox.sender());
                (cell, task_ref, None)
            }
        };
        let entry = Entry {
            control: Arc::clone(&control),
        };
        self.shared.submit(entry, options.priority_value())?;
        if let Some(deadline) = deadline {
            self.arm_timer(control, deadline);
        }
        Ok((task_ref, outbox))
    }

    /// Starts the timer that ends the task at its deadline (row 1.7).
    fn arm_timer(&self, control: Arc<dyn Control>, deadline: Instant) {
        let shared = Arc::downgrade(&self.shared);
        let timed = Arc::clone(&control);
        let timer = self.shared.runtime.spawn(async move {
            tokio::time::sleep_until(deadline).await;
            if let Some(shared) = shared.upgrade() {
                shared.stop(&*timed, crate::ExitReason::Timeout);
            }
        });
        control.set_timer(timer.abort_handle());
    }
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("name", &self.shared.name)
            .field("max_concurrency", &self.shared.max_concurrency)
            .finish()
    }
}
