use actix_web::HttpRequest;
use x402_runtime::RequestView;

/// The runtime's view of an actix-web request.
pub(crate) struct ActixView<'a>(pub(crate) &'a HttpRequest);

impl RequestView for ActixView<'_> {
    fn method(&self) -> &str {
        self.0.method().as_str()
    }

    fn path_and_query(&self) -> &str {
        self.0
            .uri()
            .path_and_query()
            .map_or_else(|| self.0.path(), |pq| pq.as_str())
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.0.headers().get(name).and_then(|v| v.to_str().ok())
    }

    // Deliberately not `connection_info()`, which believes forwarding headers: whether to
    // trust those is the runtime's `ResourcePolicy` decision.
    fn scheme(&self) -> Option<&str> {
        self.0.uri().scheme_str()
    }

    fn authority(&self) -> Option<&str> {
        self.0.uri().authority().map(|a| a.as_str())
    }
}
