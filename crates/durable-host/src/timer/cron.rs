//! NCRONTAB schedules as timer triggers write them: six fields, `{second} {minute} {hour} {day} {month}
//! {day-of-week}`, or a `hh:mm:ss` interval. Like NCrontab, a time matches when *every* field matches (the day of
//! month and the day of week are both required, unlike classic cron). Times are UTC.

use std::time::Duration;

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

/// A parsed timer schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Schedule {
    Cron(Box<Cron>),
    Every(Duration),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cron {
    seconds: u64,
    minutes: u64,
    hours: u32,
    days: u32,
    months: u16,
    weekdays: u8,
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

fn field(text: &str, min: u32, max: u32, names: &[&str], what: &str) -> Result<u64, String> {
    let value = |s: &str| -> Result<u32, String> {
        let lower = s.to_ascii_lowercase();
        if let Some(i) = names
            .iter()
            .position(|n| lower.starts_with(n) && lower.len() >= 3)
        {
            return Ok(min + i as u32);
        }
        let v: u32 = s
            .parse()
            .map_err(|_| format!("{what}: {s:?} is not a number"))?;
        Ok(v)
    };
    let mut bits = 0u64;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (
                r,
                s.parse::<u32>()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| format!("{what}: bad step in {part:?}"))?,
            ),
            None => (part, 1),
        };
        let (lo, hi) = if range == "*" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a)?, value(b)?)
        } else {
            let v = value(range)?;
            // `5/15` means from 5 to the end, every 15.
            (v, if step > 1 { max } else { v })
        };
        // Day of week 7 is Sunday too.
        let (lo, hi) = if what == "day of week" {
            (lo.min(7), hi.min(7))
        } else {
            (lo, hi)
        };
        let top = if what == "day of week" { 7 } else { max };
        if lo < min || hi > top || lo > hi {
            return Err(format!("{what}: {part:?} is outside {min}-{max}"));
        }
        let mut v = lo;
        while v <= hi {
            let bit = if what == "day of week" && v == 7 {
                0
            } else {
                v
            };
            bits |= 1 << bit;
            // A step past the range ends it (and must not overflow: `59/4294967295`).
            let Some(next) = v.checked_add(step) else {
                break;
            };
            v = next;
        }
    }
    Ok(bits)
}

impl Schedule {
    pub(crate) fn parse(text: &str) -> Result<Schedule, String> {
        let text = text.trim();
        let fields: Vec<&str> = text.split_whitespace().collect();
        if fields.len() == 1 && text.contains(':') {
            let parts: Vec<u64> = text
                .split(':')
                .map(|p| {
                    p.parse::<u64>()
                        .map_err(|_| format!("{text:?} is not hh:mm:ss"))
                })
                .collect::<Result<_, _>>()?;
            let [h, m, s] = parts.as_slice() else {
                return Err(format!("{text:?} is not hh:mm:ss"));
            };
            let every = h
                .checked_mul(3600)
                .and_then(|hs| m.checked_mul(60)?.checked_add(hs))
                .and_then(|ms| ms.checked_add(*s))
                .map(Duration::from_secs)
                .ok_or_else(|| format!("{text:?} is longer than any interval a timer can wait"))?;
            if every.is_zero() {
                return Err("a timer interval must be positive".into());
            }
            return Ok(Schedule::Every(every));
        }
        let [sec, min, hour, day, month, dow] = fields.as_slice() else {
            return Err(format!(
                "{text:?}: a timer schedule has six fields: second minute hour day month day-of-week"
            ));
        };
        Ok(Schedule::Cron(Box::new(Cron {
            seconds: field(sec, 0, 59, &[], "second")?,
            minutes: field(min, 0, 59, &[], "minute")?,
            hours: field(hour, 0, 23, &[], "hour")? as u32,
            days: field(day, 1, 31, &[], "day")? as u32,
            months: field(month, 1, 12, &MONTHS, "month")? as u16,
            weekdays: field(dow, 0, 6, &DAYS, "day of week")? as u8,
        })))
    }

    /// The first occurrence strictly after `after`; `None` when there is none in the next five years
    /// (`0 0 0 31 2 *`).
    pub(crate) fn next_after(&self, after: OffsetDateTime) -> Option<OffsetDateTime> {
        match self {
            // An interval that ends past the last date there is never fires.
            Schedule::Every(every) => after.checked_add(time::Duration::try_from(*every).ok()?),
            Schedule::Cron(cron) => cron.next_after(after),
        }
    }
}

