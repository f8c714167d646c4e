//! SQLite on a full disk (issue 18): the database lives on a small tmpfs this test mounts
//! (which needs root; under `CI=true` a failed mount fails the test, elsewhere it is skipped
//! loudly). With the disk full, `tasque enqueue` fails with a clear error and writes nothing,
//! nothing already stored is lost, and a running worker goes on once space returns.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use tasque_durable::{JobFilter, JobState, Store};
use tasque_sqlite::{SqliteConfig, SqliteStore};

const PATIENCE: Duration = Duration::from_secs(120);

/// A small tmpfs, unmounted on drop.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let mounted = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size}"),
                "tasque-full-disk",
            ])
            .arg(dir.path())
            .output();
        match mounted {
            Ok(output) if output.status.success() => Some(SmallDisk { dir }),
            other => {
                let why = format!("{other:?}");
                if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
                    panic!("cannot mount a small tmpfs under CI (the test needs root): {why}");
                }
                eprintln!(
                    "\n!!!!!!!! SKIPPED: cannot mount a small tmpfs (needs root): {why} !!!!!!!!\n"
                );
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Fills the disk with one file until a write fails; returns the file.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).unwrap();
    let chunk = vec![0u8; 16 * 1024];
    while file
        .write_all(&chunk)
        .and_then(|()| file.sync_all())
        .is_ok()
    {}
    path
}

fn tasque(url: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tasque"));
    command
        .args(args)
        .env("TASQUE_DATABASE_URL", url)
        .env_remove("TASQUE_NAMESPACE")
        .stdin(Stdio::null());
    command
}

fn run(url: &str, args: &[&str]) -> Output {
    tasque(url, args).output().expect("run tasque")
}

fn enqueue(url: &str, params: &str) -> Output {
    run(url, &["--json", "enqueue", "exec", "--", "echo", params])
}

async fn count(store: &dyn Store, states: &[JobState]) -> u64 {
    store
        .count(JobFilter::all().states(states.to_vec()))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_enqueues_clearly_loses_nothing_and_work_resumes() {
    let Some(disk) = SmallDisk::mount("4m") else {
        return;
    };
    let path = disk.path().join("jobs.db");
    let url = format!("sqlite://{}", path.display());
    for i in 0..10 {
        let output = enqueue(&url, &format!("before-{i}"));
        assert!(output.status.success(), "{output:?}");
    }
    let worked = run(&url, &["work", "--until-empty", "--poll-interval", "20ms"]);
    assert!(worked.status.success(), "{worked:?}");
    let store = SqliteStore::connect(SqliteConfig::file(&path))
        .await
        .unwrap();
    assert_eq!(count(&store, &[JobState::Completed]).await, 10);

    // The disk fills up. Enqueues with bigger and bigger params until one needs space.
    let filler = fill(disk.path());
    let mut accepted = 0u64;
    let mut refusal = None;
    for i in 0..200 {
        let params = format!("{i}-{}", "x".repeat(64 * 1024));
        let output = enqueue(&url, &params);
        if output.status.success() {
            accepted += 1;
        } else {
            refusal = Some(output);
            break;
        }
    }
    let refusal = refusal.expect("an enqueue failed once the disk was full");
    let stderr = String::from_utf8_lossy(&refusal.stderr);
    assert_eq!(refusal.status.code(), Some(3), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("disk is full") && stderr.contains("nothing was written"),
        "{stderr}"
    );

    // Nothing stored is lost, and the refused job was not half-written.
    assert_eq!(count(&store, &[JobState::Completed]).await, 10);
    assert_eq!(count(&store, &[JobState::Available]).await, accepted);
    let listed = run(&url, &["--json", "jobs", "--limit", "1000"]);
    assert!(
        listed.status.success(),
        "reading works on a full disk: {listed:?}"
    );
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(
        listed["jobs"].as_array().map(Vec::len),
        Some(10 + accepted as usize)
    );

    // A worker started on the full disk waits it out, then works once space returns.
    let mut worker = tasque(&url, &["work", "--poll-interval", "20ms"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start tasque work");
    // The disk stays full for a while (a deliberate fault length, not a wait for anything).
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        worker.try_wait().unwrap().is_none(),
        "the worker gave up on a full disk"
    );
    std::fs::remove_file(filler).unwrap();
    let again = enqueue(&url, "after");
    assert!(
        again.status.success(),
        "enqueue works once space returns: {again:?}"
    );
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while count(&store, &[JobState::Completed]).await < 10 + accepted + 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the worker did not go on once space returned"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pid = worker.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = worker.wait().unwrap();
    assert!(status.success(), "{status}");
    store.close().await;
}
