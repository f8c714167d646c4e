//! `tasque dashboard` and `tasque work --metrics-bind`, end to end on a SQLite file.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::Cli;

const WAIT: Duration = Duration::from_secs(60);

/// A child process killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// GET `path` from 127.0.0.1:`port`: (status, body); `None` while nothing listens.
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((status, body))
}

/// Polls `path` until `done` accepts the body (the server starts, or a job finishes).
fn wait_for(port: u16, path: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some((200, body)) = get(port, path) {
            if done(&body) {
                return body;
            }
        }
        assert!(
            Instant::now() < deadline,
            "GET {path} did not become ready within {WAIT:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn dashboard_refuses_a_public_bind_without_a_token() {
    let cli = Cli::new();
    cli.ok(&["migrate"]);
    let output = cli.run(&["dashboard", "--bind", "0.0.0.0:0"]);
    assert_eq!(output.status.code(), Some(2), "bad usage");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--token") && stderr.contains("--read-only"),
        "{stderr}"
    );
}

#[test]
fn dashboard_serves_pages_and_a_worker_serves_its_metrics() {
    let cli = Cli::new();
    let job = cli.enqueue(&["exec", "--", "true"]);

    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let dashboard = Running(
        cli.command(&["dashboard", "--bind", &bind])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let queues = wait_for(port, "/api/queues", |_| true);
    assert!(queues.contains("\"default\""), "{queues}");
    let page = wait_for(port, &format!("/jobs/{job}"), |_| true);
    assert!(page.contains("Why is this job not running?"), "{page}");
    drop(dashboard);

    let metrics_port = free_port();
    let metrics_bind = format!("127.0.0.1:{metrics_port}");
    let _worker = Running(
        cli.command(&[
            "work",
            "--metrics-bind",
            &metrics_bind,
            "--concurrency",
            "3",
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap(),
    );
    // The counter moves when the job finishes; the gauge when the cached snapshot refreshes.
    let text = wait_for(metrics_port, "/metrics", |body| {
        body.contains(
            "tasque_jobs_finished_total{kind=\"exec\",outcome=\"completed\",queue=\"default\"} 1",
        ) && body.contains("tasque_queue_depth{queue=\"default\",state=\"completed\"} 1")
    });
    assert!(
        text.contains("tasque_worker_capacity{queue=\"default\"} 3"),
        "{text}"
    );
}
