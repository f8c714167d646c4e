//! The command line: every subcommand, its flags and its help text.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use tasque_durable::{BlockedPolicy, JobState};

pub use crate::amqp_args::AmqpArgs;

/// The default database: a SQLite file in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://tasque.db";

/// Tasque: durable background jobs from the command line.
///
/// Jobs live in a database (a SQLite file by default, or PostgreSQL/MySQL),
/// are worked by `tasque work`, and are inspected and managed by the other
/// subcommands. `tasque migrate` creates or upgrades the schema on PostgreSQL and MySQL
/// (the SQLite default creates its own on first use).
#[derive(Debug, Parser)]
#[command(name = "tasque", version, propagate_version = true)]
#[command(
    after_help = "Exit codes: 0 success; 1 operation failed (e.g. job not found); \
2 bad usage or input (nothing was written); 3 database or broker unreachable or incompatible, \
or the schema needs `tasque migrate`.\n\n\
RabbitMQ: `tasque amqp work|publish|queues` (see `tasque amqp --help`)."
)]
pub struct Cli {
    /// Database URL: sqlite://PATH, sqlite::memory:, postgres://..., mysql://...
    #[arg(
        long,
        global = true,
        env = "TASQUE_DATABASE_URL",
        hide_env_values = true,
        default_value = DEFAULT_DATABASE_URL
    )]
    pub database_url: String,

    /// Namespace: independent Tasque instances can share one database.
    #[arg(
        long,
        global = true,
        env = "TASQUE_NAMESPACE",
        default_value = "default"
    )]
    pub namespace: String,

    /// Print one JSON document instead of human output.
    #[arg(long, global = true)]
    pub json: bool,

    /// On PostgreSQL and MySQL, create or upgrade the schema when a command that writes finds
    /// it missing or older (read-only commands never change it). Without this flag such a
    /// command stops and asks for `tasque migrate`.
    #[arg(long, global = true, env = "TASQUE_AUTO_MIGRATE")]
    pub auto_migrate: bool,

    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create or upgrade the database schema (needed once per namespace on PostgreSQL and
    /// MySQL, and after upgrading tasque).
    #[command(after_help = "Example:\n  tasque migrate --database-url postgres://localhost/app")]
    Migrate,

    /// Enqueue a job: `tasque enqueue TASK '{"json":"params"}'`, or `tasque enqueue exec -- CMD ARGS...`.
    #[command(after_help = "Examples:\n  \
tasque enqueue send_email '{\"to\":\"a@example.com\"}' --queue mail --max-attempts 5\n  \
echo '{\"id\":7}' | tasque enqueue resize --delay 10s\n  \
tasque enqueue exec --exec-timeout 30s -- ./backup.sh --full\n  \
tasque enqueue report '{}' --idempotency-key report-2026-11-23")]
    Enqueue(EnqueueArgs),

    /// Run a worker: claim jobs and run them until stopped (Ctrl-C or SIGTERM shuts down
    /// gracefully). A database that cannot be reached at start is retried with backoff.
    #[command(after_help = "Examples:\n  \
tasque work --concurrency 8\n  \
tasque work --queue mail --queue default --until-empty")]
    Work(WorkArgs),

    /// List jobs (by id, ascending), or show one with `tasque jobs show ID`.
    #[command(after_help = "Examples:\n  \
tasque jobs --state failed --limit 20\n  \
tasque jobs --json --after 1200 --limit 100\n  \
tasque jobs --json --all --queue mail > mail-jobs.json\n  \
tasque jobs show 42 --json\n\n\
Paging: jobs are listed by id, ascending. A page ends with its cursor (`next` in --json \
output, null on the last page): pass it as --after to get the next page. Each job is listed \
once however many jobs are added or removed meanwhile. --all follows the cursor to the end \
and prints each page as it arrives (with --json, still one JSON document: \
{\"jobs\": [...], \"next\": null}).")]
    Jobs(JobsArgs),

    /// Counts of jobs by state, per queue.
    #[command(after_help = "Example:\n  tasque stats --json")]
    Stats,

    /// Run a failed or cancelled job again.
    #[command(after_help = "Example:\n  tasque retry 42")]
    Retry {
        /// The job id.
        id: i64,
    },

    /// Cancel a job: a pending job never runs; a running one is aborted by its worker.
    #[command(after_help = "Example:\n  tasque cancel 42")]
    Cancel {
        /// The job id.
        id: i64,
    },

    /// Delete jobs matching a filter (running jobs are never deleted).
    #[command(
        after_help = "Examples:\n  tasque purge --state failed --queue mail\n  tasque purge --task old_task"
    )]
    Purge(FilterArgs),

    /// Delete finished jobs older than an age, in bounded batches.
    #[command(after_help = "Example:\n  tasque clean --older-than 7d")]
    Clean(CleanArgs),

    /// List queues (paused, limit, blocking, blocked by which job), or change one.
    #[command(after_help = "Examples:\n  \
