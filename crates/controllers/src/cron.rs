//! The cron schedules CronJobs use, as upstream parses them (robfig/cron `ParseStandard`): five
//! fields (minute hour day-of-month month day-of-week, with names, ranges, steps and lists),
//! the descriptors `@yearly` … `@hourly` and `@every <duration>`, evaluated in a time zone.

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

/// Why a schedule does not parse (the texts are robfig/cron's).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CronError {
    /// Blank schedule.
    #[error("empty spec string")]
    Empty,
    /// Not five fields.
    #[error("expected exactly 5 fields, found {0}: {1}")]
    FieldCount(usize, String),
    /// Unknown `@` descriptor.
    #[error("unrecognized descriptor: {0}")]
    Descriptor(String),
    /// A field value that is not a number or name.
    #[error("failed to parse int from {0}")]
    Number(String),
    /// A value outside the field's range.
    #[error("{0}")]
    Range(String),
    /// An `@every` duration that does not parse.
    #[error("failed to parse duration {0}")]
    Duration(String),
}

/// A parsed schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    /// A five-field schedule: bit sets of the allowed values.
    Fields {
        /// Minutes 0–59.
        minute: u64,
        /// Hours 0–23.
        hour: u64,
        /// Days of the month 1–31.
        dom: u64,
        /// Months 1–12.
        month: u64,
        /// Days of the week 0–6 (Sunday 0).
        dow: u64,
        /// Whether day-of-month or day-of-week was `*`/`?` (then both must match; else either).
        star_day: bool,
    },
    /// `@every d`: every `d` seconds since the previous run.
    Every(i64),
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

fn value(s: &str, names: &[&str], offset: u32) -> Result<u32, CronError> {
    let lower = s.to_ascii_lowercase();
    if let Some(i) = names.iter().position(|n| *n == lower) {
        return Ok(u32::try_from(i).unwrap_or(0) + offset);
    }
    s.parse::<u32>()
        .map_err(|_| CronError::Number(s.to_string()))
}

/// Parses one field into a bit set; the flag says whether it was `*` or `?`.
fn field(
    expr: &str,
    min: u32,
    max: u32,
    names: &[&str],
    offset: u32,
) -> Result<(u64, bool), CronError> {
    let mut bits = 0u64;
    let mut star = false;
    for part in expr.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (
                r,
                Some(
                    s.parse::<u32>()
                        .map_err(|_| CronError::Number(s.to_string()))?,
                ),
            ),
            None => (part, None),
        };
        let (start, end) = if range == "*" || range == "?" {
            if step.is_none_or(|s| s <= 1) {
                star = true;
            }
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a, names, offset)?, value(b, names, offset)?)
        } else {
            let v = value(range, names, offset)?;
            (v, if step.is_some() { max } else { v })
        };
        if start < min {
            return Err(CronError::Range(format!(
                "beginning of range ({start}) below minimum ({min}): {expr}"
            )));
        }
        if end > max {
            return Err(CronError::Range(format!(
                "end of range ({end}) above maximum ({max}): {expr}"
            )));
        }
        if start > end {
            return Err(CronError::Range(format!(
                "beginning of range ({start}) beyond end of range ({end}): {expr}"
            )));
        }
        let step = step.unwrap_or(1);
        if step == 0 {
            return Err(CronError::Range(format!(
                "step of range should be a positive number: {expr}"
            )));
        }
        let mut v = start;
        while v <= end {
            bits |= 1 << v;
            v += step;
        }
    }
    Ok((bits, star))
}

fn every(duration: &str) -> Result<i64, CronError> {
    let err = || CronError::Duration(duration.to_string());
    let mut total = 0i64;
    let mut num = String::new();
    for c in duration.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: i64 = num.parse().map_err(|_| err())?;
        num.clear();
        total += n * match c {
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return Err(err()),
        };
    }
    if !num.is_empty() || total <= 0 {
        return Err(err());
    }
    Ok(total)
}

impl Schedule {
    /// Parses a schedule (a leading `TZ=`/`CRON_TZ=` is not accepted: upstream rejects it in
    /// validation and uses `spec.timeZone`).
    pub fn parse(spec: &str) -> Result<Schedule, CronError> {
        let spec = spec.trim();
        if spec.is_empty() {
            return Err(CronError::Empty);
        }
        if let Some(d) = spec.strip_prefix('@') {
            let fields = match d {
                "yearly" | "annually" => "0 0 1 1 *",
                "monthly" => "0 0 1 * *",
                "weekly" => "0 0 * * 0",
                "daily" | "midnight" => "0 0 * * *",
                "hourly" => "0 * * * *",
                _ => match d.strip_prefix("every ") {
                    Some(dur) => return Ok(Schedule::Every(every(dur.trim())?)),
                    None => return Err(CronError::Descriptor(spec.to_string())),
                },
            };
            return Schedule::parse(fields);
        }
        let parts: Vec<&str> = spec.split_whitespace().collect();
        if parts.len() != 5 {
            return Err(CronError::FieldCount(parts.len(), spec.to_string()));
        }
        let (minute, _) = field(parts[0], 0, 59, &[], 0)?;
        let (hour, _) = field(parts[1], 0, 23, &[], 0)?;
        let (dom, dom_star) = field(parts[2], 1, 31, &[], 0)?;
        let (month, _) = field(parts[3], 1, 12, &MONTHS, 1)?;
        let (dow, dow_star) = field(parts[4], 0, 6, &DAYS, 0)?;
        Ok(Schedule::Fields {
            minute,
            hour,
            dom,
            month,
            dow,
            star_day: dom_star || dow_star,
        })
    }

