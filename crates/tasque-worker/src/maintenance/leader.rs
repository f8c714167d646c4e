//! Leader election: one worker per namespace leads and runs the leader-only services. The
//! election goes through the database ([`tasque_durable::schedule::seat`]): a PostgreSQL
//! advisory lock or a MySQL `GET_LOCK` held by a connection dedicated to the leader, or on
//! SQLite the `leader` lease row, timed by the database clock.
//!
//! Every worker takes part every fifth of the leader lease's time to live: it tries to take
//! leadership, or, when it leads, confirms it still does (its dedicated session is alive, or it
//! renewed the lease). A leader that cannot confirm (database unreachable, session lost, lease
//! lost) steps down at once. When a leader dies, the server releases its lock as its connection
//! ends (SQLite: its lease expires), and another worker takes over at its next try, so takeover
//! takes one try interval (SQLite: at most the time to live plus one try interval). A leader
//! that shuts down resigns, so another takes over within one try interval. Two leaders for a
//! moment (a leader paused longer than its lease) are harmless: every leader-only service is
//! safe to run concurrently (fires are compare-and-swaps, rescues, wake-ups and cleans are
//! guarded writes).
//!
//! Stores without a schedule engine have no election: every worker leads itself, as before
//! leader election existed.

use std::sync::Arc;
use std::time::Duration;

use tasque_durable::schedule::{seat, LEADER_LEASE};
use tasque_durable::Store;
use tokio::sync::watch;

use crate::stop::Stop;

/// Runs the election for `holder` until `stop`, publishing whether this worker leads.
pub(crate) async fn run(
    store: Arc<dyn Store>,
    holder: String,
    ttl: Duration,
    leading: Arc<watch::Sender<bool>>,
    stop: Arc<Stop>,
) {
    let Some(engine) = store.schedules() else {
        leading.send_replace(true);
        return stop.raised().await;
    };
    let mut election = seat(engine, LEADER_LEASE, &holder, ttl);
    let interval = ttl / 5;
    loop {
        let won = match election.lead().await {
            Ok(won) => won,
            Err(error) => {
                tracing::warn!(%error, "leadership could not be confirmed; stepping down");
                false
            }
        };
        let was = leading.send_replace(won);
        if won != was {
            tracing::info!(worker = %holder, leading = won, "leadership changed");
        }
        if stop.sleep(interval).await {
            break;
        }
    }
    if leading.send_replace(false) {
        if let Err(error) = election.resign().await {
            tracing::warn!(%error, "could not resign leadership; it ends with the session");
        }
    }
}