tasque queues\n  \
tasque queues pause mail\n  \
tasque queues resume mail\n  \
tasque queues limit reports 2\n  \
tasque queues limit reports none\n  \
tasque queues blocking payments on --on-exhausted stay-blocked")]
    Queues {
        /// What to do; lists the queues when absent.
        #[command(subcommand)]
        action: Option<QueueAction>,
    },

    /// List the worker processes recorded in the namespace: id, host, pid, queues, started,
    /// last heartbeat, alive or gone.
    #[command(after_help = "Examples:\n  \
tasque workers\n  \
tasque --json workers")]
    Workers,

    /// Emit an event: store its payload and wake every job waiting for it.
    #[command(after_help = "Examples:\n  \
tasque emit order.paid '{\"order\": 1001}'\n  \
tasque emit nightly.ready\n  \
echo '{\"rows\": 42}' | tasque emit import.done -")]
    Emit(EmitArgs),

    /// Periodic jobs: list them, show a schedule's next fires, pause, resume, trigger now,
    /// delete.
    /// Schedules are registered by workers (`tasque work --config FILE`, or in code).
    #[command(after_help = "Examples:\n  \
tasque cron list\n  \
tasque cron next nightly-report -n 10\n  \
tasque cron pause nightly-report\n  \
tasque cron trigger nightly-report\n  \
tasque cron delete nightly-report")]
    Cron {
        /// What to do.
        #[command(subcommand)]
        action: crate::cron_args::CronAction,
    },
    /// Serve the web dashboard (and /metrics): queues, jobs, actions.
    #[command(after_help = "Examples:\n  \
tasque dashboard\n  \
tasque dashboard --bind 0.0.0.0:8080 --token \"$TOKEN\"\n  \
tasque dashboard --bind 0.0.0.0:8080 --read-only")]
    Dashboard(DashboardArgs),

    /// The guided demonstration: enqueue a mix of jobs and work them, showing every feature.
    #[command(after_help = "Example:\n  tasque demo")]
    Demo(DemoArgs),

    /// RabbitMQ: consume messages with the built-in `exec` task, publish them, inspect and
    /// declare queues. Never touches the database.
    #[command(after_help = "Examples:\n  \
tasque amqp work --queue jobs --concurrency 4 --timeout 5m --max-attempts 3 --dead-letter-queue jobs.dead\n  \
tasque amqp publish --queue jobs exec -- ./nightly.sh --full\n  \
tasque amqp queues jobs jobs.dead\n  \
tasque amqp --url amqp://app:secret@mq.internal/%2f queues declare jobs")]
    Amqp(AmqpArgs),

    /// Print a shell completion script: bash, zsh, fish, elvish or powershell.
    #[command(after_help = "Examples:\n  \
tasque completions bash > ~/.local/share/bash-completion/completions/tasque\n  \
tasque completions zsh > ~/.zfunc/_tasque\n  \
tasque completions fish > ~/.config/fish/completions/tasque.fish")]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// What a job runs: its task and params (for `exec`, the command line and its flags).
/// Shared by `tasque enqueue` and `tasque amqp publish`.
#[derive(Debug, Args)]
pub struct JobArgs {
    /// The task name (`exec` runs a command line).
    pub task: String,
    /// JSON params; read from stdin when absent or `-`.
    pub params: Option<String>,
    /// For `exec`: the command and its arguments, after `--`.
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
    /// For `exec`: kill the command after this long.
    #[arg(long, value_parser = parse_duration)]
    pub exec_timeout: Option<Duration>,
    /// For `exec`: the working directory.
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// For `exec`: an environment variable, KEY=VALUE (repeatable).
    #[arg(long = "env", value_name = "KEY=VALUE")]
    pub envs: Vec<String>,
}

