//! Stopping and starting the test servers themselves, for the restart tests (issue 18).
//!
//! Shared (through `#[path]`) by `tasque-postgres/tests/restart.rs`,
//! `tasque-mysql/tests/restart.rs` and `tasque-amqp/tests/restart.rs`. Each of those is a test
//! binary with one test, so nothing else in that binary uses the server while it is down
//! (cargo runs test binaries one after another). The server is found from the test URL:
//!
//! * **PostgreSQL**: the cluster `pg_lsclusters` lists on the URL's port, stopped and started
//!   with `pg_ctlcluster` (fast shutdown: sessions are terminated).
//! * **MariaDB/MySQL**: the server process named by `@@pid_file`, stopped with SIGTERM and
//!   started again with the same command line.
//! * **RabbitMQ**: `rabbitmqctl stop` and `rabbitmq-server -detached` (the node the
//!   `RABBITMQ_*` environment names, by default the local one).
//!
//! [`Server::stop`] returns a [`Stopped`] guard: the server is always started again, when the
//! test calls [`Stopped::start`] or, should the test fail first, when the guard drops. Every
//! wait has a generous deadline: a loaded two-core machine may take a while.

#![allow(dead_code)]

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to stop or to come back.
const PATIENCE: Duration = Duration::from_secs(120);

/// A server a test may restart.
#[derive(Debug, Clone)]
pub enum Server {
    /// A PostgreSQL cluster.
    Postgres {
        /// Its major version, e.g. `15`.
        version: String,
        /// Its cluster name, e.g. `main`.
        cluster: String,
        /// Where it listens.
        address: SocketAddr,
    },
    /// A MariaDB or MySQL server process.
    MariaDb {
        /// Its command line, to start it again.
        argv: Vec<String>,
        /// Its process id.
        pid: u32,
        /// Where it listens.
        address: SocketAddr,
    },
    /// A RabbitMQ node.
    RabbitMq {
        /// Where it listens.
        address: SocketAddr,
    },
}

/// The host and port of a URL.
pub fn address_of(url: &str, default_port: u16) -> SocketAddr {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let with_port = if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:{default_port}")
    };
    with_port
        .to_socket_addrs()
        .expect("resolve the test server")
        .next()
        .expect("an address for the test server")
}

fn run(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|error| panic!("{program} could not run (it needs root): {error}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Whether something accepts TCP connections at `address`.
pub fn answers(address: SocketAddr) -> bool {
    TcpStream::connect_timeout(&address, Duration::from_secs(2)).is_ok()
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "{what} within {PATIENCE:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl Server {
    /// The PostgreSQL cluster serving `url`.
    pub fn postgres(url: &str) -> Server {
        let address = address_of(url, 5432);
        let listing = run("pg_lsclusters", &["--no-header"]);
        let port = address.port().to_string();
        let line = listing
            .lines()
            .find(|line| line.split_whitespace().nth(2) == Some(port.as_str()))
            .unwrap_or_else(|| panic!("no PostgreSQL cluster listens on port {port}: {listing}"));
        let mut fields = line.split_whitespace();
        Server::Postgres {
            version: fields.next().unwrap_or_default().to_owned(),
            cluster: fields.next().unwrap_or_default().to_owned(),
            address,
        }
    }

    /// The MariaDB/MySQL server serving `url`, whose `@@pid_file` is `pid_file`.
    pub fn mariadb(url: &str, pid_file: &str) -> Server {
        let pid: u32 = std::fs::read_to_string(pid_file)
            .unwrap_or_else(|error| panic!("read {pid_file}: {error}"))
            .trim()
            .parse()
            .expect("a process id");
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).expect("the server's command");
        let argv = cmdline
            .split(|byte| *byte == 0)
            .filter(|part| !part.is_empty())
            .map(|part| String::from_utf8_lossy(part).into_owned())
            .collect();
        Server::MariaDb {
            argv,
            pid,
            address: address_of(url, 3306),
        }
    }

    /// The RabbitMQ node serving `url`.
    pub fn rabbitmq(url: &str) -> Server {
        Server::RabbitMq {
            address: address_of(url, 5672),
        }
    }

    fn address(&self) -> SocketAddr {
        match self {
            Server::Postgres { address, .. }
            | Server::MariaDb { address, .. }
            | Server::RabbitMq { address } => *address,
        }
    }

    /// Stops the server, keeps it down for `outage` (a deliberate fault length, not a wait
    /// for anything), and starts it again.
    pub fn restart(&self, outage: Duration) {
        let stopped = self.stop();
        std::thread::sleep(outage);
        stopped.start();
    }

    /// Stops the server and waits until it no longer accepts connections.
    pub fn stop(&self) -> Stopped {
        eprintln!("restart test: stopping {self:?}");
        let stopped = Stopped {
            server: self.clone(),
            started: false,
        };
        match self {
            Server::Postgres {
                version, cluster, ..
            } => {
                run(
                    "pg_ctlcluster",
                    &[
                        "--skip-systemctl-redirect",
                        version,
                        cluster,
                        "stop",
                        "-m",
                        "fast",
                    ],
                );
            }
            Server::MariaDb { pid, .. } => {
                run("kill", &["-TERM", &pid.to_string()]);
                let proc_dir = format!("/proc/{pid}");
                wait_until("the database server process exited", || {
                    !std::path::Path::new(&proc_dir).exists()
                });
            }
            Server::RabbitMq { .. } => {
                run("rabbitmqctl", &["stop"]);
            }
        }
        let address = self.address();
        wait_until("the server stopped answering", || !answers(address));
        stopped
    }

    fn start(&self) {
        eprintln!("restart test: starting {self:?}");
        match self {
            Server::Postgres {
                version, cluster, ..
            } => {
                run(
                    "pg_ctlcluster",
                    &["--skip-systemctl-redirect", version, cluster, "start"],
                );
            }
            Server::MariaDb { argv, .. } => {
                let mut command = Command::new("setsid");
                command
                    .arg("-f")
                    .args(argv)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null());
                let status = command.status().expect("start the database server");
                assert!(status.success(), "starting {argv:?} failed: {status}");
            }
            Server::RabbitMq { .. } => {
                let status = Command::new("rabbitmq-server")
                    .arg("-detached")
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .expect("start rabbitmq-server");
                assert!(
                    status.success(),
                    "rabbitmq-server -detached failed: {status}"
                );
            }
        }
        let address = self.address();
        wait_until("the server answered again", || answers(address));
    }
}

/// A stopped server; started again by [`Stopped::start`] or, at the latest, on drop.
pub struct Stopped {
    server: Server,
    started: bool,
}

impl Stopped {
    /// Starts the server again and waits until it accepts connections.
    pub fn start(mut self) {
        self.started = true;
        self.server.start();
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        if !self.started && !answers(self.server.address()) {
            // Dropped while a failed test unwinds: a second panic would abort the process.
            let server = &self.server;
            let restarted =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| server.start()));
            if restarted.is_err() {
                eprintln!("restart test: could not start {server:?} again; run scripts/services");
            }
        }
    }
}
