use http::request::Parts;
use x402_runtime::RequestView;

/// The runtime's view of an axum request.
pub(crate) struct AxumView<'a>(pub(crate) &'a Parts);

impl RequestView for AxumView<'_> {
    fn method(&self) -> &str {
        self.0.method.as_str()
    }

    fn path_and_query(&self) -> &str {
        self.0
            .uri
            .path_and_query()
            .map_or_else(|| self.0.uri.path(), |pq| pq.as_str())
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.0.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn scheme(&self) -> Option<&str> {
        self.0.uri.scheme_str()
    }

    fn authority(&self) -> Option<&str> {
        self.0.uri.authority().map(|a| a.as_str())
    }
}
