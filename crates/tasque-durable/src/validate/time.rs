//! The range of timestamps and durations every engine accepts, and the one timestamp format
//! option documents use.
//!
//! Every engine stores times its own way (PostgreSQL `timestamptz`, MySQL `DATETIME(6)`,
//! SQLite integers) and every one is decoded into chrono; the range below is the part all of
//! them hold: MySQL's `DATETIME` range, in UTC. A duration is at most [`MAX_DURATION`], so the
//! clock plus any delay stays in that range (until the year 8999).

use std::ops::RangeInclusive;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};

use crate::error::{Error, Result};

/// Every timestamp an option accepts (`run_at`, a forced retry time, a sleep's end...), as
/// microseconds since the Unix epoch: from `1000-01-01T00:00:00Z` to
/// `9999-12-31T23:59:59.999999Z`, both included.
pub const TIMESTAMP_RANGE_MICROS: RangeInclusive<i64> =
    -30_610_224_000_000_000..=253_402_300_799_999_999;
/// The first instant of [`TIMESTAMP_RANGE_MICROS`], as text.
pub const MIN_TIMESTAMP_TEXT: &str = "1000-01-01T00:00:00Z";
/// The last instant of [`TIMESTAMP_RANGE_MICROS`], as text.
pub const MAX_TIMESTAMP_TEXT: &str = "9999-12-31T23:59:59.999999Z";

/// The longest duration in milliseconds any option accepts (delays, timeouts, cancellation
/// limits, retry delays, leases): 1,000 years of 365.25 days.
pub const MAX_DURATION_MS: u64 = 31_557_600_000_000;
/// [`MAX_DURATION_MS`] as a [`Duration`].
pub const MAX_DURATION: Duration = Duration::from_millis(MAX_DURATION_MS);

/// Whether `at` lies in [`TIMESTAMP_RANGE_MICROS`].
pub fn timestamp_in_range(at: DateTime<Utc>) -> bool {
    TIMESTAMP_RANGE_MICROS.contains(&at.timestamp_micros())
}

/// Refuses a timestamp outside [`TIMESTAMP_RANGE_MICROS`].
pub fn check_timestamp(option: &'static str, at: DateTime<Utc>) -> Result<()> {
    if timestamp_in_range(at) {
        Ok(())
    } else {
        Err(Error::invalid_option(option, out_of_range()))
    }
}

/// The reason given for a timestamp outside the range.
pub(crate) fn out_of_range() -> String {
    format!("must be from {MIN_TIMESTAMP_TEXT} to {MAX_TIMESTAMP_TEXT}")
}

/// The reason given for a timestamp text in another format.
pub(crate) const TIMESTAMP_FORMAT: &str = "must be a timestamp like 2030-01-31T08:00:00Z or \
     2030-01-31T09:00:00.250+01:00 (date, T or space, time, up to 9 fraction digits, Z or \
     an offset +HH:MM)";

