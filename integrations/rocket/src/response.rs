use std::borrow::Cow;
use std::io::Cursor;

use rocket::Response;
use rocket::http::{Header, Status};
use x402_runtime::ResponseParts;

/// Whether hyper will accept `value` as a header value; one it refuses fails the whole
/// response, so such a value is dropped instead.
fn is_sendable(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

/// Adds runtime-chosen headers to a response (appending, so several `set-cookie`s survive).
pub(crate) fn append_headers<N: Into<Cow<'static, str>>>(
    response: &mut Response<'_>,
    headers: Vec<(N, String)>,
) {
    for (name, value) in headers {
        let name = name.into();
        if is_sendable(&value) {
            response.adjoin_header(Header::new(name, value));
        } else {
            log::error!(target: "x402::rocket", "dropping the unencodable header {name}");
        }
    }
}

/// Makes `response` the runtime's: its status, headers (replacing any of the same names) and
/// body. Headers of other names, such as those Rocket and earlier fairings added, stay.
/// Marks a paid response as private to the client (see
/// [`paid_cache_control`](x402_runtime::response::paid_cache_control)).
pub(crate) fn make_private(response: &mut Response<'_>) {
    let value =
        x402_runtime::response::paid_cache_control(response.headers().get_one("cache-control"));
    response.set_header(Header::new("cache-control", value));
}

pub(crate) fn render_over(response: &mut Response<'_>, parts: ResponseParts) {
    response.set_status(Status::new(parts.status));
    for (name, _) in &parts.headers {
        response.remove_header(name.as_ref());
    }
    append_headers(response, parts.headers);
    let len = parts.body.len();
    response.set_sized_body(len, Cursor::new(parts.body));
}

/// A new response made of the runtime's parts only.
pub(crate) fn build<'r>(parts: ResponseParts) -> Response<'r> {
    let mut response = Response::new();
    render_over(&mut response, parts);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_values_hyper_would_refuse() {
        assert!(is_sendable("x402e1.abc; Path=/; HttpOnly\tok"));
        assert!(!is_sendable("a\r\nset-cookie: evil=1"));
        assert!(!is_sendable("nul\0"));
    }

    #[test]
    fn appends_repeated_headers_and_replaces_rendered_ones() {
        let mut response = Response::build()
            .status(Status::NotFound)
            .header(Header::new("content-type", "text/html"))
            .header(Header::new("server", "Rocket"))
            .finalize();
        render_over(
            &mut response,
            ResponseParts {
                status: 402,
                headers: vec![
                    ("content-type".into(), "application/json".to_owned()),
                    ("set-cookie".into(), "a=1".to_owned()),
                    ("set-cookie".into(), "b=2".to_owned()),
                    ("x-bad".into(), "line\nbreak".to_owned()),
                ],
                body: "{}".into(),
            },
        );
        assert_eq!(response.status(), Status::PaymentRequired);
        let headers = response.headers();
        assert_eq!(
            headers.get("content-type").collect::<Vec<_>>(),
            ["application/json"]
        );
        assert_eq!(
            headers.get("set-cookie").collect::<Vec<_>>(),
            ["a=1", "b=2"]
        );
        assert_eq!(headers.get_one("server"), Some("Rocket"));
        assert!(!headers.contains("x-bad"));
    }
}
