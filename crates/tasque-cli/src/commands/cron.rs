//! `tasque cron` (list, next, pause, resume, trigger, delete) and the schedules of
//! `tasque work --config FILE`, which are the namespace's whole list: a schedule removed from
//! the file is deleted when a worker starts with it.

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use tasque_durable::schedule::{CompiledSchedule, Schedule, ScheduleEngine, ScheduleRecord};
use tasque_durable::Store;

use crate::cron_args::CronAction;
use crate::fail::CliError;
use crate::output;

/// The worker configuration file: `[[schedule]]` tables.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    schedule: Vec<toml::Spanned<Schedule>>,
}

/// Reads and checks the schedules of a configuration file. Every error names the file and
/// the line of the offending schedule; nothing is written.
pub fn load_config(path: &Path) -> Result<Vec<Schedule>, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))?;
    parse_config(&text).map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))
}

/// Parses and checks the text of a configuration file.
pub fn parse_config(text: &str) -> Result<Vec<Schedule>, String> {
    let file: ConfigFile = toml::from_str(text).map_err(|e| e.to_string())?;
    let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
    for (i, spanned) in file.schedule.iter().enumerate() {
        let earlier = &file.schedule[..i];
        let at = line_of(spanned.span().start);
        if let Some(first) = earlier
            .iter()
            .find(|s| s.get_ref().id == spanned.get_ref().id)
        {
            return Err(format!(
                "line {at}: duplicate schedule id {:?} (first at line {})",
                spanned.get_ref().id,
                line_of(first.span().start)
            ));
        }
        spanned
            .get_ref()
            .compile()
            .map_err(|e| format!("line {at}: {e}"))?;
    }
    Ok(file.schedule.into_iter().map(|s| s.into_inner()).collect())
}

fn engine(store: &Arc<dyn Store>) -> Result<&dyn ScheduleEngine, CliError> {
    store
        .schedules()
        .ok_or_else(|| CliError::Failed("this database engine has no schedules".into()))
}

async fn find(store: &Arc<dyn Store>, id: &str) -> Result<ScheduleRecord, CliError> {
    engine(store)?
        .list_schedules()
        .await?
        .into_iter()
        .find(|r| r.schedule.id == id)
        .ok_or_else(|| CliError::Failed(format!("no schedule {id:?}")))
}

fn compiled(record: &ScheduleRecord) -> Result<CompiledSchedule, CliError> {
    record
        .schedule
        .compile()
        .map_err(|e| CliError::Failed(format!("stored schedule is invalid: {e}")))
}

fn shown(schedule: &CompiledSchedule, at: DateTime<Utc>) -> String {
    schedule.in_zone(at).to_rfc3339()
}

/// Runs `tasque cron ACTION`.
pub async fn run(store: Arc<dyn Store>, action: CronAction, json: bool) -> Result<(), CliError> {
    match action {
        CronAction::List => list(&store, json).await,
        CronAction::Next { id, count } => next(&store, &id, count, json).await,
        CronAction::Pause { id } => set_paused(&store, &id, true, json).await,
        CronAction::Resume { id } => set_paused(&store, &id, false, json).await,
        CronAction::Trigger { id } => trigger(&store, &id, json).await,
        CronAction::Delete { id } => delete(&store, &id, json).await,
    }
}

async fn list(store: &Arc<dyn Store>, json: bool) -> Result<(), CliError> {
    let now = store.now().await?;
    let records = engine(store)?.list_schedules().await?;
    let mut rows = Vec::new();
    for record in &records {
        let s = &record.schedule;
        let next: Vec<String> = match record.schedule.compile() {
            Ok(c) => c.upcoming(now, 3).iter().map(|t| shown(&c, *t)).collect(),
            Err(e) => vec![format!("invalid: {e}")],
        };
        rows.push(json!({
            "id": s.id,
            "expression": s.expression(),
            "zone": s.zone,
            "task": s.task,
            "queue": s.queue,
            "next": next,
            "last_fire": record.last_fired_at,
            "last_tick": record.last_tick,
            "paused": record.paused,
        }));
    }
    if json {
        output::json(&json!({ "schedules": rows }));
        return Ok(());
    }
    if rows.is_empty() {
        println!("no schedules");
    }
    for (record, row) in records.iter().zip(&rows) {
        let s = &record.schedule;
        let last = record
            .last_fired_at
            .map_or_else(|| "never".to_owned(), |t| t.to_rfc3339());
        let paused = if record.paused { "  PAUSED" } else { "" };
        println!("{}  [{}]  zone {}{paused}", s.id, s.expression(), s.zone);
        println!("  last fire: {last}");
        let next: Vec<&str> = row["next"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
            .unwrap_or_default();
        println!("  next: {}", next.join(", "));
    }
    Ok(())
}

async fn next(store: &Arc<dyn Store>, id: &str, count: usize, json: bool) -> Result<(), CliError> {
    let record = find(store, id).await?;
    let schedule = compiled(&record)?;
    let now = store.now().await?;
    let ticks: Vec<String> = schedule
        .upcoming(now, count)
        .iter()
        .map(|t| shown(&schedule, *t))
        .collect();
    if json {
        output::json(&json!({ "id": id, "next": ticks }));
    } else {
        for tick in ticks {
            println!("{tick}");
        }
    }
    Ok(())
}

async fn set_paused(
    store: &Arc<dyn Store>,
    id: &str,
    paused: bool,
    json: bool,
) -> Result<(), CliError> {
    if !engine(store)?.set_schedule_paused(id, paused).await? {
        return Err(CliError::Failed(format!("no schedule {id:?}")));
    }
    if json {
        output::json(&json!({ "id": id, "paused": paused }));
    } else {
        println!(
            "schedule {id} {}",
            if paused { "paused" } else { "resumed" }
        );
    }
    Ok(())
}

async fn delete(store: &Arc<dyn Store>, id: &str, json: bool) -> Result<(), CliError> {
    if !engine(store)?.delete_schedule(id).await? {
        return Err(CliError::Failed(format!("no schedule {id:?}")));
    }
    if json {
        output::json(&json!({ "id": id, "deleted": true }));
    } else {
        println!("schedule {id} deleted");
    }
    Ok(())
}

async fn trigger(store: &Arc<dyn Store>, id: &str, json: bool) -> Result<(), CliError> {
    let record = find(store, id).await?;
    let schedule = compiled(&record)?;
    let now = store.now().await?;
    let tick = schedule
        .next_after(now)
        .ok_or_else(|| CliError::Failed(format!("schedule {id:?} has no next tick")))?;
    let spawned = store.spawn(schedule.spawn_for(tick)).await?;
    if json {
        output::json(&json!({
            "id": id,
            "tick": tick,
            "job": spawned.job_id.0,
            "created": spawned.created,
        }));
    } else {
        let verb = if spawned.created {
            "spawned"
        } else {
            "already had"
        };
        println!(
            "{verb} job {} for tick {} of schedule {id}",
            spawned.job_id,
            shown(&schedule, tick)
        );
    }
    Ok(())
}
