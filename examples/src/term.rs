//! A few ANSI colours for example output, only when stdout is a terminal and `NO_COLOR` is not
//! set.

use std::io::IsTerminal;
use std::sync::OnceLock;

fn enabled() -> bool {
    static ENABLED: OnceLock<bool> = OnceLock::new();
    *ENABLED
        .get_or_init(|| std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none())
}

fn paint(code: &str, text: &str) -> String {
    if enabled() {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

/// Bold.
pub fn bold(text: &str) -> String {
    paint("1", text)
}

/// Dimmed, for details.
pub fn dim(text: &str) -> String {
    paint("2", text)
}

/// Green, for success.
pub fn green(text: &str) -> String {
    paint("32", text)
}

/// Yellow, for a 402.
pub fn yellow(text: &str) -> String {
    paint("33", text)
}

/// Red, for a refusal.
pub fn red(text: &str) -> String {
    paint("31", text)
}

/// Cyan, for addresses and hashes.
pub fn cyan(text: &str) -> String {
    paint("36", text)
}

/// `0x1234…abcd`: long hex shortened for reading.
pub fn short(hex: &str) -> String {
    if hex.len() > 14 {
        format!("{}…{}", &hex[..6], &hex[hex.len() - 4..])
    } else {
        hex.to_owned()
    }
}
