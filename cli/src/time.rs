//! Instants and durations as the CLI writes them (UTC), shared by the
//! narration and the displays.

use aws_smithy_types::date_time::Format;
use aws_smithy_types::DateTime;

/// `2026-11-27T06:18:00.389Z`.
pub fn rfc3339(t: DateTime) -> String {
    t.fmt(Format::DateTime)
        .unwrap_or_else(|_| t.secs().to_string())
}

/// `2026-11-27 06:18:00Z` (to the second, for tables).
pub fn date_time(t: DateTime) -> String {
    let full = rfc3339(t);
    match full.get(..19) {
        Some(head) => format!("{}Z", head.replacen('T', " ", 1)),
        None => full,
    }
}

/// `06:18:00` (UTC).
pub fn clock(t: DateTime) -> String {
    let day = t.secs().rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", day / 3600, day % 3600 / 60, day % 60)
}

/// Seconds from `a` to `b` with millisecond precision (negative if b < a).
pub fn seconds_between(a: DateTime, b: DateTime) -> f64 {
    let ms = |t: DateTime| t.secs() as f64 * 1000.0 + f64::from(t.subsec_nanos() / 1_000_000);
    (ms(b) - ms(a)).round() / 1000.0
}

/// `0.07 s`, `5.3 s`, `2 min 05 s`, `1 h 02 min`.
pub fn secs_text(secs: f64) -> String {
    if secs < 1.0 {
        format!("{secs:.2} s")
    } else if secs < 60.0 {
        format!("{secs:.1} s")
    } else if secs < 3600.0 {
        let s = secs.round() as u64;
        format!("{} min {:02} s", s / 60, s % 60)
    } else {
        let m = (secs / 60.0).round() as u64;
        format!("{} h {:02} min", m / 60, m % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_format_in_utc() {
        let t = DateTime::from_secs_and_nanos(1_795_760_280, 389_000_000);
        assert_eq!(rfc3339(t), "2026-11-27T06:18:00.389Z");
        assert_eq!(date_time(t), "2026-11-27 06:18:00Z");
        assert_eq!(clock(t), "06:18:00");
        let later = DateTime::from_secs_and_nanos(1_795_760_285, 689_000_000);
        assert_eq!(seconds_between(t, later), 5.3);
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(secs_text(0.071), "0.07 s");
        assert_eq!(secs_text(5.3), "5.3 s");
        assert_eq!(secs_text(125.0), "2 min 05 s");
        assert_eq!(secs_text(3720.0), "1 h 02 min");
    }
}
