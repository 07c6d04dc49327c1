//! A facilitator served over HTTP on a loopback port that behaves well or, on purpose, badly.
//!
//! Servers under test reach it through the runtime's real `HttpFacilitator`, so the scenario
//! table exercises the HTTP client's error handling as well as the gate's.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use x402_protocol::facilitator::{FacilitatorRequest, SettleResponse};
use x402_runtime::Facilitator;
use x402_runtime::facilitator::{DevLedger, EmbeddedFacilitator};

/// How the facilitator behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Verifies and settles for real into its dev ledger.
    Honest,
    /// Nothing listens on its port.
    Unreachable,
    /// Accepts connections and never answers.
    Silent,
    /// Answers `200 OK` with a body that is not x402 JSON.
    Garbage,
    /// Verifies honestly, then reports every settlement as failed.
    SettleFails,
    /// Honest, but each settlement takes half a second, like waiting for a block. While it
    /// waits, the ledger does not know the nonce is spent: only the server's replay store
    /// stands between a copy of the payment and the handler.
    SlowSettle,
}

/// A running facilitator.
pub struct TestFacilitator {
    /// Base URL to configure servers with.
    pub url: String,
    /// The ledger honest settlements go to.
    pub ledger: Arc<DevLedger>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestFacilitator {
    /// Gives `payer` 1 USDC (1 000 000 atomic units) of the default token on every built-in
    /// network.
    pub fn fund_everywhere(&self, payer: x402_protocol::Address) {
        for network in x402_protocol::NetworkRegistry::builtin().networks() {
            self.ledger.fund(
                &network.caip2,
                network.default_asset.address,
                payer,
                x402_protocol::U256::from(1_000_000u64),
            );
        }
    }
}

impl Drop for TestFacilitator {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

struct Shared {
    mode: Mode,
    inner: EmbeddedFacilitator,
}

async fn verify(
    State(shared): State<Arc<Shared>>,
    Json(request): Json<FacilitatorRequest>,
) -> Response {
    if shared.mode == Mode::Garbage {
        return (StatusCode::OK, "<html>upstream says hello</html>").into_response();
    }
    match shared.inner.verify(&request).await {
        Ok(answer) => Json(answer).into_response(),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
    }
}

async fn settle(
    State(shared): State<Arc<Shared>>,
    Json(request): Json<FacilitatorRequest>,
) -> Response {
    match shared.mode {
        Mode::Garbage => (StatusCode::OK, "{\"unexpected\": true}").into_response(),
        Mode::SettleFails => Json(SettleResponse::failure(
            "invalid_exact_evm_transaction_failed",
            "the transfer reverted on chain",
            request.payment_payload.network(),
            request
                .payment_payload
                .payload()
                .claimed_payer()
                .map(|payer| payer.to_string()),
        ))
        .into_response(),
        Mode::SlowSettle => {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            match shared.inner.settle(&request).await {
                Ok(answer) => Json(answer).into_response(),
                Err(error) => {
                    (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response()
                }
            }
        }
        _ => match shared.inner.settle(&request).await {
            Ok(answer) => Json(answer).into_response(),
            Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
        },
    }
}

async fn supported(State(shared): State<Arc<Shared>>) -> Response {
    match shared.inner.supported().await {
        Ok(answer) => Json(answer).into_response(),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
    }
}

/// Starts a facilitator on a free loopback port.
pub async fn start(mode: Mode) -> TestFacilitator {
    let ledger = Arc::new(DevLedger::new());
    let inner = EmbeddedFacilitator::builder()
        .dev_ledger(ledger.clone())
        .build();
    match mode {
        Mode::Unreachable => {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            let address = listener.local_addr().expect("address");
            drop(listener);
            TestFacilitator {
                url: format!("http://{address}"),
                ledger,
                task: None,
            }
        }
        Mode::Silent => {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let address = listener.local_addr().expect("address");
            let task = tokio::spawn(async move {
                let mut held = Vec::new();
                while let Ok((socket, _)) = listener.accept().await {
                    held.push(socket);
                }
            });
            TestFacilitator {
                url: format!("http://{address}"),
                ledger,
                task: Some(task),
            }
        }
        Mode::Honest | Mode::Garbage | Mode::SettleFails | Mode::SlowSettle => {
            serve_as(inner, ledger, mode).await
        }
    }
}

/// Serves `inner` (an honest embedded facilitator, for example one that settles on a chain)
/// over HTTP on a free loopback port; `ledger` is the dev ledger it settles other networks into.
pub async fn serve(inner: EmbeddedFacilitator, ledger: Arc<DevLedger>) -> TestFacilitator {
    serve_as(inner, ledger, Mode::Honest).await
}

async fn serve_as(
    inner: EmbeddedFacilitator,
    ledger: Arc<DevLedger>,
    mode: Mode,
) -> TestFacilitator {
    let shared = Arc::new(Shared { mode, inner });
    let app = axum::Router::new()
        .route("/verify", post(verify))
        .route("/settle", post(settle))
        .route("/supported", get(supported))
        .with_state(shared);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address: SocketAddr = listener.local_addr().expect("address");
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    TestFacilitator {
        url: format!("http://{address}"),
        ledger,
        task: Some(task),
    }
}
