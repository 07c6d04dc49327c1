//! Facilitators verify payments and settle them on chain.
//!
//! - [`HttpFacilitator`] talks to a remote facilitator over the x402 HTTP API.
//! - [`EmbeddedFacilitator`] verifies in process (real signature recovery and every check of
//!   the spec) and settles through a [`Settler`]: by default the in-memory [`DevLedger`], so
//!   development needs no network and no funds.
//! - `EvmSettler` (feature `evm`) settles on a real EVM chain instead: it submits the payer's
//!   EIP-3009 `transferWithAuthorization` over JSON-RPC and waits for the receipt.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use x402_protocol::facilitator::{
    FacilitatorRequest, SettleResponse, SupportedResponse, VerifyResponse,
};

mod embedded;
#[cfg(feature = "evm")]
mod evm;
mod http;
mod ledger;

pub use embedded::{EmbeddedFacilitator, EmbeddedFacilitatorBuilder, Settler};
#[cfg(feature = "evm")]
pub use evm::{
    DEFAULT_CALL_TIMEOUT, DEFAULT_POLL_INTERVAL, DEFAULT_RECEIPT_TIMEOUT, EvmSettler,
    EvmSettlerBuilder, EvmSettlerError,
};
pub use http::{HttpFacilitator, HttpFacilitatorBuilder};
pub use ledger::{DevLedger, Transfer};

/// Why a facilitator call failed (as opposed to the facilitator answering "invalid").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FacilitatorError {
    /// The facilitator could not be reached (connection refused, DNS, TLS…).
    #[error("facilitator unreachable: {0}")]
    Unreachable(String),
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
