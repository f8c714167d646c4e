//! Transactional enqueue: spawning inside the caller's own transaction.

use async_trait::async_trait;
use sqlx::{Sqlite, Transaction};
use tasque_durable::client::SpawnInTx;
use tasque_durable::{Result, Spawn, SpawnResult};

use tasque_durable::engine::JobInsert;

use crate::ops::spawn::{encode, insert_all};
use crate::{queries, sql_err, SqliteStore};

impl SqliteStore {
    /// Enqueues a job inside the caller's transaction: the job exists if and only if that
    /// transaction commits. Validation, defaults and idempotency are those of
    /// [`Store::spawn`](tasque_durable::Store::spawn).
    ///
    /// The transaction must be on this database: on [`pool`](Self::pool), or on a pool of the
    /// caller's own to the same file. SQLite has one writer at a time, so while the caller's
    /// transaction is open the store's own writes (and workers' claims) wait for it: keep it
    /// short. Workers find the job at their next poll after the commit.
    ///
    /// ```no_run
    /// # async fn demo(store: tasque_sqlite::SqliteStore) -> Result<(), Box<dyn std::error::Error>> {
    /// use tasque_durable::Spawn;
    ///
    /// let mut tx = store.pool().begin().await?;
    /// sqlx::query("INSERT INTO orders (total) VALUES (42)").execute(&mut *tx).await?;
    /// store
    ///     .spawn_in_tx(&mut tx, Spawn::new("mail", "order_confirmation", serde_json::json!({ "total": 42 })))
    ///     .await?;
    /// tx.commit().await?; // the order and its e-mail job appear together, or neither does
    /// # Ok(()) }
    /// ```
    pub async fn spawn_in_tx(
        &self,
        tx: &mut Transaction<'_, Sqlite>,
        spawn: Spawn,
    ) -> Result<SpawnResult> {
        let mut results = self.spawn_many_in_tx(tx, vec![spawn]).await?;
        results.pop().ok_or_else(|| {
            tasque_durable::Error::Corrupt("a one-job insert returned no result".into())
        })
    }

    /// Enqueues many jobs inside the caller's transaction, results in input order; like
    /// [`spawn_in_tx`](Self::spawn_in_tx), they exist if and only if the transaction commits
    /// (their queues too, when new). One invalid job refuses the whole batch before anything is
    /// written.
    pub async fn spawn_many_in_tx(
        &self,
        tx: &mut Transaction<'_, Sqlite>,
        spawns: Vec<Spawn>,
    ) -> Result<Vec<SpawnResult>> {
        let jobs = spawns
            .into_iter()
            .map(|s| JobInsert::encode(s, &self.limits).map(encode))
            .collect::<Result<Vec<_>>>()?;
        let mut queues: Vec<&str> = jobs.iter().map(|j| j.queue()).collect();
        queues.sort_unstable();
        queues.dedup();
        for queue in queues {
            sqlx::query(crate::clock::clocked(queries::ENSURE_QUEUE))
                .bind(&*self.ns)
                .bind(queue)
                .execute(&mut **tx)
                .await
                .map_err(sql_err)?;
        }
        insert_all(tx, &self.ns, &jobs).await
    }
}

#[async_trait]
impl<'c> SpawnInTx<Transaction<'c, Sqlite>> for SqliteStore {
    async fn spawn_many_within(
        &self,
        tx: &mut Transaction<'c, Sqlite>,
        spawns: Vec<Spawn>,
    ) -> Result<Vec<SpawnResult>> {
        self.spawn_many_in_tx(tx, spawns).await
    }
}
