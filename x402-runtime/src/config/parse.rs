//! Reading values: TOML errors located by line, durations, gas prices, key sources.

use super::*;

/// A toml error as a sentence with the file, line and key.
pub(super) fn toml_error(error: &toml::de::Error, text: &str, origin: &str) -> ConfigFileError {
    let (line, key) = match error.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            let source_line = text.lines().nth(line - 1).unwrap_or_default();
            let key = source_line
                .split_once('=')
                .map(|(k, _)| k.trim().to_owned())
                .filter(|k| !k.is_empty() && !k.starts_with('['));
            (Some(line), key)
        }
        None => (None, None),
    };
    let mut message = hide_secrets(error.message().trim());
    if message.starts_with("unknown field") {
        message.push_str("; check the spelling (keys are lower case with underscores)");
    }
    ConfigFileError {
        origin: origin.to_owned(),
        line,
        key,
        message,
    }
}

/// `text` with every quoted value that could be a key (a run of 40 or more hex or base58
/// characters) replaced by `"<hidden>"`: parse errors quote values, and a key pasted in the
/// wrong place must not reach a log.
pub(super) fn hide_secrets(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('"') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let Some(end) = after.find('"') else {
            out.push_str(&rest[start..]);
            return out;
        };
        let quoted = &after[..end];
        let longest_run = quoted
            .split(|c: char| !c.is_ascii_alphanumeric())
            .map(str::len)
            .max()
            .unwrap_or(0);
        if longest_run >= 40 {
            out.push_str("\"<hidden>\"");
        } else {
            out.push('"');
            out.push_str(quoted);
            out.push('"');
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// `"30s"`, `"500ms"`, `"2m"`, `"1h"`, or a plain number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().map_err(|_| {
        format!("{text:?} is not a duration; write \"30s\", \"500ms\", \"2m\" or \"1h\"")
    })?;
    let seconds = match unit.trim() {
        "" | "s" | "sec" | "secs" => number,
        "ms" => number / 1000.0,
        "m" | "min" => number * 60.0,
        "h" => number * 3600.0,
        other => {
            return Err(format!(
                "{text:?}: unknown unit {other:?}; use ms, s, m or h"
            ));
        }
    };
    if !seconds.is_finite() || seconds <= 0.0 || seconds > 7.0 * 24.0 * 3600.0 {
        return Err(format!(
            "{text:?} is out of range; give a positive duration of at most a week"
        ));
    }
    Ok(Duration::from_secs_f64(seconds))
}

pub(super) fn duration(
    raw: Option<RawDuration>,
    origin: &str,
    key: &str,
) -> Result<Option<Duration>, ConfigFileError> {
    match raw {
        None => Ok(None),
        Some(RawDuration::Seconds(0)) => Err(ConfigFileError::new(
            origin,
            key,
            "must be positive; write a duration such as \"30s\"",
        )),
        Some(RawDuration::Seconds(s)) => Ok(Some(Duration::from_secs(s))),
        Some(RawDuration::Text(text)) => parse_duration(&text)
            .map(Some)
            .map_err(|message| ConfigFileError::new(origin, key, message)),
    }
}

/// `"2 gwei"`, `"1.5 gwei"`, `"1000 wei"`, or a plain number of wei.
pub fn parse_gas_price(text: &str) -> Result<u128, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| c.is_ascii_alphabetic()) {
        Some(at) => (text[..at].trim(), text[at..].trim()),
        None => (text, "wei"),
    };
    let decimals = match unit.to_ascii_lowercase().as_str() {
        "wei" => 0,
        "gwei" => 9,
        "ether" | "eth" => 18,
        other => return Err(format!("{text:?}: unknown unit {other:?}; use wei or gwei")),
    };
    let amount = Decimal::from_str(number)
        .map_err(|_| format!("{text:?} is not a gas price; write \"2 gwei\" or a number of wei"))?;
    let wei = amount
        .to_atomic(decimals)
        .map_err(|e| format!("{text:?}: {e}"))?;
    u128::try_from(wei)
        .ok()
        .filter(|w| *w > 0)
        .ok_or_else(|| format!("{text:?} is out of range; give a positive gas price"))
}

pub(super) fn key_source(
    env: Option<String>,
    file: Option<PathBuf>,
    origin: &str,
    key: &str,
    what: &str,
) -> Result<Option<KeySource>, ConfigFileError> {
    match (env, file) {
        (Some(_), Some(_)) => Err(ConfigFileError::new(
            origin,
            key,
            format!(
                "give {what} either from an environment variable (`{key}_env`) or from a file (`{key}_file`), not both"
            ),
        )),
        (Some(var), None) if valid_env_name(&var) => Ok(Some(KeySource::Env(var))),
        (Some(_), None) => Err(ConfigFileError::new(
            origin,
            format!("{key}_env"),
            format!(
                "is not an environment variable name (the value is not shown, in case it is the secret itself); name the variable that holds {what} (letters, digits, _)"
            ),
        )),
        (None, Some(path)) => Ok(Some(KeySource::File(path))),
        (None, None) => Ok(None),
    }
}

pub(super) fn valid_env_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

pub(super) fn signer(raw: RawKey, origin: &str, key: &str) -> Result<KeySource, ConfigFileError> {
    match (raw.key_env, raw.key_file) {
        (Some(var), None) if valid_env_name(&var) => Ok(KeySource::Env(var)),
        (Some(_), None) => Err(ConfigFileError::new(
            origin,
            format!("{key}.key_env"),
            "is not an environment variable name (the value is not shown, in case it is a key); name the variable that holds the private key, never the key itself",
        )),
        (None, Some(path)) => Ok(KeySource::File(path)),
        _ => Err(ConfigFileError::new(
            origin,
            key,
            "a signer is { key_env = \"VARIABLE\" } or { key_file = \"/path/to/key\" } (exactly one of them); private keys never go in the file itself",
        )),
    }
}
