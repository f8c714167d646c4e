//! The command line of `tasque amqp`: RabbitMQ's side of the CLI.

use std::time::Duration;

use clap::{Args, Subcommand};

use crate::args::{parse_duration, JobArgs};

/// The broker used when neither `--url` nor `TASQUE_AMQP_URL` names one (RabbitMQ's own
/// default: `guest` on the local host, default virtual host).
pub const DEFAULT_AMQP_URL: &str = "amqp://127.0.0.1:5672/%2f";

/// `tasque amqp`.
#[derive(Debug, Args)]
pub struct AmqpArgs {
    /// The broker: amqp://USER:PASSWORD@HOST:PORT/VHOST (the password is never printed).
    #[arg(
        long,
        global = true,
        env = "TASQUE_AMQP_URL",
        hide_env_values = true,
        default_value = DEFAULT_AMQP_URL
    )]
    pub url: String,

    /// What to do.
    #[command(subcommand)]
    pub command: AmqpCommand,
}

/// `tasque amqp` subcommands.
#[derive(Debug, Subcommand)]
pub enum AmqpCommand {
    /// Consume queues, running each message with the built-in `exec` task, until stopped
    /// (Ctrl-C or SIGTERM: running commands finish within the grace period, the rest are
    /// requeued).
    #[command(after_help = "Examples:\n  \
tasque amqp work --queue jobs --concurrency 4\n  \
tasque amqp work --queue jobs --timeout 5m --max-attempts 3 --dead-letter-queue jobs.dead --until-empty\n\n\
Each message runs the built-in `exec` task: the message names the task `exec` (header \
x-tasque-task, or the routing key) and its JSON payload is the exec params \
{\"argv\": [..], \"cwd\": .., \"env\": {..}, \"timeout_secs\": ..}. Exit status 0 acks it; \
anything else is a failed attempt, retried until --max-attempts and then dead-lettered. \
Missing queues are declared (durable).")]
    Work(AmqpWorkArgs),

    /// Publish one message to a queue and wait for the broker's confirmation.
    #[command(after_help = "Examples:\n  \
tasque amqp publish --queue jobs exec -- ./backup.sh --full\n  \
tasque amqp publish --queue mail welcome '{\"email\": \"ada@example.com\"}'")]
    Publish(AmqpPublishArgs),

    /// Show queues (messages ready, consumers), or declare or purge one.
    #[command(after_help = "Examples:\n  \
tasque amqp queues jobs jobs.dead\n  \
tasque amqp queues declare jobs\n  \
tasque amqp queues purge jobs.dead")]
    Queues(AmqpQueuesArgs),
}

/// `tasque amqp work`.
#[derive(Debug, Args)]
pub struct AmqpWorkArgs {
    /// Queues to consume (repeatable; at least one).
    #[arg(long = "queue", short, required = true)]
    pub queues: Vec<String>,
    /// How many messages run at once (also the prefetch).
    #[arg(long, short, default_value_t = 10)]
    pub concurrency: usize,
    /// A message still running after this long is a failed attempt (default 60s).
    #[arg(long, value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// Attempts before a failing message is dead-lettered (default 5).
    #[arg(long)]
    pub max_attempts: Option<u32>,
    /// Where exhausted and undecodable messages go (declared if missing).
    #[arg(long, value_name = "QUEUE")]
    pub dead_letter_queue: Option<String>,
    /// Stop when no message is ready or in flight.
    #[arg(long)]
    pub until_empty: bool,
    /// Stop taking messages once this many have started (those running then still finish
    /// and are settled).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_messages: Option<u64>,
    /// How long a graceful shutdown may take before running messages are requeued.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub shutdown_grace: Duration,
}

/// `tasque amqp publish`.
#[derive(Debug, Args)]
pub struct AmqpPublishArgs {
    /// The task, its params or command.
    #[command(flatten)]
    pub job: JobArgs,
    /// The queue to publish to (declared durable if missing).
    #[arg(long, short)]
    pub queue: String,
}

/// `tasque amqp queues`.
#[derive(Debug, Args)]
pub struct AmqpQueuesArgs {
    /// Queues to show.
    pub queues: Vec<String>,
    /// Declare or purge a queue instead.
    #[command(subcommand)]
    pub action: Option<AmqpQueueAction>,
}

/// `tasque amqp queues` actions.
#[derive(Debug, Subcommand)]
pub enum AmqpQueueAction {
    /// Declare a durable queue (an existing queue is left as it is).
    #[command(after_help = "Example:\n  tasque amqp queues declare jobs")]
    Declare {
        /// The queue.
        queue: String,
    },
    /// Delete every ready message of a queue; prints how many.
    #[command(after_help = "Example:\n  tasque amqp queues purge jobs.dead")]
    Purge {
        /// The queue.
        queue: String,
    },
}
