//! [`SpawnInTx`]: enqueueing inside the caller's own database transaction.

use async_trait::async_trait;

use crate::model::{Spawn, SpawnResult};
use crate::{Result, Store};

/// An engine that can spawn jobs inside a transaction of type `Tx` the caller opened (an
/// `sqlx::Transaction` of its database): the jobs exist if and only if that transaction
/// commits. Implemented by each engine's store for its `sqlx::Transaction`; used through
/// [`Client::enqueue_in_tx`](super::Client::enqueue_in_tx).
#[async_trait]
pub trait SpawnInTx<Tx: Send + ?Sized>: Store {
    /// Spawns `spawns` inside `tx`, results in input order, with the validation, defaults and
    /// idempotency of [`Store::spawn_many`]. One invalid job refuses the whole batch before
    /// anything is written.
    async fn spawn_many_within(&self, tx: &mut Tx, spawns: Vec<Spawn>) -> Result<Vec<SpawnResult>>;
}
