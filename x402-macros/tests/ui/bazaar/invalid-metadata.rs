//! Every mistake in `bazaar(…)` at once: a method without its body, a duplicate tag, a
//! service name facilitators would drop.
use x402_runtime::paid;

/// Stands in for an integration's `Payment<T>`.
pub struct Payment<T = ()>(pub std::marker::PhantomData<T>);

#[paid(
    price = "0.01 USDC",
    network = "base",
    bazaar(
        method = "POST",
        tags = ["weather", "Weather"],
        service = "A weather service with a name far too long",
    )
)]
pub async fn weather(_payment: Payment) {}

fn main() {}
