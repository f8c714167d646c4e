//! The `tasque` command-line program: run workers, enqueue, inspect, retry,
//! cancel, purge and clean durable jobs, and run RabbitMQ messages. See
//! `tasque --help` and `tasque SUBCOMMAND --help` (each has examples).
//!
//! # Subcommands
//!
//! | subcommand | what it does |
//! |---|---|
//! | `migrate` | create or upgrade the schema (needed on PostgreSQL and MySQL; the SQLite default does it on first use) |
//! | `enqueue TASK [JSON]` | enqueue a job; params from the argument or stdin, options as flags (`--queue`, `--priority`, `--delay`, `--max-attempts`, `--timeout`, `--idempotency-key`) |
//! | `enqueue exec -- CMD ARGS…` | enqueue a command line for the built-in `exec` task (`--exec-timeout`, `--cwd`, `--env K=V`) |
//! | `work` | run a worker (`--concurrency N`, `--queue Q…`, `--until-empty`); Ctrl-C or SIGTERM stops it gracefully |
//! | `jobs`, `jobs show ID` | list jobs by id (`--state`, `--queue`, `--task`, `--limit`; `--after ID` for the page after a cursor, `--all` for every page, streamed), show one with its attempts and checkpoints |
//! | `stats` | counts by state per queue |
//! | `retry ID`, `cancel ID` | run a failed or cancelled job again; cancel a job |
//! | `purge`, `clean` | delete jobs by filter; delete finished jobs older than an age |
//! | `queues` | list queues: paused, concurrency limit, blocking mode and policy, and the job blocking a blocked queue |
//! | `queues pause/resume Q` | stop or restart claiming from a queue |
//! | `queues limit Q N\|none` | most jobs of the queue running at once across all workers (1 = serial) |
//! | `queues blocking Q on\|off [--on-exhausted continue\|stay-blocked]` | blocking mode: one job at a time, in order, a failing job holding the rest |
//! | `emit NAME [JSON]` | emit an event: store its payload and wake every job waiting for it |
//! | `demo` | the guided demonstration on the embedded default |
//! | `amqp work\|publish\|queues` | RabbitMQ: consume with the `exec` task, publish, show/declare/purge queues |
//! | `completions SHELL` | a completion script for bash, zsh, fish, elvish or powershell |
//!
//! Every subcommand takes `--json` to print one JSON document instead of human output
//! (tables, colours only when stdout is a terminal and `NO_COLOR` is unset, progress on
//! stderr only when it is a terminal).
//!
//! # The database
//!
//! `--database-url` or `TASQUE_DATABASE_URL`: `sqlite://PATH` (created if missing),
//! `sqlite::memory:`, `postgres://…` (namespace = schema `tasque_<namespace>`), or
//! `mysql://…`. The default is `sqlite://tasque.db` in the working directory, so it works
//! with nothing installed. `--namespace` (or `TASQUE_NAMESPACE`) scopes independent
//! instances sharing one database. Passwords in URLs are never printed (see `secrets`).
//!
//! **Migrations on servers are explicit** (see `connect`): on PostgreSQL and MySQL only
//! `tasque migrate` changes the schema, or a command that writes given `--auto-migrate`;
//! read-only commands (`jobs`, `stats`, `queues`) never do. A command that finds the schema
//! missing or older stops with exit code 3 and says to run `tasque migrate`.
//!
//! `tasque work` retries a database it cannot reach at start with backoff (1 s doubling
//! to 30 s), one line on stderr per attempt, until it answers or the worker is stopped.
//!
//! # RabbitMQ
//!
//! `tasque amqp work --queue Q [--concurrency N] [--timeout D] [--max-attempts N]
//! [--dead-letter-queue DLQ] [--until-empty | --max-messages N]` consumes RabbitMQ messages
//! with the built-in `exec` task as the handler: the message names the task `exec` (header
//! `x-tasque-task` or routing key) and its JSON payload is the exec params. Exit status 0
//! acks; anything else is a failed attempt, retried up to `--max-attempts`, then
//! dead-lettered with the reason in a header. `tasque amqp publish --queue Q exec -- CMD…`
//! publishes such a message with publisher confirms; `tasque amqp queues Q…` shows ready
//! messages and consumers, `queues declare Q` and `queues purge Q` manage one. The broker is
//! `--url` or `TASQUE_AMQP_URL` (default `amqp://127.0.0.1:5672/%2f`). See [`tasque_amqp`].
//!
//! # Exit codes
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | the operation failed (job not found, not retryable, publish refused) |
//! | 2 | bad usage or input: unknown subcommand, malformed JSON, invalid option; nothing was written |
//! | 3 | the database or broker is unreachable or incompatible: schema missing or older (run `tasque migrate`), or newer than the binary |

