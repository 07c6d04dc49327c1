//! The quickstart's paid API: `GET /weather` costs 0.01 USDC on Base Sepolia (and
//! `GET /weather-sol` the same on Solana devnet), verified and settled in process by the
//! embedded facilitator into a dev ledger (no money moves), with demo payers funded there.

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

/// Who the Solana route's payments go to.
pub const SOLANA_PAY_TO: &str = "GyGKxMyg1p9SsHfm15MkNUu1u9TN2JtTspcdmrtGUdse";

/// The Solana demo payer's ed25519 seed (32 bytes of 1): public knowledge, never hold real
/// funds with it. Its address is `AKnL4NNf3DGWZJS6cPknBuEGnVsV4A4m5tgebLHaRSZ9`.
pub const DEMO_SOLANA_SEED: [u8; 32] = [1; 32];

/// The Solana demo payer.
pub fn demo_solana_payer() -> solana_keypair::Keypair {
    solana_keypair::Keypair::new_from_array(DEMO_SOLANA_SEED)
}

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
    report(&payment)
}

/// The report, for whoever paid.
fn report(payment: &x402_runtime::PaymentInfo) -> Json<Report> {
    Json(Report {
        city: "Oslo",
        forecast: "sunny, 21 °C",
        paid_by: payment.payer().to_string(),
        amount: payment.amount_display(),
    })
}

/// The same report, paid on Solana devnet: the payer signs an SPL `TransferChecked` that the
/// facilitator co-signs as fee payer (here the dev ledger, which needs no node: the 402 carries
/// the blockhash to build on).
#[paid(
    price = "0.01 USDC",
    network = "solana-devnet",
    pay_to = "GyGKxMyg1p9SsHfm15MkNUu1u9TN2JtTspcdmrtGUdse",
    description = "Current weather in Oslo, paid on Solana",
    mime_type = "application/json"
)]
async fn weather_sol(payment: Payment) -> Json<Report> {
    report(&payment)
}

/// What `/summarize` charges per word of its input, in atomic USDC units (0.001 USDC).
pub const PRICE_PER_WORD: u64 = 1_000;

/// The metered answer.
#[derive(Debug, Serialize)]
pub struct Summary {
    /// How many words were read.
    pub words: u64,
    /// What that cost, of the most the payer authorized.
    pub charged: String,
}

/// Metered: the payer authorizes at most 0.10 USDC (the `upto` scheme, through Permit2), and is
/// charged 0.001 USDC per word of `?text=`.
#[paid(
    upto = "0.10 USDC",
    network = "base-sepolia",
    description = "A summary, 0.001 USDC per word read",
    mime_type = "application/json"
)]
async fn summarize(
    payment: Payment,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Json<Summary> {
    let text = query.unwrap_or_default();
    let words = text
        .strip_prefix("text=")
        .unwrap_or(&text)
        .split(['+', ' '])
        .filter(|w| !w.is_empty())
        .count() as u64;
    let cost = U256::from(words * PRICE_PER_WORD).min(payment.amount());
    // Within the authorized maximum by construction.
    let charged = match payment.charge(cost) {
        Ok(()) => format!("{} USDC", x402_protocol::amount::format_units(cost, 6)),
        Err(error) => error.to_string(),
    };
    Json(Summary { words, charged })
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

/// Gives the demo payers 10 USDC each on Base Sepolia and Solana devnet, when the gate settles
/// into a dev ledger.
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
        // The one-time ERC-20 approval a wallet gives Permit2 before paying metered routes.
        ledger.approve_permit2(
            &network.caip2,
            network.default_asset.address,
            payer,
            U256::MAX,
        );
        let solana = gate.registry().network("solana-devnet")?;
        let solana_payer = x402_protocol::SolanaAddress(
            solana_signer::Signer::pubkey(&demo_solana_payer()).to_bytes(),
        );
        ledger.fund(
            &solana.caip2,
            solana.default_asset.address,
            solana_payer,
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
        .scheme(std::sync::Arc::new(x402_svm::ExactSvm))
        .pay_to(PAY_TO);
    builder = builder.read_env();
    let x402 = builder.build()?;
    fund_demo_payer(gate(&x402))?;
    Ok(x402)
}

/// The app: `/weather` and `/summarize` are paid, `/` says so.
pub fn app(x402: &X402) -> Router {
    Router::new()
        .route("/weather", get(weather))
        .route("/summarize", get(summarize))
        .route("/weather-sol", get(weather_sol))
        .route(
            "/",
            get(|| async {
                "GET /weather costs 0.01 USDC on base-sepolia\nGET /weather-sol costs 0.01 USDC on solana-devnet\nGET /summarize?text=… costs 0.001 USDC a word, at most 0.10 USDC\n"
            }),
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
