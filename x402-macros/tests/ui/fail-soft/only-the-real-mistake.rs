//! With a `Payment<T>` that needs a real tag (no default, a `PaidRoute` bound, as the
//! integrations' extractors have), a wrong price still gives only the price error: no
//! "missing generics" or "trait bound not satisfied" errors pile on.
use x402_runtime::{PaidRoute, paid};

/// Like an integration's extractor, usable only with a priced tag.
pub struct Payment<T: PaidRoute>(pub std::marker::PhantomData<T>);

#[paid(price = "0.01 DAI", network = "base")]
pub async fn weather(_payment: Payment) {}

#[paid(price = "0.01 USDC", network = "base", access = "forever")]
pub fn forecast(_payment: Payment) {}

fn main() {}
