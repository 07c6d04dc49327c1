//! `x402ctl serve`: the runtime's embedded facilitator over the x402 facilitator HTTP API,
//! settling into its in-memory dev ledger.
//!
//! | endpoint | answer |
//! | --- | --- |
//! | `POST /verify` | `VerifyResponse`; 200 also for `isValid: false` |
//! | `POST /settle` | `SettleResponse`; 200 also for `success: false` |
//! | `GET /supported` | every built-in network, v1 and v2, scheme `exact` |
//! | `GET /discovery/resources` | an empty list (this facilitator catalogues nothing) |
//!
//! A body that is not a facilitator request gets 400 `{"error": "invalid_request", …}`.

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;
use x402_protocol::facilitator::FacilitatorRequest;
use x402_protocol::{Address, Decimal, NetworkRegistry, U256};
use x402_runtime::facilitator::{EmbeddedFacilitator, Facilitator, FacilitatorError};

use crate::{Failure, ServeArgs};

/// Requests larger than this are not facilitator requests.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// `--fund <address>=<amount>[@<network>]`: `amount` in whole tokens of the network's default
/// stablecoin (`10` is 10 USDC), on one network or on every known one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Funding {
    pub(crate) account: Address,
    pub(crate) amount: Decimal,
    pub(crate) network: Option<String>,
}

impl FromStr for Funding {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (account, rest) = s
            .split_once('=')
            .ok_or_else(|| format!("{s:?}: write <address>=<amount>[@<network>]"))?;
        let account = Address::from_str(account.trim())
            .map_err(|_| format!("{account:?} is not an EVM address"))?;
        let (amount, network) = match rest.split_once('@') {
            Some((amount, network)) => (amount, Some(network.trim().to_owned())),
            None => (rest, None),
        };
        let amount = Decimal::from_str(amount.trim()).map_err(|e| format!("{amount:?}: {e}"))?;
        Ok(Funding {
            account,
            amount,
            network,
        })
    }
}

fn invalid_request(message: impl std::fmt::Display) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"error": "invalid_request", "message": message.to_string()})),
    )
        .into_response()
}

fn internal(error: FacilitatorError, reason: &str) -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        axum::Json(json!({"error": reason, "message": error.to_string()})),
    )
        .into_response()
}

fn parse(body: &[u8]) -> Result<FacilitatorRequest, String> {
    serde_json::from_slice(body).map_err(|e| {
        format!(
            "the body is not a facilitator request {{x402Version, paymentPayload, paymentRequirements}}: {e}"
        )
    })
}

async fn verify(State(facilitator): State<Arc<EmbeddedFacilitator>>, body: Bytes) -> Response {
    let request = match parse(&body) {
        Ok(request) => request,
        Err(message) => return invalid_request(message),
    };
    match facilitator.verify(&request).await {
        Ok(answer) => axum::Json(answer).into_response(),
        Err(e) => internal(e, "unexpected_verify_error"),
    }
}

async fn settle(State(facilitator): State<Arc<EmbeddedFacilitator>>, body: Bytes) -> Response {
    let request = match parse(&body) {
        Ok(request) => request,
        Err(message) => return invalid_request(message),
    };
    match facilitator.settle(&request).await {
        Ok(answer) => axum::Json(answer).into_response(),
        Err(e) => internal(e, "unexpected_settle_error"),
    }
}

async fn supported(State(facilitator): State<Arc<EmbeddedFacilitator>>) -> Response {
    match facilitator.supported().await {
        Ok(answer) => axum::Json(answer).into_response(),
        Err(e) => internal(e, "unexpected_error"),
    }
}

#[derive(Deserialize)]
struct Page {
    limit: Option<u64>,
    offset: Option<u64>,
}

async fn discovery(
    page: Result<Query<Page>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(page)) = page else {
        return invalid_request("limit and offset must be non-negative integers");
    };
    let limit = page.limit.unwrap_or(20).clamp(1, 100);
    let offset = page.offset.unwrap_or(0);
    axum::Json(json!({
        "x402Version": 2,
        "items": [],
        "pagination": {"limit": limit, "offset": offset, "total": 0}
    }))
    .into_response()
}

/// The facilitator's routes.
pub(crate) fn router(facilitator: Arc<EmbeddedFacilitator>) -> Router {
    Router::new()
        .route("/verify", post(verify))
        .route("/settle", post(settle))
        .route("/supported", get(supported))
        .route("/discovery/resources", get(discovery))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(facilitator)
}

/// Credits the dev ledger as `--fund` says.
fn fund(
    facilitator: &EmbeddedFacilitator,
    registry: &NetworkRegistry,
    funding: &Funding,
) -> Result<String, Failure> {
    let ledger = facilitator
        .dev_ledger()
        .ok_or_else(|| Failure::usage("the facilitator has no dev ledger to fund"))?;
    let networks: Vec<_> = match &funding.network {
        Some(id) => vec![
            registry
                .network(id)
                .map_err(|e| Failure::usage(e.to_string()))?,
        ],
        None => registry.networks().collect(),
    };
    let mut symbol = String::new();
    for network in &networks {
        let asset = &network.default_asset;
        let atomic: U256 = funding
            .amount
            .to_atomic(asset.decimals)
            .map_err(|e| Failure::usage(format!("--fund {}: {e}", funding.amount)))?;
        ledger.fund(&network.caip2, asset.address, funding.account, atomic);
        symbol = asset.symbol.to_string();
    }
    let place = match &funding.network {
        Some(id) => id.clone(),
        None => "every network".to_owned(),
    };
    Ok(format!(
        "funded {} with {} {symbol} on {place}",
        funding.account, funding.amount
    ))
}

pub(crate) async fn run(args: ServeArgs) -> Result<(), Failure> {
    let registry = Arc::new(NetworkRegistry::builtin());
    let facilitator = EmbeddedFacilitator::builder()
        .registry(registry.clone())
        .build();
    for funding in &args.fund {
        eprintln!("x402ctl serve: {}", fund(&facilitator, &registry, funding)?);
    }
    let address = SocketAddr::new(args.host, args.port);
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|e| Failure::usage(format!("cannot listen on {address}: {e}")))?;
    let bound = listener
        .local_addr()
        .map_err(|e| Failure::usage(format!("cannot listen on {address}: {e}")))?;
    // The first line of stdout is the URL, for scripts.
    println!("http://{bound}");
    eprintln!(
        "x402ctl serve: facilitator listening on http://{bound} (POST /verify, POST /settle, GET /supported, GET /discovery/resources)"
    );
    eprintln!(
        "x402ctl serve: embedded verifier, in-memory dev ledger: no money moves; Ctrl-C stops"
    );
    axum::serve(listener, router(Arc::new(facilitator)))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| Failure::http(format!("server failed: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn funding_parses_with_and_without_a_network() {
        let f: Funding = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8=1.5@base-sepolia"
            .parse()
            .unwrap();
        assert_eq!(f.amount.to_atomic(6).unwrap(), U256::from(1_500_000u64));
        assert_eq!(f.network.as_deref(), Some("base-sepolia"));
        let f: Funding = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8=10"
            .parse()
            .unwrap();
        assert_eq!(f.network, None);
        assert!(
            "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
                .parse::<Funding>()
                .is_err()
        );
        assert!("bob=1".parse::<Funding>().is_err());
        assert!(
            "0x70997970C51812dc3A010C7d01b50e0d17dc79C8=-1"
                .parse::<Funding>()
                .is_err()
        );
    }
}
