//! Typed handlers: registered by [`Job`] type, args decoded from the job's params, output
//! encoded as its result.

use std::fmt::Display;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;

use serde_json::Value;
use tasque_durable::client::Job;

use crate::handlers::{to_json, Erased, ErasedHandler};
use crate::{Handlers, JobContext};

/// A typed job handler with its types erased.
struct JobHandler<J, F> {
    function: F,
    kind: PhantomData<fn(J)>,
}

impl<J, F, Fut, E> ErasedHandler for JobHandler<J, F>
where
    J: Job,
    F: Fn(J, JobContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<J::Output, E>> + Send + 'static,
    E: Display + Send + 'static,
{
    fn start(
        self: Arc<Self>,
        context: JobContext,
        params: Value,
    ) -> Result<Erased, serde_json::Error> {
        let args: J = serde_json::from_value(params)?;
        Ok(Erased::Async(Box::pin(async move {
            to_json((self.function)(args, context).await)
        })))
    }
}

impl Handlers {
    /// Registers `function` as the handler of the job kind `J` (task name [`Job::KIND`]),
    /// replacing any earlier handler of that kind. The kind is read from the function's first
    /// argument, so a closure names it there:
    ///
    /// ```
    /// use serde::{Deserialize, Serialize};
    /// use tasque_durable::client::Job;
    /// use tasque_worker::{Handlers, JobContext};
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct SendEmail { to: String }
    ///
    /// impl Job for SendEmail {
    ///     const KIND: &'static str = "send_email";
    ///     type Output = String;
    /// }
    ///
    /// let handlers = Handlers::new();
    /// handlers.register(|email: SendEmail, _ctx: JobContext| async move {
    ///     Ok::<_, std::io::Error>(format!("sent to {}", email.to))
    /// });
    /// assert!(handlers.knows("send_email"));
    /// ```
    ///
    /// `Ok(output)` completes the job with `output` as its result; `Err(e)` fails the attempt
    /// with `e`'s message (kind `error`) and the job's retry options decide what comes next,
    /// unless the handler called [`JobContext::fail_for_good`]. A job whose params do not decode
    /// into `J` fails for good at once (kind `undecodable_job`).
    pub fn register<J, F, Fut, E>(&self, function: F) -> &Self
    where
        J: Job,
        F: Fn(J, JobContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<J::Output, E>> + Send + 'static,
        E: Display + Send + 'static,
    {
        let handler = JobHandler {
            function,
            kind: PhantomData,
        };
        self.insert(J::KIND.to_string(), Arc::new(handler))
    }
}
