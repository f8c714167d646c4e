//! The message headers Tasque reads and writes.
//!
//! All of them are ordinary AMQP headers, so any client can set or read them.

use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::BasicProperties;

/// Names the task (the handler) that should run a message. When absent, the
/// routing key is used.
pub const TASK: &str = "x-tasque-task";
/// How many attempts at the message have already failed (absent means 0).
/// Set on the copies the consumer republishes for a retry.
pub const ATTEMPTS: &str = "x-tasque-attempts";
/// Why the previous attempt failed (on retried copies).
pub const LAST_ERROR: &str = "x-tasque-last-error";
/// Why the message was dead-lettered (on dead-lettered copies).
pub const DEAD_LETTER_REASON: &str = "x-tasque-dead-letter-reason";
/// The queue the message was consumed from (on dead-lettered copies).
pub const SOURCE_QUEUE: &str = "x-tasque-source-queue";

/// Longest error text copied into a header; longer texts are cut.
const MAX_REASON_BYTES: usize = 1024;

/// A string header, whichever AMQP string type carries it.
pub(crate) fn string(properties: &BasicProperties, name: &str) -> Option<String> {
    match properties.headers().as_ref()?.inner().get(name)? {
        AMQPValue::LongString(value) => {
            Some(String::from_utf8_lossy(value.as_bytes()).into_owned())
        }
        AMQPValue::ShortString(value) => Some(value.as_str().to_owned()),
        _ => None,
    }
}

/// A non-negative integer header, whichever AMQP integer type carries it.
pub(crate) fn count(properties: &BasicProperties, name: &str) -> Option<u32> {
    let value: i64 = match properties.headers().as_ref()?.inner().get(name)? {
        AMQPValue::ShortShortInt(v) => (*v).into(),
        AMQPValue::ShortShortUInt(v) => (*v).into(),
        AMQPValue::ShortInt(v) => (*v).into(),
        AMQPValue::ShortUInt(v) => (*v).into(),
        AMQPValue::LongInt(v) => (*v).into(),
        AMQPValue::LongUInt(v) => (*v).into(),
        AMQPValue::LongLongInt(v) => *v,
        AMQPValue::LongString(v) => std::str::from_utf8(v.as_bytes())
            .ok()?
            .trim()
            .parse()
            .ok()?,
        _ => return None,
    };
    u32::try_from(value).ok()
}

/// A copy of `properties` with the given headers set (others kept).
pub(crate) fn with(
    properties: &BasicProperties,
    updates: Vec<(&str, AMQPValue)>,
) -> BasicProperties {
    let mut table = properties.headers().clone().unwrap_or_default();
    for (name, value) in updates {
        table.insert(ShortString::from(name), value);
    }
    properties.clone().with_headers(table)
}

/// A string header value, cut to a bounded length on a character boundary.
pub(crate) fn text(value: &str) -> AMQPValue {
    let mut end = value.len().min(MAX_REASON_BYTES);
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    AMQPValue::LongString(LongString::from(&value[..end]))
}

/// An integer header value.
pub(crate) fn number(value: u32) -> AMQPValue {
    AMQPValue::LongLongInt(value.into())
}

/// A header table with the given string headers.
pub(crate) fn table(entries: impl IntoIterator<Item = (String, String)>) -> FieldTable {
    let mut table = FieldTable::default();
    for (name, value) in entries {
        table.insert(ShortString::from(name), text(&value));
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_read_any_integer_type_and_refuse_negatives() {
        let props = with(
            &BasicProperties::default(),
            vec![
                (ATTEMPTS, AMQPValue::ShortShortUInt(3)),
                ("neg", AMQPValue::LongInt(-1)),
                ("text", AMQPValue::LongString("7".into())),
            ],
        );
        assert_eq!(count(&props, ATTEMPTS), Some(3));
        assert_eq!(count(&props, "neg"), None);
        assert_eq!(count(&props, "text"), Some(7));
        assert_eq!(count(&props, "missing"), None);
    }

    #[test]
    fn long_reasons_are_cut_on_a_char_boundary() {
        let long = "é".repeat(MAX_REASON_BYTES);
        let AMQPValue::LongString(value) = text(&long) else {
            panic!("not a string")
        };
        assert!(value.as_bytes().len() <= MAX_REASON_BYTES);
        assert!(std::str::from_utf8(value.as_bytes()).is_ok());
    }
}
