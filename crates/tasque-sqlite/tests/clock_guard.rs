//! Guard of the virtual clock (test mode): the engine's SQL reads the time only as
//! `clock::DATABASE_CLOCK`, and every statement it runs goes through `clock::clocked`, which
//! replaces that expression in test mode. New SQL that spells the clock another way, or runs
//! a statement around the renderer, fails here (e.g. when branches merge).

use std::path::Path;

use tasque_sqlite::clock::DATABASE_CLOCK;

/// Other ways SQLite can read the time, which the renderer would miss.
const OTHER_CLOCKS: &[&str] = &[
    "unixepoch(",
    "julianday(",
    "strftime(",
    "datetime(",
    "date(",
    "time(",
    "'now'",
    "current_timestamp",
    "current_date",
    "current_time",
];

fn sources(dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            out.push((path.display().to_string(), text));
        }
    }
}

fn engine_sources() -> Vec<(String, String)> {
    let mut out = Vec::new();
    sources(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut out);
    assert!(out.len() > 5, "the engine's sources were not found");
    out
}

#[test]
fn engine_sql_spells_the_clock_only_as_the_database_clock_expression() {
    let mut found = Vec::new();
    for (path, text) in engine_sources() {
        for (n, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            // The SQL: what is inside the line's string literals.
            let sql: String = line
                .split('"')
                .skip(1)
                .step_by(2)
                .collect::<Vec<_>>()
                .join(" ");
            let lower = sql
                .to_lowercase()
                .replace(&DATABASE_CLOCK.to_lowercase(), "");
            for clock in OTHER_CLOCKS {
                // `date(`/`time(` as SQL functions only (not e.g. `update(`).
                let hit = lower.match_indices(clock).any(|(at, _)| {
                    at == 0
                        || !lower.as_bytes()[at - 1].is_ascii_alphanumeric()
                            && lower.as_bytes()[at - 1] != b'_'
                });
                if hit {
                    found.push(format!("{path}:{}: {clock} in {line}", n + 1));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "engine SQL reads the clock other than through `now!()` / DATABASE_CLOCK, which test \
         mode cannot replace:\n{}",
        found.join("\n")
    );
}

#[test]
fn every_statement_the_engine_runs_goes_through_the_clock_renderer() {
    let mut found = Vec::new();
    for (path, text) in engine_sources() {
        if path.ends_with("clock.rs") || path.ends_with("migrate.rs") {
            // The renderer itself, and migrations (which run before the clock table exists).
            continue;
        }
        let calls = text
            .match_indices("sqlx::query")
            .chain(text.match_indices("QueryBuilder::new("));
        for (at, _) in calls {
            let line = text[..at].lines().count();
            let head = text[..at].lines().last().unwrap_or("").trim_start();
            if head.starts_with("//") {
                continue;
            }
            let call: String = text[at..].chars().take(120).collect();
            // Rendered in the call, or just before it into the variable it runs.
            let before: String = text[..at]
                .chars()
                .rev()
                .take(300)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            let rendered = call.contains("clocked(")
                || call.contains("clocked_string(")
                || before.contains("let sql = crate::clock::clocked_string(");
            let bare_builder = call.starts_with("QueryBuilder::new(\"")
                && !call
                    .split('"')
                    .nth(1)
                    .is_some_and(|s| s.contains("unixepoch"));
            if !rendered && !bare_builder {
                found.push(format!(
                    "{path}:{line}: {}",
                    call.lines().next().unwrap_or("")
                ));
            }
        }
    }
    assert!(
        found.is_empty(),
        "statements run without `clock::clocked` (test mode would keep the database clock):\n{}",
        found.join("\n")
    );
}
