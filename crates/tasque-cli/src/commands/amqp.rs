//! `tasque work --amqp-url` and `tasque enqueue --amqp-url`: RabbitMQ as the source of
//! work instead of the database.
//!
//! The worker is a [`tasque_amqp::Consumer`] with one handler, the built-in `exec` task:
//! a message whose task (header `x-tasque-task`, or the routing key) is `exec` and whose
//! JSON payload is the [`ExecParams`] runs the command; exit status 0 acks it, anything
//! else is a failed attempt, republished with its attempt counted until `--max-attempts`,
//! then dead-lettered to `--dead-letter-queue` with the reason in a header. Payloads that
//! do not decode and other task names are dead-lettered at once. Prefetch equals
//! `--concurrency`. Ctrl-C or SIGTERM stops consuming, lets running commands finish within
//! `--shutdown-grace`, and requeues the rest.
//!
//! Queues that do not exist are declared durable (without arguments); existing queues are
//! used as they are.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};
use tasque_amqp::lapin::options::QueueDeclareOptions;
use tasque_amqp::lapin::types::FieldTable;
use tasque_amqp::lapin::{Channel, Connection};
use tasque_amqp::{
    Consumer, ConsumerHandle, ConsumerState, ConsumerStats, DeadLetter, HandlerRegistry, Message,
    MessageContext, Publisher,
};
use tokio::sync::watch;

use crate::args::{EnqueueArgs, WorkArgs};
use crate::exec::{self, ExecParams, EXEC_TASK};
use crate::fail::CliError;
use crate::output::{self, redact};
use crate::signal::Signals;

/// How long reaching the broker may take before it counts as unreachable.
const CONNECT_LIMIT: Duration = Duration::from_secs(15);

/// How often `--until-empty` and `--max-messages` look at the counters.
const TICK: Duration = Duration::from_millis(100);

/// A message ready to publish, checked before the broker is contacted.
#[derive(Debug)]
pub struct Outgoing {
    queue: String,
    message: Message,
}

/// Builds the message `tasque enqueue --amqp-url` publishes: the task and its JSON
/// params (for `exec`, the command after `--`).
pub fn build_message(args: &EnqueueArgs) -> Result<Outgoing, CliError> {
    if args.queue.is_empty() {
        return Err(CliError::Usage("--queue must not be empty".into()));
    }
    let params: Value = super::enqueue::params(args)?;
    let message = Message::json(args.task.clone(), &params)
        .map_err(|error| CliError::Usage(error.to_string()))?;
    Ok(Outgoing {
        queue: args.queue.clone(),
        message,
    })
}

/// Publishes one message with publisher confirms: returns once the broker has it.
pub async fn publish(url: &str, outgoing: Outgoing, json_output: bool) -> Result<(), CliError> {
    let admin = Admin::connect(url).await?;
    admin.ensure_queue(&outgoing.queue).await?;
    let publisher = within_limit(url, Publisher::connect(url)).await?;
    publisher
        .publish_to_queue(&outgoing.queue, &outgoing.message)
        .await
        .map_err(|error| CliError::Failed(format!("publishing failed: {error}")))?;
    let _ = publisher.close().await;
    admin.close().await;
    let task = outgoing.message.task_name().unwrap_or_default();
    if json_output {
        output::json(&json!({ "published": true, "queue": outgoing.queue, "task": task }));
    } else {
        println!(
            "published a message for task {task} to queue {} (confirmed by the broker)",
            outgoing.queue
        );
    }
    Ok(())
}

/// The consumer's handlers: the built-in `exec` task. Every start is counted in
/// `started` (for `--max-messages`).
fn handlers(started: watch::Sender<u64>) -> HandlerRegistry {
    HandlerRegistry::new().handler_with_context(
        EXEC_TASK,
        move |params: ExecParams, context: MessageContext| {
            started.send_modify(|n| *n += 1);
            async move {
                match exec::run(params).await {
                    Ok(report) => {
                        tracing::info!(
                            queue = %context.queue,
                            attempt = context.attempt,
                            duration_ms = report.duration_ms,
                            "exec message succeeded"
                        );
                        Ok(())
                    }
                    Err(error) => Err(error.to_string()),
                }
            }
        },
    )
}

