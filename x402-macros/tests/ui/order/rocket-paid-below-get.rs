// With Rocket, `#[get]` must not sit above `#[paid]`: Rocket's route attribute reads the
// handler's parameters before `#[paid]` gives `Payment` its price.
use rocket::get;
use rocket_x402::{Payment, paid};

#[get("/weather")]
#[paid(price = "0.01 USDC", network = "base")]
async fn weather(payment: Payment) -> String {
    payment.payer().to_string()
}

fn main() {
    let _ = rocket::build().mount("/", rocket::routes![weather]);
}
