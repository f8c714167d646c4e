//! `tasque jobs` pages through everything (issue 12): `--after ID` is a keyset cursor (jobs
//! with a greater id, in id order) and `--all` follows it to the end, streaming each page.

use serde_json::{json, Value};
use tasque_durable::{Spawn, Store};
use tasque_sqlite::{SqliteConfig, SqliteStore};

mod common;
use common::Cli;

/// Spawns `count` jobs alternating between queues `even` and `odd`, straight through the
/// store (one process start per job would be slow); returns their ids in order.
fn seed(cli: &Cli, count: usize) -> Vec<i64> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store =
            SqliteStore::connect(SqliteConfig::from_url(&cli.url()).with_namespace("default"))
                .await
                .unwrap();
        store.migrate().await.unwrap();
        let spawns = (0..count)
            .map(|i| {
                let queue = if i % 2 == 0 { "even" } else { "odd" };
                Spawn::new(queue, "noop", json!({ "n": i }))
            })
            .collect();
        let spawned = store.spawn_many(spawns).await.unwrap();
        spawned.iter().map(|s| s.job_id.0).collect()
    })
}

fn ids(listing: &Value) -> Vec<i64> {
    listing["jobs"]
        .as_array()
        .expect("a jobs array")
        .iter()
        .map(|job| job["id"].as_i64().unwrap())
        .collect()
}

#[test]
fn jobs_all_lists_every_one_of_250_jobs_once_in_id_order() {
    let cli = Cli::new();
    let seeded = seed(&cli, 250);

    // Default page size (500) and a small one (7 pages of 40) give the same complete list.
    for extra in [&[][..], &["--limit", "40"][..]] {
        let mut args = vec!["jobs", "--all"];
        args.extend_from_slice(extra);
        let listing = cli.json(&args);
        assert_eq!(ids(&listing), seeded, "tasque {args:?}");
        assert_eq!(listing["next"], Value::Null, "the last page has no cursor");
    }

    // Filters apply to every page.
    let odd = cli.json(&["jobs", "--all", "--limit", "16", "--queue", "odd"]);
    let expected: Vec<i64> = seeded.iter().copied().skip(1).step_by(2).collect();
    assert_eq!(ids(&odd), expected);
    assert!(odd["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .all(|job| job["queue"] == "odd" && job["task"] == "noop"));

    // Without --all one page of the default 50, with the cursor of the next.
    let first = cli.json(&["jobs"]);
    assert_eq!(ids(&first), seeded[..50]);
    assert_eq!(first["next"], seeded[49]);

    // Human output streams one table: a header, then a row per job.
    let human = cli.ok(&["jobs", "--all", "--limit", "100"]);
    let lines: Vec<&str> = human.lines().collect();
    assert_eq!(lines.len(), 251, "{human}");
    assert!(lines[0].starts_with("ID"), "{}", lines[0]);
    assert!(!human.contains("more after"), "{human}");
}

#[test]
fn jobs_after_cursor_gives_each_job_once_while_jobs_come_and_go() {
    let cli = Cli::new();
    let seeded = seed(&cli, 130);
    let mut listed: Vec<i64> = Vec::new();
    let mut cursor: Option<i64> = None;
    let mut pages = 0;
    let mut added = Vec::new();
    loop {
        let mut args = vec!["jobs".to_owned(), "--limit".into(), "30".into()];
        if let Some(after) = cursor {
            args.extend(["--after".into(), after.to_string()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let page = cli.json(&args);
        let page_ids = ids(&page);
        assert!(page_ids.len() <= 30);
        if let Some(after) = cursor {
            assert!(
                page_ids.iter().all(|id| *id > after),
                "{page_ids:?} after {after}"
            );
        }
        listed.extend(&page_ids);
        pages += 1;
        if pages == 2 {
            // Jobs added and removed between pages: the new one comes at the end, the
            // deleted ones (not yet listed) never, and nothing repeats.
            added.push(cli.enqueue(&["late", "{}"]));
            cli.ok(&["purge", "--queue", "odd"]);
        }
        match page["next"].as_i64() {
            Some(next) => {
                assert_eq!(
                    Some(&next),
                    page_ids.last(),
                    "the cursor is the page's last id"
                );
                cursor = Some(next);
            }
            None => break,
        }
    }
    let mut unique = listed.clone();
    unique.dedup();
    assert_eq!(unique, listed, "no job listed twice");
    assert!(listed.windows(2).all(|w| w[0] < w[1]), "ascending ids");
    let first_two_pages = &seeded[..60];
    let later_even: Vec<i64> = seeded[60..].iter().copied().step_by(2).collect();
    let expected: Vec<i64> = first_two_pages
        .iter()
        .copied()
        .chain(later_even)
        .chain(added)
        .collect();
    assert_eq!(listed, expected);
    assert!(pages >= 4, "paged: {pages}");

    // A cursor past the end is an empty last page; a negative one is bad usage.
    let past = cli.json(&["jobs", "--after", "1000000"]);
    assert_eq!(past, json!({ "jobs": [], "next": null }));
    let bad = cli.run(&["jobs", "--after", "-3"]);
    assert_eq!(bad.status.code(), Some(2));
    let zero = cli.run(&["jobs", "--limit", "0"]);
    assert_eq!(zero.status.code(), Some(2));
}

#[test]
fn jobs_help_documents_the_cursor_and_all() {
    let cli = Cli::new();
    let help = cli.ok(&["jobs", "--help"]);
    for needle in ["--after <ID>", "--all", "cursor", "--json --all"] {
        assert!(help.contains(needle), "{needle:?} missing from:\n{help}");
    }
}