mod amqp_args;
mod args;
mod commands;
mod connect;
mod cron_args;
mod exec;
mod fail;
mod output;
mod probe;
mod secrets;
mod signal;

use std::sync::Arc;
use std::time::Duration;

use clap::{CommandFactory, Parser};
use tasque_durable::Store;

use args::{Cli, Command, QueueAction};
use connect::Schema;
use cron_args::CronAction;
use fail::CliError;

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => usage_error(error),
    };
    match &cli.command {
        Command::Amqp(amqp) => secrets::remember([cli.database_url.as_str(), amqp.url.as_str()]),
        _ => secrets::remember([cli.database_url.as_str()]),
    }
    init_tracing(match &cli.command {
        // A broker worker's operator wants to see reconnects and failed attempts.
        Command::Amqp(_) => "error,tasque_amqp=warn,lapin=off",
        _ => "error,lapin=off",
    });
    quiet_handler_panics();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: could not start the runtime: {error}");
            std::process::exit(fail::EXIT_FAILED);
        }
    };
    if let Err(error) = runtime.block_on(run(cli)) {
        eprintln!("error: {}", secrets::scrub(&one_line(&error.to_string())));
        std::process::exit(error.exit_code());
    }
}

/// Reports a command-line parse error on one line (with clap's tip, if any) and exits
/// with [`fail::EXIT_USAGE`]; help and version requests print in full and exit 0.
fn usage_error(error: clap::Error) -> ! {
    use clap::error::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        error.exit();
    }
    let rendered = error.render().to_string();
    let mut paragraphs = rendered.split("\n\n");
    let mut line = one_line(paragraphs.next().unwrap_or_default());
    for tip in rendered
        .lines()
        .filter_map(|l| l.trim().strip_prefix("tip: "))
    {
        line.push_str(&format!(" (tip: {tip})"));
    }
    eprintln!("{line}; try --help");
    std::process::exit(fail::EXIT_USAGE);
}

/// Opens the store (applying the schema rule, see [`connect`]). When that is slow, the
/// server is probed: a pool retries an unreachable server until its acquire timeout, while
/// the probe names the cause at once. Quick connections are never probed, so servers see no
/// extra connections from a healthy CLI.
async fn open_store(
    url: &str,
    namespace: &str,
    schema: Schema,
) -> Result<Arc<dyn Store>, CliError> {
    let opening = connect::open(url, namespace, schema);
    tokio::pin!(opening);
    let opened = match tokio::time::timeout(probe::PROBE_AFTER, &mut opening).await {
        Ok(opened) => opened,
        Err(_) => {
            probe::server_reachable(url).await?;
            opening.await
        }
    };
    opened.map_err(|error| match error {
        CliError::Database(message) => {
            let url = secrets::redact(url);
            if message.contains(&url) {
                CliError::Database(message)
            } else {
                CliError::Database(format!("cannot use the database at {url}: {message}"))
            }
        }
        other => other,
    })
}

/// The first wait of `tasque work` for a database it cannot reach; doubled per attempt.
const FIRST_RETRY: Duration = Duration::from_secs(1);
/// The longest wait between two attempts.
const LONGEST_RETRY: Duration = Duration::from_secs(30);

/// Opens the store for a worker: a database that cannot be reached (or fails while opening)
/// is tried again with backoff, one line on stderr per attempt, until it answers. A schema
/// that does not fit is not retried. `None` when a signal stopped the wait.
async fn open_store_for_work(
    url: &str,
    namespace: &str,
    schema: Schema,
) -> Result<Option<Arc<dyn Store>>, CliError> {
    let mut signals = signal::Signals::install()
        .map_err(|error| CliError::Failed(format!("could not install signal handlers: {error}")))?;
    let mut delay = FIRST_RETRY;
    let mut attempt = 1u64;
    loop {
        match open_store(url, namespace, schema).await {
            Err(CliError::Database(message)) => {
                let line = format!(
                    "tasque work: database unavailable (attempt {attempt}): {}; retrying in {}s",
                    one_line(&message),
                    delay.as_secs()
                );
                eprintln!("{}", secrets::scrub(&line));
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    why = signals.recv() => {
                        eprintln!("{why} while waiting for the database; no job was claimed");
                        return Ok(None);
                    }
                }
                delay = (delay * 2).min(LONGEST_RETRY);
                attempt += 1;
            }
            Err(other) => return Err(other),
            Ok(store) => {
                if attempt > 1 {
                    eprintln!("tasque work: database reached after {attempt} attempts");
                }
                return Ok(Some(store));
            }
        }
    }
}

