//! Job dependencies: parents checked and marked, children attached, in the spawn's
//! transaction; and the resolution of finished parents. MySQL triggers cannot write the table
//! that fired them, so every write that finishes a job with dependents calls [`resolve`] in
//! its own transaction, and [`MySqlStore::repair_deps`] (run by the rescuer and after
//! deletes) resolves what a crash between the two or a deleted parent left.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::MySqlConnection;
use tasque_durable::deps::{
    attachment, check_parents, parent_ids, stored_policy, Dependencies, DepsEngine, JobDeps,
    Parent, ParentFailure,
};
use tasque_durable::{JobId, JobState, Result, SpawnResult};

use super::{bind_ids, retry_conflicts};
use crate::queries::deps as q;
use crate::queries::Sql;
use crate::{rows, sql_err, MySqlStore};

/// A parent's outcome as stored in a child's failure: `completed`, `failed`, `cancelled` or
/// `deleted`.
pub(crate) type Outcome = &'static str;

/// The outcome of a finished stored state.
pub(crate) fn outcome_of(stored: &str) -> Outcome {
    match stored {
        "completed" => "completed",
        "failed" => "failed",
        "cancelled" => "cancelled",
        _ => "deleted",
    }
}

/// Locks every parent named by `deps` (in id order), flags it as having dependents and
/// returns the states; refuses with
/// [`Error::UnknownParent`](tasque_durable::Error::UnknownParent) (the smallest missing id).
pub(crate) async fn mark_parents<'a>(
    conn: &mut MySqlConnection,
    sql: &Sql,
    deps: impl Iterator<Item = &'a Dependencies>,
) -> Result<HashMap<i64, JobState>> {
    let ids = parent_ids(deps);
    let mut states = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(1000) {
        let statement = sql.lock_parents(chunk.len());
        let found = bind_ids(sqlx::query(&statement), chunk)
            .fetch_all(&mut *conn)
            .await
            .map_err(sql_err)?;
        for row in &found {
            let epoch = DateTime::<Utc>::UNIX_EPOCH;
            let state = rows::state(&rows::text_at(row, 1)?, epoch, epoch)?;
            states.insert(rows::at::<i64>(row, 0)?, state);
        }
    }
    check_parents(&ids, &states)?;
    for chunk in ids.chunks(1000) {
        let statement = sql.mark_parents(chunk.len());
        bind_ids(sqlx::query(&statement), chunk)
            .execute(&mut *conn)
            .await
            .map_err(sql_err)?;
    }
    Ok(states)
}

/// Attaches a newly created child to its parents (states from [`mark_parents`]).
pub(crate) async fn attach(
    conn: &mut MySqlConnection,
    sql: &Sql,
    child: &SpawnResult,
    deps: &Dependencies,
    states: &HashMap<i64, JobState>,
) -> Result<()> {
    if !child.created {
        return Ok(());
    }
    let attached = attachment(deps, states)?;
    let statement = sql.insert_edges(attached.edges.len());
    let mut query = sqlx::query(&statement);
    for (parent, resolved) in &attached.edges {
        query = query.bind(parent.0).bind(child.job_id.0).bind(*resolved);
    }
    query.execute(&mut *conn).await.map_err(sql_err)?;
    let state = attached.stored_state;
    sqlx::query(&sql.render(q::ATTACH_CHILD))
        .bind(deps.on_parent_failure.as_str())
        .bind(i32::try_from(attached.pending).unwrap_or(i32::MAX))
        .bind(state)
        .bind(state)
        .bind(state)
        .bind(attached.failure)
        .bind(state)
        .bind(child.job_id.0)
        .execute(&mut *conn)
        .await
        .map_err(sql_err)?;
    Ok(())
}

/// The jobs among `ids` flagged as having dependents (locking read: the latest flag).
pub(crate) async fn with_dependents(
    conn: &mut MySqlConnection,
    sql: &Sql,
    ids: &[i64],
) -> Result<Vec<i64>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let statement = sql.with_dependents(ids.len());
    let found = bind_ids(sqlx::query(&statement), ids)
        .fetch_all(&mut *conn)
        .await
        .map_err(sql_err)?;
    found.iter().map(|row| rows::at(row, 0)).collect()
}

