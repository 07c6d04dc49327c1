//! A paid Rocket API: the same handler as the axum example; only the import changes, and
//! `#[paid]` sits above the route attribute.
//!
//! ```sh
//! cargo run -p x402-examples --bin rocket        # PORT=… to move it, RUST_LOG=… for logs
//! curl -i http://127.0.0.1:4024/weather
//! ```

use rocket::{get, routes};
use rocket_x402::{Payment, X402, paid};

#[paid(
    price = "0.01 USDC",
    network = "base-sepolia",
    description = "Current weather"
)]
#[get("/weather")]
async fn weather(payment: Payment) -> String {
    format!(
        "sunny, 21 °C; paid {} by {}\n",
        payment.amount_display(),
        payment.payer()
    )
}

#[rocket::main]
async fn main() {
    x402_examples::init_logging();
    x402_examples::exit_on_error(run().await);
}

async fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let x402: X402 = x402_examples::quickstart::from_env(|x: &X402| x.gate().as_ref())?;
    let config = rocket::Config {
        port: x402_examples::port(4024),
        ..rocket::Config::default()
    };
    let _ = rocket::custom(config)
        .mount("/", routes![weather])
        .attach(x402.fairing())
        .launch()
        .await?;
    Ok(())
}
