//! The one place that turns decisions, rejections and settlements into HTTP status, headers
//! and body. Integrations copy [`ResponseParts`] into their framework's response type and
//! never choose a status themselves.
//!
//! | reason | status |
//! | --- | --- |
//! | `invalid_payload` (undecodable payment header), `payment_identifier_required`, `invalid_payment_identifier` | 400 |
//! | `payment_header_too_large` | 431 |
//! | `x402_not_configured`, `price_unavailable` | 500 |
//! | `facilitator_unavailable`, `facilitator_invalid_response` | 502 |
//! | `payment_identifier_conflict` (a payment id reused for another request), `payment_in_progress`, `payment_already_settled` (its response was not kept) | 409 |
//! | `store_unavailable` | 503 |
//! | `facilitator_timeout`, `settlement_pending` (settlement outcome not known yet) | 504 |
//! | everything else (no payment, invalid payment, replay, failed settlement, facilitator reasons) | 402, with the full challenge |
//!
//! A 402 carries the v2 `PAYMENT-REQUIRED` header *and* the v1 JSON body, so clients of either
//! generation can pay. Other errors carry `{"error": <reason>, "message": <text>}`. Every 402
//! and error is sent with `cache-control: no-store`.

use std::borrow::Cow;
use std::sync::Arc;

use bytes::Bytes;
use x402_protocol::facilitator::SettleResponse;
use x402_protocol::{ProtocolVersion, Reason, codec, headers};

use crate::challenge::CachedChallenge;
use crate::rejection::Rejection;

/// Status, headers and body of a response, as plain data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseParts {
    /// HTTP status code.
    pub status: u16,
    /// Headers to set (lower-case names): the runtime's own, or a kept response's.
    pub headers: Vec<(Cow<'static, str>, String)>,
    /// JSON body.
    pub body: Bytes,
}

impl ResponseParts {
    /// The value of a header, if set.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What a handler answered, as the gate needs it after the handler: the status decides
/// whether the payment is settled, and a paid response (status, headers, body) is kept in the
/// journal to answer retries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HandlerResponse {
    /// HTTP status.
    pub status: u16,
    /// The handler's headers (lower-case names), without hop-by-hop ones.
    pub headers: Vec<(String, String)>,
    /// The body, when it was captured (small enough and not streamed).
    pub body: Option<Bytes>,
}

impl HandlerResponse {
    /// Only the status is known (the body is streamed, or the caller does not capture).
    pub fn status(status: u16) -> Self {
        HandlerResponse {
            status,
            headers: Vec::new(),
            body: None,
        }
    }

    /// Headers that describe the connection or the framing, not the content: not kept.
    pub fn is_hop_by_hop(name: &str) -> bool {
        [
            "connection",
            "keep-alive",
            "transfer-encoding",
            "content-length",
            "date",
            "set-cookie",
            "trailer",
            "upgrade",
        ]
        .iter()
        .any(|h| name.eq_ignore_ascii_case(h))
    }
}

/// `access-control-expose-headers` value: browsers only let scripts read headers listed here.
pub const EXPOSE_HEADERS: &str = "PAYMENT-REQUIRED, PAYMENT-RESPONSE, X-PAYMENT-RESPONSE, X402-ENTITLEMENT, X402-ENTITLEMENT-SCOPE";

/// `content-type` of every body the runtime writes.
pub const CONTENT_TYPE_JSON: &str = "application/json";