/// Builds the consumer from the command line, before anything connects.
fn consumer(url: &str, args: &WorkArgs, started: watch::Sender<u64>) -> Result<Consumer, CliError> {
    if args.queues.is_empty() {
        return Err(CliError::Usage(
            "--amqp-url needs the queue to consume: --queue NAME".into(),
        ));
    }
    let mut builder = Consumer::builder(url)
        .queues(args.queues.clone())
        .max_concurrency(args.concurrency)
        .handlers(handlers(started))
        .shutdown_grace(args.shutdown_grace)
        .connection_name(format!("tasque work (pid {})", std::process::id()));
    if let Some(timeout) = args.timeout {
        builder = builder.timeout(timeout);
    }
    if let Some(attempts) = args.max_attempts {
        builder = builder.max_attempts(attempts);
    }
    if let Some(queue) = &args.dead_letter_queue {
        builder = builder.dead_letter(DeadLetter::queue(queue.clone()));
    }
    builder
        .build()
        .map_err(|error| CliError::Usage(error.to_string()))
}

/// Runs `tasque work --amqp-url URL --queue Q`.
pub async fn work(url: &str, args: WorkArgs, json_output: bool) -> Result<(), CliError> {
    let (started, starts) = watch::channel(0);
    let consumer = consumer(url, &args, started)?;
    let admin = Admin::connect(url).await?;
    for queue in args.queues.iter().chain(&args.dead_letter_queue) {
        admin.ensure_queue(queue).await?;
    }
    let mut signals = Signals::install()
        .map_err(|error| CliError::Failed(format!("could not install signal handlers: {error}")))?;
    let handle = consumer
        .start()
        .map_err(|error| CliError::Failed(error.to_string()))?;
    let bounded = args.until_empty || args.max_messages.is_some();
    if !bounded {
        eprintln!(
            "consuming {} from {} (concurrency {}); Ctrl-C to stop",
            args.queues.join(", "),
            redact(url),
            args.concurrency
        );
    }
    let progress = progress(bounded);
    let watched = watch(&handle, &admin, &args, &progress, starts);
    let watched = tokio::select! {
        result = watched => result,
        why = signals.recv() => {
            eprintln!("{why}; shutting down (grace {:?})", args.shutdown_grace);
            Ok(())
        }
    };
    // Shut down at once (stop consuming), and even when watching failed: nothing is acked
    // that did not succeed.
    let stats = handle
        .shutdown(args.shutdown_grace)
        .await
        .map_err(|error| CliError::Failed(error.to_string()));
    progress.finish_and_clear();
    admin.close().await;
    let stats = stats?;
    watched?;
    report(&stats, json_output);
    Ok(())
}