/// Collapses a message onto one line.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A job handler's panic is caught and recorded as the failed attempt's
/// reason; the default hook would also print a backtrace for each one. Such
/// panics (on a thread running a queued task) are logged at `warn`. Any other
/// panic off the main thread is a bug in a background loop, which its
/// supervisor restarts: it is logged at `error` as what it is. The main thread
/// keeps the default hook, so a bug in the CLI itself still shows in full.
fn quiet_handler_panics() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().name() == Some("main") {
            default_hook(info);
        } else if tasque_core::in_queued_task() {
            tracing::warn!("job handler panicked: {info}");
        } else {
            tracing::error!("background task panicked (not a job handler): {info}");
        }
    }));
}

/// Logs go to stderr, with secrets scrubbed; `RUST_LOG` (`LEVEL,target=LEVEL,...`)
/// overrides `default` (lapin's own logs are off by default: it logs expected events, such
/// as a probe for a missing queue, as errors).
fn init_tracing(default: &str) {
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|directives| directives.parse::<Targets>().ok())
        .or_else(|| default.parse::<Targets>().ok())
        .unwrap_or_default();
    let colours = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none();
    let format = tracing_subscriber::fmt::layer()
        .with_writer(secrets::ScrubbedStderr::default)
        .with_ansi(colours);
    let _ = tracing_subscriber::registry()
        .with(format)
        .with(filter)
        .try_init();
}

/// Whether `command` only reads: it never changes the schema, even with `--auto-migrate`.
fn reads_only(command: &Command) -> bool {
    matches!(
        command,
        Command::Jobs(_)
            | Command::Stats
            | Command::Workers
            | Command::Queues {
                action: None | Some(QueueAction::List)
            }
            | Command::Cron {
                action: CronAction::List | CronAction::Next { .. }
            }
    )
}

async fn run(cli: Cli) -> Result<(), CliError> {
    let json = cli.json;
    // RabbitMQ and completions never touch the database.
    let command = match cli.command {
        Command::Amqp(args) => return commands::amqp::run(args, json).await,
        Command::Completions { shell } => {
            let mut command = Cli::command();
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut command, "tasque", &mut script);
            // A closed pipe (`| head`) is the reader's choice, not a failure.
            let _ = std::io::Write::write_all(&mut std::io::stdout(), &script);
            return Ok(());
        }
        command => command,
    };
    // Input is checked before the database is touched: bad input writes nothing.
    let spawn = match &command {
        Command::Enqueue(args) => Some(commands::enqueue::build(args)?),
        _ => None,
    };
    let command = match command {
        Command::Work(mut args) => {
            if let Some(path) = &args.config {
                args.schedules = commands::cron::load_config(path)?;
            }
            Command::Work(args)
        }
        command => command,
    };
    let event = match &command {
        Command::Emit(args) => Some(commands::emit::build(args)?),
        _ => None,
    };
    let namespace = match &command {
        Command::Demo(_) => commands::demo::DEMO_NAMESPACE,
        _ => cli.namespace.as_str(),
    };
    let schema = match &command {
        Command::Migrate => Schema::Migrate,
        command if cli.auto_migrate && !reads_only(command) => Schema::Migrate,
        _ => Schema::Require,
    };
    let store = match &command {
        Command::Work(_) => {
            match open_store_for_work(&cli.database_url, namespace, schema).await? {
                Some(store) => store,
                None => return Ok(()),
            }
        }
        _ => open_store(&cli.database_url, namespace, schema).await?,
    };
    match command {
        Command::Migrate => {
            if json {
                output::json(&serde_json::json!({ "migrated": true }));
            } else {
                println!("schema is current");
            }
            Ok(())
        }
        Command::Enqueue(_) => {
            let spawn = spawn.expect("built above");
            commands::enqueue::run(store, spawn, json).await
        }
        Command::Work(args) => commands::work::run(store, args, json).await,
        Command::Jobs(args) => commands::inspect::jobs(store, args, json).await,
        Command::Stats => commands::inspect::stats(store, json).await,
        Command::Retry { id } => commands::manage::retry(store, id, json).await,
        Command::Cancel { id } => commands::manage::cancel(store, id, json).await,
        Command::Purge(filter) => commands::manage::purge(store, filter, json).await,
        Command::Clean(args) => commands::manage::clean(store, args, json).await,
        Command::Queues { action } => commands::queues::run(store, action, json).await,
        Command::Emit(_) => {
            let event = event.expect("built above");
            commands::emit::run(store, event, json).await
        }
        Command::Demo(args) => commands::demo::run(store, args, json).await,
        Command::Cron { action } => commands::cron::run(store, action, json).await,
        Command::Workers => commands::workers::run(store, json).await,
        Command::Dashboard(args) => commands::dashboard::run(store, args).await,
        Command::Amqp(_) | Command::Completions { .. } => Err(CliError::Failed(
            "internal error: this subcommand runs before the database is opened".into(),
        )),
    }
}
