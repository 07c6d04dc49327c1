use std::borrow::Cow;

use axum_core::body::Body;
use axum_core::response::Response;
use http::{HeaderName, HeaderValue, StatusCode};
use x402_runtime::ResponseParts;

/// Adds runtime-chosen headers to a response (appending, so several `set-cookie`s survive).
pub(crate) fn append_headers<N: Into<Cow<'static, str>>>(
    response: &mut Response,
    headers: Vec<(N, String)>,
) {
    for (name, value) in headers {
        let name = name.into();
        let parsed = match &name {
            Cow::Borrowed(name) => Ok(HeaderName::from_static(name)),
            Cow::Owned(name) => HeaderName::try_from(name.as_str()),
        };
        match (parsed, HeaderValue::try_from(value)) {
            (Ok(header), Ok(value)) => {
                response.headers_mut().append(header, value);
            }
            _ => tracing::error!(target: "x402::axum", %name, "dropping an unencodable header"),
        }
    }
}

/// Marks a paid response as private to the client (see
/// [`paid_cache_control`](x402_runtime::response::paid_cache_control)).
pub(crate) fn make_private(response: &mut Response) {
    let existing = response
        .headers()
        .get(http::header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok());
    let value = x402_runtime::response::paid_cache_control(existing);
    if let Ok(value) = HeaderValue::try_from(value) {
        response
            .headers_mut()
            .insert(http::header::CACHE_CONTROL, value);
    }
}

/// Builds the axum response for runtime-chosen parts.
pub(crate) fn into_response(parts: ResponseParts) -> Response {
    let mut response = Response::new(Body::from(parts.body));
    *response.status_mut() =
        StatusCode::from_u16(parts.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    append_headers(&mut response, parts.headers);
    response
}
