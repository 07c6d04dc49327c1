//! One paid Rocket route, verified and settled in process by the embedded facilitator (no
//! money moves; payments settle into an in-memory dev ledger).
//!
//! ```sh
//! cargo run -p rocket-x402 --example paid
//! curl -i http://127.0.0.1:8000/weather   # 402 with the challenge
//! ```
//!
//! Set `X402_DEV_PAYER=0x…` to give that address 10 USDC on base-sepolia in the dev ledger, so
//! an x402 client signing with its key can pay.

use rocket::{get, routes};
use rocket_x402::{Payment, PriceTag, RouteSpec, X402};
use x402_runtime::{Address, U256};

// #[paid(price = "0.01 USDC", network = "base-sepolia", description = "Current weather")]
// writes this for you.
struct Weather;
impl PriceTag for Weather {
    fn spec() -> &'static RouteSpec {
        static SPEC: RouteSpec = RouteSpec::fixed("0.01 USDC")
            .networks(&["base-sepolia"])
            .description("Current weather")
            .mime_type("text/plain");
        &SPEC
    }
}

#[get("/weather")]
fn weather(payment: Payment<Weather>) -> String {
    format!(
        "sunny, 21 °C; paid {} by {}\n",
        payment.amount_display(),
        payment.payer()
    )
}

#[get("/")]
fn index() -> &'static str {
    "GET /weather costs 0.01 USDC on base-sepolia\n"
}

#[rocket::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let x402 = X402::builder()
        .embedded_facilitator()
        .pay_to("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC")
        .build()?;
    if let Ok(payer) = std::env::var("X402_DEV_PAYER") {
        let payer: Address = payer.trim().parse()?;
        let network = x402.gate().registry().network("base-sepolia")?;
        if let Some(ledger) = x402.gate().dev_ledger() {
            ledger.fund(
                network.chain_id,
                network.default_asset.address,
                payer,
                U256::from(10_000_000u64),
            );
            println!("funded {payer} with 10 USDC on base-sepolia (dev ledger)");
        }
    }
    let _ = rocket::build()
        .mount("/", routes![index, weather])
        .attach(x402.fairing())
        .launch()
        .await?;
    Ok(())
}
