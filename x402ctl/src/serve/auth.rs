//! Who may call the facilitator: bearer tokens, each with a caller name (for metrics, rate
//! limits and the journal), from an environment variable and/or a file that is re-read when it
//! changes, so tokens rotate without a restart (add the new token, move callers over, remove
//! the old one).
//!
//! Tokens are kept as SHA-256 digests and compared in constant time; they never appear in logs
//! or metrics, only their caller names do.

use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest, Sha256};

/// How often the token file is checked for changes, at most.
const RELOAD_EVERY: Duration = Duration::from_secs(2);

/// A caller's token: its name and the digest of the token.
#[derive(Clone)]
struct Entry {
    name: String,
    digest: [u8; 32],
}

/// What a request presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// A known token: the caller's name.
    Caller(String),
    /// No `Authorization: Bearer …` header.
    Missing,
    /// A token that is not (or no longer) valid.
    Invalid,
}

/// The tokens accepted, from the environment (fixed) and a file (re-read when it changes).
pub(crate) struct Tokens {
    fixed: Vec<Entry>,
    file: Option<PathBuf>,
    from_file: Mutex<FileTokens>,
}

#[derive(Default)]
struct FileTokens {
    entries: Vec<Entry>,
    modified: Option<SystemTime>,
    checked: Option<Instant>,
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Equal without an early exit, so the time taken says nothing about where they differ.
fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `name:token` entries separated by commas or new lines (`#` starts a comment line); a bare
/// token is named `caller-<n>`.
pub(crate) fn parse(text: &str, origin: &str) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (i, item) in text
        .split(['\n', ','])
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .enumerate()
    {
        let (name, token) = match item.split_once(':') {
            Some((name, token)) => (name.trim().to_owned(), token.trim().to_owned()),
            None => (format!("caller-{}", i + 1), item.to_owned()),
        };
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return Err(format!(
                "{origin}: entry {} has a caller name that is not letters, digits, '-', '_' or '.'; write name:token",
                i + 1
            ));
        }
        if token.len() < 16 {
            return Err(format!(
                "{origin}: the token of caller {name} is shorter than 16 characters; use a long random token (x402ctl keygen prints 64 hex digits)"
            ));
        }
        if out.iter().any(|(n, _)| *n == name) {
            return Err(format!("{origin}: caller {name} is listed twice"));
        }
        out.push((name, token));
    }
    Ok(out)
}

impl Tokens {
    /// Tokens from `fixed` (already parsed) and, if given, a file.
    pub(crate) fn new(
        fixed: Vec<(String, String)>,
        file: Option<PathBuf>,
    ) -> Result<Tokens, String> {
        let tokens = Tokens {
            fixed: fixed
                .into_iter()
                .map(|(name, token)| Entry {
                    name,
                    digest: digest(&token),
                })
                .collect(),
            file,
            from_file: Mutex::new(FileTokens::default()),
        };
        tokens.reload(true)?;
        Ok(tokens)
    }

    /// Whether any token is configured (without any, every caller is refused).
    pub(crate) fn count(&self) -> usize {
        self.fixed.len() + self.lock().entries.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FileTokens> {
        self.from_file
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Re-reads the token file if it changed (or `force`). A file that became unreadable or
    /// malformed keeps the previous tokens and says so in the log.
    fn reload(&self, force: bool) -> Result<(), String> {
        let Some(path) = &self.file else {
            return Ok(());
        };
        {
            let mut state = self.lock();
            if !force && state.checked.is_some_and(|at| at.elapsed() < RELOAD_EVERY) {
                return Ok(());
            }
            state.checked = Some(Instant::now());
        }
        let origin = path.display().to_string();
        let modified = std::fs::metadata(path)
            .and_then(|m| m.modified())
            .map_err(|e| format!("cannot read the token file {origin}: {e}"))?;
        if !force && self.lock().modified == Some(modified) {
            return Ok(());
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the token file {origin}: {e}"))?;
        let entries: Vec<Entry> = parse(&text, &origin)?
            .into_iter()
            .map(|(name, token)| Entry {
                name,
                digest: digest(&token),
            })
            .collect();
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        tracing::info!(target: "x402::facilitator", file = %origin, callers = ?names, "caller tokens loaded");
        let mut state = self.lock();
        state.entries = entries;
        state.modified = Some(modified);
        Ok(())
    }

    /// Judges an `Authorization` header value.
    pub(crate) fn check(&self, header: Option<&str>) -> Verdict {
        if let Err(error) = self.reload(false) {
            tracing::warn!(target: "x402::facilitator", %error, "keeping the previous caller tokens");
        }
        let Some(token) = header
            .and_then(|h| {
                let (scheme, rest) = h.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then_some(rest.trim())
            })
            .filter(|t| !t.is_empty())
        else {
            return Verdict::Missing;
        };
        let presented = digest(token);
        // Every entry is compared, whichever matches.
        let mut found = None;
        for entry in self.fixed.iter().chain(self.lock().entries.iter()) {
            if same(&entry.digest, &presented) && found.is_none() {
                found = Some(entry.name.clone());
            }
        }
        found.map_or(Verdict::Invalid, Verdict::Caller)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "0123456789abcdef0123456789abcdef";
    const B: &str = "fedcba9876543210fedcba9876543210";

    #[test]
    fn tokens_are_named_and_checked() {
        let tokens = Tokens::new(parse(&format!("shop:{A}, {B}"), "env").unwrap(), None).unwrap();
        assert_eq!(tokens.count(), 2);
        assert_eq!(
            tokens.check(Some(&format!("Bearer {A}"))),
            Verdict::Caller("shop".into())
        );
        assert_eq!(
            tokens.check(Some(&format!("bearer  {B} "))),
            Verdict::Caller("caller-2".into())
        );
        assert_eq!(tokens.check(None), Verdict::Missing);
        assert_eq!(tokens.check(Some("Basic abc")), Verdict::Missing);
        assert_eq!(
            tokens.check(Some("Bearer nope-nope-nope-nope")),
            Verdict::Invalid
        );
        assert!(
            parse("shop:short", "env")
                .unwrap_err()
                .contains("shorter than 16")
        );
        assert!(
            parse(&format!("a b:{A}"), "env")
                .unwrap_err()
                .contains("caller name")
        );
        assert!(
            parse(&format!("x:{A}\nx:{B}"), "env")
                .unwrap_err()
                .contains("twice")
        );
    }

    #[test]
    fn the_token_file_rotates_without_a_restart() {
        let dir = std::env::temp_dir().join(format!("x402-tokens-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("tokens");
        std::fs::write(&file, format!("# callers\nshop:{A}\n")).unwrap();
        let tokens = Tokens::new(Vec::new(), Some(file.clone())).unwrap();
        assert_eq!(
            tokens.check(Some(&format!("Bearer {A}"))),
            Verdict::Caller("shop".into())
        );
        // Rotate: the new token in, the old one out.
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(&file, format!("shop:{B}\n")).unwrap();
        tokens.reload(true).unwrap();
        assert_eq!(
            tokens.check(Some(&format!("Bearer {B}"))),
            Verdict::Caller("shop".into())
        );
        assert_eq!(tokens.check(Some(&format!("Bearer {A}"))), Verdict::Invalid);
        // A broken file keeps the last good tokens.
        std::fs::write(&file, "shop:short\n").unwrap();
        assert!(tokens.reload(true).is_err());
        assert_eq!(
            tokens.check(Some(&format!("Bearer {B}"))),
            Verdict::Caller("shop".into())
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