/// Parses the one timestamp format of option documents, the same in every engine's SQL:
/// `YYYY-MM-DD`, `T` (or `t`, or a space), `HH:MM:SS`, optionally `.` and 1 to 9 fraction
/// digits (those after the sixth are dropped: times are kept to the microsecond), then `Z`
/// (or `z`) or an offset `+HH:MM` / `-HH:MM` (hours 00 to 23). No leap seconds, no other
/// formats. Returns `None` for text in another format or naming no real date or time; the
/// instant may still lie outside [`TIMESTAMP_RANGE_MICROS`].
pub fn parse_timestamp(text: &str) -> Option<DateTime<Utc>> {
    let b = text.as_bytes();
    let digits = |from: usize, len: usize| -> Option<u32> {
        let part = b.get(from..from + len)?;
        part.iter().try_fold(0u32, |n, c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    let at = |i: usize, allowed: &[u8]| b.get(i).is_some_and(|c| allowed.contains(c));
    if !(at(4, b"-") && at(7, b"-") && at(10, b"Tt ") && at(13, b":") && at(16, b":")) {
        return None;
    }
    let (year, month, day) = (digits(0, 4)?, digits(5, 2)?, digits(8, 2)?);
    let (hour, minute, second) = (digits(11, 2)?, digits(14, 2)?, digits(17, 2)?);
    let mut i = 19;
    let mut micros = 0;
    if at(i, b".") {
        let count = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if !(1..=9).contains(&count) {
            return None;
        }
        let kept = count.min(6);
        micros = digits(i + 1, kept)? * 10u32.pow(6 - kept as u32);
        i += 1 + count;
    }
    let offset_minutes: i64 = match b.get(i..)? {
        b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (hours, minutes) = (digits(i + 1, 2)?, digits(i + 4, 2)?);
            if hours > 23 || minutes > 59 {
                return None;
            }
            let minutes = i64::from(hours * 60 + minutes);
            if *sign == b'-' {
                -minutes
            } else {
                minutes
            }
        }
        _ => return None,
    };
    // Leap seconds are not accepted (chrono would take :60 as one).
    if second > 59 {
        return None;
    }
    let year = i32::try_from(year).ok()?;
    let local = NaiveDate::from_ymd_opt(year, month, day)?
        .and_hms_micro_opt(hour, minute, second, micros)?;
    let utc = local.checked_sub_signed(TimeDelta::minutes(offset_minutes))?;
    Some(utc.and_utc())
}

/// Refuses a duration that is zero or longer than [`MAX_DURATION`].
pub fn check_duration(option: &'static str, value: Duration) -> Result<()> {
    if value.is_zero() || value > MAX_DURATION {
        return Err(Error::invalid_option(
            option,
            format!("must be a positive duration of at most {MAX_DURATION_MS} ms (1000 years)"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn the_range_constants_agree_with_their_texts() {
        assert_eq!(
            utc(MIN_TIMESTAMP_TEXT).timestamp_micros(),
            *TIMESTAMP_RANGE_MICROS.start()
        );
        assert_eq!(
            utc(MAX_TIMESTAMP_TEXT).timestamp_micros(),
            *TIMESTAMP_RANGE_MICROS.end()
        );
        assert_eq!(MAX_DURATION, Duration::from_secs(1000 * 36525 * 864));
    }

    #[test]
    fn timestamps_in_the_documented_format_are_parsed_to_the_microsecond() {
        let cases = [
            ("2030-01-31T08:00:00Z", "2030-01-31T08:00:00Z"),
            ("2030-01-31t08:00:00z", "2030-01-31T08:00:00Z"),
            ("2030-01-31 09:00:00+01:00", "2030-01-31T08:00:00Z"),
            ("2030-01-31T08:00:00.5Z", "2030-01-31T08:00:00.5Z"),
            (
                "2030-01-31T08:00:00.123456789Z",
                "2030-01-31T08:00:00.123456Z",
            ),
            ("2030-01-31T00:30:00-23:59", "2030-02-01T00:29:00Z"),
            ("2024-02-29T00:00:00Z", "2024-02-29T00:00:00Z"),
            ("0999-12-31T23:30:00-01:00", "1000-01-01T00:30:00Z"),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_timestamp(text), Some(utc(expected)), "{text}");
        }
    }

    #[test]
    fn other_formats_and_impossible_dates_are_not_timestamps() {
        for text in [
            "",
            "2030-01-31",
            "2030-01-31T08:00:00",
            "2030-01-31T08:00Z",
            "2030-01-31T08:00:00.Z",
            "2030-01-31T08:00:00.1234567890Z",
            "2030-01-31T08:00:00+0100",
            "2030-01-31T08:00:00+24:00",
            "2030-01-31T08:00:00+01:60",
            "2030-01-31T24:00:00Z",
            "2030-01-31T23:59:60Z",
            "2023-02-29T00:00:00Z",
            "2030-13-01T00:00:00Z",
            "2030-04-31T00:00:00Z",
            "+2030-01-31T08:00:00Z",
            "infinity",
            "-infinity",
            "now",
            "2030-01-31T08:00:00Z ",
            "２030-01-31T08:00:00Z",
        ] {
            assert_eq!(parse_timestamp(text), None, "{text:?}");
        }
    }

    #[test]
    fn the_range_holds_its_ends_and_nothing_beyond() {
        assert!(timestamp_in_range(utc(MIN_TIMESTAMP_TEXT)));
        assert!(timestamp_in_range(utc(MAX_TIMESTAMP_TEXT)));
        let before = parse_timestamp("0999-12-31T23:59:59.999999Z").unwrap();
        let after = parse_timestamp("9999-12-31T23:00:00-01:00").unwrap();
        assert!(check_timestamp("run_at", before).is_err());
        assert!(check_timestamp("run_at", after).is_err());
        assert!(check_duration("delay", MAX_DURATION).is_ok());
        assert!(check_duration("delay", MAX_DURATION + Duration::from_millis(1)).is_err());
        assert!(check_duration("delay", Duration::ZERO).is_err());
    }
}
