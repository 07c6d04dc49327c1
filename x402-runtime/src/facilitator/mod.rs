//! Facilitators verify payments and settle them on chain.
//!
//! - [`HttpFacilitator`] talks to a remote facilitator over the x402 HTTP API.
//! - [`EmbeddedFacilitator`] verifies in process (real signature recovery and every check of
//!   the spec) and settles through a [`Settler`]: by default the in-memory [`DevLedger`], so
//!   development needs no network and no funds.
//! - The `x402-evm` crate's `EvmSettler` settles on a real EVM chain instead: it submits the
//!   payer's EIP-3009 `transferWithAuthorization` over JSON-RPC and waits for the receipt.
//!
//! What a remote facilitator says is bounded before anyone else sees it: reason codes that are
//! not short machine-readable codes are replaced, and messages are cut to
//! [`MAX_MESSAGE_CHARS`] characters without control characters ([`bounded_reason`],
//! [`bounded_message`]).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use x402_protocol::facilitator::{
    FacilitatorRequest, SettleResponse, SupportedResponse, VerifyResponse,
};

mod embedded;
mod http;
mod ledger;

pub use embedded::{
    EmbeddedFacilitator, EmbeddedFacilitatorBuilder, SettleObserver, SettleOutcome, Settler,
    SettlerError, settle_response,
};
pub use http::{HttpFacilitator, HttpFacilitatorBuilder};
pub use ledger::{DevLedger, Transfer};

/// Why a facilitator call failed (as opposed to the facilitator answering "invalid").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FacilitatorError {
    /// The facilitator could not be reached (connection refused, DNS, TLS…): the request was
    /// never delivered.
    #[error("facilitator unreachable: {0}")]
    Unreachable(String),
    /// The connection failed after the request was sent: the facilitator may have acted on it.
    #[error("facilitator connection broke after the request was sent: {0}")]
    Interrupted(String),
    /// No answer within the timeout.
    #[error("facilitator did not answer within {0:?}")]
    Timeout(Duration),
    /// An HTTP error status without a usable x402 body.
    #[error("facilitator answered HTTP {status}: {body}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// The start of the body, for logs.
        body: String,
    },
    /// A body that is not the expected x402 JSON.
    #[error("facilitator answered with an invalid body: {0}")]
    InvalidResponse(String),
    /// The facilitator failed internally.
    #[error("facilitator failed: {0}")]
    Internal(String),
}

/// Verifies and settles payments: the three endpoints of the facilitator API.
#[async_trait]
pub trait Facilitator: Send + Sync + 'static {
    /// Checks a payment without moving funds.
    async fn verify(
        &self,
        request: &FacilitatorRequest,
    ) -> Result<VerifyResponse, FacilitatorError>;
    /// Re-checks a payment and moves the funds.
    async fn settle(
        &self,
        request: &FacilitatorRequest,
    ) -> Result<SettleResponse, FacilitatorError>;
    /// Lists the (version, scheme, network) kinds handled.
    async fn supported(&self) -> Result<SupportedResponse, FacilitatorError>;
}

#[async_trait]
impl<F: Facilitator + ?Sized> Facilitator for Arc<F> {
    async fn verify(
        &self,
        request: &FacilitatorRequest,
    ) -> Result<VerifyResponse, FacilitatorError> {
        (**self).verify(request).await
    }
    async fn settle(
        &self,
        request: &FacilitatorRequest,
    ) -> Result<SettleResponse, FacilitatorError> {
        (**self).settle(request).await
    }
    async fn supported(&self) -> Result<SupportedResponse, FacilitatorError> {
        (**self).supported().await
    }
}

/// The longest facilitator message passed on to a client, in characters.
pub const MAX_MESSAGE_CHARS: usize = 300;

/// The longest facilitator reason code passed on, in bytes.
pub const MAX_REASON_BYTES: usize = 96;

/// A remote facilitator's reason code, if it is one: 1 to [`MAX_REASON_BYTES`] bytes of
/// `[A-Za-z0-9_.:-]`. Anything else (prose, markup, a megabyte) is replaced by `fallback`, so
/// clients keep getting machine-readable codes.
///
/// ```
/// use x402_runtime::Reason;
/// use x402_runtime::facilitator::bounded_reason;
///
/// assert_eq!(bounded_reason(Some("insufficient_funds"), Reason::UNEXPECTED_VERIFY_ERROR).as_str(), "insufficient_funds");
/// assert_eq!(bounded_reason(Some("<b>no</b>"), Reason::UNEXPECTED_VERIFY_ERROR), Reason::UNEXPECTED_VERIFY_ERROR);
/// ```
pub fn bounded_reason(
    reason: Option<&str>,
    fallback: x402_protocol::Reason,
) -> x402_protocol::Reason {
    match reason {
        Some(code)
            if !code.is_empty()
                && code.len() <= MAX_REASON_BYTES
                && code
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.:-".contains(&b)) =>
        {
            x402_protocol::Reason::new(code.to_owned())
        }
        Some(other) => {
            tracing::warn!(target: "x402::facilitator", reason = %other.chars().take(MAX_MESSAGE_CHARS).collect::<String>(), "the facilitator sent a reason that is not a reason code");
            fallback
        }
        None => fallback,
    }
}

/// A remote facilitator's message, fit for a client: control characters become spaces, and
/// text beyond [`MAX_MESSAGE_CHARS`] characters is cut with `…`.
///
/// ```
/// use x402_runtime::facilitator::bounded_message;
///
/// assert_eq!(bounded_message("line\nbreak"), "line break");
/// assert_eq!(bounded_message(&"x".repeat(200_000)).chars().count(), 301);
/// ```
pub fn bounded_message(message: &str) -> String {
    let mut out: String = message
        .chars()
        .take(MAX_MESSAGE_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if message.chars().nth(MAX_MESSAGE_CHARS).is_some() {
        out.push('…');
    }
    out
}
