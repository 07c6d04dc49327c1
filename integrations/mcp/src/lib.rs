//! x402 payments over the Model Context Protocol, on [`rmcp`], the official Rust MCP SDK.
//!
//! AI agents reach tools over MCP; this crate lets an rmcp server charge for its tools and an
//! rmcp client pay for them, with the x402 MCP transport the reference SDKs use (see
//! [`meta`] for the wire shapes):
//!
//! - **Server**: [`PaidTools`] prices tools with the same [`RouteSpec`](x402_runtime::RouteSpec)
//!   `#[paid(...)]` emits for HTTP handlers, and puts them behind the same runtime
//!   [`Gate`](x402_runtime::Gate): facilitator verification, replay protection, entitlements,
//!   settlement after the tool succeeded, the receipt in `_meta["x402/payment-response"]`.
//!   Without a payment the tool does not run and the call answers with the payment-required
//!   result.
//! - **Client**: [`X402Client`] calls tools over an rmcp connection and pays the ones that ask,
//!   with an [`x402_client::Payer`]: the caps, budget, approval hook, signing and history
//!   `reqwest-x402` uses for HTTP (the same code, not a copy).
//!
//! # Pricing tools
//!
//! ```no_run
//! use std::sync::Arc;
//!
//! use rmcp::handler::server::tool::{Extension, ToolRouter};
//! use rmcp::handler::server::wrapper::Parameters;
//! use rmcp::transport::streamable_http_server::{
//!     StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
//! };
//! use rmcp::{schemars, tool, tool_handler, tool_router, ServerHandler};
//! use rmcp_x402::{PaidTools, PaymentInfo};
//! use x402_runtime::{Gate, RouteSpec};
//!
//! #[derive(serde::Deserialize, schemars::JsonSchema)]
//! struct City {
//!     city: String,
//! }
//!
//! #[derive(Clone)]
//! struct Weather {
//!     tool_router: ToolRouter<Weather>,
//! }
//!
//! #[tool_router]
//! impl Weather {
//!     fn new(paid: &PaidTools) -> Self {
//!         Weather { tool_router: paid.wrap(Self::tool_router()) }
//!     }
//!
//!     #[tool(description = "Tomorrow's weather in a city")]
//!     async fn forecast(
//!         &self,
//!         Parameters(City { city }): Parameters<City>,
//!         Extension(payment): Extension<PaymentInfo>,
//!     ) -> String {
//!         format!("{city}: sunny (thanks, {})", payment.payer())
//!     }
//! }
//!
//! // Serve the wrapped router in the field: by default `#[tool_handler]` builds a fresh,
//! // unpriced `Self::tool_router()` for every call.
//! #[tool_handler(router = self.tool_router)]
//! impl ServerHandler for Weather {}
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let gate = Gate::builder()
//!     .facilitator("https://x402.org/facilitator")
//!     .pay_to("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC")
//!     .build()?;
//! let paid = PaidTools::builder(gate)
//!     .tool("forecast", RouteSpec::fixed("$0.01").networks(&["base-sepolia"]))
//!     .build()?;
//!
//! let mcp = StreamableHttpService::new(
//!     move || Ok(Weather::new(&paid)),
//!     Arc::new(LocalSessionManager::default()),
//!     StreamableHttpServerConfig::default(),
//! );
//! let app = axum::Router::new().nest_service("/mcp", mcp);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8000").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```
//!
//! Two things to get right:
//!
//! - `#[tool_handler(router = self.tool_router)]`: rmcp's `#[tool_handler]` otherwise calls
//!   `Self::tool_router()` for each call, which is the router *without* the prices.
//! - Give priced tools an `Extension<PaymentInfo>` parameter even if they do not need the
//!   payer: the extension is only there when the call went through the gate, so a tool that
//!   was not wrapped by mistake fails instead of running for free.
//!
//! # Why not `#[paid]` on the tool
//!
//! The `#[paid]` attribute prices free functions: it declares a hidden tag type next to the
//! handler, which cannot be done inside the `#[tool_router]` `impl` block rmcp tools live in
//! (the attribute refuses `self` receivers for that reason), and its `Payment` parameter is
//! an extractor, while a paid tool call needs work after the tool returns (settle, then edit
//! the result's `_meta`). So tools are priced by name with a `RouteSpec`, which has exactly
//! the keys of `#[paid(...)]` (`RouteSpec::fixed("$0.01").networks(&[…]).description(…)`,
//! `.access(…)`, `.settle(…)`, dynamic prices…), and [`PaidTools::wrap`] wraps the routes of
//! an rmcp [`ToolRouter`](rmcp::handler::server::tool::ToolRouter). The prices are checked
//! against the gate when [`PaidToolsBuilder::build`] runs, so a wrong network or token fails
//! at start-up rather than on the first call.
//!
//! # Paying for tools
//!
//! See [`X402Client`].
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod adapter;
mod client;
pub mod meta;
mod server;

pub use client::{McpPayError, PaidCall, TOOL_CALL_METHOD, X402Client};
pub use meta::{
    ENTITLEMENT_META_KEY, PAYMENT_META_KEY, PAYMENT_RESPONSE_META_KEY, payment_required_in,
    payment_required_result, tool_resource,
};
pub use server::{PaidTools, PaidToolsBuilder, PricingError};
pub use x402_runtime::PaymentInfo;
pub use {rmcp, x402_client, x402_runtime};

/// The README's examples, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
