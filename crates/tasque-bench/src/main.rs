//! `bench SUITE [--quick] [--vs-postgres]`: runs one benchmark suite and prints each figure as
//! `bench: NAME VALUE UNIT`, and each comparison with the same-run baseline as
//! `bench: NAME_vs_BASELINE RATIO x` (above 1 means faster than the baseline).
//! `--vs-postgres` (suite `mysql` only) adds back-to-back 500-slot burn-downs on MySQL and
//! PostgreSQL and their ratio (see `mysql_suite`). `--only sql` (suite `postgres` only) runs just
//! the group measuring the schema's SQL functions (see `postgres_sql`).

mod amqp_suite;
mod burn;
mod core_suite;
mod cron_suite;
mod dashboard_suite;
mod flow_keyed;
mod flow_suite;
mod mysql_suite;
mod postgres_sql;
mod postgres_suite;
mod report;
mod scale_suite;
mod sqlite_suite;
mod workflow_suite;

use anyhow::{bail, Result};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // A child process of the postgres suite's multi-process burn-down.
    if args.first().map(String::as_str) == Some("postgres-worker") {
        return postgres_suite::worker_process(&args[1..]);
    }
    // A child process of the cron suite's live run.
    if args.first().map(String::as_str) == Some("cron-worker") {
        return cron_suite::worker_process(&args[1..]);
    }
    let mut suite = None;
    let mut quick = false;
    let mut vs_postgres = false;
    let mut only = None;
    let mut arguments = std::env::args().skip(1);
    while let Some(argument) = arguments.next() {
        match argument.as_str() {
            "--quick" => quick = true,
            "--vs-postgres" => vs_postgres = true,
            "--only" => only = Some(arguments.next().unwrap_or_default()),
            name if suite.is_none() => suite = Some(name.to_owned()),
            other => {
                bail!("unexpected argument {other:?}; usage: bench SUITE [--quick] [--vs-postgres] [--only GROUP]")
            }
        }
    }
    if vs_postgres && suite.as_deref() != Some("mysql") {
        bail!("--vs-postgres goes with the mysql suite only");
    }
    if only.is_some() && suite.as_deref() != Some("postgres") {
        bail!("--only goes with the postgres suite only (group: sql)");
    }
    match suite.as_deref() {
        Some("core") => core_suite::run(quick),
        Some("amqp") => amqp_suite::run(quick),
        Some("sqlite") => sqlite_suite::run(quick),
        Some("postgres") => postgres_suite::run(quick, only.as_deref()),
        Some("workflow") => workflow_suite::run(quick),
        Some("mysql") => mysql_suite::run(quick, vs_postgres),
        Some("cron") => cron_suite::run(quick),
        Some("dashboard") => dashboard_suite::run(quick),
        Some("flow") => flow_suite::run(quick),
        Some("scale") => scale_suite::run(quick),
        Some(other) => {
            bail!("unknown suite {other:?}; suites: core, sqlite, postgres, mysql, workflow, amqp, cron, dashboard, flow, scale")
        }
        None => {
            bail!("usage: bench SUITE [--quick]; suites: core, sqlite, postgres, mysql, workflow, amqp, cron, dashboard, flow, scale")
        }
    }
}