/// The HTTP status for a reason code. Unknown codes (for example a facilitator's own) are
/// payment failures: 402.
pub fn status_for(reason: &Reason) -> u16 {
    match reason.as_str() {
        r if r == Reason::INVALID_PAYLOAD.as_str()
            || r == Reason::PAYMENT_ID_REQUIRED.as_str()
            || r == Reason::PAYMENT_ID_INVALID.as_str() =>
        {
            400
        }
        r if r == Reason::HEADER_TOO_LARGE.as_str() => 431,
        r if r == Reason::NOT_CONFIGURED.as_str() || r == Reason::PRICE_UNAVAILABLE.as_str() => 500,
        r if r == Reason::FACILITATOR_UNAVAILABLE.as_str()
            || r == Reason::FACILITATOR_INVALID_RESPONSE.as_str() =>
        {
            502
        }
        r if r == Reason::STORE_UNAVAILABLE.as_str() => 503,
        r if r == Reason::FACILITATOR_TIMEOUT.as_str()
            || r == Reason::SETTLEMENT_PENDING.as_str() =>
        {
            504
        }
        // The payer must approve Permit2 for the token first (an on-chain step), then retry;
        // the reference server answers 412 so clients can tell this from a refused payment.
        r if r == Reason::PERMIT2_ALLOWANCE_REQUIRED.as_str() => 412,
        r if r == Reason::PAYMENT_ID_CONFLICT.as_str()
            || r == Reason::PAYMENT_ALREADY_SETTLED.as_str()
            || r == Reason::PAYMENT_IN_PROGRESS.as_str() =>
        {
            409
        }
        _ => 402,
    }
}

/// `content-type` of the HTML paywall.
pub const CONTENT_TYPE_HTML: &str = "text/html; charset=utf-8";

/// `cache-control` of every 402 and error: a challenge is particular to its request and must
/// never be served from a shared cache.
pub const NO_STORE: &str = "no-store";

/// The `cache-control` a paid response leaves with, given what the handler set: `private` when
/// the handler set nothing, the handler's value with `, private` added when it neither said
/// `public`, `private` nor `no-store`, and the handler's value unchanged when it did (an
/// explicit `public` is the handler's decision that the content may be shared).
///
/// ```
/// use x402_runtime::response::paid_cache_control;
///
/// assert_eq!(paid_cache_control(None), "private");
/// assert_eq!(paid_cache_control(Some("max-age=60")), "max-age=60, private");
/// assert_eq!(paid_cache_control(Some("no-store")), "no-store");
/// ```
pub fn paid_cache_control(existing: Option<&str>) -> String {
    match existing.map(str::trim).filter(|v| !v.is_empty()) {
        None => "private".to_owned(),
        Some(value) => {
            let decided = value.split(',').any(|directive| {
                let directive = directive.trim();
                ["public", "private", "no-store"]
                    .iter()
                    .any(|d| directive.eq_ignore_ascii_case(d))
            });
            if decided {
                value.to_owned()
            } else {
                format!("{value}, private")
            }
        }
    }
}

/// Renders a rejection (a bare challenge is the rejection `payment_required`).
pub(crate) fn rejection(rejection: &Rejection) -> ResponseParts {
    if let Some(parts) = rejection.answer() {
        return parts.clone();
    }
    // A browser's challenge without payment, on a route with a paywall, becomes a page.
    crate::paywall::page(rejection, json_rejection).unwrap_or_else(|| json_rejection(rejection))
}

/// A rejection as JSON (and, for a bare challenge, its headers): the cached rendering when
/// there is one.
fn json_rejection(rejection: &Rejection) -> ResponseParts {
    match cached(rejection) {
        Some(cached) => cached.parts.clone(),
        None => render(rejection),
    }
}

/// Renders a rejection as an `http` response. A bare challenge served again shares its header
/// values and body with the cached one (no header text is copied or validated again).
pub(crate) fn rejection_http(rejection: &Rejection) -> http::Response<Bytes> {
    let (status, headers, body) = if let Some(parts) = rejection.answer() {
        // A kept response sent again: rendered as it was kept, never cached.
        (
            status_code(parts.status),
            header_map(&parts.headers),
            parts.body.clone(),
        )
    } else if let Some(page) = crate::paywall::page(rejection, json_rejection) {
        (
            status_code(page.status),
            header_map(&page.headers),
            page.body,
        )
    } else if let Some(cached) = cached(rejection) {
        let (status, headers) = cached.http.get_or_init(|| {
            (
                status_code(cached.parts.status),
                header_map(&cached.parts.headers),
            )
        });
        (*status, headers.clone(), cached.parts.body.clone())
    } else {
        let parts = render(rejection);
        (
            status_code(parts.status),
            header_map(&parts.headers),
            parts.body,
        )
    };
    let mut response = http::Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

/// A bare challenge depends only on the route and the resource URL: the last one rendered is
/// kept and reused.
fn cached(rejection: &Rejection) -> Option<Arc<CachedChallenge>> {
    let challenge = rejection
        .challenge()
        .filter(|challenge| rejection.is_bare_challenge() && challenge.is_reusable())?;
    let route = challenge.route();
    if let Some(cached) = route.cached_challenge(challenge.resource()) {
        return Some(cached);
    }
    let cached = Arc::new(CachedChallenge {
        resource: challenge.resource().to_owned(),
        parts: render(rejection),
        http: std::sync::OnceLock::new(),
    });
    route.cache_challenge(cached.clone());
    Some(cached)
}

fn status_code(status: u16) -> http::StatusCode {
    http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR)
}

