//! Secrets never printed: passwords in database and broker URLs are masked in every message.
//!
//! A URL is parsed with the `url` crate; its password (the user-info part) and the values of
//! query parameters that carry credentials (`?password=…`, `sslpassword`, `token`…) are
//! replaced by `***`. A URL that does not parse is not printed at all when it could hold a
//! secret.
//!
//! As a last line of defence, [`remember`] records the secrets of the URLs the command line
//! names, and [`scrub`] removes them (raw and percent-decoded) from any text: every error line
//! and every log line (through [`ScrubbedStderr`]) goes through it, so a driver message that
//! quotes a URL or a password cannot leak it either.

use std::borrow::Cow;
use std::io::Write;
use std::sync::OnceLock;

use url::Url;

/// What a secret is replaced by.
pub const MASK: &str = "***";

/// Query parameters whose values are credentials (compared case-insensitively).
const SECRET_PARAMS: &[&str] = &[
    "password",
    "pass",
    "passwd",
    "pwd",
    "sslpassword",
    "secret",
    "token",
    "access_token",
    "auth_token",
    "api_key",
    "apikey",
];

fn is_secret_param(name: &str) -> bool {
    SECRET_PARAMS
        .iter()
        .any(|secret| secret.eq_ignore_ascii_case(name))
}

/// `url` with its password and credential parameters masked, for messages.
pub fn redact(url: &str) -> String {
    let Ok(mut parsed) = Url::parse(url) else {
        return if could_hold_secret(url) {
            "<a URL that does not parse (not shown: it may hold a password)>".to_owned()
        } else {
            url.to_owned()
        };
    };
    if parsed.password().is_some() {
        // Fails only for URLs that cannot have user info; those have no password either.
        let _ = parsed.set_password(Some(MASK));
    }
    if parsed.query_pairs().any(|(name, _)| is_secret_param(&name)) {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(name, value)| {
                let value = if is_secret_param(&name) {
                    MASK.to_owned()
                } else {
                    value.into_owned()
                };
                (name.into_owned(), value)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string()
}

/// Whether text that is not a URL might still carry a credential.
fn could_hold_secret(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    text.contains('@') || SECRET_PARAMS.iter().any(|param| lower.contains(param))
}

/// The secrets `url` carries: its password and credential parameter values, each as written
/// and percent-decoded. Empty for a URL without any (or one that does not parse).
pub fn secrets_of(url: &str) -> Vec<String> {
    let Ok(parsed) = Url::parse(url) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    if let Some(password) = parsed.password() {
        found.push(password.to_owned());
        found.push(decode(password).into_owned());
    }
    if let Some(query) = parsed.query() {
        for pair in query.split('&') {
            if let Some((name, value)) = pair.split_once('=') {
                if is_secret_param(&decode(name)) {
                    found.push(value.to_owned());
                    found.push(decode(value).into_owned());
                }
            }
        }
    }
    found.retain(|secret| !secret.is_empty());
    found.sort_by_key(|secret| std::cmp::Reverse(secret.len()));
    found.dedup();
    found
}

fn decode(text: &str) -> Cow<'_, str> {
    percent_encoding::percent_decode_str(text).decode_utf8_lossy()
}

/// The URLs named on this command line and their secrets, set once by [`remember`].
struct Known {
    urls: Vec<(String, String)>,
    secrets: Vec<String>,
}

static KNOWN: OnceLock<Known> = OnceLock::new();

/// Records the URLs the command line names, so that [`scrub`] can remove their secrets from
/// any text. Call once, before anything is printed.
pub fn remember<'a>(urls: impl IntoIterator<Item = &'a str>) {
    let mut known = Known {
        urls: Vec::new(),
        secrets: Vec::new(),
    };
    for url in urls {
        let redacted = redact(url);
        if redacted != url {
            known.urls.push((url.to_owned(), redacted));
        }
        known.secrets.extend(secrets_of(url));
    }
    known
        .urls
        .sort_by_key(|(url, _)| std::cmp::Reverse(url.len()));
    known
        .secrets
        .sort_by_key(|secret| std::cmp::Reverse(secret.len()));
    let _ = KNOWN.set(known);
}

