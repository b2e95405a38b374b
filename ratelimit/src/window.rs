//! Window lengths as written in the limits file (`15m`, `1s`, `1h30m`, `250ms`).

use std::fmt;
use std::time::Duration;

/// Minimum window the limits file accepts.
pub const MIN_WINDOW: Duration = Duration::from_millis(1);
/// Maximum window the limits file accepts (366 days), so microsecond timestamps and window
/// arithmetic stay exact in the f64 numbers the Redis script uses.
pub const MAX_WINDOW: Duration = Duration::from_secs(366 * 24 * 3600);

/// Error from [`parse_window`], with the reason in words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct WindowError(String);

/// Parses a window such as `15m`, `1s`, `1h30m` or `250ms`.
///
/// The text is one or more `<integer><unit>` parts with the units `ms`, `s`, `m`, `h` and `d`.
pub fn parse_window(text: &str) -> Result<Duration, WindowError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(WindowError(
            "empty window, expected e.g. \"15m\" or \"1s\"".into(),
        ));
    }
    let mut total_ms: u128 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits_end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits_end == 0 {
            return Err(WindowError(format!(
                "invalid window {text:?}: expected a number before {rest:?}"
            )));
        }
        let number: u128 = rest[..digits_end]
            .parse()
            .map_err(|_| WindowError(format!("invalid window {text:?}: number too large")))?;
        rest = &rest[digits_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit_ms: u128 = match &rest[..unit_end] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "" => {
                return Err(WindowError(format!(
                    "invalid window {text:?}: missing unit after {number} (use ms, s, m, h or d)"
                )))
            }
            other => {
                return Err(WindowError(format!(
                    "invalid window {text:?}: unknown unit {other:?} (use ms, s, m, h or d)"
                )))
            }
        };
        rest = &rest[unit_end..];
        total_ms = total_ms.saturating_add(number.saturating_mul(unit_ms));
    }
    let window = Duration::from_millis(u64::try_from(total_ms).unwrap_or(u64::MAX));
    if window < MIN_WINDOW {
        return Err(WindowError(format!(
            "invalid window {text:?}: must be at least 1ms"
        )));
    }
    if window > MAX_WINDOW {
        return Err(WindowError(format!(
            "invalid window {text:?}: must be at most 366d"
        )));
    }
    Ok(window)
}

/// Formats a window in the limits-file notation, largest units first (`1h30m`, `250ms`).
pub struct DisplayWindow(pub Duration);

impl fmt::Display for DisplayWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ms = self.0.as_millis();
        if ms == 0 {
            return f.write_str("0ms");
        }
        for (unit, unit_ms) in [
            ("d", 86_400_000),
            ("h", 3_600_000),
            ("m", 60_000),
            ("s", 1_000),
        ] {
            if ms >= unit_ms {
                write!(f, "{}{unit}", ms / unit_ms)?;
                ms %= unit_ms;
            }
        }
        if ms > 0 {
            write!(f, "{ms}ms")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_single_units() {
        assert_eq!(parse_window("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_window("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_window("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_window("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_window("2d"), Ok(Duration::from_secs(172_800)));
    }

    #[test]
    fn parses_compound_window() {
        assert_eq!(parse_window("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_window("1s500ms"), Ok(Duration::from_millis(1500)));
    }

    #[test]
    fn rejects_invalid_windows() {
        for text in [
            "",
            "15",
            "m",
            "15x",
            "1.5s",
            "-1s",
            "0s",
            "367d",
            "99999999999999999999999d",
        ] {
            assert!(parse_window(text).is_err(), "{text:?} should be rejected");
        }
    }

    #[test]
    fn formats_round_trip() {
        for text in ["250ms", "1s", "15m", "1h30m", "1d2h3m4s5ms"] {
            let window = parse_window(text).unwrap();
            assert_eq!(DisplayWindow(window).to_string(), text);
        }
    }
}