/// Applies the outcomes of parents that just finished (in the caller's transaction) to their
/// unresolved children, under the children's row locks: a child whose last parent is
/// resolved becomes pending; a child with policy cancel and a failed parent is cancelled, and
/// its own children are resolved the same way in the next round.
pub(crate) async fn resolve(
    conn: &mut MySqlConnection,
    sql: &Sql,
    finished: Vec<(i64, Outcome)>,
) -> Result<()> {
    let mut frontier = finished;
    while !frontier.is_empty() {
        let outcomes: HashMap<i64, Outcome> = frontier.iter().copied().collect();
        let parents: Vec<i64> = outcomes.keys().copied().collect();
        frontier = Vec::new();
        for chunk in parents.chunks(1000) {
            let statement = sql.open_edges(chunk.len());
            let edges = bind_ids(sqlx::query(&statement), chunk)
                .fetch_all(&mut *conn)
                .await
                .map_err(sql_err)?;
            if edges.is_empty() {
                continue;
            }
            let statement = sql.resolve_edges(chunk.len());
            bind_ids(sqlx::query(&statement), chunk)
                .execute(&mut *conn)
                .await
                .map_err(sql_err)?;
            let mut by_child: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
            for edge in &edges {
                by_child
                    .entry(rows::at(edge, 1)?)
                    .or_default()
                    .push(rows::at(edge, 0)?);
            }
            let children: Vec<i64> = by_child.keys().copied().collect();
            for ids in children.chunks(1000) {
                let statement = sql.lock_children(ids.len());
                let locked = bind_ids(sqlx::query(&statement), ids)
                    .fetch_all(&mut *conn)
                    .await
                    .map_err(sql_err)?;
                for row in &locked {
                    let id: i64 = rows::at(row, 0)?;
                    if rows::text_at(row, 1)? != "on_hold" {
                        continue;
                    }
                    let mut pending: i32 = rows::at(row, 2)?;
                    let policy = row_policy_at(row, 3)?;
                    let has_dependents: bool = rows::at(row, 4)?;
                    let mut cancelled_by = None;
                    for parent in by_child.get(&id).into_iter().flatten() {
                        let outcome = outcomes.get(parent).copied().unwrap_or("deleted");
                        if outcome == "completed" || policy == ParentFailure::Run {
                            pending -= 1;
                        } else if cancelled_by.is_none() {
                            cancelled_by = Some((*parent, outcome));
                        }
                    }
                    if let Some((parent, outcome)) = cancelled_by {
                        let reason = serde_json::json!({
                            "error": "parent failed", "parent": parent, "parent_state": outcome
                        });
                        sqlx::query(&sql.render(q::CANCEL_CHILD))
                            .bind(reason.to_string())
                            .bind(id)
                            .execute(&mut *conn)
                            .await
                            .map_err(sql_err)?;
                        if has_dependents {
                            frontier.push((id, "cancelled"));
                        }
                    } else if pending <= 0 {
                        sqlx::query(&sql.render(q::RELEASE_CHILD))
                            .bind(id)
                            .execute(&mut *conn)
                            .await
                            .map_err(sql_err)?;
                    } else {
                        sqlx::query(&sql.render(q::SET_PENDING))
                            .bind(pending)
                            .bind(id)
                            .execute(&mut *conn)
                            .await
                            .map_err(sql_err)?;
                    }
                }
            }
        }
    }
    Ok(())
}

impl MySqlStore {
    /// Resolves finished (or deleted) parents whose edges are still open: what a crash
    /// between a finishing write and its resolution, or a deleted parent, left. Each parent in
    /// its own transaction; returns how many were resolved.
    pub(crate) async fn repair_deps(&self) -> Result<u64> {
        let sql = &self.inner.sql;
        let found = sqlx::query(&sql.render(q::UNRESOLVED_PARENTS))
            .fetch_all(&self.inner.pool)
            .await
            .map_err(sql_err)?;
        let mut repaired = 0;
        for row in &found {
            let parent: i64 = rows::at(row, 0)?;
            let state: Option<rows::Text> = rows::at(row, 1)?;
            let outcome = state.map_or("deleted", |s| outcome_of(&s.0));
            retry_conflicts(|| async {
                let mut tx = self.begin().await?;
                resolve(&mut tx, sql, vec![(parent, outcome)]).await?;
                tx.commit().await.map_err(sql_err)
            })
            .await?;
            repaired += 1;
        }
        Ok(repaired)
    }
}

#[async_trait]
impl DepsEngine for MySqlStore {
    async fn deps_of(&self, job: JobId) -> Result<JobDeps> {
        let sql = &self.inner.sql;
        let summary = sqlx::query(&sql.render(q::DEPS_SUMMARY))
            .bind(job.0)
            .bind(job.0)
            .fetch_optional(&self.inner.pool)
            .await
            .map_err(sql_err)?;
        let Some(summary) = summary else {
            return Ok(JobDeps::default());
        };
        let on_parent_failure = row_policy_at(&summary, 0)?;
        let dependents: i64 = rows::at(&summary, 1)?;
        let found = sqlx::query(&sql.render(q::PARENTS_OF))
            .bind(job.0)
            .fetch_all(&self.inner.pool)
            .await
            .map_err(sql_err)?;
        let mut parents = Vec::with_capacity(found.len());
        for row in &found {
            let stored: Option<rows::Text> = rows::at(row, 1)?;
            let run_at: Option<DateTime<Utc>> = rows::at(row, 2)?;
            let now: DateTime<Utc> = rows::at(row, 4)?;
            let state = match stored {
                Some(s) => Some(rows::state(&s.0, run_at.unwrap_or(now), now)?),
                None => None,
            };
            parents.push(Parent {
                id: JobId(rows::at(row, 0)?),
                state,
                resolved: rows::at(row, 3)?,
            });
        }
        Ok(JobDeps {
            parents,
            on_parent_failure,
            dependents: u64::try_from(dependents).unwrap_or(0),
        })
    }
}

fn row_policy_at(row: &sqlx::mysql::MySqlRow, index: usize) -> Result<ParentFailure> {
    let stored = rows::at::<Option<rows::Text>>(row, index)?;
    stored_policy(stored.as_ref().map(|t| t.0.as_str()))
}
