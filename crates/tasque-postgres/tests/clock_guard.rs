//! Guard of the virtual clock (test mode): the engine's SQL reads the time only through
//! unqualified `now()` / `statement_timestamp()` / `clock_timestamp()`, which a test-mode connection's `search_path`
//! redirects to the namespace's virtual clock. A spelling it cannot redirect, in new SQL
//! (e.g. when branches merge), fails here.

use std::path::Path;

use tasque_postgres::clock::UNREDIRECTABLE_CLOCKS;

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

#[test]
fn engine_sql_reads_the_clock_only_in_ways_test_mode_redirects() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    sources(&root.join("src"), &mut files);
    sources(&root.join("migrations"), &mut files);
    assert!(files.len() > 5, "the engine's sources were not found");
    let mut found = Vec::new();
    for (path, text) in files {
        if path.ends_with("clock.rs") || path.ends_with("v9.sql") {
            continue;
        }
        for (n, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") || code.starts_with("--") {
                continue;
            }
            let lower = line.to_lowercase();
            for clock in UNREDIRECTABLE_CLOCKS {
                if lower.contains(clock) {
                    found.push(format!("{path}:{}: {clock} in {line}", n + 1));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "engine SQL reads the clock in a way test mode's search_path cannot redirect (use \
         now(), statement_timestamp() or clock_timestamp()):\n{}",
        found.join("\n")
    );
}
