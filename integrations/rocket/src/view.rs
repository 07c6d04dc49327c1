use rocket::Request;
use x402_runtime::RequestView;

/// The runtime's view of a Rocket request.
pub(crate) struct RocketView<'a, 'r> {
    request: &'a Request<'r>,
    /// Rocket keeps path and query apart; the runtime wants them as received, in one string.
    path_and_query: String,
    authority: Option<String>,
}

impl<'a, 'r> RocketView<'a, 'r> {
    pub(crate) fn new(request: &'a Request<'r>) -> Self {
        // Over HTTP/2 the host travels in `:authority`, which Rocket reports as the request's
        // host while there is no `Host` header; over HTTP/1 `host()` *is* the `Host` header,
        // which the runtime reads itself.
        let authority = match request.headers().get_one("host") {
            Some(_) => None,
            None => request.host().map(ToString::to_string),
        };
        RocketView {
            request,
            path_and_query: request.uri().to_string(),
            authority,
        }
    }
}

impl RequestView for RocketView<'_, '_> {
    fn method(&self) -> &str {
        self.request.method().as_str()
    }

    fn path_and_query(&self) -> &str {
        &self.path_and_query
    }

    fn header(&self, name: &str) -> Option<&str> {
        // Rocket's header map is case-insensitive.
        self.request.headers().get_one(name)
    }

    fn authority(&self) -> Option<&str> {
        self.authority.as_deref()
    }
}
