//! The web origin (`scheme://host[:port]`) of an `http`/`https` URL, as browsers compare them.

use std::fmt;

/// The origin of an `http` or `https` URL: scheme, lower-case host and non-default port.
///
/// Parsing is deliberately strict, since origins decide whom a signed message is for: only
/// `http` and `https`, no user-info (`user@host`), an ASCII host of letters, digits, `.`, `-`
/// and `_` (or a bracketed IPv6 literal), and a decimal port. Anything else is refused rather
/// than guessed at.
///
/// ```
/// use x402_protocol::siwx::Origin;
///
/// let origin = Origin::parse("HTTPS://API.Example.com:443/reports?id=1").unwrap();
/// assert_eq!(origin.to_string(), "https://api.example.com");
/// assert_eq!(origin.authority(), "api.example.com");
/// assert_eq!(Origin::parse("http://localhost:8080/").unwrap().authority(), "localhost:8080");
/// assert!(Origin::parse("https://user@api.example.com/").is_none());
/// assert!(Origin::parse("ftp://api.example.com/").is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    scheme: &'static str,
    host: String,
    port: Option<u16>,
}

impl Origin {
    /// The origin of `url`, or `None` when it is not an absolute `http(s)` URL this parser
    /// accepts. Returns the URL's remainder (path, query, fragment) with [`Origin::split`].
    pub fn parse(url: &str) -> Option<Origin> {
        Self::split(url).map(|(origin, _)| origin)
    }

    /// The origin of `url` and everything after its authority (`/path?query#fragment`,
    /// possibly empty).
    pub fn split(url: &str) -> Option<(Origin, &str)> {
        let (scheme, rest) = url.split_once("://")?;
        let (scheme, default_port) = if scheme.eq_ignore_ascii_case("https") {
            ("https", 443)
        } else if scheme.eq_ignore_ascii_case("http") {
            ("http", 80)
        } else {
            return None;
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, remainder) = rest.split_at(end);
        let (host, port) = split_host_port(authority)?;
        let port = port.filter(|p| *p != default_port);
        Some((
            Origin {
                scheme,
                host: host.to_ascii_lowercase(),
                port,
            },
            remainder,
        ))
    }

    /// `http` or `https`.
    pub fn scheme(&self) -> &str {
        self.scheme
    }

    /// The host, lower-case (IPv6 literals keep their brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port when it is not the scheme's default.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// `host[:port]`, the port only when it is not the scheme's default: what a browser's
    /// `URL.host` gives, and the `domain` of a sign-in message.
    pub fn authority(&self) -> String {
        match self.port {
            Some(port) => format!("{}:{port}", self.host),
            None => self.host.clone(),
        }
    }
}

impl fmt::Display for Origin {
    /// `scheme://host[:port]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme, self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        Ok(())
    }
}

fn split_host_port(authority: &str) -> Option<(&str, Option<u16>)> {
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let close = rest.find(']')?;
        let literal = &rest[..close];
        if literal.is_empty() || !literal.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return None;
        }
        let host = &authority[..close + 2];
        match &rest[close + 1..] {
            "" => (host, None),
            after => (host, Some(after.strip_prefix(':')?)),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if !host.starts_with('[')
        && (host.is_empty()
            || !host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_'))
    {
        return None;
    }
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
            Some(p.parse::<u16>().ok()?)
        }
        Some(_) => return None,
    };
    Some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_like_a_browser_and_refuses_what_it_cannot_read() {
        let cases = [
            (
                "https://api.example.test/x",
                Some("https://api.example.test"),
            ),
            (
                "http://api.example.test:80",
                Some("http://api.example.test"),
            ),
            (
                "http://api.example.test:8080?q",
                Some("http://api.example.test:8080"),
            ),
            (
                "https://Api.Example.Test#frag",
                Some("https://api.example.test"),
            ),
            ("http://[::1]:3000/", Some("http://[::1]:3000")),
            ("http://127.0.0.1/", Some("http://127.0.0.1")),
            ("https://api.example.test:99999/", None),
            ("https://api.example.test:/", None),
            ("https://a b/", None),
            ("https:///path", None),
            ("https://u:p@api.example.test/", None),
            ("mailto:someone@example.test", None),
            ("//api.example.test/", None),
            ("https://[zz]/", None),
            ("https://exämple.test/", None),
        ];
        for (url, expected) in cases {
            assert_eq!(
                Origin::parse(url).map(|o| o.to_string()).as_deref(),
                expected,
                "{url}"
            );
        }
        let (origin, rest) = Origin::split("https://api.example.test:8443/a/b?c=d").unwrap();
        assert_eq!(origin.authority(), "api.example.test:8443");
        assert_eq!(rest, "/a/b?c=d");
    }
}
