//! x402 payments for [actix-web](https://docs.rs/actix-web): charge per request in
//! stablecoins.
//!
//! A handler becomes paid by taking a [`Payment`]; `#[paid(...)]`, placed above the route
//! attribute, says what it costs. The [`X402Middleware`] settles the payment after the
//! handler, only if the handler succeeded.
//!
//! ```no_run
//! use actix_web::{App, HttpServer, get};
//! use actix_web_x402::{PaidRoute, Payment, RouteSpec, X402};
//!
//! # struct Weather;
//! # impl PaidRoute for Weather {
//! #     fn spec() -> &'static RouteSpec {
//! #         static SPEC: RouteSpec = RouteSpec::fixed("0.01 USDC").networks(&["base-sepolia"]);
//! #         &SPEC
//! #     }
//! # }
//! // #[paid(price = "0.01 USDC", network = "base-sepolia")]
//! #[get("/weather")]
//! async fn weather(payment: Payment<Weather>) -> String {
//!     format!("sunny; paid {} by {}", payment.amount_display(), payment.payer())
//! }
//!
//! #[actix_web::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let x402 = X402::builder()
//!         .facilitator("https://x402.org/facilitator") // or .embedded_facilitator() for development
//!         .pay_to("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC")
//!         .build()?;
//!     HttpServer::new(move || App::new().wrap(x402.middleware()).service(weather))
//!         .bind("127.0.0.1:3000")?
//!         .run()
//!         .await?;
//!     Ok(())
//! }
//! ```
//!
//! Clients see exactly what the axum and Rocket integrations send: `402` with the v1 JSON
//! body and the v2 `PAYMENT-REQUIRED` header when unpaid, the receipt header after a paid
//! response, reason codes in every error body.
//!
//! A scope can carry its own configuration (another recipient, another facilitator) by adding
//! its [`X402`] as app data: `web::scope("/eu").app_data(eu_x402).wrap(eu_x402.middleware())`.

mod extract;
mod middleware;
mod response;
mod view;

use std::sync::Arc;

pub use extract::{Payment, PaymentRejection, Unpriced};
pub use middleware::{X402Middleware, X402Service};
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

/// An x402 configuration for actix-web: build it once, then `.wrap(x402.middleware())`.
#[derive(Clone, Debug)]
pub struct X402 {
    gate: Arc<Gate>,
}

impl X402 {
    /// Starts a configuration: choose a facilitator (`.facilitator(url)` or
    /// `.embedded_facilitator()`), a default `.pay_to(address)`, and optionally networks,
    /// tokens, shared stores, or `.read_env()`.
    ///
    /// With the `svm` feature it also offers and checks Solana payments
    /// ([`svm::ExactSvm`](x402_svm::ExactSvm)).
    pub fn builder() -> X402Builder<X402> {
        let builder = X402Builder::new();
        #[cfg(feature = "svm")]
        let builder = builder.scheme(std::sync::Arc::new(x402_svm::ExactSvm));
        builder
    }

    /// The middleware to wrap apps or scopes serving paid routes.
    pub fn middleware(&self) -> X402Middleware {
        X402Middleware {
            gate: self.gate.clone(),
        }
    }

    /// The runtime gate (networks, facilitator, dev ledger).
    pub fn gate(&self) -> &Arc<Gate> {
        &self.gate
    }

    /// Waits up to `limit` for settlements still in flight, for a graceful shutdown (call it
    /// after `HttpServer::run` returned). See [`Gate::shutdown`].
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
