//! The quickstart's paid API: `GET /weather` costs 0.01 USDC on Base Sepolia, verified and
//! settled in process by the embedded facilitator into a dev ledger (no money moves), with a
//! demo payer funded there.

use std::net::SocketAddr;

use axum::{Json, Router, routing::get};
use axum_x402::{Payment, X402, paid};
use serde::Serialize;
use x402_runtime::{Address, U256};

/// Who the API's payments go to.
pub const PAY_TO: &str = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";

/// The demo payer's key: the well-known anvil/hardhat dev account #1. Public knowledge;
/// never hold real funds with it.
pub const DEMO_PAYER_KEY: &str =
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";

/// What the demo payer holds in the dev ledger at start: 10 USDC.
pub const DEMO_PAYER_FUNDS: u64 = 10_000_000;

/// The paid answer.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Where.
    pub city: &'static str,
    /// What to expect.
    pub forecast: &'static str,
    /// Who paid for it.
    pub paid_by: String,
    /// How much.
    pub amount: String,
}

#[paid(
    price = "0.01 USDC",
    network = "base-sepolia",
    description = "Current weather in Oslo",
    mime_type = "application/json"
)]
async fn weather(payment: Payment) -> Json<Report> {
    Json(Report {
        city: "Oslo",
        forecast: "sunny, 21 °C",
        paid_by: payment.payer().to_string(),
        amount: payment.amount_display(),
    })
}

/// The configuration: embedded facilitator, the demo payer funded in its dev ledger.
pub fn x402() -> Result<X402, Box<dyn std::error::Error + Send + Sync>> {
    let x402: X402 = X402::builder()
        .embedded_facilitator()
        .pay_to(PAY_TO)
        .build()?;
    fund_demo_payer(x402.gate())?;
    Ok(x402)
}

/// Gives the demo payer 10 USDC on Base Sepolia, when the gate settles into a dev ledger.
pub fn fund_demo_payer(
    gate: &x402_runtime::Gate,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let payer: Address = x402_protocol::eip3009::LocalSigner::from_hex(DEMO_PAYER_KEY)?.address();
    let network = gate.registry().network("base-sepolia")?;
    if let Some(ledger) = gate.dev_ledger() {
        ledger.fund(
            &network.caip2,
            network.default_asset.address,
            payer,
            U256::from(DEMO_PAYER_FUNDS),
        );
    }
    Ok(())
}

/// A configuration for the per-framework examples: the `X402_*` environment variables
/// (`X402Builder::read_env`), falling back to the embedded facilitator and [`PAY_TO`], with the
/// demo payer funded when the facilitator is the embedded one.
pub fn from_env<T: From<x402_runtime::Gate>>(
    gate: impl Fn(&T) -> &x402_runtime::Gate,
) -> Result<T, Box<dyn std::error::Error + Send + Sync>> {
    let mut builder = x402_runtime::X402Builder::<T>::new()
        .embedded_facilitator()
        .pay_to(PAY_TO);
    builder = builder.read_env();
    let x402 = builder.build()?;
    fund_demo_payer(gate(&x402))?;
    Ok(x402)
}

/// The app: `/weather` is paid, `/` says so.
pub fn app(x402: &X402) -> Router {
    Router::new()
        .route("/weather", get(weather))
        .route(
            "/",
            get(|| async { "GET /weather costs 0.01 USDC on base-sepolia\n" }),
        )
        .layer(x402.layer())
}

/// Starts the API on `address` (port 0 picks a free one) in the background.
pub async fn serve(
    address: SocketAddr,
) -> Result<(X402, SocketAddr, tokio::task::JoinHandle<()>), Box<dyn std::error::Error + Send + Sync>>
{
    let x402 = x402()?;
    let listener = tokio::net::TcpListener::bind(address).await?;
    let bound = listener.local_addr()?;
    let app = app(&x402);
    let task = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            eprintln!("server stopped: {error}");
        }
    });
    Ok((x402, bound, task))
}
