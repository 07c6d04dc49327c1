//! Why the client did not pay, or could not be configured.

use alloy_primitives::Address;
use x402_protocol::NetworkError;

use crate::approve::PaymentProposal;
use crate::challenge::ChallengeError;
use crate::policy::{LimitError, Refusal};
use crate::signer::SignerError;

/// Why a [`Payer`](crate::Payer) (or a client built on one, such as `reqwest-x402`'s
/// middleware or `rmcp-x402`'s MCP client) could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A network id is unknown or malformed, or could not be registered.
    #[error(transparent)]
    Network(#[from] NetworkError),
    /// A cap or budget could not be read.
    #[error(transparent)]
    Limit(#[from] LimitError),
}

/// Why the client did not pay a payment challenge (an HTTP 402, or an MCP tool's
/// payment-required result). Nothing was signed unless the variant says so.
///
/// Transports return it inside their own error: `reqwest-x402` inside
/// `reqwest_middleware::Error::Middleware` (get it back with `reqwest_x402::payment_error`),
/// `rmcp-x402` as `McpPayError::Payment`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum X402Error {
    /// None of the offered ways to pay is acceptable; each is listed with the reason.
    #[error("{}", no_payable_offer(url, refusals))]
    NoPayableOffer {
        /// The request URL (for MCP, the tool's resource URL, `mcp://tool/<name>`).
        url: String,
        /// Every offer, with why it was not taken.
        refusals: Vec<Refusal>,
    },
    /// The approval hook refused the payment.
    #[error(
        "the approval hook refused to pay {} on {} for {}: {reason}",
        proposal.amount_display(),
        proposal.network,
        proposal.url
    )]
    NotApproved {
        /// What was proposed.
        proposal: Box<PaymentProposal>,
        /// The hook's reason.
        reason: String,
    },
    /// The 402 claims to be x402 but could not be read.
    #[error("cannot pay for {url}: {error}")]
    Challenge {
        /// The request URL.
        url: String,
        /// What is wrong with the challenge.
        error: ChallengeError,
    },
    /// The request body is a stream, which cannot be sent a second time with a payment (HTTP
    /// only).
    #[error(
        "cannot pay for {url}: the request body is a stream and cannot be sent again with a payment; send a buffered body"
    )]
    BodyNotReplayable {
        /// The request URL.
        url: String,
    },
    /// The chosen offer could not be turned into an authorization.
    #[error("cannot pay for {url}: {message}")]
    Prepare {
        /// The request URL.
        url: String,
        /// Why.
        message: String,
    },
    /// The signer failed.
    #[error(transparent)]
    Signer(#[from] SignerError),
    /// The signer returned a signature that does not recover to its own address; it was not
    /// sent.
    #[error(
        "the signer's signature does not recover to its address {expected} ({detail}); nothing was sent"
    )]
    BadSignature {
        /// The signer's address.
        expected: Address,
        /// What recovery found.
        detail: String,
    },
}

fn no_payable_offer(url: &str, refusals: &[Refusal]) -> String {
    let mut text = format!("cannot pay for {url}: no acceptable way to pay. The server accepts:");
    if refusals.is_empty() {
        text.push_str("\n  (nothing: the 402 lists no way to pay)");
    }
    for refusal in refusals {
        text.push_str("\n  - ");
        text.push_str(&refusal.offer);
        text.push_str("\n    refused: ");
        text.push_str(&refusal.reason.to_string());
    }
    text
}
