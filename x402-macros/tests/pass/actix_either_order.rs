// actix-web: `#[paid]` above `#[get]` is the documented order. Below it also works — actix's
// route attribute re-emits the handler with `#[paid]` still on it — and the route is still
// guarded: both answer 402 without a payment.
use actix_web::{App, get, test};
use actix_web_x402::{Payment, X402, paid};

#[paid(price = "0.01 USDC", network = "base")]
#[get("/above")]
async fn above(payment: Payment) -> String {
    payment.payer().to_string()
}

#[get("/below")]
#[paid(price = "0.01 USDC", network = "base")]
async fn below(payment: Payment) -> String {
    payment.payer().to_string()
}

#[actix_web::main]
async fn main() {
    let x402 = X402::builder()
        .embedded_facilitator()
        .pay_to("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC")
        .build()
        .unwrap();
    let app = test::init_service(App::new().wrap(x402.middleware()).service(above).service(below)).await;
    for path in ["/above", "/below"] {
        let response = test::call_service(&app, test::TestRequest::get().uri(path).to_request()).await;
        assert_eq!(response.status().as_u16(), 402, "{path} is guarded");
        assert!(response.headers().contains_key("payment-required"));
    }
}