/// `tasque enqueue`.
#[derive(Debug, Args)]
pub struct EnqueueArgs {
    /// The task, its params or command.
    #[command(flatten)]
    pub job: JobArgs,
    /// The queue.
    #[arg(long, short, default_value = "default")]
    pub queue: String,
    /// Priority: lower runs first (negative values allowed).
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub priority: i32,
    /// Run no earlier than this long from now (e.g. 30s, 5m).
    #[arg(long, value_parser = parse_duration)]
    pub delay: Option<Duration>,
    /// Total attempts before the job is given up.
    #[arg(long)]
    pub max_attempts: Option<u32>,
    /// A key that makes the enqueue idempotent: a second enqueue returns the first job.
    #[arg(long)]
    pub idempotency_key: Option<String>,
    /// An ordering key: jobs of the queue with the same key run in enqueue order, at most the
    /// queue's key concurrency at a time (see `tasque queues keys`).
    #[arg(long)]
    pub ordering_key: Option<String>,
    /// A unique key: while a job with this key is pending, running or completed (in the same
    /// period, with --unique-period), an enqueue returns it instead of adding another.
    #[arg(long)]
    pub unique_key: Option<String>,
    /// The period of --unique-key: one job per key per period of scheduled time (e.g. 1h).
    #[arg(long, value_parser = parse_duration, requires = "unique_key")]
    pub unique_period: Option<Duration>,
    /// A parent job (repeatable): the job is held (on_hold) until every parent completed.
    #[arg(long = "depends-on", value_name = "ID")]
    pub depends_on: Vec<i64>,
    /// What a parent failing for good or cancelled does to the job: `cancel` (the default)
    /// or `run` (count it as resolved).
    #[arg(long, value_parser = parse_parent_failure, requires = "depends_on")]
    pub on_parent_failure: Option<tasque_durable::deps::ParentFailure>,
    /// Per-run timeout of the job (e.g. 30s).
    #[arg(long, value_parser = parse_duration)]
    pub timeout: Option<Duration>,
}

/// `tasque work`.
#[derive(Debug, Args)]
pub struct WorkArgs {
    /// How many jobs run at once.
    #[arg(long, short, default_value_t = 10)]
    pub concurrency: usize,
    /// Queues to work (repeatable); `default` when absent.
    #[arg(long = "queue", short)]
    pub queues: Vec<String>,
    /// Stop when no job is ready or running (a blocked queue's jobs do not count: the
    /// worker stops and names the blocking job).
    #[arg(long)]
    pub until_empty: bool,
    /// How often to look for jobs when idle (e.g. 200ms).
    #[arg(long, value_parser = parse_duration, default_value = "200ms")]
    pub poll_interval: Duration,
    /// How long a claim lasts without a heartbeat.
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    pub lease: Duration,
    /// The id recorded on claimed jobs (default: worker-PID-RANDOM).
    #[arg(long)]
    pub worker_id: Option<String>,
    /// With --until-empty, also wait for jobs scheduled for later (retries in backoff,
    /// delays) and sleeping jobs.
    #[arg(long)]
    pub wait_scheduled: bool,
    /// How long a graceful shutdown may take before running jobs are released.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub shutdown_grace: Duration,
    /// A TOML file of `[[schedule]]` tables: periodic jobs this worker registers (checked
    /// before anything is written; an error names the line). The file is the namespace's
    /// whole list: stored schedules missing from it are deleted when the worker starts.
    #[arg(long, value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,
    /// The schedules read from `--config`.
    #[arg(skip)]
    pub schedules: Vec<tasque_durable::schedule::Schedule>,
    /// Serve Prometheus metrics of this worker (and gauges of its queues) on
    /// http://ADDR/metrics, e.g. 127.0.0.1:9464.
    #[arg(long, value_name = "ADDR")]
    pub metrics_bind: Option<std::net::SocketAddr>,
}

/// `tasque dashboard`.
#[derive(Debug, Args)]
pub struct DashboardArgs {
    /// Where to listen. A non-loopback address needs --token or --read-only.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub bind: std::net::SocketAddr,
    /// Require this token: `Authorization: Bearer TOKEN`, or sign in on the login page.
    #[arg(long, env = "TASQUE_DASHBOARD_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Hide every action: pages only.
    #[arg(long)]
    pub read_only: bool,
}

/// Filters shared by `jobs` and `purge`.
#[derive(Debug, Args, Clone, Default)]
pub struct FilterArgs {
    /// Only jobs in this state (repeatable): available, scheduled, running, sleeping,
    /// waiting, completed, failed, cancelled, on_hold (or `pending` for available +
    /// scheduled).
    #[arg(long = "state", value_parser = parse_state)]
    pub states: Vec<Vec<JobState>>,
    /// Only jobs of this queue (repeatable).
    #[arg(long = "queue")]
    pub queues: Vec<String>,
    /// Only jobs of this task name (repeatable).
    #[arg(long = "task")]
    pub tasks: Vec<String>,
}

