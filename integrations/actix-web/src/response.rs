use std::borrow::Cow;

use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::{HttpResponse, HttpResponseBuilder};
use x402_runtime::ResponseParts;

/// Adds runtime-chosen headers (appending, so several `set-cookie`s survive).
pub(crate) fn append_headers<N: Into<Cow<'static, str>>>(
    map: &mut HeaderMap,
    headers: Vec<(N, String)>,
) {
    for (name, value) in headers {
        let name = name.into();
        let parsed = match &name {
            Cow::Borrowed(name) => Ok(HeaderName::from_static(name)),
            Cow::Owned(name) => HeaderName::try_from(name.as_str()),
        };
        match (parsed, HeaderValue::try_from(value)) {
            (Ok(header), Ok(value)) => map.append(header, value),
            _ => tracing::error!(target: "x402::actix", %name, "dropping an unencodable header"),
        }
    }
}

/// Marks a paid response as private to the client (see
/// [`paid_cache_control`](x402_runtime::response::paid_cache_control)).
pub(crate) fn make_private(map: &mut HeaderMap) {
    let existing = map
        .get(actix_web::http::header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok());
    let value = x402_runtime::response::paid_cache_control(existing);
    if let Ok(value) = HeaderValue::try_from(value) {
        map.insert(actix_web::http::header::CACHE_CONTROL, value);
    }
}

/// Builds the actix response for runtime-chosen parts.
pub(crate) fn into_response(parts: ResponseParts) -> HttpResponse {
    let status = StatusCode::from_u16(parts.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = HttpResponseBuilder::new(status).body(parts.body);
    append_headers(response.headers_mut(), parts.headers);
    response
}
