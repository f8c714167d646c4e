//! The command line of `tasque cron`: periodic jobs stored in the database.

use clap::Subcommand;

/// What `tasque cron` does.
#[derive(Debug, Subcommand)]
pub enum CronAction {
    /// List the schedules: id, expression, zone, next three fires, last fire, paused.
    List,
    /// The next fire times of one schedule.
    Next {
        /// The schedule id.
        id: String,
        /// How many fire times.
        #[arg(short = 'n', long = "count", default_value_t = 10)]
        count: usize,
    },
    /// Pause a schedule: the leader fires nothing for it until resumed (ticks missed meanwhile
    /// then follow its missed-tick policy).
    Pause {
        /// The schedule id.
        id: String,
    },
    /// Resume a paused schedule.
    Resume {
        /// The schedule id.
        id: String,
    },
    /// Fire a schedule's next tick now (even when paused): its job is spawned at once, and
    /// when the tick comes the leader's fire lands on the same job (same idempotency key).
    Trigger {
        /// The schedule id.
        id: String,
    },
    /// Delete a schedule: it fires no more (the jobs it fired are kept). A worker that still
    /// declares it registers it again at start, so remove it from the configuration or code
    /// too (a `tasque work --config FILE` worker deletes schedules missing from its file).
    Delete {
        /// The schedule id.
        id: String,
    },
}
