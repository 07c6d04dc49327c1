//! `x402ctl seller` (hidden; `x402ctl dev` starts it): a small paid API configured only by a
//! configuration file, paid on the file's default networks through the file's facilitator.
//!
//! | product | path | price |
//! | --- | --- | --- |
//! | `weather` | `GET /weather` | $0.01 |
//! | `report` | `GET /report` | $0.05 |

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::routing::get;
use axum::{Json, Router};
use axum_x402::{Payment, X402};
use clap::Args;
use serde_json::{Value, json};
use x402_runtime::{PaidRoute, RouteSpec};

use crate::Failure;

/// Arguments of `x402ctl seller`.
#[derive(Debug, Args)]
pub(crate) struct SellerArgs {
    /// The configuration file ([server] facilitator, pay_to, networks; the networks' tokens).
    #[arg(long)]
    config: PathBuf,
    /// Port to listen on (0 picks a free one; the URL is the first line on stdout).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// What it sells: weather ($0.01) or report ($0.05).
    #[arg(long, default_value = "weather")]
    product: String,
}

/// `GET /weather`, $0.01.
struct Weather;
static WEATHER: RouteSpec = RouteSpec::fixed("$0.01")
    .description("Current weather in Oslo")
    .mime_type("application/json")
    .handler("x402ctl::seller::weather");
impl PaidRoute for Weather {
    fn spec() -> &'static RouteSpec {
        &WEATHER
    }
}

/// `GET /report`, $0.05.
struct Report;
static REPORT: RouteSpec = RouteSpec::fixed("$0.05")
    .description("Daily market report")
    .mime_type("application/json")
    .handler("x402ctl::seller::report");
impl PaidRoute for Report {
    fn spec() -> &'static RouteSpec {
        &REPORT
    }
}

async fn weather(payment: Payment<Weather>) -> Json<Value> {
    Json(json!({
        "city": "Oslo",
        "forecast": "sunny, 21 °C",
        "paid_by": payment.payer().to_string(),
        "amount": payment.amount_display(),
    }))
}

async fn report(payment: Payment<Report>) -> Json<Value> {
    Json(json!({
        "report": "markets calm; stablecoins stable",
        "paid_by": payment.payer().to_string(),
        "amount": payment.amount_display(),
    }))
}

pub(crate) async fn run(args: SellerArgs) -> Result<(), Failure> {
    crate::serve::init_logging();
    let (spec, app): (&'static RouteSpec, Router) = match args.product.as_str() {
        "weather" => (&WEATHER, Router::new().route("/weather", get(weather))),
        "report" => (&REPORT, Router::new().route("/report", get(report))),
        other => {
            return Err(Failure::usage(format!(
                "--product {other:?}: choose weather or report"
            )));
        }
    };
    let x402: X402 = X402::builder()
        .config_file(&args.config)
        .check_route(spec)
        .build()
        .map_err(|e| Failure::usage(e.to_string()))?;
    let app = app.layer(x402.layer());
    let address = SocketAddr::from(([127, 0, 0, 1], args.port));
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|e| Failure::usage(format!("cannot listen on {address}: {e}")))?;
    let bound = listener
        .local_addr()
        .map_err(|e| Failure::usage(format!("cannot listen on {address}: {e}")))?;
    println!("http://{bound}");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| Failure::http(format!("server failed: {e}")))
}
