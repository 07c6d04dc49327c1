//! x402 payments for [axum](https://docs.rs/axum): charge per request in stablecoins.
//!
//! A handler becomes paid by taking a [`Payment`]; `#[paid(...)]` says what it costs. The
//! [`X402Layer`] settles the payment after the handler, only if the handler succeeded.
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use axum_x402::{PaidRoute, Payment, RouteSpec, X402};
//!
//! # struct Weather;
//! # impl PaidRoute for Weather {
//! #     fn spec() -> &'static RouteSpec {
//! #         static SPEC: RouteSpec = RouteSpec::fixed("0.01 USDC").networks(&["base-sepolia"]);
//! #         &SPEC
//! #     }
//! # }
//! // #[paid(price = "0.01 USDC", network = "base-sepolia")]
//! async fn weather(payment: Payment<Weather>) -> String {
//!     format!("sunny; paid {} by {}", payment.amount_display(), payment.payer())
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let x402 = X402::builder()
//!     .facilitator("https://x402.org/facilitator") // or .embedded_facilitator() for development
//!     .pay_to("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC")
//!     .build()?;
//! let app = Router::new().route("/weather", get(weather)).layer(x402.layer());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```
//!
//! What clients see:
//! - no payment → `402` with the v1 JSON body and the v2 `PAYMENT-REQUIRED` header;
//! - a valid payment → the handler's response plus `X-PAYMENT-RESPONSE` (v1) or
//!   `PAYMENT-RESPONSE` (v2);
//! - a rejected payment → `402` with the reason code in `error`; malformed headers → `400`;
//!   facilitator down → `502`, too slow → `504`; the handler does not run in any of these.
//!
//! Configuration can also come from the environment with
//! [`X402Builder::read_env`](x402_runtime::X402Builder::read_env) (`X402_FACILITATOR_URL`,
//! `X402_PAY_TO`, …).

mod extract;
mod layer;
mod response;
mod view;

use std::sync::Arc;

pub use extract::{Payment, PaymentRejection, Unpriced};
pub use layer::{X402Future, X402Layer, X402Service};
#[doc(inline)]
pub use x402_runtime::paid;
/// The browser paywall's look (see [`x402_runtime::paywall`]), for
/// [`X402Builder::paywall`] and [`RouteSpec::paywall`].
pub use x402_runtime::paywall::PaywallConfig;
pub use x402_runtime::{
    Access, ConfigError, Gate, PaidRoute, PaymentInfo, RouteSpec, SettleMode, ShutdownReport,
    X402Builder,
};
/// Solana payments (`x402-svm`): settlers, chains and the client side.
#[cfg(feature = "svm")]
pub use x402_svm as svm;

/// An x402 configuration for axum: build it once at start-up, then add
/// [`layer()`](X402::layer) to the router.
#[derive(Clone, Debug)]
pub struct X402 {
    gate: Arc<Gate>,
}

impl X402 {
    /// Starts a configuration: choose a facilitator (`.facilitator(url)` or
    /// `.embedded_facilitator()`), a default `.pay_to(address)`, and optionally networks,
    /// tokens, a shared replay store, or `.read_env()`.
    ///
    /// With the `svm` feature it also offers and checks Solana payments
    /// ([`svm::ExactSvm`](x402_svm::ExactSvm)).
    pub fn builder() -> X402Builder<X402> {
        let builder = X402Builder::new();
        #[cfg(feature = "svm")]
        let builder = builder.scheme(std::sync::Arc::new(x402_svm::ExactSvm));
        builder
    }

    /// The layer to add to routers serving paid routes.
    pub fn layer(&self) -> X402Layer {
        X402Layer {
            gate: self.gate.clone(),
        }
    }

    /// The runtime gate (networks, facilitator, dev ledger).
    pub fn gate(&self) -> &Arc<Gate> {
        &self.gate
    }

    /// Waits up to `limit` for settlements still in flight, for a graceful shutdown (call it
    /// after the server stopped accepting requests, e.g. after `axum::serve(…)
    /// .with_graceful_shutdown(…)` returned). See [`Gate::shutdown`].
    pub async fn shutdown(&self, limit: std::time::Duration) -> ShutdownReport {
        self.gate.shutdown(limit).await
    }
}

impl From<Gate> for X402 {
    fn from(gate: Gate) -> Self {
        X402 {
            gate: Arc::new(gate),
        }
    }
}
