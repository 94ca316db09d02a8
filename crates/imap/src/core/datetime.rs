//! Dates of SEARCH and date-times of APPEND / INTERNALDATE (RFC 9051 §9).

use std::fmt;

use sealpost_types::date::civil_from_days;

use super::parser::{Input, PResult, bad};

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A calendar date (SEARCH BEFORE/ON/SINCE/SENT*), checked to exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    pub year: u16,
    pub month: u8,
    pub day: u8,
}

/// A date-time with its zone (APPEND, INTERNALDATE), checked to exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DateTime {
    pub date: Date,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    /// Offset from UTC in minutes (`+0200` = 120).
    pub zone_minutes: i16,
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(i64::from(year)) => 29,
        2 => 28,
        _ => 31,
    }
}

impl Date {
    pub fn new(year: u16, month: u8, day: u8) -> Option<Date> {
        ((1..=12).contains(&month) && day >= 1 && day <= days_in_month(year, month))
            .then_some(Date { year, month, day })
    }

    /// Days since 1970-01-01 (Howard Hinnant's days-from-civil).
    pub fn days_since_epoch(&self) -> i64 {
        let month = i64::from(self.month);
        let year = i64::from(self.year) - i64::from(month <= 2);
        let era = year.div_euclid(400);
        let yoe = year - era * 400;
        let mp = (month + 9) % 12;
        let doy = (153 * mp + 2) / 5 + i64::from(self.day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }
}

impl DateTime {
    /// Seconds since the Unix epoch (UTC).
    pub fn unix(&self) -> i64 {
        self.date.days_since_epoch() * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
            - i64::from(self.zone_minutes) * 60
    }

    /// The date-time of a Unix time in the given zone; `None` outside years 1..=9999.
    pub fn from_unix(seconds: i64, zone_minutes: i16) -> Option<DateTime> {
        let local = seconds.checked_add(i64::from(zone_minutes) * 60)?;
        let (year, month, day) = civil_from_days(local.div_euclid(86_400));
        let of_day = local.rem_euclid(86_400);
        Some(DateTime {
            date: Date::new(
                u16::try_from(year)
                    .ok()
                    .filter(|y| (1..=9999).contains(y))?,
                u8::try_from(month).ok()?,
                u8::try_from(day).ok()?,
            )?,
            hour: u8::try_from(of_day / 3600).ok()?,
            minute: u8::try_from(of_day % 3600 / 60).ok()?,
            second: u8::try_from(of_day % 60).ok()?,
            zone_minutes,
        })
    }
}

impl fmt::Display for Date {
    /// `date-text` (`1-Feb-1994`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let month = MONTHS
            .get(usize::from(self.month).saturating_sub(1))
            .copied()
            .unwrap_or("Jan");
        write!(f, "{}-{month}-{:04}", self.day, self.year)
    }
}

impl fmt::Display for DateTime {
    /// The inside of `date-time` without the quotes: `date-day-fixed "-" date-month "-"
    /// date-year SP time SP zone` (` 1-Feb-1994 21:52:25 -0800`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let month = MONTHS
            .get(usize::from(self.date.month).saturating_sub(1))
            .copied()
            .unwrap_or("Jan");
        let sign = if self.zone_minutes < 0 { '-' } else { '+' };
        let zone = self.zone_minutes.unsigned_abs();
        write!(
            f,
            "{:>2}-{month}-{:04} {:02}:{:02}:{:02} {sign}{:02}{:02}",
            self.date.day,
            self.date.year,
            self.hour,
            self.minute,
            self.second,
            zone / 60,
            zone % 60
        )
    }
}

fn fixed_digits(input: &mut Input, count: usize) -> PResult<u32> {
    let mut value = 0u32;
    for _ in 0..count {
        match input.peek() {
            Some(digit @ b'0'..=b'9') => {
                input.eat(digit);
                value = value * 10 + u32::from(digit - b'0');
            }
            _ => return bad("invalid date"),
        }
    }
    Ok(value)
}

fn month(input: &mut Input) -> PResult<u8> {
    for (index, name) in MONTHS.iter().enumerate() {
        if input.eat_prefix(name) {
            return u8::try_from(index + 1).or_else(|_| bad("invalid month"));
        }
    }
    bad("invalid month")
}

fn date_text(input: &mut Input, fixed_day: bool) -> PResult<Date> {
    let day = if fixed_day {
        // date-day-fixed = (SP DIGIT) / 2DIGIT
        if input.eat(b' ') {
            fixed_digits(input, 1)?
        } else {
            fixed_digits(input, 2)?
        }
    } else {
        // date-day = 1*2DIGIT
        let first = fixed_digits(input, 1)?;
        match input.peek() {
            Some(b'0'..=b'9') => first * 10 + fixed_digits(input, 1)?,
            _ => first,
        }
    };
    input.expect(b'-', "invalid date")?;
    let month = month(input)?;
    input.expect(b'-', "invalid date")?;
    let year = fixed_digits(input, 4)?;
    let (Ok(year), Ok(day)) = (u16::try_from(year), u8::try_from(day)) else {
        return bad("invalid date");
    };
    Date::new(year, month, day).ok_or(super::parser::ParseError::Bad("invalid date"))
}

