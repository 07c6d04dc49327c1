//! The one place that turns decisions, rejections and settlements into HTTP status, headers
//! and body. Integrations copy [`ResponseParts`] into their framework's response type and
//! never choose a status themselves.
//!
//! | reason | status |
//! | --- | --- |
//! | `invalid_payload` (undecodable payment header) | 400 |
//! | `payment_header_too_large` | 431 |
//! | `x402_not_configured`, `price_unavailable` | 500 |
//! | `facilitator_unavailable`, `facilitator_invalid_response` | 502 |
//! | `store_unavailable` | 503 |
//! | `facilitator_timeout` | 504 |
//! | everything else (no payment, invalid payment, replay, failed settlement, facilitator reasons) | 402, with the full challenge |
//!
//! A 402 carries the v2 `PAYMENT-REQUIRED` header *and* the v1 JSON body, so clients of either
//! generation can pay. Other errors carry `{"error": <reason>, "message": <text>}`.

use bytes::Bytes;
use x402_protocol::facilitator::SettleResponse;
use x402_protocol::{ProtocolVersion, Reason, codec, headers};

use crate::challenge::Challenge;
use crate::rejection::Rejection;

/// Status, headers and body of a response, as plain data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseParts {
    /// HTTP status code.
    pub status: u16,
    /// Headers to set (lower-case names).
    pub headers: Vec<(&'static str, String)>,
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

/// `access-control-expose-headers` value: browsers only let scripts read headers listed here.
pub const EXPOSE_HEADERS: &str = "PAYMENT-REQUIRED, PAYMENT-RESPONSE, X-PAYMENT-RESPONSE, X402-ENTITLEMENT, X402-ENTITLEMENT-SCOPE";

/// `content-type` of every body the runtime writes.
pub const CONTENT_TYPE_JSON: &str = "application/json";

/// The HTTP status for a reason code. Unknown codes (for example a facilitator's own) are
/// payment failures: 402.
pub fn status_for(reason: &Reason) -> u16 {
    match reason.as_str() {
        r if r == Reason::INVALID_PAYLOAD.as_str() => 400,
        r if r == Reason::HEADER_TOO_LARGE.as_str() => 431,
        r if r == Reason::NOT_CONFIGURED.as_str() || r == Reason::PRICE_UNAVAILABLE.as_str() => 500,
        r if r == Reason::FACILITATOR_UNAVAILABLE.as_str()
            || r == Reason::FACILITATOR_INVALID_RESPONSE.as_str() =>
        {
            502
        }
        r if r == Reason::STORE_UNAVAILABLE.as_str() => 503,
        r if r == Reason::FACILITATOR_TIMEOUT.as_str() => 504,
        _ => 402,
    }
}

fn json_string(s: &str) -> String {
    // Serialising a &str to JSON cannot fail.
    serde_json::to_string(s).unwrap_or_else(|_| String::from("\"\""))
}

/// Renders a rejection (a bare challenge is the rejection `payment_required`).
pub(crate) fn rejection(rejection: &Rejection) -> ResponseParts {
    // A browser's challenge without payment, on a route with a paywall, becomes a page.
    crate::paywall::html_for(rejection, json_rejection(rejection))
}

fn json_rejection(rejection: &Rejection) -> ResponseParts {
    let Some(challenge) = rejection
        .challenge()
        .filter(|_| rejection.is_bare_challenge())
    else {
        return render(rejection);
    };
    // A bare challenge depends only on the route and the resource URL: reuse the last one.
    let cache = &challenge.route().last_challenge;
    let lock = || {
        cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    };
    if let Some((resource, parts)) = lock().as_ref()
        && resource == challenge.resource()
    {
        return parts.clone();
    }
    let parts = render(rejection);
    *lock() = Some((challenge.resource().to_owned(), parts.clone()));
    parts
}

fn render(rejection: &Rejection) -> ResponseParts {
    let reason = rejection.reason();
    let status = status_for(reason);
    let mut headers = vec![("content-type", CONTENT_TYPE_JSON.to_owned())];
    let body = match (status, rejection.challenge()) {
        (402, Some(challenge)) => {
            let route = challenge.route();
            if route.v2 {
                headers.push((
                    headers::PAYMENT_REQUIRED,
                    codec::encode_bytes(
                        challenge
                            .v2_json(reason.for_version(ProtocolVersion::V2))
                            .as_bytes(),
                    ),
                ));
            }
            if let Some(settlement) = rejection.settlement() {
                headers.push((headers::PAYMENT_RESPONSE, codec::encode(settlement)));
            }
            headers.push(("access-control-expose-headers", EXPOSE_HEADERS.to_owned()));
            if route.v1 {
                // The body is v1-shaped; its reason is spelled for the client that paid (v1 when
                // there was no payment).
                challenge.v1_body(
                    reason.for_version(rejection.version().unwrap_or(ProtocolVersion::V1)),
                    rejection.message(),
                    rejection.payer(),
                )
            } else {
                error_body(reason.for_version(ProtocolVersion::V2), rejection.message())
            }
        }
        _ => error_body(reason.as_str(), rejection.message()),
    };
    ResponseParts {
        status,
        headers,
        body: Bytes::from(body),
    }
}

fn error_body(reason: &str, message: &str) -> String {
    format!(
        "{{\"error\":{},\"message\":{}}}",
        json_string(reason),
        json_string(message)
    )
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

impl Challenge {
    /// The v2 `PaymentRequired` JSON with `error` set to `reason`.
    pub(crate) fn v2_json(&self, reason: &str) -> String {
        let route = self.route();
        let mut out =
            String::with_capacity(128 + route.v2_accepts_json.len() + self.resource().len());
        out.push_str("{\"x402Version\":2,\"error\":");
        out.push_str(&json_string(reason));
        out.push_str(",\"resource\":{\"url\":");
        out.push_str(&json_string(self.resource()));
        out.push_str(",\"description\":");
        out.push_str(&route.description_json);
        out.push_str(",\"mimeType\":");
        out.push_str(&route.mime_type_json);
        out.push_str("},\"accepts\":");
        out.push_str(&route.v2_accepts_json);
        out.push('}');
        out
    }

    /// The v1 402 body with `error` set to `reason`.
    pub(crate) fn v1_body(
        &self,
        reason: &str,
        message: &str,
        payer: Option<x402_protocol::Address>,
    ) -> String {
        let route = self.route();
        let resource = json_string(self.resource());
        let mut out =
            String::with_capacity(256 + route.v1_fragments.len() * (400 + resource.len()));
        out.push_str("{\"x402Version\":1,\"error\":");
        out.push_str(&json_string(reason));
        out.push_str(",\"accepts\":[");
        for (i, (before, after)) in route.v1_fragments.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(before);
            out.push_str(&resource);
            out.push_str(after);
        }
        out.push(']');
        if let Some(payer) = payer {
            out.push_str(",\"payer\":");
            out.push_str(&json_string(&payer.to_checksum(None)));
        }
        out.push_str(",\"message\":");
        out.push_str(&json_string(message));
        out.push('}');
        out
    }
}
