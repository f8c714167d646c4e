//! A reachability check of a server database whose pool is slow to open.
//!
//! A connection pool retries an unreachable server until its acquire timeout (tens of
//! seconds) and then reports a generic "pool timed out". When opening takes longer than
//! [`PROBE_AFTER`], a plain TCP connect to the URL's host and port names the real cause
//! (connection refused, unknown host) at once, so the CLI can say so on one line. URLs without a TCP host (SQLite, Unix sockets) and URLs
//! this parser does not understand are not probed: the engine reports on its own.

use std::time::Duration;

use crate::fail::CliError;
use crate::secrets::redact;

/// How long opening a store may take before the server is probed.
pub const PROBE_AFTER: Duration = Duration::from_secs(2);

/// How long the TCP connect may take.
const PROBE_LIMIT: Duration = Duration::from_secs(10);

/// Fails with [`CliError::Database`] when the server named by `url` cannot be reached.
pub async fn server_reachable(url: &str) -> Result<(), CliError> {
    let Some((host, port)) = host_and_port(url) else {
        return Ok(());
    };
    let unreachable = |why: String| {
        CliError::Database(format!(
            "cannot reach the database at {}: {why}",
            redact(url)
        ))
    };
    match tokio::time::timeout(
        PROBE_LIMIT,
        tokio::net::TcpStream::connect((host.as_str(), port)),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(error)) => Err(unreachable(format!("{host}:{port}: {error}"))),
        Err(_) => Err(unreachable(format!(
            "{host}:{port}: no answer within {PROBE_LIMIT:?}"
        ))),
    }
}

/// The TCP host and port of a `postgres://`, `postgresql://`, `mysql://` or `mariadb://`
/// URL (default ports 5432 and 3306); `None` for anything else.
fn host_and_port(url: &str) -> Option<(String, u16)> {
    let (scheme, rest) = url.split_once("://")?;
    let default_port = match scheme {
        "postgres" | "postgresql" => 5432,
        "mysql" | "mariadb" => 3306,
        _ => return None,
    };
    if rest.contains("host=") || rest.contains("socket=") {
        return None; // a host given as a parameter, often a Unix socket
    }
    let authority = rest.split(['/', '?']).next()?;
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if hostport.is_empty() || hostport.contains(',') {
        return None; // no host (local socket), or several hosts
    }
    let (host, port) = if let Some(bracketed) = hostport.strip_prefix('[') {
        let (host, after) = bracketed.split_once(']')?;
        (host, after.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (hostport, None),
        }
    };
    let port = match port {
        Some(port) => port.parse().ok()?,
        None => default_port,
    };
    let host = percent_decode(host)?;
    Some((host, port))
}

/// Decodes `%XX` escapes (a host may be written that way); `None` if malformed.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let host = String::from_utf8(out).ok()?;
    (!host.is_empty() && !host.starts_with('/')).then_some(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_host_and_port_of_server_urls() {
        let cases = [
            (
                "postgres://u:p@db.internal:6543/app",
                Some(("db.internal", 6543)),
            ),
            ("postgresql://db/app?sslmode=disable", Some(("db", 5432))),
            ("mysql://root@127.0.0.1/test", Some(("127.0.0.1", 3306))),
            ("postgres://[::1]:5433/x", Some(("::1", 5433))),
            ("postgres:///app?host=/var/run/postgresql", None),
            ("postgres://u@%2Fvar%2Frun/app", None),
            ("postgres://a:1,b:2/app", None),
            ("sqlite://jobs.db", None),
            ("sqlite::memory:", None),
        ];
        for (url, expected) in cases {
            let expected = expected.map(|(h, p): (&str, u16)| (h.to_owned(), p));
            assert_eq!(host_and_port(url), expected, "{url}");
        }
    }

    #[tokio::test]
    async fn an_unreachable_server_is_reported_at_once() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let url = format!("postgres://app:secret@127.0.0.1:{port}/x");
        let error = server_reachable(&url).await.unwrap_err();
        assert_eq!(error.exit_code(), crate::fail::EXIT_DATABASE);
        let message = error.to_string();
        assert!(message.contains("cannot reach the database"), "{message}");
        assert!(!message.contains("secret"), "{message}");
    }
}
