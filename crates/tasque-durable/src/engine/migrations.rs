//! Versioned schema migrations, in one shape on every engine.
//!
//! # The contract
//!
//! An engine's schema is a list of [`Migration`]s, one `.sql` file per version under the
//! engine crate's `migrations/` directory (`v1.sql`, `v2.sql`, ...), each starting with a
//! `-- name: ...` line. Versions are 1, 2, 3... with no gap; a new version is a new file added at
//! the end of the list, and an applied one is never edited. A database records the versions it
//! has applied; [`plan`] says which to apply next (those above its version, in order) and refuses
//! a database newer than the build with [`Error::SchemaTooNew`]. How a migration is applied
//! atomically and recorded (a transaction, a lock against concurrent migrators) is the engine's.

use crate::error::{Error, Result};

/// One schema version: its number, name and SQL (one or more statements).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Migration {
    /// The version (1 for the first).
    pub version: i64,
    /// The SQL file's text.
    pub sql: &'static str,
}

impl Migration {
    /// A migration from its SQL file's text.
    pub const fn new(version: i64, sql: &'static str) -> Self {
        Migration { version, sql }
    }

    /// Its name: the file's `-- name: ...` line (empty when missing).
    pub fn name(&self) -> &'static str {
        self.sql
            .lines()
            .next()
            .and_then(|line| line.strip_prefix("-- name:"))
            .map_or("", str::trim)
    }
}

/// The newest version of `all`.
pub fn latest(all: &[Migration]) -> i64 {
    all.last().map_or(0, |m| m.version)
}

/// The migrations a database at version `current` still needs, in order. Refuses a database
/// newer than `all` knows, and a list whose versions are not 1, 2, 3... without a gap.
pub fn plan(all: &[Migration], current: i64) -> Result<&[Migration]> {
    for (i, migration) in all.iter().enumerate() {
        let expected = i64::try_from(i).unwrap_or(i64::MAX).saturating_add(1);
        if migration.version != expected {
            return Err(Error::Corrupt(format!(
                "migration list: version {} where {expected} belongs",
                migration.version
            )));
        }
    }
    super::check_schema_version(current, latest(all))?;
    let done = usize::try_from(current.max(0)).unwrap_or(usize::MAX);
    Ok(all.get(done..).unwrap_or(&[]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: &[Migration] = &[
        Migration::new(1, "-- name: first\nCREATE TABLE a (x INT);"),
        Migration::new(2, "-- name:  second \nALTER TABLE a ADD y INT;"),
        Migration::new(3, "CREATE INDEX a_x ON a (x);"),
    ];

    #[test]
    fn a_database_gets_the_versions_above_its_own_in_order() {
        assert_eq!(plan(ALL, 0).unwrap(), ALL);
        assert_eq!(plan(ALL, 1).unwrap(), &ALL[1..]);
        assert!(plan(ALL, 3).unwrap().is_empty());
        assert_eq!(latest(ALL), 3);
    }

    #[test]
    fn a_newer_database_and_a_gap_in_the_list_are_refused() {
        assert!(matches!(
            plan(ALL, 4),
            Err(Error::SchemaTooNew {
                found: 4,
                supported: 3
            })
        ));
        let gap = [ALL[0], ALL[2]];
        assert!(matches!(plan(&gap, 0), Err(Error::Corrupt(_))));
    }

    #[test]
    fn names_come_from_the_first_line() {
        assert_eq!(ALL[0].name(), "first");
        assert_eq!(ALL[1].name(), "second");
        assert_eq!(ALL[2].name(), "");
    }
}