impl Cron {
    fn next_after(&self, after: OffsetDateTime) -> Option<OffsetDateTime> {
        let after = after.to_offset(time::UtcOffset::UTC);
        let mut t = PrimitiveDateTime::new(after.date(), after.time())
            .replace_nanosecond(0)
            .ok()?
            .checked_add(time::Duration::SECOND)?;
        let limit = t.year() + 5;
        while t.year() <= limit {
            if self.months & (1 << u8::from(t.month())) == 0 {
                let (y, m) = if t.month() == Month::December {
                    (t.year() + 1, Month::January)
                } else {
                    (t.year(), t.month().next())
                };
                t = PrimitiveDateTime::new(Date::from_calendar_date(y, m, 1).ok()?, Time::MIDNIGHT);
                continue;
            }
            let weekday = t.weekday().number_days_from_sunday();
            if self.days & (1 << t.day()) == 0 || self.weekdays & (1 << weekday) == 0 {
                t = PrimitiveDateTime::new(t.date().next_day()?, Time::MIDNIGHT);
                continue;
            }
            if self.hours & (1 << t.hour()) == 0 {
                t = t
                    .replace_minute(0)
                    .ok()?
                    .replace_second(0)
                    .ok()?
                    .checked_add(time::Duration::HOUR)?;
                continue;
            }
            if self.minutes & (1 << t.minute()) == 0 {
                t = t
                    .replace_second(0)
                    .ok()?
                    .checked_add(time::Duration::MINUTE)?;
                continue;
            }
            if self.seconds & (1 << t.second()) == 0 {
                t = t.checked_add(time::Duration::SECOND)?;
                continue;
            }
            return Some(t.assume_utc());
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::datetime;

    fn next(s: &str, after: OffsetDateTime) -> OffsetDateTime {
        Schedule::parse(s).unwrap().next_after(after).unwrap()
    }

    #[test]
    fn ncrontab_schedules() {
        let t = datetime!(2026-11-25 18:51:28 UTC);
        assert_eq!(next("0 */5 * * * *", t), datetime!(2026-11-25 18:55:00 UTC));
        assert_eq!(
            next("*/10 * * * * *", t),
            datetime!(2026-11-25 18:51:30 UTC)
        );
        assert_eq!(
            next("0 30 9 * * 1-5", t),
            datetime!(2026-11-26 09:30:00 UTC)
        );
        assert_eq!(next("0 0 0 1 Jan *", t), datetime!(2027-01-01 00:00:00 UTC));
        assert_eq!(
            next("0 0 12 * * Sun", t),
            datetime!(2026-11-29 12:00:00 UTC)
        );
        assert_eq!(next("0 0 12 * * 7", t), datetime!(2026-11-29 12:00:00 UTC));
        assert_eq!(
            next("5,7 * * * * *", datetime!(2026-11-25 18:51:05 UTC)),
            datetime!(2026-11-25 18:51:07 UTC)
        );
        assert_eq!(next("00:00:30", t), datetime!(2026-11-25 18:51:58 UTC));
        assert!(
            Schedule::parse("0 0 0 31 2 *")
                .unwrap()
                .next_after(t)
                .is_none()
        );
        assert!(Schedule::parse("* * * * *").is_err());
        assert!(Schedule::parse("61 * * * * *").is_err());
        assert!(Schedule::parse("*/0 * * * * *").is_err());
    }

    #[test]
    fn schedules_that_do_not_fit_are_refused_or_never_fire() {
        let t = datetime!(2026-11-25 18:51:28 UTC);
        // Steps and intervals past what the arithmetic holds are errors, not panics.
        assert!(Schedule::parse("*/4294967295 * * * * *").is_ok());
        assert!(Schedule::parse("59/4294967295 * * * * *").is_ok());
        assert!(Schedule::parse("* * * * * 6/4294967295").is_ok());
        assert!(Schedule::parse("99999999999999999:00:00").is_err());
        assert!(Schedule::parse("0:18446744073709551615:0").is_err());
        // An interval that ends past the last representable date never fires.
        for far in ["99999999:00:00", "0:0:18446744073709551615"] {
            assert_eq!(Schedule::parse(far).unwrap().next_after(t), None, "{far}");
        }
        assert!(
            Schedule::parse("* * * * * *")
                .unwrap()
                .next_after(datetime!(9999-12-31 23:59:59 UTC))
                .is_none()
        );
    }

    fn field_text() -> impl Strategy<Value = String> {
        let atom = prop_oneof![
            Just("*".to_owned()),
            any::<u32>().prop_map(|n| n.to_string()),
            (0u32..70).prop_map(|n| n.to_string()),
            "[a-zA-Z]{1,4}",
        ];
        let part = (
            atom.clone(),
            proptest::option::of(atom.clone()),
            proptest::option::of(any::<u32>()),
        )
            .prop_map(|(a, b, step)| {
                let mut text = a;
                if let Some(b) = b {
                    text = format!("{text}-{b}");
                }
                if let Some(step) = step {
                    text = format!("{text}/{step}");
                }
                text
            });
        proptest::collection::vec(part, 1..3).prop_map(|parts| parts.join(","))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_schedule_text_parses_or_is_refused(text in ".{0,60}") {
            if let Ok(schedule) = Schedule::parse(&text) {
                let _ = schedule.next_after(datetime!(2026-11-25 18:51:28 UTC));
            }
        }

        #[test]
        fn any_six_fields_parse_or_are_refused(fields in proptest::collection::vec(field_text(), 6), at in 0i64..4_102_444_800) {
            if let Ok(schedule) = Schedule::parse(&fields.join(" ")) {
                let after = OffsetDateTime::from_unix_timestamp(at).unwrap();
                if let Some(next) = schedule.next_after(after) {
                    prop_assert!(next > after);
                }
            }
        }

        #[test]
        fn any_interval_parses_or_is_refused(h in any::<u64>(), m in any::<u64>(), s in any::<u64>(), at in 0i64..4_102_444_800) {
            if let Ok(schedule) = Schedule::parse(&format!("{h}:{m}:{s}")) {
                let after = OffsetDateTime::from_unix_timestamp(at).unwrap();
                let _ = schedule.next_after(after);
            }
        }
    }
}
