//! Entitlement tokens: access a payment bought, kept and shown again.
//!
//! A server may answer a paid request with `x402-entitlement: <opaque token>` and optionally
//! `x402-entitlement-scope: <path prefix>` (default: the request's path). The client keeps the
//! token for that origin and scope and sends it back as `x402-entitlement` on later requests
//! to the same origin whose path lies under the scope (the scope itself, or below it at a `/`
//! boundary), so access that was paid for once is not paid again. A server that answers 401 or
//! 402 with a reason starting `entitlement_` has refused the token: it is dropped.
//!
//! Cookies a server sets are kept by reqwest's cookie store; build the inner client with
//! `cookie_store(true)` (as [`X402Middleware::client`](crate::X402Middleware::client) does).

use std::collections::HashMap;

use http::{HeaderMap, HeaderValue};
use reqwest::Url;

/// The request and response header carrying an entitlement token.
pub const ENTITLEMENT_HEADER: &str = "x402-entitlement";
/// The response header naming the path prefix a token covers.
pub const ENTITLEMENT_SCOPE_HEADER: &str = "x402-entitlement-scope";
/// Prefix of the reason codes with which a server refuses a token.
pub const ENTITLEMENT_REASON_PREFIX: &str = "entitlement_";

/// Tokens kept per origin; a server cannot make the client hold more than this per origin.
const MAX_PER_ORIGIN: usize = 64;

#[derive(Debug)]
struct Grant {
    scope: String,
    token: HeaderValue,
}

/// A token attached to a request, to be dropped if the server refuses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Presented {
    origin: String,
    scope: String,
}

/// The tokens the client holds.
#[derive(Debug, Default)]
pub(crate) struct Entitlements {
    by_origin: HashMap<String, Vec<Grant>>,
}

fn covers(scope: &str, path: &str) -> bool {
    path == scope
        || (path.starts_with(scope)
            && (scope.ends_with('/') || path[scope.len()..].starts_with('/')))
}

impl Entitlements {
    /// The token to send to `url`, if one is held: the one with the longest matching scope.
    pub(crate) fn for_url(&self, url: &Url) -> Option<(HeaderValue, Presented)> {
        let origin = url.origin().ascii_serialization();
        let grants = self.by_origin.get(&origin)?;
        let grant = grants
            .iter()
            .filter(|g| covers(&g.scope, url.path()))
            .max_by_key(|g| g.scope.len())?;
        Some((
            grant.token.clone(),
            Presented {
                origin,
                scope: grant.scope.clone(),
            },
        ))
    }

    /// Keeps a token a response to `url` carries.
    pub(crate) fn capture(&mut self, url: &Url, headers: &HeaderMap) {
        let Some(token) = headers.get(ENTITLEMENT_HEADER) else {
            return;
        };
        if token.is_empty() {
            return;
        }
        let scope = headers
            .get(ENTITLEMENT_SCOPE_HEADER)
            .and_then(|s| s.to_str().ok())
            .map(str::trim)
            .filter(|s| s.starts_with('/'))
            .unwrap_or_else(|| url.path())
            .to_owned();
        let mut token = token.clone();
        token.set_sensitive(true);
        let origin = url.origin().ascii_serialization();
        let grants = self.by_origin.entry(origin).or_default();
        grants.retain(|g| g.scope != scope);
        grants.push(Grant { scope, token });
        if grants.len() > MAX_PER_ORIGIN {
            grants.remove(0);
        }
    }

    /// Drops a token the server refused.
    pub(crate) fn drop_presented(&mut self, presented: &Presented) {
        if let Some(grants) = self.by_origin.get_mut(&presented.origin) {
            grants.retain(|g| g.scope != presented.scope);
        }
    }

    /// Origins and scopes held (never the tokens).
    pub(crate) fn scopes(&self) -> Vec<(String, String)> {
        let mut out: Vec<_> = self
            .by_origin
            .iter()
            .flat_map(|(origin, grants)| grants.iter().map(|g| (origin.clone(), g.scope.clone())))
            .collect();
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(token: &str, scope: Option<&str>) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(ENTITLEMENT_HEADER, token.parse().unwrap());
        if let Some(scope) = scope {
            map.insert(ENTITLEMENT_SCOPE_HEADER, scope.parse().unwrap());
        }
        map
    }

    #[test]
    fn tokens_match_origin_and_path_prefix_at_segment_boundaries() {
        let mut store = Entitlements::default();
        let paid: Url = "http://api.test:8080/reports/7?x=1".parse().unwrap();
        store.capture(&paid, &headers("t-default", None));
        store.capture(&paid, &headers("t-reports", Some("/reports")));
        let token = |url: &str| {
            store
                .for_url(&url.parse().unwrap())
                .map(|(t, _)| t.to_str().unwrap().to_owned())
        };
        assert_eq!(
            token("http://api.test:8080/reports/7").as_deref(),
            Some("t-default")
        );
        assert_eq!(
            token("http://api.test:8080/reports/8").as_deref(),
            Some("t-reports")
        );
        assert_eq!(
            token("http://api.test:8080/reports").as_deref(),
            Some("t-reports")
        );
        assert_eq!(token("http://api.test:8080/reportsx"), None);
        assert_eq!(token("http://api.test:9090/reports/8"), None, "other port");
        assert_eq!(
            token("https://api.test:8080/reports/8"),
            None,
            "other scheme"
        );
    }

    #[test]
    fn refused_tokens_are_dropped_and_new_ones_replace_old() {
        let mut store = Entitlements::default();
        let url: Url = "http://a.test/x".parse().unwrap();
        store.capture(&url, &headers("one", Some("/")));
        store.capture(&url, &headers("two", Some("/")));
        let (token, presented) = store.for_url(&url).unwrap();
        assert_eq!(token, "two");
        assert!(token.is_sensitive());
        store.drop_presented(&presented);
        assert!(store.for_url(&url).is_none());
        // A scope that is not a path is ignored in favour of the request path.
        store.capture(&url, &headers("three", Some("evil.test")));
        assert_eq!(
            store.scopes(),
            vec![("http://a.test".to_owned(), "/x".to_owned())]
        );
    }
}
