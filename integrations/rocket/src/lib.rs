//! x402 payments for [Rocket](https://rocket.rs): charge per request in stablecoins.
//!
//! A handler becomes paid by taking a [`Payment`] request guard; `#[paid(...)]`, written
//! *above* Rocket's route attribute, says what it costs. One fairing,
//! [`X402::fairing`], is the whole setup: it settles the payment after the handler (only if
//! the handler succeeded) and sends the runtime's 402 challenges and rejections in place of
//! Rocket's error pages.
//!
//! ```no_run
//! use rocket::{get, routes};
//! use rocket_x402::{PaidRoute, Payment, RouteSpec, X402};
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
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let x402 = X402::builder()
//!     .facilitator("https://x402.org/facilitator") // or .embedded_facilitator() for development
//!     .pay_to("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC")
//!     .build()?;
//! rocket::build()
//!     .mount("/", routes![weather])
//!     .attach(x402.fairing())
//!     .launch()
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! What clients see:
//! - no payment → `402` with the v1 JSON body and the v2 `PAYMENT-REQUIRED` header;
//! - a valid payment → the handler's response plus `X-PAYMENT-RESPONSE` (v1) or
//!   `PAYMENT-RESPONSE` (v2);
//! - a rejected payment → `402` with the reason code in `error`; malformed headers → `400`;
//!   facilitator down → `502`, too slow → `504`; the handler does not run in any of these;
//! - a handler that fails (status 400 or more, including an `Err` that a catcher answers)
//!   → nothing is settled.
//!
//! Forgetting the fairing is caught at launch: [`Payment`] is a Rocket
//! [sentinel](rocket::Sentinel), so an instance with a paid route and no x402 fairing refuses to
//! launch and logs how to fix it.
//!
//! Configuration can also come from the environment with
//! [`X402Builder::read_env`](x402_runtime::X402Builder::read_env) (`X402_FACILITATOR_URL`,
//! `X402_PAY_TO`, …).

mod catcher;
mod fairing;
mod guard;
mod response;
mod slot;
mod view;

use std::sync::Arc;

pub use fairing::X402Fairing;
pub use guard::{Payment, PaymentRejection, Unpriced};

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

/// An x402 configuration for Rocket: build it once at start-up, then attach
/// [`fairing()`](X402::fairing).
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

    /// The fairing to attach to instances serving paid routes.
    pub fn fairing(&self) -> X402Fairing {
        X402Fairing {
            gate: self.gate.clone(),
            parked: Default::default(),
        }
    }

    /// The runtime gate (networks, facilitator, dev ledger).
    pub fn gate(&self) -> &Arc<Gate> {
        &self.gate
    }

    /// Waits up to `limit` for settlements still in flight, for a graceful shutdown (call it
    /// after `launch()` returned). See [`Gate::shutdown`].
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
