//! A payment sent again: the client's answer was lost, its settlement was pending, or it
//! retried with the same `payment-identifier` id. The journal's record of the first attempt
//! answers it, so that nothing is charged twice and nothing paid for is lost:
//!
//! | the record | the answer |
//! | --- | --- |
//! | settled, response kept | the kept response again, with its receipt |
//! | settled, response not kept (too large, streamed) | 409 `payment_already_settled`, with the receipt |
//! | settling or unknown | resolved now if possible (then as above), else 504 `settlement_pending` |
//! | verified (its handler is running) | 409 `payment_in_progress` |
//! | failed or released (nothing charged) | nothing: the payment is judged afresh |

use std::borrow::Cow;
use x402_protocol::facilitator::SettleResponse;
use x402_protocol::{ProtocolVersion, Reason, codec};

use super::Gate;
use crate::journal::{JournalError, PaymentRecord, PaymentState, StoredResponse};
use crate::rejection::Rejection;
use crate::response::{self, EXPOSE_HEADERS, ResponseParts};

/// A journal that cannot answer: paid routes fail closed.
pub(crate) fn journal_rejection(error: JournalError) -> Rejection {
    tracing::error!(target: "x402::journal", %error, "payment journal failed; refusing paid request");
    Rejection::new(
        Reason::STORE_UNAVAILABLE,
        "the payment journal is unavailable; try again shortly",
    )
}

/// The protocol generation a record was paid in.
fn version_of(record: &PaymentRecord) -> ProtocolVersion {
    if record.x402_version == 1 {
        ProtocolVersion::V1
    } else {
        ProtocolVersion::V2
    }
}

/// The receipt of a settled record, as the client's generation carries it.
pub(crate) fn receipt_of(record: &PaymentRecord) -> SettleResponse {
    SettleResponse {
        success: true,
        error_reason: None,
        error_message: None,
        payer: Some(record.payer.clone()),
        transaction: record.transaction.clone().unwrap_or_default(),
        network: record.network.clone(),
        amount: record.settled_amount.map(|a| a.to_string()),
        extensions: None,
    }
}

/// A kept response, sent again with its receipt and `cache-control: private` (the receipt is
/// rebuilt from the record: the kept response is the handler's own).
fn replay(record: &PaymentRecord, kept: &StoredResponse) -> Option<ResponseParts> {
    let body = kept.body.clone()?;
    let version = version_of(record);
    let mut headers: Vec<(Cow<'static, str>, String)> = kept
        .headers
        .iter()
        .filter(|(name, _)| !name.eq_ignore_ascii_case("cache-control"))
        .map(|(name, value)| (Cow::Owned(name.to_ascii_lowercase()), value.clone()))
        .collect();
    let existing = kept
        .headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("cache-control"))
        .map(|(_, value)| value.as_str());
    headers.push((
        Cow::Borrowed("cache-control"),
        response::paid_cache_control(existing),
    ));
    headers.push((
        Cow::Borrowed(version.settlement_header()),
        codec::encode(&receipt_of(record)),
    ));
    headers.push((
        Cow::Borrowed("access-control-expose-headers"),
        EXPOSE_HEADERS.to_owned(),
    ));
    Some(ResponseParts {
        status: kept.status,
        headers,
        body: body.into(),
    })
}

impl Gate {
    /// The answer the journal gives to a payment it has a record of, or `None` when the record
    /// holds nothing against a fresh judgement (its payment failed or was released).
    pub(crate) async fn answer_from_record(&self, record: PaymentRecord) -> Option<Rejection> {
        let record = match record.state {
            PaymentState::Settling | PaymentState::Unknown => self.resolve_record(record).await,
            _ => record,
        };
        let version = version_of(&record);
        match record.state {
            PaymentState::Settled => {
                tracing::info!(target: "x402::journal", record = %record.id, "payment sent again: answering from its record");
                Some(match record.response.as_ref().and_then(|kept| replay(&record, kept)) {
                    Some(parts) => Rejection::answer_with(parts),
                    None => Rejection::new(
                        Reason::PAYMENT_ALREADY_SETTLED,
                        "this payment was settled for an earlier request whose response was too large to keep; it cannot be sent again (the receipt says what was paid)",
                    )
                    .with_version(version)
                    .with_settlement(receipt_of(&record)),
                })
            }
            PaymentState::Settling | PaymentState::Unknown => Some(
                Rejection::new(
                    Reason::SETTLEMENT_PENDING,
                    "this payment was submitted for settlement and its outcome is not known yet; retry with the same payment shortly (do not sign a new one)",
                )
                .with_version(version)
                .with_settlement(SettleResponse {
                    transaction: record.transaction.clone().unwrap_or_default(),
                    ..SettleResponse::failure(
                        Reason::SETTLEMENT_PENDING.as_str(),
                        "settlement pending",
                        record.network.clone(),
                        Some(record.payer.clone()),
                    )
                }),
            ),
            PaymentState::Verified => Some(
                Rejection::new(
                    Reason::PAYMENT_IN_PROGRESS,
                    "a request with this payment is being served right now; retry shortly with the same payment",
                )
                .with_version(version),
            ),
            PaymentState::Failed | PaymentState::Released => None,
        }
    }
}
