//! Guard of the virtual clock (test mode): the engine's SQL (its statements and its migration
//! files, stored procedures included) reads the time only as `clock::DATABASE_CLOCK`
//! (`UTC_TIMESTAMP(6)`, written `now!()` in the queries), the one spelling the statement
//! renderer replaces in test mode; and no statement that reads the clock runs without going
//! through that renderer. New SQL that spells the clock another way, or runs a clock-reading
//! statement around the renderer, fails here (e.g. when branches merge).

use std::collections::HashSet;
use std::path::Path;

use tasque_mysql::clock::{DATABASE_CLOCK, OTHER_CLOCKS};

fn sources(dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs" || e == "sql") {
            let text = std::fs::read_to_string(&path).unwrap();
            out.push((path.display().to_string(), text));
        }
    }
}

fn engine_files() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    sources(&root.join("src"), &mut out);
    sources(&root.join("migrations"), &mut out);
    assert!(out.len() > 10, "the engine's sources were not found");
    out
}

/// The SQL of a file, by line number: the text of its string literals in Rust (literals
/// spanning lines included; comments skipped), its lines in a `.sql` file (comments skipped).
fn sql_lines(path: &str, text: &str) -> Vec<(usize, String)> {
    if path.ends_with(".sql") {
        return text
            .lines()
            .enumerate()
            .filter(|(_, line)| !line.trim_start().starts_with("--"))
            .map(|(n, line)| (n + 1, line.to_string()))
            .collect();
    }
    let mut out: Vec<(usize, String)> = Vec::new();
    let mut line = 1;
    let mut in_string = false;
    let mut chars = text.chars().peekable();
    let push = |line: usize, c: char, out: &mut Vec<(usize, String)>| match out.last_mut() {
        Some((at, sql)) if *at == line => sql.push(c),
        _ => out.push((line, c.to_string())),
    };
    while let Some(c) = chars.next() {
        if c == '\n' {
            line += 1;
            if in_string {
                push(line, ' ', &mut out);
            }
            continue;
        }
        if in_string {
            match c {
                '\\' => {
                    // An escape: the next character is part of the literal (a line break
                    // after it continues the literal on the next line).
                    if let Some(next) = chars.next() {
                        if next == '\n' {
                            line += 1;
                        } else {
                            push(line, next, &mut out);
                        }
                    }
                }
                '"' => in_string = false,
                _ => push(line, c, &mut out),
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                push(line, ' ', &mut out);
            }
            '/' if chars.peek() == Some(&'/') => {
                // A comment: to the end of the line.
                for next in chars.by_ref() {
                    if next == '\n' {
                        line += 1;
                        break;
                    }
                }
            }
            '\'' => {
                // A character literal such as '"' (lifetimes have no closing quote nearby).
                let ahead: String = chars.clone().take(3).collect();
                if ahead.starts_with("\"'") {
                    chars.next();
                    chars.next();
                } else if ahead.starts_with("\\") && ahead.ends_with('\'') {
                    chars.next();
                    chars.next();
                    chars.next();
                }
            }
            _ => {}
        }
    }
    out
}

#[test]
fn engine_sql_spells_the_clock_only_as_the_database_clock_expression() {
    let mut found = Vec::new();
    for (path, text) in engine_files() {
        if path.ends_with("clock.rs") {
            continue;
        }
        for (n, sql) in sql_lines(&path, &text) {
            let lower = sql
                .to_lowercase()
                .replace(&DATABASE_CLOCK.to_lowercase(), "");
            for clock in OTHER_CLOCKS {
                // SQL names only: not e.g. `last_now(` or `utc_timestamps`.
                let hit = lower.match_indices(clock).any(|(at, _)| {
                    at == 0
                        || !lower.as_bytes()[at - 1].is_ascii_alphanumeric()
                            && lower.as_bytes()[at - 1] != b'_'
                });
                if hit {
                    found.push(format!("{path}:{n}: {clock} in {sql}"));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "engine SQL reads the clock other than as {DATABASE_CLOCK} (`now!()`), which test \
         mode cannot replace:\n{}",
        found.join("\n")
    );
}

/// The names of the string constants whose statement reads the clock.
fn clocked_constants(files: &[(String, String)]) -> HashSet<String> {
    let mut out = HashSet::new();
    for (path, text) in files {
        if !path.ends_with(".rs") {
            continue;
        }
        for (at, _) in text.match_indices("const ") {
            let rest = &text[at + "const ".len()..];
            let Some((name, after)) = rest.split_once(':') else {
                continue;
            };
            let name = name.trim();
            if !after.trim_start().starts_with("&str") {
                continue;
            }
            let body = after.split(";\n").next().unwrap_or("");
            if body.contains("now!()") || body.contains(DATABASE_CLOCK) {
                out.insert(name.to_string());
            }
        }
    }
    out
}

/// The text of a call's arguments, from just after its opening parenthesis to the matching
/// one (parentheses inside string literals do not count).
fn arguments(text: &str) -> &str {
    let mut depth = 1;
    let mut in_string = false;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return &text[..i];
                }
            }
            _ => {}
        }
    }
    text
}

#[test]
fn every_statement_that_reads_the_clock_goes_through_the_renderer() {
    let files = engine_files();
    let constants = clocked_constants(&files);
    assert!(
        constants.contains("UPSERT_SCHEDULE") && constants.contains("OLDEST_READY"),
        "the guard no longer finds the engine's clock-reading constants: {constants:?}"
    );
    let mut found = Vec::new();
    for (path, text) in &files {
        if !path.ends_with(".rs") || path.ends_with("clock.rs") {
            continue;
        }
        let calls = [
            "sqlx::query(",
            "sqlx::query_scalar(",
            "sqlx::query_as(",
            "QueryBuilder::new(",
            ".execute(",
            "query_scalar::<_, i64>(",
            ".push(",
            ".push_str(",
        ];
        for call in calls {
            for (at, _) in text.match_indices(call) {
                let head = text[..at].lines().last().unwrap_or("").trim_start();
                if head.starts_with("//") || head.starts_with("///") {
                    continue;
                }
                let args = arguments(&text[at + call.len()..]);
                if args.contains("render(") {
                    continue;
                }
                let literal_clock = args.contains("now!()") || args.contains(DATABASE_CLOCK);
                let constant_clock = args
                    .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .any(|word| constants.contains(word));
                if literal_clock || constant_clock {
                    let line = text[..at].lines().count();
                    found.push(format!("{path}:{line}: {call}{}", args.trim()));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "statements read the clock without going through `Sql::render` (test mode would keep \
         the server clock):\n{}",
        found.join("\n")
    );
}
