//! The statements of a MySQL migration file, and the checks that make each one safe to run
//! again.
//!
//! MySQL commits every DDL statement implicitly, so a migration cannot be one transaction. A
//! migration file is therefore a list of statements, each introduced by a directive line, and
//! each safe to run again when a migrator died half-way through the file:
//!
//! ```sql
//! -- name: what the version does
//! -- free comments...
//! -- step
//! CREATE TABLE IF NOT EXISTS @jobs@ (...)
//! -- step unless column jobs holds_queue
//! ALTER TABLE @jobs@ ADD COLUMN holds_queue BOOLEAN NOT NULL DEFAULT FALSE
//! ```
//!
//! - `-- step`: a statement idempotent by itself (`CREATE TABLE IF NOT EXISTS`, `DROP ... IF
//!   EXISTS`, a `CREATE PROCEDURE` after its `DROP PROCEDURE IF EXISTS`);
//! - `-- step unless column TABLE COLUMN`, `-- step unless index TABLE INDEX`,
//!   `-- step unless constraint TABLE NAME`, `-- step unless table TABLE`: a statement that runs
//!   only when what it creates is missing, looked up in `information_schema`. TABLE is the
//!   table's suffix in the namespace (`jobs`, `queues`, ...); names may use `@stem@`. Make such
//!   a statement one `ALTER TABLE` (atomic in InnoDB), so that "it exists" means "the whole
//!   statement was applied".
//!
//! A directive line starts at the beginning of the line; lines before the first directive are
//! the file's header. Every statement is sent as text (the server takes no `CREATE
//! PROCEDURE` as a prepared statement), one at a time, after its placeholders are rendered.

use tasque_durable::{Error, Result};

/// What a guarded statement creates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exists {
    /// A table: its suffix.
    Table(String),
    /// A column: (table suffix, column).
    Column(String, String),
    /// An index: (table suffix, index name).
    Index(String, String),
    /// A constraint: (table suffix, constraint name).
    Constraint(String, String),
}

/// One statement of a migration file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// When set, the statement runs only if this is missing.
    pub unless: Option<Exists>,
    /// The statement (placeholders not yet rendered).
    pub statement: String,
}

/// The value of a `-- KEY: value` header line of a migration file, if any.
pub fn header<'a>(script: &'a str, key: &str) -> Option<&'a str> {
    script
        .lines()
        .take_while(|line| !is_directive(line))
        .filter_map(|line| line.strip_prefix("--"))
        .filter_map(|line| line.trim().strip_prefix(key))
        .find_map(|rest| rest.strip_prefix(':'))
        .map(str::trim)
}

fn is_directive(line: &str) -> bool {
    line == "-- step" || line.starts_with("-- step ")
}

/// The statements of a migration file, in order. A malformed directive or an empty statement
/// is [`Error::Corrupt`], naming the file's version and the line.
pub fn parse(version: i64, script: &str) -> Result<Vec<Step>> {
    let mut steps: Vec<Step> = Vec::new();
    for (number, line) in script.lines().enumerate() {
        if is_directive(line) {
            let unless = parse_directive(line).ok_or_else(|| {
                Error::Corrupt(format!(
                    "MySQL migration v{version}, line {}: unknown directive {line:?}",
                    number + 1
                ))
            })?;
            steps.push(Step {
                unless,
                statement: String::new(),
            });
        } else if let Some(step) = steps.last_mut() {
            step.statement.push_str(line);
            step.statement.push('\n');
        }
    }
    for step in &mut steps {
        step.statement = step.statement.trim().to_string();
        if step.statement.is_empty() {
            return Err(Error::Corrupt(format!(
                "MySQL migration v{version}: a step without a statement"
            )));
        }
    }
    Ok(steps)
}

/// The guard of a directive line: `None` inside `Some` for a plain `-- step`, `None` when the
/// line is malformed.
fn parse_directive(line: &str) -> Option<Option<Exists>> {
    let words: Vec<&str> = line.split_whitespace().skip(2).collect();
    match words.as_slice() {
        [] => Some(None),
        ["unless", "table", table] => Some(Some(Exists::Table(table.to_string()))),
        ["unless", "column", table, column] => {
            Some(Some(Exists::Column(table.to_string(), column.to_string())))
        }
        ["unless", "index", table, index] => {
            Some(Some(Exists::Index(table.to_string(), index.to_string())))
        }
        ["unless", "constraint", table, name] => Some(Some(Exists::Constraint(
            table.to_string(),
            name.to_string(),
        ))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCRIPT: &str =
        "-- name: demo\n-- covers: 2\n-- a comment\n-- step\nCREATE TABLE a (\n    x INT\n)\n\
        -- step unless column jobs extra\nALTER TABLE @jobs@ ADD COLUMN extra INT\n\
        -- step unless index jobs jobs_x\nCREATE INDEX jobs_x ON @jobs@ (x)\n";

    #[test]
    fn statements_follow_their_directive() {
        let steps = parse(1, SCRIPT).unwrap();
        assert_eq!(steps.len(), 3);
        assert_eq!(steps[0].unless, None);
        assert_eq!(steps[0].statement, "CREATE TABLE a (\n    x INT\n)");
        assert_eq!(
            steps[1].unless,
            Some(Exists::Column("jobs".into(), "extra".into()))
        );
        assert_eq!(
            steps[2].unless,
            Some(Exists::Index("jobs".into(), "jobs_x".into()))
        );
        assert_eq!(header(SCRIPT, "covers"), Some("2"));
        assert_eq!(header(SCRIPT, "name"), Some("demo"));
        assert_eq!(header(SCRIPT, "missing"), None);
    }

    #[test]
    fn a_file_without_steps_has_none_and_bad_directives_are_refused() {
        assert!(parse(5, "-- name: placeholder\n").unwrap().is_empty());
        let err = parse(5, "-- step unless colum jobs x\nALTER TABLE t ADD x INT\n").unwrap_err();
        assert!(
            matches!(err, Error::Corrupt(ref m) if m.contains("line 1")),
            "{err:?}"
        );
        assert!(matches!(
            parse(5, "-- step\n\n-- step\nSELECT 1\n"),
            Err(Error::Corrupt(_))
        ));
    }
}
