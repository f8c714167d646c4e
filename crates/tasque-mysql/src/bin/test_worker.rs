//! A minimal worker process for the multi-process fault tests (`tests/processes.rs`).
//!
//! Usage: `tasque-my-test-worker URL TABLE_PREFIX NAMESPACE QUEUE CONCURRENCY LEASE_MS LOG
//! [HANDLER_MS]`
//!
//! Works task `noop` (which returns after HANDLER_MS times 1 to 4, by job id, default 0: staggered,
//! so that a process's jobs do not all finish at once and it nearly always holds some) until the
//! queue has nothing ready, running or scheduled, appending the id of every job it ran to LOG, one
//! per line, then shuts down. It exists because the CLI's `exec` task forks a process per job,
//! which would make 10,000 jobs take minutes on a small machine, and the tests need each process's
//! own record of what it ran to prove that no job ran twice.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tasque_mysql::{MySqlConfig, MySqlStore};
use tasque_worker::{Handlers, JobContext, Worker};

fn arg(args: &[String], i: usize, name: &str) -> String {
    args.get(i)
        .cloned()
        .unwrap_or_else(|| panic!("missing argument {i}: {name}"))
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let url = arg(&args, 1, "URL");
    let prefix = arg(&args, 2, "TABLE_PREFIX");
    let namespace = arg(&args, 3, "NAMESPACE");
    let queue = arg(&args, 4, "QUEUE");
    let concurrency: usize = arg(&args, 5, "CONCURRENCY").parse().expect("CONCURRENCY");
    let lease_ms: u64 = arg(&args, 6, "LEASE_MS").parse().expect("LEASE_MS");
    let log_path = arg(&args, 7, "LOG");
    let handler_ms: u64 = args.get(8).map_or(0, |ms| ms.parse().expect("HANDLER_MS"));
    let config = MySqlConfig::new(url)
        .with_table_prefix(prefix)
        .with_namespace(namespace);
    let store = MySqlStore::connect(config).await.expect("connect");
    let log = Arc::new(Mutex::new(std::io::BufWriter::new(
        std::fs::File::create(&log_path).expect("log file"),
    )));
    let handlers = Handlers::new();
    let ran = log.clone();
    handlers.learn(
        "noop",
        move |ctx: JobContext, _params: serde_json::Value| {
            let ran = ran.clone();
            async move {
                if handler_ms > 0 {
                    let stagger = 1 + ctx.job_id().0.rem_euclid(4) as u64;
                    tokio::time::sleep(Duration::from_millis(handler_ms * stagger)).await;
                }
                let mut log = ran.lock().unwrap_or_else(|e| e.into_inner());
                let _ = writeln!(log, "{}", ctx.job_id());
                Ok::<_, std::io::Error>(serde_json::Value::Null)
            }
        },
    );
    let worker = Worker::builder(Arc::new(store))
        .handlers(handlers)
        .queues([queue])
        .concurrency(concurrency)
        .lease(Duration::from_millis(lease_ms))
        .rescue_interval(Duration::from_millis(200))
        .build()
        .expect("worker")
        .start()
        .expect("start");
    eprintln!("ready {}", worker.worker_id());
    // Scheduled jobs count: a job rescued from a killed process waits out its retry backoff.
    worker.wait_until_empty(true, Duration::MAX).await;
    let stats = worker.stats();
    worker.shutdown(Duration::from_secs(10)).await;
    log.lock()
        .unwrap_or_else(|e| e.into_inner())
        .flush()
        .expect("flush log");
    println!("completed {}", stats.completed);
}
