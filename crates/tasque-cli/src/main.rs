//! The `tasque` command-line program: run workers, enqueue, inspect, retry,
//! cancel, purge and clean durable jobs, and run RabbitMQ messages. See
//! `tasque --help` and `tasque SUBCOMMAND --help` (each has examples).
//!
//! # Subcommands
//!
//! | subcommand | what it does |
//! |---|---|
//! | `migrate` | create or upgrade the schema (also done on first use by every subcommand) |
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
//! instances sharing one database.
//!
//! # RabbitMQ
//!
//! `tasque work --amqp-url URL --queue Q [--concurrency N] [--timeout D] [--max-attempts N]
//! [--dead-letter-queue DLQ] [--until-empty | --max-messages N]` consumes RabbitMQ messages
//! instead of database jobs, with the built-in `exec` task as the handler: the message
//! names the task `exec` (header `x-tasque-task` or routing key) and its JSON payload is
//! the exec params. Exit status 0 acks; anything else is a failed attempt, retried up to
//! `--max-attempts`, then dead-lettered with the reason in a header. `tasque enqueue
//! --amqp-url URL --queue Q exec -- CMD…` publishes such a message with publisher
//! confirms. Missing queues are declared durable. See [`tasque_amqp`].
//!
//! # Exit codes
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | the operation failed (job not found, not retryable, publish refused) |
//! | 2 | bad usage or input: unknown subcommand, malformed JSON, invalid option; nothing was written |
//! | 3 | the database or broker is unreachable or incompatible (schema newer than the binary) |

mod args;
mod commands;
mod connect;
mod exec;
mod fail;
mod output;
mod probe;
mod signal;

use clap::Parser;

use args::{Cli, Command};
use fail::CliError;

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => usage_error(error),
    };
    init_tracing(match &cli.command {
        // A broker worker's operator wants to see reconnects and failed attempts.
        Command::Work(args) if args.amqp_url.is_some() => "error,tasque_amqp=warn,lapin=off",
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
        eprintln!("error: {}", one_line(&error.to_string()));
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

/// Opens (and migrates) the store. When that is slow, the server is probed: a pool
/// retries an unreachable server until its acquire timeout, while the probe names the
/// cause at once. Quick connections are never probed, so servers see no extra
/// connections from a healthy CLI.
async fn open_store(
    url: &str,
    namespace: &str,
) -> Result<std::sync::Arc<dyn tasque_durable::Store>, CliError> {
    let opening = connect::open(url, namespace);
    tokio::pin!(opening);
    let opened = match tokio::time::timeout(probe::PROBE_AFTER, &mut opening).await {
        Ok(opened) => opened,
        Err(_) => {
            probe::server_reachable(url).await?;
            opening.await
        }
    };
    opened.map_err(|error| match error {
        CliError::Database(message) if !message.contains(url) => {
            let url = output::redact(url);
            CliError::Database(format!("cannot use the database at {url}: {message}"))
        }
        other => other,
    })
}

/// Collapses a message onto one line.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A job handler's panic is caught and recorded as the failed attempt's
/// reason; the default hook would also print a backtrace for each one. Panics
/// on worker threads are logged at `warn` instead; the main thread keeps the
/// default hook, so a bug in the CLI itself still shows in full.
fn quiet_handler_panics() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().name() == Some("main") {
            default_hook(info);
        } else {
            tracing::warn!("job handler panicked: {info}");
        }
    }));
}

/// Logs go to stderr; `RUST_LOG` overrides `default` (lapin's own logs are off by default:
/// it logs expected events, such as a probe for a missing queue, as errors).
fn init_tracing(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let colours = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colours)
        .init();
}

async fn run(cli: Cli) -> Result<(), CliError> {
    let json = cli.json;
    // RabbitMQ modes never touch the database.
    let command = match cli.command {
        Command::Work(args) if args.amqp_url.is_some() => {
            let url = args.amqp_url.clone().unwrap_or_default();
            return commands::amqp::work(&url, args, json).await;
        }
        Command::Enqueue(args) if args.amqp_url.is_some() => {
            let url = args.amqp_url.clone().unwrap_or_default();
            let message = commands::amqp::build_message(&args)?;
            return commands::amqp::publish(&url, message, json).await;
        }
        command => command,
    };
    // Input is checked before the database is touched: bad input writes nothing.
    let spawn = match &command {
        Command::Enqueue(args) => Some(commands::enqueue::build(args)?),
        _ => None,
    };
    let event = match &command {
        Command::Emit(args) => Some(commands::emit::build(args)?),
        _ => None,
    };
    let namespace = match &command {
        Command::Demo(_) => commands::demo::DEMO_NAMESPACE,
        _ => cli.namespace.as_str(),
    };
    let store = open_store(&cli.database_url, namespace).await?;
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
    }
}
