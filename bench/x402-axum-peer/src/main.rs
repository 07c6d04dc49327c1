//! The routes of the x402 load harness on x402-axum 2.0.2: `/free` without a payment layer,
//! `/weather` at 0.01 USDC on base-sepolia (v2, exact) through an HTTP facilitator, paid to
//! the same recipient as the harness's own server. Started by `x402-bench run --peers
//! x402-axum`: prints `{"plain": port, "http": port}` once listening.
//!
//! Usage: `x402-axum-peer --facilitator http://127.0.0.1:PORT [--threads 1]`

use std::io::Write as _;

use alloy_primitives::address;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use x402_axum::X402Middleware;
use x402_chain_eip155::{KnownNetworkEip155, V2Eip155Exact};
use x402_types::networks::USDC;

type Error = Box<dyn std::error::Error + Send + Sync>;

async fn body() -> Json<Value> {
    Json(json!({"forecast": "sunny"}))
}

fn main() -> Result<(), Error> {
    let mut facilitator = None;
    let mut threads = 1;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--facilitator" => facilitator = Some(value),
            "--threads" => threads = value.parse()?,
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    let facilitator = facilitator.ok_or("--facilitator URL is required")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let x402 = X402Middleware::try_new(&format!("{}/", facilitator.trim_end_matches('/')))
            .map_err(|e| e.to_string())?;
        let price = V2Eip155Exact::price_tag(
            address!("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"),
            USDC::base_sepolia()
                .parse("0.01")
                .map_err(|e| format!("{e:?}"))?,
        );
        let app = Router::new().route("/free", get(body)).route(
            "/weather",
            get(body).layer(
                x402.with_price_tag(price)
                    .with_description("Current weather".to_owned())
                    .with_mime_type("application/json".to_owned()),
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{}", json!({"plain": port, "http": port}))?;
        stdout.flush()?;
        drop(stdout);
        axum::serve(listener, app).await?;
        Ok(())
    })
}
