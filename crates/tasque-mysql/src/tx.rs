//! Transactional enqueue: spawning inside the caller's own transaction.

use sqlx::{MySql, Transaction};
use tasque_durable::{Result, Spawn, SpawnResult};

use crate::ops::spawn::{encode_all, insert};
use crate::MySqlStore;

impl MySqlStore {
    /// Enqueues a job inside the caller's transaction: the job exists if and only if that
    /// transaction commits. Validation, defaults and idempotency are those of
    /// [`Store::spawn`](tasque_durable::Store::spawn).
    ///
    /// The transaction may be on any pool or connection to the same database (not necessarily
    /// [`pool`](Self::pool)). While it is open, the new row is invisible to workers; an
    /// idempotency key it uses makes other spawns with that key wait for its outcome. A queue
    /// used for the first time is created at once, outside the transaction (so the caller's
    /// transaction never holds a queue row locked): after a rollback the queue may exist,
    /// empty.
    ///
    /// ```no_run
    /// # async fn demo(store: tasque_mysql::MySqlStore) -> Result<(), Box<dyn std::error::Error>> {
    /// use tasque_durable::Spawn;
    ///
    /// let mut tx = store.pool().begin().await?;
    /// let order = sqlx::query("INSERT INTO orders (total) VALUES (42)").execute(&mut *tx).await?;
    /// let order_id = order.last_insert_id();
    /// store
    ///     .spawn_in_tx(&mut tx, Spawn::new("mail", "order_confirmation", serde_json::json!({ "order": order_id })))
    ///     .await?;
    /// tx.commit().await?; // the order and its e-mail job appear together, or neither does
    /// # Ok(()) }
    /// ```
    pub async fn spawn_in_tx(
        &self,
        tx: &mut Transaction<'_, MySql>,
        spawn: Spawn,
    ) -> Result<SpawnResult> {
        Ok(self.spawn_many_in_tx(tx, vec![spawn]).await?.remove(0))
    }

    /// Enqueues many jobs inside the caller's transaction (multi-row inserts), results in
    /// input order; like [`spawn_in_tx`](Self::spawn_in_tx), they exist if and only if the
    /// transaction commits. One invalid job refuses the whole batch before anything is written.
    pub async fn spawn_many_in_tx(
        &self,
        tx: &mut Transaction<'_, MySql>,
        spawns: Vec<Spawn>,
    ) -> Result<Vec<SpawnResult>> {
        let jobs = encode_all(spawns, &self.inner.limits)?;
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        self.ensure_queues_of(&jobs).await?;
        insert(tx, &self.inner.sql, &jobs).await
    }
}

#[async_trait::async_trait]
impl<'c> tasque_durable::client::SpawnInTx<Transaction<'c, MySql>> for MySqlStore {
    async fn spawn_many_within(
        &self,
        tx: &mut Transaction<'c, MySql>,
        spawns: Vec<Spawn>,
    ) -> Result<Vec<SpawnResult>> {
        self.spawn_many_in_tx(tx, spawns).await
    }
}