    /// The first activation strictly after `after`, in `tz`; `None` when none falls within
    /// five years.
    pub fn next_after(&self, after: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let (minute, hour, dom, month, dow, star_day) = match self {
            Schedule::Every(secs) => return after.checked_add(secs.seconds()).ok(),
            Schedule::Fields {
                minute,
                hour,
                dom,
                month,
                dow,
                star_day,
            } => (*minute, *hour, *dom, *month, *dow, *star_day),
        };
        let has = |bits: u64, v: i8| v >= 0 && bits & (1 << v) != 0;
        let local = after.to_zoned(tz.clone()).datetime();
        let mut t = local
            .with()
            .second(0)
            .subsec_nanosecond(0)
            .build()
            .ok()?
            .checked_add(1.minute())
            .ok()?;
        let limit = local.date().year().saturating_add(5);
        while t.date().year() <= limit {
            let date = t.date();
            if !has(month, date.month()) {
                let first = Date::new(date.year(), date.month(), 1).ok()?;
                t = DateTime::from_parts(first.checked_add(1.month()).ok()?, Time::midnight());
                continue;
            }
            let dom_ok = has(dom, date.day());
            let dow_ok = has(dow, date.weekday().to_sunday_zero_offset());
            let day_ok = if star_day {
                dom_ok && dow_ok
            } else {
                dom_ok || dow_ok
            };
            if !day_ok {
                t = DateTime::from_parts(date.tomorrow().ok()?, Time::midnight());
                continue;
            }
            if !has(hour, t.hour()) {
                t = t
                    .with()
                    .minute(0)
                    .build()
                    .ok()?
                    .checked_add(1.hour())
                    .ok()?;
                continue;
            }
            if !has(minute, t.minute()) {
                t = t.checked_add(1.minute()).ok()?;
                continue;
            }
            let at = tz.to_zoned(t).ok()?.timestamp();
            if at > after {
                return Some(at);
            }
            t = t.checked_add(1.minute()).ok()?;
        }
        None
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn every_minute_fires_on_the_next_minute() {
        let s = Schedule::parse("*/1 * * * *").unwrap();
        let next = s
            .next_after(ts("2026-01-01T10:00:30Z"), &TimeZone::UTC)
            .unwrap();
        assert_eq!(next, ts("2026-01-01T10:01:00Z"));
        let next = s
            .next_after(ts("2026-01-01T10:01:00Z"), &TimeZone::UTC)
            .unwrap();
        assert_eq!(next, ts("2026-01-01T10:02:00Z"));
    }

    #[test]
    fn descriptors_expand_to_fields() {
        let hourly = Schedule::parse("@hourly").unwrap();
        assert_eq!(
            hourly
                .next_after(ts("2026-01-01T10:00:00Z"), &TimeZone::UTC)
                .unwrap(),
            ts("2026-01-01T11:00:00Z")
        );
        let yearly = Schedule::parse("@yearly").unwrap();
        assert_eq!(
            yearly
                .next_after(ts("2026-03-01T00:00:00Z"), &TimeZone::UTC)
                .unwrap(),
            ts("2027-01-01T00:00:00Z")
        );
        let every = Schedule::parse("@every 1h30m").unwrap();
        assert_eq!(every, Schedule::Every(5400));
    }

    #[test]
    fn names_ranges_steps_and_day_or_semantics() {
        // 09:30 on weekdays.
        let s = Schedule::parse("30 9 * * MON-FRI").unwrap();
        // 2026-01-03 is a Saturday.
        assert_eq!(
            s.next_after(ts("2026-01-03T00:00:00Z"), &TimeZone::UTC)
                .unwrap(),
            ts("2026-01-05T09:30:00Z")
        );
        // Day 15 or Sundays: either matches when both are restricted.
        let s = Schedule::parse("0 0 15 * sun").unwrap();
        assert_eq!(
            s.next_after(ts("2026-01-01T00:00:00Z"), &TimeZone::UTC)
                .unwrap(),
            ts("2026-01-04T00:00:00Z")
        );
        let s = Schedule::parse("0 0 1 feb,apr *").unwrap();
        assert_eq!(
            s.next_after(ts("2026-02-02T00:00:00Z"), &TimeZone::UTC)
                .unwrap(),
            ts("2026-04-01T00:00:00Z")
        );
    }

    #[test]
    fn time_zones_shift_the_activation() {
        let tz = TimeZone::get("Europe/Berlin").unwrap();
        let s = Schedule::parse("0 9 * * *").unwrap();
        // 09:00 in Berlin in winter is 08:00 UTC.
        assert_eq!(
            s.next_after(ts("2026-01-10T00:00:00Z"), &tz).unwrap(),
            ts("2026-01-10T08:00:00Z")
        );
    }

    #[test]
    fn bad_schedules_are_rejected_with_upstream_texts() {
        assert_eq!(
            Schedule::parse("").unwrap_err().to_string(),
            "empty spec string"
        );
        assert_eq!(
            Schedule::parse("* * *").unwrap_err().to_string(),
            "expected exactly 5 fields, found 3: * * *"
        );
        assert!(Schedule::parse("61 * * * *").is_err());
        assert!(Schedule::parse("@fortnightly").is_err());
        assert!(
            Schedule::parse("0 0 31 2 *")
                .unwrap()
                .next_after(ts("2026-01-01T00:00:00Z"), &TimeZone::UTC)
                .is_none()
        );
    }
}
