//! One module per group of subcommands.

pub mod amqp;
pub mod cron;
pub mod dashboard;
pub mod demo;
pub mod emit;
pub mod enqueue;
pub mod inspect;
pub mod listing;
pub mod manage;
pub mod queues;
pub mod work;
pub mod workers;

use tasque_durable::JobFilter;

use crate::args::FilterArgs;

/// Turns the command-line filter into the store's.
pub fn filter(args: &FilterArgs) -> JobFilter {
    JobFilter::all()
        .states(args.states.iter().flatten().copied())
        .queues(args.queues.clone())
        .tasks(args.tasks.clone())
}
