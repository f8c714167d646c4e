//! Human output (tables, colours on a terminal) and JSON output.

use std::io::IsTerminal;

use serde::Serialize;
use tasque_durable::{JobInfo, JobState};

/// Whether to colour output: stdout is a terminal and `NO_COLOR` is unset.
pub fn colours() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// Colours a state name for a terminal.
pub fn state(state: JobState) -> String {
    let text = state.as_str();
    if !colours() {
        return text.to_owned();
    }
    let code = match state {
        JobState::Completed => "32",
        JobState::Failed => "31",
        JobState::Cancelled => "90",
        JobState::Running => "36",
        JobState::Scheduled | JobState::Sleeping | JobState::Waiting | JobState::OnHold => "33",
        JobState::Available => "34",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

/// Prints one JSON document.
pub fn json<T: Serialize>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => println!("{text}"),
        Err(error) => eprintln!("error: could not encode output: {error}"),
    }
}

/// Prints rows as a table with a header; cells may hold ANSI colour codes.
pub fn table(header: &[&str], rows: &[Vec<String>]) {
    let widths = column_widths(header, rows);
    println!(
        "{}",
        table_line(
            &widths,
            &header.iter().map(|h| h.to_uppercase()).collect::<Vec<_>>()
        )
    );
    for row in rows {
        println!("{}", table_line(&widths, row));
    }
}

/// The width of each column: its widest cell or header (colour codes take no room).
pub fn column_widths(header: &[&str], rows: &[Vec<String>]) -> Vec<usize> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(visible_len(cell));
        }
    }
    widths
}

/// One table line: each cell padded to its column's width (a longer cell overflows it).
pub fn table_line(widths: &[usize], cells: &[String]) -> String {
    let padded: Vec<String> = cells
        .iter()
        .enumerate()
        .map(|(i, cell)| {
            let width = widths.get(i).copied().unwrap_or(0);
            format!(
                "{cell}{}",
                " ".repeat(width.saturating_sub(visible_len(cell)))
            )
        })
        .collect();
    padded.join("  ").trim_end().to_owned()
}

fn visible_len(text: &str) -> usize {
    let mut len = 0;
    let mut in_escape = false;
    for ch in text.chars() {
        match (in_escape, ch) {
            (false, '\x1b') => in_escape = true,
            (true, 'm') => in_escape = false,
            (false, _) => len += 1,
            _ => {}
        }
    }
    len
}

/// A job as one JSON object.
pub fn job_json(job: &JobInfo) -> serde_json::Value {
    serde_json::json!({
        "id": job.id,
        "run": job.run_id.to_string(),
        "queue": job.queue,
        "task": job.task,
        "state": job.state,
        "priority": job.priority,
        "attempt": job.attempt,
        "max_attempts": job.max_attempts,
        "params": job.params,
        "headers": job.headers,
        "result": job.result,
        "failure": job.failure,
        "errors": job.errors,
        "retry": job.retry,
        "timeout_ms": job.timeout.map(|t| t.as_millis() as u64),
        "idempotency_key": job.idempotency_key,
        "unique_key": job.unique_key,
        "worker": job.worker_id,
        "created_at": job.created_at,
        "run_at": job.run_at,
        "attempted_at": job.attempted_at,
        "finished_at": job.finished_at,
    })
}

/// A short one-line rendering of a JSON value for tables.
pub fn short(value: &Option<serde_json::Value>, max: usize) -> String {
    let Some(value) = value else {
        return String::new();
    };
    let text = match value.get("error").and_then(|e| e.as_str()) {
        Some(error) => error.to_owned(),
        None => value.to_string(),
    };
    let text = text.replace('\n', " ");
    if text.chars().count() > max {
        let cut: String = text.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    } else {
        text
    }
}