/// `tasque jobs`.
#[derive(Debug, Args)]
pub struct JobsArgs {
    /// `show ID` shows one job in full.
    #[command(subcommand)]
    pub show: Option<JobsShow>,
    /// Filters.
    #[command(flatten)]
    pub filter: FilterArgs,
    /// At most this many jobs (default 50); with --all, how many are fetched per page
    /// (default 500).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub limit: Option<u32>,
    /// Only jobs whose id is greater than ID: the cursor a previous page ended with.
    #[arg(long, value_name = "ID", value_parser = clap::value_parser!(i64).range(0..))]
    pub after: Option<i64>,
    /// Every matching job: follow the cursor page by page until the end, printing each page
    /// as it arrives instead of holding them all.
    #[arg(long)]
    pub all: bool,
}

impl JobsArgs {
    /// Jobs listed when neither `--limit` nor `--all` is given.
    pub const DEFAULT_LIMIT: u32 = 50;
    /// Jobs fetched per page by `--all` without `--limit`.
    pub const DEFAULT_PAGE: u32 = 500;

    /// How many jobs one page holds.
    pub fn page_size(&self) -> u32 {
        let default = if self.all {
            Self::DEFAULT_PAGE
        } else {
            Self::DEFAULT_LIMIT
        };
        self.limit.unwrap_or(default)
    }
}

/// `tasque jobs show ID`.
#[derive(Debug, Subcommand)]
pub enum JobsShow {
    /// Show one job: params, result, error, attempts, checkpoints.
    #[command(after_help = "Examples:\n  tasque jobs show 42\n  tasque jobs show 42 --json")]
    Show {
        /// The job id.
        id: i64,
    },
}

/// `tasque clean`.
#[derive(Debug, Args)]
pub struct CleanArgs {
    /// Delete finished jobs older than this (e.g. 7d, 12h).
    #[arg(long, value_parser = parse_duration)]
    pub older_than: Duration,
    /// Rows deleted per batch.
    #[arg(long, default_value_t = 1000)]
    pub batch: u32,
}

/// `tasque emit`.
#[derive(Debug, Args)]
pub struct EmitArgs {
    /// The event's name.
    pub name: String,
    /// Its JSON payload (`null` when absent; `-` reads it from stdin).
    pub payload: Option<String>,
}

/// `tasque demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// How many ordinary jobs to add to the showcase ones.
    #[arg(long, default_value_t = 200)]
    pub jobs: u32,
}

/// `tasque queues` actions.
#[derive(Debug, Subcommand)]
pub enum QueueAction {
    /// List queues with counts by state.
    #[command(after_help = "Example:\n  tasque queues list --json")]
    List,
    /// Stop claiming from a queue.
    #[command(after_help = "Example:\n  tasque queues pause mail")]
    Pause {
        /// The queue.
        queue: String,
    },
    /// Claim from a paused queue again.
    #[command(after_help = "Example:\n  tasque queues resume mail")]
    Resume {
        /// The queue.
        queue: String,
    },
    /// Set the most jobs of a queue running at once across all workers (1 = serial), or
    /// `none` to remove the limit.
    #[command(
        after_help = "Examples:\n  tasque queues limit reports 2\n  tasque queues limit reports none"
    )]
    Limit {
        /// The queue.
        queue: String,
        /// A positive number, or `none`.
        #[arg(value_parser = parse_limit)]
        limit: QueueLimit,
    },
    /// Turn blocking mode on or off: one job at a time, in creation order, a failing job
    /// blocking the jobs behind it until it succeeds or is given up.
    #[command(after_help = "Examples:\n  \
tasque queues blocking payments on --on-exhausted stay-blocked\n  \
tasque queues blocking payments off\n\n\
With stay-blocked, a job that exhausts its attempts keeps holding the queue until an operator \
runs `tasque retry ID` or `tasque cancel ID`; `tasque queues` shows which job it is.")]
    Blocking {
        /// The queue.
        queue: String,
        /// `on` or `off`.
        #[arg(value_parser = parse_switch)]
        mode: Switch,
        /// When the head job exhausts its attempts: `continue` (give up on it, the default)
        /// or `stay-blocked` (hold the queue until it is retried or cancelled). Unchanged
        /// when absent.
        #[arg(long, value_parser = parse_policy)]
        on_exhausted: Option<BlockedPolicy>,
    },
    /// Set how a queue's ordering keys run: at most CONCURRENCY jobs of one key at a time, in
    /// enqueue order (1 = strictly serial per key, the default).
    #[command(after_help = "Examples:\n  \