/// Headers as an `http` header map (appending, so repeated names survive). The runtime writes
/// lower-case names and visible ASCII values, and a kept response's headers were valid when
/// they were kept; anything else is dropped, logged.
fn header_map(headers: &[(Cow<'static, str>, String)]) -> http::HeaderMap {
    let mut map = http::HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        match (
            http::HeaderName::try_from(name.as_ref()),
            http::HeaderValue::try_from(value.as_str()),
        ) {
            (Ok(name), Ok(value)) => {
                map.append(name, value);
            }
            _ => {
                tracing::error!(target: "x402::response", %name, "dropping an unencodable header")
            }
        }
    }
    map
}

/// The v1 402 body: the v1 `PaymentRequired` plus a `message` for people.
#[derive(serde::Serialize)]
struct V1Body<'a> {
    #[serde(flatten)]
    required: x402_protocol::v1::PaymentRequired,
    message: &'a str,
}

/// The body of a response that is not a 402 challenge: `{"error", "message"}`.
#[derive(serde::Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: &'a str,
}

fn to_json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    // The wire types serialise without fail (no maps with non-string keys, no I/O).
    serde_json::to_vec(value).unwrap_or_default()
}

fn render(rejection: &Rejection) -> ResponseParts {
    let reason = rejection.reason();
    let status = rejection.status();
    let mut headers: Vec<(&'static str, String)> = vec![
        ("content-type", CONTENT_TYPE_JSON.to_owned()),
        ("cache-control", NO_STORE.to_owned()),
    ];
    let body = match (status, rejection.challenge()) {
        (402 | 412, Some(challenge)) => {
            let route = challenge.route();
            if route.v2 {
                let required = challenge.v2(reason.for_version(ProtocolVersion::V2));
                headers.push((headers::PAYMENT_REQUIRED, codec::encode(&required)));
            }
            if let Some(settlement) = rejection.settlement() {
                headers.push((headers::PAYMENT_RESPONSE, codec::encode(settlement)));
            }
            headers.push(("access-control-expose-headers", EXPOSE_HEADERS.to_owned()));
            if route.v1 {
                // The body is v1-shaped; its reason is spelled for the client that paid (v1 when
                // there was no payment).
                let mut required = challenge
                    .v1(reason.for_version(rejection.version().unwrap_or(ProtocolVersion::V1)));
                required.payer = rejection.payer().map(|p| p.to_string());
                to_json(&V1Body {
                    required,
                    message: rejection.message(),
                })
            } else {
                to_json(&ErrorBody {
                    error: reason.for_version(ProtocolVersion::V2),
                    message: rejection.message(),
                })
            }
        }
        _ => {
            if let Some(settlement) = rejection.settlement() {
                headers.push((headers::PAYMENT_RESPONSE, codec::encode(settlement)));
                headers.push(("access-control-expose-headers", EXPOSE_HEADERS.to_owned()));
            }
            to_json(&ErrorBody {
                error: reason.as_str(),
                message: rejection.message(),
            })
        }
    };
    ResponseParts {
        status,
        headers: headers
            .into_iter()
            .map(|(name, value)| (Cow::Borrowed(name), value))
            .collect(),
        body: Bytes::from(body),
    }
}

/// Headers to add to a paid response: the settlement receipt in the client's generation.
pub(crate) fn settlement_headers(
    version: ProtocolVersion,
    settlement: &SettleResponse,
) -> Vec<(&'static str, String)> {
    vec![
        (version.settlement_header(), codec::encode(settlement)),
        ("access-control-expose-headers", EXPOSE_HEADERS.to_owned()),
    ]
}
