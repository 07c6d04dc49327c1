//! The framework-free view of an incoming request, and how the paid resource's URL is built
//! from it.

/// What the runtime needs to see of a request. Each framework integration implements it over
/// its own request type.
///
/// ```
/// use x402_runtime::RequestView;
///
/// struct Plain;
/// impl RequestView for Plain {
///     fn method(&self) -> &str { "GET" }
///     fn path_and_query(&self) -> &str { "/weather?city=Oslo" }
///     fn header(&self, name: &str) -> Option<&str> {
///         name.eq_ignore_ascii_case("host").then_some("api.example.com")
///     }
/// }
/// assert_eq!(Plain.header("Host"), Some("api.example.com"));
/// ```
pub trait RequestView {
    /// The HTTP method, upper-case.
    fn method(&self) -> &str;
    /// The path with its query string, as received (`/weather?city=Oslo`).
    fn path_and_query(&self) -> &str;
    /// The first value of a header, looked up case-insensitively; `None` when absent or not
    /// valid UTF-8.
    fn header(&self, name: &str) -> Option<&str>;
    /// `https` when the framework knows the connection used TLS, `http` when it knows it did
    /// not; `None` when it cannot tell.
    fn scheme(&self) -> Option<&str> {
        None
    }
    /// The authority from an absolute-form request target or HTTP/2 `:authority`, if any.
    fn authority(&self) -> Option<&str> {
        None
    }
}

/// How the `resource` URL of a 402 is derived.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourcePolicy {
    /// A fixed public origin such as `https://api.example.com`, used instead of the request's
    /// Host. The most robust choice behind proxies.
    pub public_url: Option<String>,
    /// Believe `Forwarded` / `X-Forwarded-Proto` / `X-Forwarded-Host`. Only enable this
    /// behind a proxy that sets them, or clients can make the server advertise any URL.
    pub trust_forwarded_headers: bool,
}

impl ResourcePolicy {
    /// The absolute URL of the requested resource.
    pub fn resource_url(&self, view: &dyn RequestView) -> String {
        let path = view.path_and_query();
        let path = if path.starts_with('/') { path } else { "/" };
        if let Some(base) = &self.public_url {
            return concat(&[base.trim_end_matches('/'), path]);
        }
        let (mut scheme, mut host) = (None, None);
        if self.trust_forwarded_headers {
            if let Some(forwarded) = view.header("forwarded") {
                // Only the first (client-nearest) element counts.
                let first = forwarded.split(',').next().unwrap_or("");
                for pair in first.split(';') {
                    if let Some((key, value)) = pair.trim().split_once('=') {
                        let value = value.trim().trim_matches('"');
                        if key.eq_ignore_ascii_case("proto") {
                            scheme = Some(value);
                        } else if key.eq_ignore_ascii_case("host") {
                            host = Some(value);
                        }
                    }
                }
            }
            scheme = scheme.or_else(|| view.header("x-forwarded-proto").and_then(first));
            host = host.or_else(|| view.header("x-forwarded-host").and_then(first));
        }
        let scheme = scheme
            .filter(|s| s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("https"))
            .or_else(|| view.scheme())
            .unwrap_or("http");
        let host = host
            .or_else(|| view.authority())
            .or_else(|| view.header("host"))
            .filter(|h| is_plausible_host(h))
            .unwrap_or("localhost");
        concat(&[scheme, "://", host, path])
    }
}

/// The pieces joined, in one allocation of the right size (`format!` costs more per request).
fn concat(pieces: &[&str]) -> String {
    let mut out = String::with_capacity(pieces.iter().map(|p| p.len()).sum());
    for piece in pieces {
        out.push_str(piece);
    }
    out
}

/// The first element of a comma-separated header value.
fn first(value: &str) -> Option<&str> {
    value.split(',').next().map(str::trim)
}

/// Host values end up in JSON bodies and headers; refuse anything that is not a host[:port].
fn is_plausible_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct View(Vec<(&'static str, &'static str)>);
    impl RequestView for View {
        fn method(&self) -> &str {
            "GET"
        }
        fn path_and_query(&self) -> &str {
            "/a?b=1"
        }
        fn header(&self, name: &str) -> Option<&str> {
            self.0
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| *v)
        }
    }

    #[test]
    fn builds_urls_from_host_and_only_trusts_forwarding_when_told() {
        let view = View(vec![
            ("host", "internal:8080"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "api.example.com"),
        ]);
        let untrusting = ResourcePolicy::default();
        assert_eq!(untrusting.resource_url(&view), "http://internal:8080/a?b=1");
        let trusting = ResourcePolicy {
            trust_forwarded_headers: true,
            ..Default::default()
        };
        assert_eq!(
            trusting.resource_url(&view),
            "https://api.example.com/a?b=1"
        );
        let fixed = ResourcePolicy {
            public_url: Some("https://pay.example/".into()),
            ..Default::default()
        };
        assert_eq!(fixed.resource_url(&view), "https://pay.example/a?b=1");
    }

    #[test]
    fn forwarded_header_wins_and_garbage_hosts_are_ignored() {
        let trusting = ResourcePolicy {
            trust_forwarded_headers: true,
            ..Default::default()
        };
        let view = View(vec![
            ("forwarded", "proto=https;host=\"a.example\", proto=http"),
            ("host", "b"),
        ]);
        assert_eq!(trusting.resource_url(&view), "https://a.example/a?b=1");
        let view = View(vec![("host", "evil\"}{")]);
        assert_eq!(trusting.resource_url(&view), "http://localhost/a?b=1");
    }
}
