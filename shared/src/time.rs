//! RFC 3339 instants as they cross the state machine (strings), without a
//! date crate: the SDK's `DateTime` already parses and formats them.

use aws_smithy_types::date_time::Format;
use aws_smithy_types::DateTime;

use crate::{CanaryError, Result};

pub fn now() -> DateTime {
    DateTime::from(std::time::SystemTime::now())
}

/// Formats an instant as RFC 3339 (`2026-11-27T06:30:00.123Z`).
pub fn format(t: DateTime) -> String {
    // Formatting a DateTime built from SystemTime or a parsed string cannot
    // fail for years 0..=9999; fall back to epoch seconds if it ever does.
    t.fmt(Format::DateTime)
        .unwrap_or_else(|_| t.secs().to_string())
}

/// Parses an RFC 3339 instant from the input; `field` names it in the error.
pub fn parse(field: &str, value: &str) -> Result<DateTime> {
    // Step Functions' `$$.State.EnteredTime` ends in `Z`; moto's
    // interpreter writes the same UTC instant as `+00:00`, which Smithy's
    // RFC 3339 reader refuses. Only the zero offset is rewritten.
    let normalized;
    let value = match value.strip_suffix("+00:00") {
        Some(head) => {
            normalized = format!("{head}Z");
            normalized.as_str()
        }
        None => value,
    };
    DateTime::from_str(value, Format::DateTime).map_err(|e| {
        CanaryError::invalid(format!(
            "{field} is not an RFC 3339 instant ({value:?}): {e}"
        ))
    })
}

/// Whole seconds from `earlier` to `later`, 0 if `later` is not later.
pub fn seconds_between(earlier: DateTime, later: DateTime) -> u64 {
    u64::try_from(later.secs() - earlier.secs()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_step_functions_timestamps() {
        let t = parse("since", "2026-11-27T06:30:00.123Z").map_err(|e| e.to_string());
        assert_eq!(t.map(format), Ok("2026-11-27T06:30:00.123Z".to_string()));
    }

    #[test]
    fn reads_a_zero_offset_as_utc() {
        let a = parse("since", "2026-11-27T06:30:00.123456+00:00").map(|t| t.secs());
        let b = parse("since", "2026-11-27T06:30:00.123456Z").map(|t| t.secs());
        assert_eq!(a, b);
        assert!(a.is_ok());
        assert!(parse("since", "2026-11-27T06:30:00+01:00").is_err());
    }

    #[test]
    fn rejects_garbage_with_the_field_name() {
        let err = parse("since", "yesterday")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("since"), "{err}");
    }

    #[test]
    fn seconds_between_never_negative() {
        let a = DateTime::from_secs(100);
        let b = DateTime::from_secs(160);
        assert_eq!(seconds_between(a, b), 60);
        assert_eq!(seconds_between(b, a), 0);
    }
}
