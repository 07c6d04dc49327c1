//! A stub facilitator: answers `/verify` and `/settle` as valid without any check, echoing
//! the payer named in the payment, and `/supported` with the bench network. It counts the
//! connections it accepted and the calls it answered (`GET /stats`), which shows whether a
//! server reuses its connections to the facilitator.
//!
//! It measures what a server does around a facilitator, not a facilitator: never use it to
//! accept money.

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::State;
use axum::routing::{get, post};
use axum::serve::ListenerExt as _;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Error;

/// Options of `x402-bench stub`.
#[derive(Debug, clap::Args)]
pub(crate) struct StubArgs {
    /// Port on 127.0.0.1 (0: any free port; the chosen one is printed).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Tokio worker threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

#[derive(Default)]
struct Counters {
    connections: AtomicU64,
    verify: AtomicU64,
    settle: AtomicU64,
    supported: AtomicU64,
}

/// Just what the stub echoes; everything else in the request is ignored.
#[derive(Deserialize)]
struct Call {
    #[serde(rename = "paymentPayload")]
    payload: Payload,
}

#[derive(Deserialize)]
struct Payload {
    /// v1 names the network at the top level.
    network: Option<String>,
    /// v2 names it in the accepted requirement.
    accepted: Option<Accepted>,
    payload: Signed,
}

#[derive(Deserialize)]
struct Accepted {
    network: String,
}

#[derive(Deserialize)]
struct Signed {
    authorization: Authorization,
}

#[derive(Deserialize)]
struct Authorization {
    from: String,
    nonce: String,
}

async fn verify(State(counters): State<Arc<Counters>>, Json(call): Json<Call>) -> Json<Value> {
    counters.verify.fetch_add(1, Ordering::Relaxed);
    Json(json!({"isValid": true, "payer": call.payload.payload.authorization.from}))
}

async fn settle(State(counters): State<Arc<Counters>>, Json(call): Json<Call>) -> Json<Value> {
    counters.settle.fetch_add(1, Ordering::Relaxed);
    let Payload {
        network,
        accepted,
        payload,
    } = call.payload;
    let network = accepted.map(|a| a.network).or(network).unwrap_or_default();
    // The nonce is unique per payment: a plausible, distinct transaction hash.
    Json(json!({
        "success": true,
        "payer": payload.authorization.from,
        "transaction": payload.authorization.nonce,
        "network": network,
    }))
}

async fn supported(State(counters): State<Arc<Counters>>) -> Json<Value> {
    counters.supported.fetch_add(1, Ordering::Relaxed);
    Json(json!({
        "kinds": [
            {"x402Version": 2, "scheme": "exact", "network": "eip155:84532"},
            {"x402Version": 1, "scheme": "exact", "network": "base-sepolia"},
        ],
        "extensions": [],
        "signers": {"eip155:*": []},
    }))
}

async fn stats(State(counters): State<Arc<Counters>>) -> Json<Value> {
    Json(json!({
        "connections": counters.connections.load(Ordering::Relaxed),
        "verify": counters.verify.load(Ordering::Relaxed),
        "settle": counters.settle.load(Ordering::Relaxed),
        "supported": counters.supported.load(Ordering::Relaxed),
    }))
}

/// Runs the stub until the process is killed; prints `{"port": N}` once listening.
pub(crate) fn run(args: StubArgs) -> Result<(), Error> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let counters = Arc::new(Counters::default());
        let app = Router::new()
            .route("/verify", post(verify))
            .route("/settle", post(settle))
            .route("/supported", get(supported))
            .route("/stats", get(stats))
            .with_state(counters.clone());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await?;
        let port = listener.local_addr()?.port();
        let listener = listener.tap_io(move |_| {
            counters.connections.fetch_add(1, Ordering::Relaxed);
        });
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{}", json!({"port": port}))?;
        stdout.flush()?;
        drop(stdout);
        axum::serve(listener, app).await?;
        Ok(())
    })
}
