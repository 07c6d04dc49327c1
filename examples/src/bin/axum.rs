//! A paid axum API. Configure it with `X402_FACILITATOR_URL`, `X402_PAY_TO`, … or run it as is
//! on the embedded facilitator (the demo payer is funded in its dev ledger).
//!
//! ```sh
//! cargo run -p x402-examples --bin axum          # PORT=… to move it, RUST_LOG=… for logs
//! curl -i http://127.0.0.1:4022/weather
//! ```

use axum::{Router, routing::get};
use axum_x402::{Payment, X402, paid};

#[paid(
    price = "0.01 USDC",
    network = "base-sepolia",
    description = "Current weather"
)]
async fn weather(payment: Payment) -> String {
    format!(
        "sunny, 21 °C; paid {} by {}\n",
        payment.amount_display(),
        payment.payer()
    )
}

#[tokio::main]
async fn main() {
    x402_examples::init_logging();
    x402_examples::exit_on_error(run().await);
}

async fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let x402: X402 = x402_examples::quickstart::from_env(|x: &X402| x.gate().as_ref())?;
    let app = Router::new()
        .route("/weather", get(weather))
        .layer(x402.layer());
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", x402_examples::port(4022))).await?;
    println!(
        "axum: GET http://{}/weather costs 0.01 USDC",
        listener.local_addr()?
    );
    axum::serve(listener, app).await?;
    Ok(())
}
