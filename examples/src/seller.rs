//! A paid API configured entirely from outside the code: `X402_CONFIG` names a configuration
//! file (its networks and tokens, the facilitator and its bearer token, the recipient and the
//! default network; see `x402_runtime::config`), and the other `X402_*` variables override it.
//!
//! The route names no network, so it is paid on the configuration's default networks
//! (`[server] networks`, or `X402_NETWORKS`): the same binary sells on Base, on Base Sepolia, or
//! on a local anvil chain with the workspace's test token, depending only on the file. (`#[paid]`
//! insists on a network, so the route is priced by hand with a [`PaidRoute`].)

use axum::{Json, Router, routing::get};
use axum_x402::{Payment, X402};
use serde_json::{Value, json};
use x402_runtime::{PaidRoute, RouteSpec};

/// `GET /weather`: one cent in the default network's stablecoin.
pub struct Weather;

static WEATHER: RouteSpec = RouteSpec::fixed("$0.01")
    .description("Current weather in Oslo")
    .mime_type("application/json")
    .handler("x402_examples::seller::weather");

impl PaidRoute for Weather {
    fn spec() -> &'static RouteSpec {
        &WEATHER
    }
}

async fn weather(payment: Payment<Weather>) -> Json<Value> {
    Json(json!({
        "city": "Oslo",
        "forecast": "sunny, 21 °C",
        "paid_by": payment.payer().to_string(),
        "amount": payment.amount_display(),
        "network": payment.network().name.to_string(),
    }))
}

/// The configuration the environment describes (`X402Builder::read_env`, which applies
/// `X402_CONFIG` first).
pub fn x402_from_env() -> Result<X402, x402_runtime::ConfigError> {
    X402::builder().read_env().check_route(&WEATHER).build()
}

/// The configuration a file describes, alone (no environment variables).
pub fn x402_from_config(path: &std::path::Path) -> Result<X402, x402_runtime::ConfigError> {
    X402::builder()
        .config_file(path)
        .check_route(&WEATHER)
        .build()
}

/// The app: `/weather` is paid, `/` says so.
pub fn app(x402: &X402) -> Router {
    Router::new()
        .route("/weather", get(weather))
        .route("/", get(|| async { "GET /weather costs $0.01\n" }))
        .layer(x402.layer())
}
