//! Which servers the engine supports: MySQL 8.0.1+ and MariaDB 10.6+, the first releases with
//! `FOR UPDATE SKIP LOCKED` (and, on MariaDB, `JSON_TABLE` and the other features the schema
//! relies on). Older servers are refused when a store connects.

use std::fmt;

/// The oldest MySQL release the engine supports.
pub const MIN_MYSQL: (u32, u32, u32) = (8, 0, 1);
/// The oldest MariaDB release the engine supports.
pub const MIN_MARIADB: (u32, u32, u32) = (10, 6, 0);

/// A server product and version, parsed from `SELECT VERSION()`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerVersion {
    /// MariaDB (true) or MySQL (false).
    pub mariadb: bool,
    /// Major, minor and patch numbers.
    pub number: (u32, u32, u32),
    /// The full version string the server reported.
    pub raw: String,
}

impl fmt::Display for ServerVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (a, b, c) = self.number;
        let product = if self.mariadb { "MariaDB" } else { "MySQL" };
        write!(f, "{product} {a}.{b}.{c}")
    }
}

/// Errors specific to the MySQL engine. They reach callers wrapped in
/// [`tasque_durable::Error::Database`]; downcast its source to act on them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MySqlError {
    /// The server is too old for this engine.
    #[error(
        "{found} is not supported: Tasque needs {needed} or newer (for FOR UPDATE SKIP LOCKED)"
    )]
    ServerTooOld {
        /// The server found.
        found: ServerVersion,
        /// The oldest supported release of that product, e.g. `"MariaDB 10.6"`.
        needed: &'static str,
    },
    /// The server's version string could not be understood.
    #[error("cannot parse the server version {0:?}")]
    UnknownVersion(String),
}

impl ServerVersion {
    /// Parses a `VERSION()` string: `8.0.36`, `8.4.0-log`, `10.11.6-MariaDB-0+deb12u1`, or the
    /// `5.5.5-10.6.12-MariaDB` form old MariaDB clients see.
    pub fn parse(raw: &str) -> Result<ServerVersion, MySqlError> {
        let mariadb = raw.to_ascii_lowercase().contains("mariadb");
        let text = if mariadb {
            raw.strip_prefix("5.5.5-").unwrap_or(raw)
        } else {
            raw
        };
        let core = text.split(['-', '+', ' ']).next().unwrap_or("");
        let mut parts = core.split('.').map(|p| p.parse::<u32>());
        let unknown = || MySqlError::UnknownVersion(raw.to_string());
        let major = parts.next().and_then(|p| p.ok()).ok_or_else(unknown)?;
        let minor = parts.next().and_then(|p| p.ok()).ok_or_else(unknown)?;
        let patch = parts.next().and_then(|p| p.ok()).unwrap_or(0);
        Ok(ServerVersion {
            mariadb,
            number: (major, minor, patch),
            raw: raw.to_string(),
        })
    }

    /// Refuses servers older than [`MIN_MYSQL`] / [`MIN_MARIADB`].
    pub fn check_supported(&self) -> Result<(), MySqlError> {
        let (min, needed) = if self.mariadb {
            (MIN_MARIADB, "MariaDB 10.6")
        } else {
            (MIN_MYSQL, "MySQL 8.0.1")
        };
        if self.number < min {
            return Err(MySqlError::ServerTooOld {
                found: self.clone(),
                needed,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(raw: &str) -> Result<(), MySqlError> {
        ServerVersion::parse(raw)?.check_supported()
    }

    #[test]
    fn versions_parse_for_both_products() {
        let v = ServerVersion::parse("10.11.6-MariaDB-0+deb12u1").unwrap();
        assert!(v.mariadb);
        assert_eq!(v.number, (10, 11, 6));
        let v = ServerVersion::parse("5.5.5-10.6.12-MariaDB-log").unwrap();
        assert_eq!((v.mariadb, v.number), (true, (10, 6, 12)));
        let v = ServerVersion::parse("8.0.36").unwrap();
        assert_eq!((v.mariadb, v.number), (false, (8, 0, 36)));
        let v = ServerVersion::parse("8.4.0-log").unwrap();
        assert_eq!(v.number, (8, 4, 0));
        assert!(ServerVersion::parse("garbage").is_err());
    }

    #[test]
    fn old_servers_are_refused_naming_the_version_needed() {
        assert!(check("10.11.6-MariaDB-0+deb12u1").is_ok());
        assert!(check("10.6.0-MariaDB").is_ok());
        assert!(check("11.4.2-MariaDB").is_ok());
        assert!(check("8.0.1").is_ok());
        assert!(check("9.1.0").is_ok());
        let err = check("10.5.23-MariaDB").unwrap_err();
        assert!(err.to_string().contains("MariaDB 10.6"), "{err}");
        assert!(matches!(err, MySqlError::ServerTooOld { .. }));
        let err = check("5.7.44-log").unwrap_err();
        assert!(err.to_string().contains("MySQL 8.0.1"), "{err}");
        assert!(check("8.0.0-dmr").is_err());
        assert!(check("10.4.32-MariaDB").is_err());
    }
}
