//! Step 3: the payment header, decoded. A header that is not a payment gets 400 (431 when too
//! long), never a 402: the client sent something broken, not something unpaid.

use std::sync::Arc;

use serde::Deserialize;
use x402_protocol::codec::{self, DecodeError};
use x402_protocol::facilitator::PaymentPayload;
use x402_protocol::{ProtocolVersion, Reason, v1, v2};

use super::Gate;
use crate::challenge::Challenge;
use crate::rejection::Rejection;
use crate::request::RequestView;

/// The payment header of a request, if any: v2 `PAYMENT-SIGNATURE` first, then v1 `X-PAYMENT`.
pub(crate) fn payment_header(view: &dyn RequestView) -> Option<(ProtocolVersion, String)> {
    [ProtocolVersion::V2, ProtocolVersion::V1]
        .into_iter()
        .find_map(|version| {
            view.header(version.payment_header())
                .map(|v| (version, v.to_owned()))
        })
}

impl Gate {
    /// Decodes a payment header of `version`.
    pub(crate) fn decode(
        &self,
        version: ProtocolVersion,
        value: &str,
        challenge: &Arc<Challenge>,
    ) -> Result<PaymentPayload, Rejection> {
        let decoded = match version {
            ProtocolVersion::V1 => {
                codec::decode::<v1::PaymentPayload>(value, self.max_header_bytes)
                    .map(PaymentPayload::V1)
            }
            ProtocolVersion::V2 => {
                codec::decode::<v2::PaymentPayload>(value, self.max_header_bytes)
                    .map(PaymentPayload::V2)
            }
        };
        decoded.map_err(|error| {
            let header = version.payment_header().to_ascii_uppercase();
            match error {
                DecodeError::TooLarge { len, max } => Rejection::new(
                    Reason::HEADER_TOO_LARGE,
                    format!("the {header} header is {len} bytes; the limit is {max}"),
                ),
                DecodeError::Json(detail) => {
                    #[derive(Deserialize)]
                    struct VersionOnly {
                        #[serde(rename = "x402Version")]
                        x402_version: u64,
                    }
                    match codec::decode::<VersionOnly>(value, self.max_header_bytes) {
                        Ok(found) if found.x402_version != u64::from(version.number()) => {
                            Rejection::new(
                                Reason::INVALID_X402_VERSION,
                                format!(
                                    "the {header} header carries x402Version {}; it takes version {}",
                                    found.x402_version,
                                    version.number()
                                ),
                            )
                            .with_challenge(challenge.clone())
                        }
                        _ => Rejection::new(
                            Reason::INVALID_PAYLOAD,
                            format!("the {header} header is not a valid payment: {detail}"),
                        ),
                    }
                }
                other => Rejection::new(
                    Reason::INVALID_PAYLOAD,
                    format!("the {header} header: {other}"),
                ),
            }
        })
    }
}
