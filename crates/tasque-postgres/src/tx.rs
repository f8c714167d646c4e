//! Transactional enqueue: spawning inside the caller's own transaction.

use sqlx::{Postgres, Transaction};
use tasque_durable::{Result, Spawn, SpawnResult};

use crate::ops::spawn::Batch;
use crate::PostgresStore;

impl PostgresStore {
    /// Enqueues a job inside the caller's transaction: the job exists if and only if that
    /// transaction commits, and its wake-up is announced at commit (PostgreSQL delivers
    /// notifications only then). Validation, defaults and idempotency are those of
    /// [`Store::spawn`](tasque_durable::Store::spawn).
    ///
    /// The transaction may be on any pool or connection to the same database (not necessarily
    /// [`pool`](Self::pool)). While it is open, the new row is invisible to workers; an
    /// idempotency key it uses makes other spawns with that key wait for its outcome.
    ///
    /// ```no_run
    /// # async fn demo(store: tasque_postgres::PostgresStore) -> Result<(), Box<dyn std::error::Error>> {
    /// use tasque_durable::Spawn;
    ///
    /// let mut tx = store.pool().begin().await?;
    /// let order_id: i64 = sqlx::query_scalar("INSERT INTO orders (total) VALUES (42) RETURNING id")
    ///     .fetch_one(&mut *tx)
    ///     .await?;
    /// store
    ///     .spawn_in_tx(&mut tx, Spawn::new("mail", "order_confirmation", serde_json::json!({ "order": order_id })))
    ///     .await?;
    /// tx.commit().await?; // the order and its e-mail job appear together, or neither does
    /// # Ok(()) }
    /// ```
    pub async fn spawn_in_tx(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        spawn: Spawn,
    ) -> Result<SpawnResult> {
        Ok(self.spawn_many_in_tx(tx, vec![spawn]).await?.remove(0))
    }

    /// Enqueues many jobs inside the caller's transaction, in one statement, results in input
    /// order; like [`spawn_in_tx`](Self::spawn_in_tx), they exist if and only if the transaction
    /// commits. One invalid job refuses the whole batch before anything is written.
    pub async fn spawn_many_in_tx(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        spawns: Vec<Spawn>,
    ) -> Result<Vec<SpawnResult>> {
        let batch = Batch::encode(spawns, &self.inner.limits)?;
        if batch.has_deps() {
            return batch
                .insert_in_tx(tx, &self.inner.sql, &self.inner.schema)
                .await;
        }
        batch.insert(&mut **tx, &self.inner.sql).await
    }
}

#[async_trait::async_trait]
impl<'c> tasque_durable::client::SpawnInTx<Transaction<'c, Postgres>> for PostgresStore {
    async fn spawn_many_within(
        &self,
        tx: &mut Transaction<'c, Postgres>,
        spawns: Vec<Spawn>,
    ) -> Result<Vec<SpawnResult>> {
        self.spawn_many_in_tx(tx, spawns).await
    }
}
