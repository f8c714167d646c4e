//! Job dependencies: parents checked and marked, children attached, in the spawn's
//! transaction; resolution is done by the v12 triggers in the finishing statements.

use std::collections::HashMap;

use async_trait::async_trait;
use serde_json::{json, Value};
use sqlx::{Row, SqliteConnection};
use tasque_durable::deps::{
    attachment, check_parents, parent_ids, stored_policy, Dependencies, DepsEngine, JobDeps, Parent,
};
use tasque_durable::{JobId, JobState, Result, SpawnResult};

use crate::{queries, rows, sql_err, SqliteStore};

/// Marks every parent named by `deps` as having dependents and returns their states; refuses
/// with [`Error::UnknownParent`](tasque_durable::Error::UnknownParent) (the smallest missing
/// id) when one does not exist. Run inside the spawn's write transaction, before any insert,
/// so a refusal inserts nothing.
pub(crate) async fn mark_parents<'a>(
    conn: &mut SqliteConnection,
    ns: &str,
    deps: impl Iterator<Item = &'a Dependencies>,
) -> Result<HashMap<i64, JobState>> {
    let ids = parent_ids(deps);
    let mut states = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(10_000) {
        let rows = sqlx::query(crate::clock::clocked(queries::MARK_PARENTS))
            .bind(ns)
            .bind(json!(chunk).to_string())
            .fetch_all(&mut *conn)
            .await
            .map_err(sql_err)?;
        for row in rows {
            let id: i64 = row.try_get(0).map_err(sql_err)?;
            let state: String = row.try_get(1).map_err(sql_err)?;
            // Pending is not finished: its run time does not matter here.
            states.insert(id, rows::state(&state, 0, 0)?);
        }
    }
    check_parents(&ids, &states)?;
    Ok(states)
}

/// Attaches a newly created child to its parents (states from [`mark_parents`]): its edges,
/// its count of unresolved parents, and its state (held, cancelled by a finished parent, or
/// left pending when every parent is resolved already).
pub(crate) async fn attach(
    conn: &mut SqliteConnection,
    ns: &str,
    child: &SpawnResult,
    deps: &Dependencies,
    states: &HashMap<i64, JobState>,
) -> Result<()> {
    if !child.created {
        return Ok(());
    }
    let attached = attachment(deps, states)?;
    let edges: Vec<Value> = attached
        .edges
        .iter()
        .map(|(id, resolved)| json!([id.0, i64::from(*resolved)]))
        .collect();
    sqlx::query(crate::clock::clocked(queries::INSERT_EDGES))
        .bind(child.job_id.0)
        .bind(Value::Array(edges).to_string())
        .execute(&mut *conn)
        .await
        .map_err(sql_err)?;
    sqlx::query(crate::clock::clocked(queries::ATTACH_CHILD))
        .bind(ns)
        .bind(child.job_id.0)
        .bind(deps.on_parent_failure.as_str())
        .bind(i64::try_from(attached.pending).unwrap_or(i64::MAX))
        .bind(attached.stored_state)
        .bind(attached.failure)
        .execute(&mut *conn)
        .await
        .map_err(sql_err)?;
    Ok(())
}

#[async_trait]
impl DepsEngine for SqliteStore {
    async fn deps_of(&self, job: JobId) -> Result<JobDeps> {
        let summary = sqlx::query(crate::clock::clocked(queries::DEPS_SUMMARY))
            .bind(&*self.ns)
            .bind(job.0)
            .fetch_optional(&self.readers)
            .await
            .map_err(sql_err)?;
        let Some(summary) = summary else {
            return Ok(JobDeps::default());
        };
        let policy: Option<String> = summary.try_get(0).map_err(sql_err)?;
        let dependents: i64 = summary.try_get(1).map_err(sql_err)?;
        let on_parent_failure = stored_policy(policy.as_deref())?;
        let rows = sqlx::query(crate::clock::clocked(queries::PARENTS_OF))
            .bind(&*self.ns)
            .bind(job.0)
            .fetch_all(&self.readers)
            .await
            .map_err(sql_err)?;
        let mut parents = Vec::with_capacity(rows.len());
        for row in rows {
            let stored: Option<String> = row.try_get(1).map_err(sql_err)?;
            let run_at: Option<i64> = row.try_get(2).map_err(sql_err)?;
            let now: i64 = row.try_get(4).map_err(sql_err)?;
            let state = match stored {
                Some(s) => Some(rows::state(&s, run_at.unwrap_or(0), now)?),
                None => None,
            };
            parents.push(Parent {
                id: JobId(row.try_get(0).map_err(sql_err)?),
                state,
                resolved: row.try_get::<i64, _>(3).map_err(sql_err)? != 0,
            });
        }
        Ok(JobDeps {
            parents,
            on_parent_failure,
            dependents: u64::try_from(dependents).unwrap_or(0),
        })
    }
}
