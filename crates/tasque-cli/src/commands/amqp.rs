//! `tasque amqp work|publish|queues`: RabbitMQ as the source of work instead of the
//! database. Nothing here touches the database.
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
//! used as they are. Queue administration goes through [`tasque_amqp::Admin`].

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};
use tasque_amqp::{
    Admin, Consumer, ConsumerHandle, ConsumerState, ConsumerStats, DeadLetter, HandlerRegistry,
    Message, MessageContext, Publisher,
};
use tokio::sync::watch;

use crate::amqp_args::{
    AmqpArgs, AmqpCommand, AmqpPublishArgs, AmqpQueueAction, AmqpQueuesArgs, AmqpWorkArgs,
};
use crate::exec::{self, ExecParams, EXEC_TASK};
use crate::fail::CliError;
use crate::output;
use crate::secrets::redact;
use crate::signal::Signals;

/// How long reaching the broker may take before it counts as unreachable.
const CONNECT_LIMIT: Duration = Duration::from_secs(15);

/// How often `--until-empty` and `--max-messages` look at the counters.
const TICK: Duration = Duration::from_millis(100);

/// Runs `tasque amqp SUBCOMMAND`.
pub async fn run(args: AmqpArgs, json_output: bool) -> Result<(), CliError> {
    let url = args.url;
    match args.command {
        AmqpCommand::Work(work_args) => work(&url, work_args, json_output).await,
        AmqpCommand::Publish(publish_args) => {
            // Input is checked before the broker is contacted: bad input publishes nothing.
            let outgoing = build_message(&publish_args)?;
            publish(&url, outgoing, json_output).await
        }
        AmqpCommand::Queues(queues_args) => queues(&url, queues_args, json_output).await,
    }
}

/// A message ready to publish, checked before the broker is contacted.
#[derive(Debug)]
pub struct Outgoing {
    queue: String,
    message: Message,
}

/// Builds the message `tasque amqp publish` publishes: the task and its JSON params (for
/// `exec`, the command after `--`).
pub fn build_message(args: &AmqpPublishArgs) -> Result<Outgoing, CliError> {
    if args.queue.is_empty() {
        return Err(CliError::Usage("--queue must not be empty".into()));
    }
    let params: Value = super::enqueue::params(&args.job)?;
    let message = Message::json(args.job.task.clone(), &params)
        .map_err(|error| CliError::Usage(error.to_string()))?;
    Ok(Outgoing {
        queue: args.queue.clone(),
        message,
    })
}

/// Publishes one message with publisher confirms: returns once the broker has it.
pub async fn publish(url: &str, outgoing: Outgoing, json_output: bool) -> Result<(), CliError> {
    let admin = connect(url).await?;
    admin
        .ensure_queue(&outgoing.queue)
        .await
        .map_err(declare_failed(&outgoing.queue))?;
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

/// `tasque amqp queues [Q...]`, `queues declare Q`, `queues purge Q`.
async fn queues(url: &str, args: AmqpQueuesArgs, json_output: bool) -> Result<(), CliError> {
    let admin = connect(url).await?;
    let result = match args.action {
        Some(AmqpQueueAction::Declare { queue }) => {
            let declared = admin
                .ensure_queue(&queue)
                .await
                .map_err(declare_failed(&queue))?;
            if json_output {
                output::json(&json!({ "queue": queue, "declared": declared }));
            } else if declared {
                println!("declared durable queue {queue}");
            } else {
                println!("queue {queue} already exists; left as it is");
            }
            Ok(())
        }
        Some(AmqpQueueAction::Purge { queue }) => match admin.purge(&queue).await {
            Ok(Some(purged)) => {
                if json_output {
                    output::json(&json!({ "queue": queue, "purged": purged }));
                } else {
                    println!("purged {purged} ready messages from {queue}");
                }
                Ok(())
            }
            Ok(None) => Err(CliError::Failed(format!("queue {queue:?} does not exist"))),
            Err(error) => Err(CliError::Failed(format!(
                "cannot purge queue {queue:?}: {error}"
            ))),
        },
        None => show_queues(&admin, &args.queues, json_output).await,
    };
    admin.close().await;
    result
}

async fn show_queues(admin: &Admin, names: &[String], json_output: bool) -> Result<(), CliError> {
    if names.is_empty() {
        return Err(CliError::Usage(
            "name the queues to show: tasque amqp queues QUEUE... (AMQP cannot list them)".into(),
        ));
    }
    let mut rows = Vec::new();
    let mut documents = Vec::new();
    for name in names {
        let status = admin
            .queue_status(name)
            .await
            .map_err(|error| CliError::Failed(format!("cannot inspect queue {name:?}: {error}")))?;
        documents.push(json!({
            "queue": name,
            "exists": status.is_some(),
            "ready": status.map(|s| s.ready),
            "consumers": status.map(|s| s.consumers),
        }));
        let (ready, consumers) = match status {
            Some(status) => (status.ready.to_string(), status.consumers.to_string()),
            None => ("(missing)".to_owned(), String::new()),
        };
        rows.push(vec![name.clone(), ready, consumers]);
    }
    if json_output {
        output::json(&json!({ "queues": documents }));
    } else {
        output::table(&["queue", "ready", "consumers"], &rows);
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
fn consumer(
    url: &str,
    args: &AmqpWorkArgs,
    started: watch::Sender<u64>,
) -> Result<Consumer, CliError> {
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

/// Runs `tasque amqp work --queue Q`.
async fn work(url: &str, args: AmqpWorkArgs, json_output: bool) -> Result<(), CliError> {
    let (started, starts) = watch::channel(0);
    let consumer = consumer(url, &args, started)?;
    let admin = connect(url).await?;
    for queue in args.queues.iter().chain(&args.dead_letter_queue) {
        admin
            .ensure_queue(queue)
            .await
            .map_err(declare_failed(queue))?;
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
    args: &AmqpWorkArgs,
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
    args: &AmqpWorkArgs,
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
            let empty = idle
                && admin.ready(&args.queues).await.map_err(|error| {
                    CliError::Failed(format!("cannot inspect the queues: {error}"))
                })? == 0;
            empty_ticks = if empty { empty_ticks + 1 } else { 0 };
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

/// Connects the admin connection within [`CONNECT_LIMIT`].
async fn connect(url: &str) -> Result<Admin, CliError> {
    within_limit(url, Admin::connect(url)).await
}

fn declare_failed(queue: &str) -> impl Fn(tasque_amqp::Error) -> CliError + '_ {
    move |error| CliError::Failed(format!("cannot declare queue {queue:?}: {error}"))
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