/// Returns when a `--until-empty` or `--max-messages` bound is reached; never otherwise.
async fn watch(
    handle: &ConsumerHandle,
    admin: &Admin,
    args: &WorkArgs,
    progress: &ProgressBar,
    mut starts: watch::Receiver<u64>,
) -> Result<(), CliError> {
    let mut states = handle.watch_state();
    // Emptiness only means something once the consumer is consuming.
    let _ = states
        .wait_for(|state| matches!(state, ConsumerState::Consuming { .. }))
        .await;
    let enough = async {
        match args.max_messages {
            Some(max) => drop(starts.wait_for(|n| *n >= max).await),
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        () = enough => Ok(()),
        result = until_empty(handle, admin, args, progress) => result,
    }
}

/// Shows progress; with `--until-empty`, returns once no message is ready or in flight.
async fn until_empty(
    handle: &ConsumerHandle,
    admin: &Admin,
    args: &WorkArgs,
    progress: &ProgressBar,
) -> Result<(), CliError> {
    let mut empty_ticks = 0;
    loop {
        let stats = handle.stats();
        progress.set_message(format!(
            "{} acked · {} retried · {} dead-lettered · {} running",
            stats.acked, stats.retried, stats.dead_lettered, stats.engine.running
        ));
        if args.until_empty {
            let idle = settled(&stats) >= stats.received && stats.engine.running == 0;
            // Two quiet looks in a row: a message between the broker and the
            // consumer is neither ready nor received yet for a moment.
            empty_ticks = if idle && admin.ready(&args.queues).await? == 0 {
                empty_ticks + 1
            } else {
                0
            };
            if empty_ticks >= 2 {
                return Ok(());
            }
        }
        tokio::time::sleep(TICK).await;
    }
}

/// Deliveries that are settled one way or another.
fn settled(stats: &ConsumerStats) -> u64 {
    stats.acked + stats.nacked + stats.retried + stats.dead_lettered + stats.settlements_dropped
}

fn progress(bounded: bool) -> ProgressBar {
    if !bounded || !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} · {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(TICK);
    bar
}

fn report(stats: &ConsumerStats, json_output: bool) {
    if json_output {
        output::json(&json!({
            "received": stats.received,
            "acked": stats.acked,
            "retried": stats.retried,
            "dead_lettered": stats.dead_lettered,
            "requeued": stats.nacked,
            "redelivered": stats.redelivered,
            "reconnects": stats.reconnects,
        }));
    } else {
        println!(
            "consumed {} messages: {} acked, {} retried, {} dead-lettered, {} requeued",
            stats.received, stats.acked, stats.retried, stats.dead_lettered, stats.nacked
        );
    }
}

/// A plain connection for checking and declaring queues.
struct Admin {
    connection: Connection,
    channel: tokio::sync::Mutex<Channel>,
}

impl Admin {
    async fn connect(url: &str) -> Result<Self, CliError> {
        let properties = tasque_amqp::connection_properties("tasque cli");
        let connection = within_limit(url, Connection::connect(url, properties)).await?;
        let channel = connection.create_channel().await.map_err(broker(url))?;
        Ok(Admin {
            connection,
            channel: tokio::sync::Mutex::new(channel),
        })
    }

    /// Declares `queue` durable unless it exists (then it is used as it is).
    async fn ensure_queue(&self, queue: &str) -> Result<(), CliError> {
        let failed = |error| CliError::Failed(format!("cannot declare queue {queue:?}: {error}"));
        let channel = self.channel.lock().await;
        // A failed passive declare (the queue is missing) closes its channel.
        let probe = self.connection.create_channel().await.map_err(failed)?;
        if probe
            .queue_declare(queue, passive(), FieldTable::default())
            .await
            .is_ok()
        {
            let _ = probe.close(200, "checked").await;
            return Ok(());
        }
        let durable = QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        };
        channel
            .queue_declare(queue, durable, FieldTable::default())
            .await
            .map_err(failed)?;
        Ok(())
    }

    /// Messages ready (not yet delivered) in `queues`.
    async fn ready(&self, queues: &[String]) -> Result<u64, CliError> {
        let channel = self.channel.lock().await;
        let mut ready = 0;
        for queue in queues {
            let declared = channel
                .queue_declare(queue, passive(), FieldTable::default())
                .await
                .map_err(|error| {
                    CliError::Failed(format!("cannot inspect queue {queue:?}: {error}"))
                })?;
            ready += u64::from(declared.message_count());
        }
        Ok(ready)
    }

    async fn close(self) {
        let _ = self.channel.into_inner().close(200, "done").await;
        let _ = self.connection.close(200, "done").await;
    }
}

fn passive() -> QueueDeclareOptions {
    QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    }
}

/// Runs a connection attempt with a time limit; failing is "broker unreachable".
async fn within_limit<T, E: std::fmt::Display>(
    url: &str,
    connecting: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, CliError> {
    match tokio::time::timeout(CONNECT_LIMIT, connecting).await {
        Ok(result) => result.map_err(broker(url)),
        Err(_) => Err(CliError::Database(format!(
            "cannot reach RabbitMQ at {}: no answer within {CONNECT_LIMIT:?}",
            redact(url)
        ))),
    }
}

fn broker<E: std::fmt::Display>(url: &str) -> impl Fn(E) -> CliError + '_ {
    move |error| CliError::Database(format!("cannot reach RabbitMQ at {}: {error}", redact(url)))
}
