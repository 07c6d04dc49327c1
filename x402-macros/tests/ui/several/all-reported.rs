//! Several mistakes in one attribute and one handler: each is reported, on its own token,
//! in one build.
use x402_runtime::paid;

/// Stands in for an integration's `Payment<T>`.
pub struct Payment<T = ()>(pub std::marker::PhantomData<T>);

#[paid(
    price = "0.0000001 USDC",
    network = ["base", "nowhere"],
    pay_to = "0x12",
    settle = "sometime",
    uses = 0,
    colour = "blue",
)]
pub async fn weather(_first: Payment, _second: Payment) {}

fn main() {}
