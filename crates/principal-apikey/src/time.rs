//! Expiry times: Unix seconds and RFC 3339 (TOML offset date-times), in UTC.
//!
//! Small enough to keep here rather than pull in a date crate: only whole
//! seconds, only the proleptic Gregorian calendar from 1970 on.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use toml::value::{Datetime, Offset};

use crate::FormatError;

const SECONDS_PER_DAY: i64 = 86_400;

const EXPIRY: FormatError = FormatError::new(
    "expires_at is Unix seconds or an RFC 3339 date-time with offset, from 1970 on",
);

/// Unix seconds to a time.
pub(crate) fn from_unix(seconds: i64) -> Result<SystemTime, FormatError> {
    let seconds = u64::try_from(seconds).map_err(|_| EXPIRY)?;
    UNIX_EPOCH
        .checked_add(Duration::from_secs(seconds))
        .ok_or(EXPIRY)
}

/// A TOML offset date-time (`2026-01-01T00:00:00Z`) to a time.
///
/// Local date-times and bare dates are refused: without an offset, the
/// moment a key expires would depend on the server's time zone.
pub(crate) fn from_datetime(datetime: &Datetime) -> Result<SystemTime, FormatError> {
    let (Some(date), Some(time), Some(offset)) = (datetime.date, datetime.time, datetime.offset)
    else {
        return Err(EXPIRY);
    };

    let (year, month, day) = (i64::from(date.year), date.month, date.day);
    let days = days_from_civil(year, month, day);
    if civil_from_days(days) != (year, month, day) {
        return Err(EXPIRY);
    }

    let offset_minutes = match offset {
        Offset::Z => 0,
        Offset::Custom { minutes } => i64::from(minutes),
    };
    let seconds = days * SECONDS_PER_DAY
        + i64::from(time.hour) * 3600
        + i64::from(time.minute) * 60
        + i64::from(time.second)
        - offset_minutes * 60;
    from_unix(seconds)
}

/// A time as `YYYY-MM-DDTHH:MM:SSZ` (times before 1970 print as the epoch).
pub(crate) fn to_rfc3339(time: SystemTime) -> String {
    let seconds = time.duration_since(UNIX_EPOCH).map_or(0, |since| {
        i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
    });
    let (days, second_of_day) = (
        seconds.div_euclid(SECONDS_PER_DAY),
        seconds.rem_euclid(SECONDS_PER_DAY),
    );
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        second_of_day / 3600,
        second_of_day % 3600 / 60,
        second_of_day % 60
    )
}

/// Days since 1970-01-01 of a Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u8, day: u8) -> i64 {
    let (month, day) = (i64::from(month), i64::from(day));
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The Gregorian date of a day count since 1970-01-01 (inverse of the above).
fn civil_from_days(days: i64) -> (i64, u8, u8) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    // Both are in range by construction: day 1..=31, month 1..=12.
    (year, month as u8, day as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn datetime(text: &str) -> Datetime {
        text.parse().unwrap()
    }

    fn unix(text: &str) -> Result<u64, FormatError> {
        from_datetime(&datetime(text)).map(|t| t.duration_since(UNIX_EPOCH).unwrap().as_secs())
    }

    #[test]
    fn known_instants() {
        assert_eq!(unix("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(unix("2026-01-01T00:00:00Z"), Ok(1_767_225_600));
        assert_eq!(unix("2026-01-01T02:00:00+02:00"), Ok(1_767_225_600));
        assert_eq!(unix("2024-02-29T12:34:56Z"), Ok(1_709_210_096));
    }

    #[test]
    fn refuses_local_times_and_old_dates() {
        assert!(unix("2026-01-01T00:00:00").is_err());
        assert!(unix("1969-12-31T23:59:59Z").is_err());
        assert!(from_datetime(&datetime("2026-01-01")).is_err());
        assert!(from_unix(-1).is_err());
    }

    #[test]
    fn formats_round_trip() {
        for seconds in [0, 951_782_400, 1_709_210_096, 4_102_444_799] {
            let time = from_unix(seconds).unwrap();
            let text = to_rfc3339(time);
            assert_eq!(from_datetime(&datetime(&text)), Ok(time), "{text}");
        }
        assert_eq!(
            to_rfc3339(from_unix(1_767_225_600).unwrap()),
            "2026-01-01T00:00:00Z"
        );
    }
}