/// ```text
/// date      = date-text / DQUOTE date-text DQUOTE
/// date-text = date-day "-" date-month "-" date-year
/// date-day  = 1*2DIGIT
/// date-year = 4DIGIT
/// ```
pub(crate) fn parse_date(input: &mut Input) -> PResult<Date> {
    let quoted = input.eat(b'"');
    let date = date_text(input, false)?;
    if quoted {
        input.expect(b'"', "invalid date")?;
    }
    Ok(date)
}

/// ```text
/// date-time      = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE
/// date-day-fixed = (SP DIGIT) / 2DIGIT
/// time           = 2DIGIT ":" 2DIGIT ":" 2DIGIT
/// zone           = ("+" / "-") 4DIGIT
/// ```
///
/// Impossible dates, times and zones (`+9999`) are refused (SECURITY-TESTS IM-18).
pub(crate) fn parse_date_time(input: &mut Input) -> PResult<DateTime> {
    input.expect(b'"', "invalid date-time")?;
    let date = date_text(input, true)?;
    input.sp()?;
    let hour = fixed_digits(input, 2)?;
    input.expect(b':', "invalid time")?;
    let minute = fixed_digits(input, 2)?;
    input.expect(b':', "invalid time")?;
    let second = fixed_digits(input, 2)?;
    input.sp()?;
    let negative = if input.eat(b'-') {
        true
    } else {
        input.expect(b'+', "invalid zone")?;
        false
    };
    let zone_hours = fixed_digits(input, 2)?;
    let zone_mins = fixed_digits(input, 2)?;
    input.expect(b'"', "invalid date-time")?;
    if hour > 23 || minute > 59 || second > 60 || zone_hours > 23 || zone_mins > 59 {
        return bad("invalid date-time");
    }
    let zone = i16::try_from(zone_hours * 60 + zone_mins).or_else(|_| bad("invalid zone"))?;
    Ok(DateTime {
        date,
        hour: u8::try_from(hour).or_else(|_| bad("invalid time"))?,
        minute: u8::try_from(minute).or_else(|_| bad("invalid time"))?,
        second: u8::try_from(second).or_else(|_| bad("invalid time"))?,
        zone_minutes: if negative { -zone } else { zone },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::parser::line;

    #[test]
    fn dates() {
        assert_eq!(
            parse_date(&mut line(b"1-Feb-1994")).unwrap(),
            Date::new(1994, 2, 1).unwrap()
        );
        assert_eq!(
            parse_date(&mut line(b"\"29-feb-2000\"")).unwrap(),
            Date::new(2000, 2, 29).unwrap()
        );
        for bad_date in [
            "29-Feb-1900",
            "32-Jan-2000",
            "0-Jan-2000",
            "1-Foo-2000",
            "1-Jan-99",
            "123-Jan-2000",
            "\"1-Jan-2000",
        ] {
            let mut input = line(bad_date.as_bytes());
            assert!(
                parse_date(&mut input).and_then(|_| input.end()).is_err(),
                "{bad_date}"
            );
        }
        assert_eq!(Date::new(1970, 1, 1).unwrap().days_since_epoch(), 0);
        assert_eq!(Date::new(2000, 2, 29).unwrap().days_since_epoch(), 11_016);
    }

    #[test]
    fn date_times() {
        let parsed = parse_date_time(&mut line(b"\"17-Jul-1996 02:44:25 -0700\"")).unwrap();
        assert_eq!(parsed.to_string(), "17-Jul-1996 02:44:25 -0700");
        assert_eq!(parsed.unix(), 837_596_665);
        let spaced = parse_date_time(&mut line(b"\" 7-Jul-1996 02:44:25 +0000\"")).unwrap();
        assert_eq!(spaced.to_string(), " 7-Jul-1996 02:44:25 +0000");
        for bad_input in [
            "\"31-Dec-9999 23:59:59 +9999\"",
            "\"7-Jul-1996 02:44:25 +0000\"",
            "\"17-Jul-1996 24:00:00 +0000\"",
            "\"17-Jul-1996 02:44 +0000\"",
            "\"31-Apr-1996 02:44:25 +0000\"",
        ] {
            assert!(
                parse_date_time(&mut line(bad_input.as_bytes())).is_err(),
                "{bad_input}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn date_time_round_trips(seconds in -62_135_596_800i64..253_402_300_799, zone in -1439i16..1440) {
            let Some(date_time) = DateTime::from_unix(seconds, zone) else { return Ok(()); };
            proptest::prop_assert_eq!(date_time.unix(), seconds);
            let text = format!("\"{date_time}\"");
            let parsed = parse_date_time(&mut line(text.as_bytes())).unwrap();
            proptest::prop_assert_eq!(parsed, date_time);
        }
    }
}