tasque queues keys orders 1 --on-exhausted stay-blocked\n  \
tasque queues keys imports 4\n\n\
Jobs get their key at enqueue (`tasque enqueue ... --ordering-key K`, `ordering_key` in an \
option document). With stay-blocked, a keyed job that exhausts its attempts holds its key \
until `tasque retry ID`, `tasque cancel ID` or a delete.")]
    Keys {
        /// The queue.
        queue: String,
        /// Most jobs of one key running at once (at least 1).
        #[arg(value_parser = clap::value_parser!(u32).range(1..))]
        concurrency: u32,
        /// When a keyed job exhausts its attempts: `continue` (the key goes on, the default)
        /// or `stay-blocked` (the key waits for an operator).
        #[arg(long, value_parser = parse_policy, default_value = "continue")]
        on_exhausted: BlockedPolicy,
    },
    /// Set a queue's rate limit: at most LIMIT starts per WINDOW (epoch-aligned), for the
    /// whole queue or per key; `none` removes it.
    #[command(after_help = "Examples:\n  \
tasque queues rate mail 50 --per-window 1s\n  \
tasque queues rate api 10 --per-window 1m --key arg:customer.id\n  \
tasque queues rate api none")]
    Rate {
        /// The queue.
        queue: String,
        /// Starts per window (a positive number), or `none`.
        #[arg(value_parser = parse_limit)]
        limit: QueueLimit,
        /// The window (e.g. 1s, 500ms, 1m).
        #[arg(long, value_parser = parse_duration, default_value = "1s")]
        per_window: std::time::Duration,
        /// What the starts are counted by: `queue` (the default), `ordering-key`, or
        /// `arg:PATH` (a dotted path into the params).
        #[arg(long, value_parser = parse_rate_key, default_value = "queue")]
        key: tasque_durable::flow::RateKey,
    },
}

/// Parses a rate key: `queue`, `ordering-key` or `arg:PATH`.
pub fn parse_rate_key(text: &str) -> Result<tasque_durable::flow::RateKey, String> {
    use tasque_durable::flow::RateKey;
    match text {
        "queue" => Ok(RateKey::Queue),
        "ordering-key" | "ordering_key" => Ok(RateKey::OrderingKey),
        _ => match text.strip_prefix("arg:") {
            Some(path) => tasque_durable::flow::validate_arg_path(path)
                .map(|()| RateKey::Arg(path.to_string()))
                .map_err(|e| e.to_string()),
            None => Err(format!("{text:?}: use queue, ordering-key or arg:PATH")),
        },
    }
}

/// A queue's concurrency limit as typed: a number or `none`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueLimit(pub Option<u32>);

/// `on` or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Switch(pub bool);

/// Parses a queue limit: a positive number or `none`.
pub fn parse_limit(text: &str) -> Result<QueueLimit, String> {
    if text.eq_ignore_ascii_case("none") {
        return Ok(QueueLimit(None));
    }
    match text.parse::<u32>() {
        Ok(0) | Err(_) => Err(format!(
            "{text:?} is not a limit: use a positive number or none"
        )),
        Ok(n) => Ok(QueueLimit(Some(n))),
    }
}

/// Parses `on` / `off`.
pub fn parse_switch(text: &str) -> Result<Switch, String> {
    match text.to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" => Ok(Switch(true)),
        "off" | "false" | "no" => Ok(Switch(false)),
        _ => Err(format!("{text:?}: use on or off")),
    }
}

/// Parses a blocked-queue policy: `continue` or `stay-blocked`.
pub fn parse_policy(text: &str) -> Result<BlockedPolicy, String> {
    text.parse::<BlockedPolicy>()
        .map_err(|error| error.to_string())
}

/// Parses a parent failure policy: `cancel` or `run`.
pub fn parse_parent_failure(text: &str) -> Result<tasque_durable::deps::ParentFailure, String> {
    text.parse()
        .map_err(|_| format!("{text:?}: use cancel or run"))
}

/// Parses a state name; `pending` means available and scheduled.
pub fn parse_state(text: &str) -> Result<Vec<JobState>, String> {
    if text.eq_ignore_ascii_case("pending") {
        return Ok(vec![JobState::Available, JobState::Scheduled]);
    }
    text.parse::<JobState>()
        .map(|state| vec![state])
        .map_err(|error| error.to_string())
}

/// Parses `30s`, `5m`, `1h 30m`, `250ms`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|error| format!("{error} (try e.g. 30s, 5m, 250ms)"))
}
