//! Job dependencies: parents checked and marked, children attached, in the spawn's
//! transaction; resolution is done by the v10 triggers in the finishing statements.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, Row};
use tasque_durable::deps::{
    attachment, check_parents, parent_ids, stored_policy, Dependencies, DepsEngine, JobDeps, Parent,
};
use tasque_durable::{JobId, JobState, Result, SpawnResult};

use crate::config::quote;
use crate::queries::deps as q;
use crate::{rows, sql_err, PostgresStore};

/// A statement of `queries::deps` for `schema` (unquoted).
fn render(statement: &str, schema: &str) -> String {
    statement.replace("@schema@", &quote(schema))
}

/// Marks every parent named by `deps` as having dependents, under their row locks, and
/// returns their states; refuses with [`Error::UnknownParent`](tasque_durable::Error::UnknownParent)
/// (the smallest missing id) when one does not exist. Run inside the spawn's transaction,
/// before its insert.
pub(crate) async fn mark_parents<'a>(
    conn: &mut PgConnection,
    schema: &str,
    deps: impl Iterator<Item = &'a Dependencies>,
) -> Result<HashMap<i64, JobState>> {
    let ids = parent_ids(deps);
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = sqlx::query(&render(q::MARK_PARENTS, schema))
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await
        .map_err(sql_err)?;
    let mut states = HashMap::with_capacity(ids.len());
    for row in rows {
        let id: i64 = row.try_get(0).map_err(sql_err)?;
        let state: String = row.try_get(1).map_err(sql_err)?;
        // Pending is not finished: its run time does not matter here.
        let epoch = DateTime::<Utc>::UNIX_EPOCH;
        states.insert(id, rows::state(&state, epoch, epoch)?);
    }
    check_parents(&ids, &states)?;
    Ok(states)
}

/// Attaches a newly created child to its parents (states from [`mark_parents`]).
pub(crate) async fn attach(
    conn: &mut PgConnection,
    schema: &str,
    child: &SpawnResult,
    deps: &Dependencies,
    states: &HashMap<i64, JobState>,
) -> Result<()> {
    if !child.created {
        return Ok(());
    }
    let attached = attachment(deps, states)?;
    let ids: Vec<i64> = attached.edges.iter().map(|(id, _)| id.0).collect();
    let resolved: Vec<bool> = attached.edges.iter().map(|(_, r)| *r).collect();
    sqlx::query(&render(q::INSERT_EDGES, schema))
        .bind(child.job_id.0)
        .bind(&ids)
        .bind(&resolved)
        .execute(&mut *conn)
        .await
        .map_err(sql_err)?;
    sqlx::query(&render(q::ATTACH_CHILD, schema))
        .bind(child.job_id.0)
        .bind(deps.on_parent_failure.as_str())
        .bind(i32::try_from(attached.pending).unwrap_or(i32::MAX))
        .bind(attached.stored_state)
        .bind(attached.failure)
        .execute(&mut *conn)
        .await
        .map_err(sql_err)?;
    Ok(())
}

#[async_trait]
impl DepsEngine for PostgresStore {
    async fn deps_of(&self, job: JobId) -> Result<JobDeps> {
        let schema = &self.inner.schema;
        let summary = sqlx::query(&render(q::DEPS_SUMMARY, schema))
            .bind(job.0)
            .fetch_optional(&self.inner.pool)
            .await
            .map_err(sql_err)?;
        let Some(summary) = summary else {
            return Ok(JobDeps::default());
        };
        let policy: Option<String> = summary.try_get(0).map_err(sql_err)?;
        let dependents: i64 = summary.try_get(1).map_err(sql_err)?;
        let on_parent_failure = stored_policy(policy.as_deref())?;
        let found = sqlx::query(&render(q::PARENTS_OF, schema))
            .bind(job.0)
            .fetch_all(&self.inner.pool)
            .await
            .map_err(sql_err)?;
        let mut parents = Vec::with_capacity(found.len());
        for row in found {
            let stored: Option<String> = row.try_get(1).map_err(sql_err)?;
            let run_at: Option<DateTime<Utc>> = row.try_get(2).map_err(sql_err)?;
            let now: DateTime<Utc> = row.try_get(4).map_err(sql_err)?;
            let state = match stored {
                Some(s) => Some(rows::state(&s, run_at.unwrap_or(now), now)?),
                None => None,
            };
            parents.push(Parent {
                id: JobId(row.try_get(0).map_err(sql_err)?),
                state,
                resolved: row.try_get(3).map_err(sql_err)?,
            });
        }
        Ok(JobDeps {
            parents,
            on_parent_failure,
            dependents: u64::try_from(dependents).unwrap_or(0),
        })
    }
}
