// axum: a `#[paid]` handler is an ordinary axum handler (no route attribute, no order rule).
use axum::{Router, routing::get};
use axum_x402::{Payment, PaidRoute, X402, paid};

#[paid(price = "$0.01", network = ["base", "base-sepolia"], protocol = "v2")]
async fn weather(payment: Payment) -> String {
    payment.payer().to_string()
}

fn main() {
    let x402 = X402::builder()
        .embedded_facilitator()
        .pay_to("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC")
        .build()
        .unwrap();
    let _app: Router = Router::new().route("/weather", get(weather)).layer(x402.layer());
    let spec = <__X402Tag_weather as PaidRoute>::spec();
    assert_eq!(spec.networks, ["base", "base-sepolia"]);
    assert_eq!(spec.only, Some(x402_runtime::ProtocolVersion::V2));
}
