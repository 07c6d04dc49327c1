// Rocket: `#[paid]` above `#[get]` gives a guarded route (the other order does not compile;
// see tests/ui/order/rocket-paid-below-get.rs).
use rocket::{get, routes};
use rocket_x402::{Payment, X402, paid};

#[paid(price = "0.01 USDC", network = "base")]
#[get("/weather")]
async fn weather(payment: Payment) -> String {
    payment.payer().to_string()
}

fn main() {
    let x402 = X402::builder()
        .embedded_facilitator()
        .pay_to("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC")
        .build()
        .unwrap();
    let rocket = rocket::build().mount("/", routes![weather]).attach(x402.fairing());
    let client = rocket::local::blocking::Client::tracked(rocket).unwrap();
    let response = client.get("/weather").dispatch();
    assert_eq!(response.status().code, 402);
    assert!(response.headers().get_one("payment-required").is_some());
}