/// `text` with every remembered URL replaced by its redacted form and every remembered secret
/// by [`MASK`].
pub fn scrub(text: &str) -> Cow<'_, str> {
    let Some(known) = KNOWN.get() else {
        return Cow::Borrowed(text);
    };
    scrub_with(text, &known.urls, &known.secrets)
}

fn scrub_with<'t>(text: &'t str, urls: &[(String, String)], secrets: &[String]) -> Cow<'t, str> {
    let mut out = Cow::Borrowed(text);
    for (url, redacted) in urls {
        if out.contains(url.as_str()) {
            out = Cow::Owned(out.replace(url.as_str(), redacted));
        }
    }
    for secret in secrets {
        if out.contains(secret.as_str()) {
            out = Cow::Owned(out.replace(secret.as_str(), MASK));
        }
    }
    out
}

/// A `tracing` writer: each log line goes to stderr with the remembered secrets scrubbed.
#[derive(Default)]
pub struct ScrubbedStderr {
    buffer: Vec<u8>,
}

impl Write for ScrubbedStderr {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&self.buffer).into_owned();
        self.buffer.clear();
        std::io::stderr().write_all(scrub(&text).as_bytes())
    }
}

impl Drop for ScrubbedStderr {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_in_the_user_info_is_masked() {
        assert_eq!(
            redact("amqp://guest:secret@host:5672/%2f"),
            "amqp://guest:***@host:5672/%2f"
        );
        assert_eq!(
            redact("postgres://app:s3cr%40t@db.internal:5432/app"),
            "postgres://app:***@db.internal:5432/app"
        );
        assert_eq!(
            redact("mysql://root:hunter2@127.0.0.1/test"),
            "mysql://root:***@127.0.0.1/test"
        );
    }

    #[test]
    fn a_password_in_the_query_is_masked() {
        let redacted = redact("postgres://db/app?user=app&password=hunter2&sslmode=require");
        assert_eq!(
            redacted,
            "postgres://db/app?user=app&password=***&sslmode=require"
        );
        let redacted = redact("mysql://db/app?PASSWORD=hunter2");
        assert!(!redacted.contains("hunter2"), "{redacted}");
        let redacted = redact("postgres://db/app?sslpassword=keypass&application_name=x");
        assert!(!redacted.contains("keypass"), "{redacted}");
        assert!(redacted.contains("application_name=x"), "{redacted}");
    }

    #[test]
    fn passwords_in_both_places_are_masked() {
        let redacted = redact("postgres://app:one@db/app?password=two");
        assert!(!redacted.contains("one") && !redacted.contains("two"));
        assert_eq!(redacted, "postgres://app:***@db/app?password=***");
    }

    #[test]
    fn urls_without_secrets_are_unchanged() {
        for url in [
            "amqp://host/%2f",
            "sqlite://jobs.db",
            "sqlite::memory:",
            "postgres://app@db/x",
            "postgres://db/app?sslmode=require",
        ] {
            assert_eq!(redact(url), url);
        }
    }

    #[test]
    fn a_url_that_does_not_parse_is_hidden_when_it_may_hold_a_secret() {
        let redacted = redact("postgres://app:pw@[bad/app");
        assert!(!redacted.contains("pw@"), "{redacted}");
        assert_eq!(redact("jobs.db"), "jobs.db");
    }

    #[test]
    fn scrubbing_removes_urls_and_secrets_raw_and_decoded() {
        let url = "postgres://app:s3cr%40t@db/app?password=p%2Bq";
        let urls = vec![(url.to_owned(), redact(url))];
        let secrets = secrets_of(url);
        assert!(secrets.contains(&"s3cr@t".to_owned()), "{secrets:?}");
        assert!(secrets.contains(&"p+q".to_owned()), "{secrets:?}");
        let text = format!("cannot use {url}: auth failed for s3cr@t and s3cr%40t, p+q");
        let scrubbed = scrub_with(&text, &urls, &secrets);
        for leaked in ["s3cr", "p+q", "p%2Bq"] {
            assert!(!scrubbed.contains(leaked), "{scrubbed}");
        }
        assert!(scrubbed.contains("postgres://app:***@db/app?password=***"));
    }
}
