//! Durations as written in `access = "…"`: a whole number and one unit.

/// Seconds per unit suffix.
const UNITS: &[(char, u64, &str)] = &[
    ('s', 1, "seconds"),
    ('m', 60, "minutes"),
    ('h', 60 * 60, "hours"),
    ('d', 24 * 60 * 60, "days"),
];

const FORMS: &str = "write a whole number and one unit: \"90s\", \"30m\", \"1h\" or \"7d\"";

/// Parses `"90s"`, `"30m"`, `"1h"`, `"7d"` into a positive number of seconds.
pub(crate) fn parse_seconds(text: &str) -> Result<u64, String> {
    if text.is_empty() {
        return Err(format!("the duration is empty; {FORMS}"));
    }
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let mut unit_chars = unit.chars();
    let (Some(unit), None) = (unit_chars.next(), unit_chars.next()) else {
        let problem = if unit.is_empty() {
            "it has no unit"
        } else {
            "it is not a duration"
        };
        return Err(format!("{text:?}: {problem}; {FORMS}"));
    };
    if number.is_empty() {
        return Err(format!("{text:?}: it has no number; {FORMS}"));
    }
    let Some(&(_, scale, unit_name)) = UNITS.iter().find(|(u, _, _)| *u == unit) else {
        return Err(format!(
            "{text:?}: the unit is s, m, h or d (seconds, minutes, hours, days), not {unit:?}"
        ));
    };
    let count: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is too long a duration"))?;
    if count == 0 {
        return Err(format!(
            "the duration {text:?} is zero; access must last a while"
        ));
    }
    count.checked_mul(scale).ok_or_else(|| {
        format!("{text:?} is too long a duration ({count} {unit_name} do not fit in u64 seconds)")
    })
}

#[cfg(test)]
mod tests {
    use super::parse_seconds;

    #[test]
    fn parses_each_unit() {
        assert_eq!(parse_seconds("90s"), Ok(90));
        assert_eq!(parse_seconds("30m"), Ok(1800));
        assert_eq!(parse_seconds("1h"), Ok(3600));
        assert_eq!(parse_seconds("7d"), Ok(604_800));
    }

    #[test]
    fn rejects_with_a_reason() {
        let cases = [
            ("", "empty"),
            ("90", "it has no unit"),
            (
                "1w",
                "the unit is s, m, h or d (seconds, minutes, hours, days), not 'w'",
            ),
            ("h", "it has no number"),
            ("1.5h", "it is not a duration"),
            ("-1h", "it is not a duration"),
            (" 1h", "it is not a duration"),
            ("1 h", "it is not a duration"),
            ("1 hour", "it is not a duration"),
            ("1hé", "it is not a duration"),
            ("1é", "not 'é'"),
            ("0m", "is zero"),
            ("99999999999999999999s", "too long"),
            ("999999999999999999d", "do not fit"),
        ];
        for (text, reason) in cases {
            let err = parse_seconds(text).expect_err(text);
            assert!(err.contains(reason), "{text:?}: {err}");
        }
    }
}
