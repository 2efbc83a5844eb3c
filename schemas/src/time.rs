//! UTC calendar arithmetic for partition dates and listings, without a time-zone database.

/// Nanoseconds in a second.
pub const NANOS_PER_SEC: i64 = 1_000_000_000;

/// (year, month, day) of a count of days since 1970-01-01 (Howard Hinnant's algorithm).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// `YYYY-MM-DD` of a UTC time in nanoseconds since the epoch.
pub fn date(unix_ns: i64) -> String {
    let (y, m, d) = civil_from_days(unix_ns.div_euclid(NANOS_PER_SEC * 86_400));
    format!("{y:04}-{m:02}-{d:02}")
}

/// `YYYY-MM-DDTHH:MM:SSZ` of a UTC time in nanoseconds since the epoch.
pub fn rfc3339(unix_ns: i64) -> String {
    let secs = unix_ns.div_euclid(NANOS_PER_SEC);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Now, in nanoseconds since the epoch.
pub fn now_ns() -> i64 {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_nanos()).unwrap_or(i64::MAX),
    }
}

/// An offset into a session as `MM:SS.mmm`, or `H:MM:SS` from an hour on (what `replay
/// play --at` takes back).
pub fn offset_text(ns: u64) -> String {
    let ms = ns / 1_000_000;
    let secs = ms / 1000;
    if secs >= 3600 {
        format!("{}:{:02}:{:02}", secs / 3600, secs % 3600 / 60, secs % 60)
    } else {
        format!("{:02}:{:02}.{:03}", secs / 60, secs % 60, ms % 1000)
    }
}

/// A duration as `1h02m03s`, `4m05s` or `6.7s`, for listings.
pub fn human_duration(ns: u64) -> String {
    let secs = ns / 1_000_000_000;
    if secs >= 3600 {
        format!("{}h{:02}m{:02}s", secs / 3600, secs % 3600 / 60, secs % 60)
    } else if secs >= 60 {
        format!("{}m{:02}s", secs / 60, secs % 60)
    } else {
        format!("{:.1}s", ns as f64 / 1e9)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn offsets_read_as_minutes_or_hours() {
        use super::offset_text;
        assert_eq!(offset_text(0), "00:00.000");
        assert_eq!(offset_text(61_234_999_999), "01:01.234");
        assert_eq!(offset_text(3_599_999_000_000), "59:59.999");
        assert_eq!(offset_text(3_723_000_000_000), "1:02:03");
    }

    use super::*;

    #[test]
    fn dates_match_known_days() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(1_795_823_188 * NANOS_PER_SEC), "2026-11-27");
        assert_eq!(date(951_782_400 * NANOS_PER_SEC), "2000-02-29");
        assert_eq!(date(-1), "1969-12-31");
        assert_eq!(
            rfc3339(1_795_823_188 * NANOS_PER_SEC),
            "2026-11-27T23:46:28Z"
        );
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(human_duration(6_700_000_000), "6.7s");
        assert_eq!(human_duration(245 * 1_000_000_000), "4m05s");
        assert_eq!(human_duration(3723 * 1_000_000_000), "1h02m03s");
    }
}
