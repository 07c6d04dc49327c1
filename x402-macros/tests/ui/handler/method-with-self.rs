//! A method is not a handler.
use x402_runtime::paid;

/// Stands in for an integration's `Payment<T>`.
pub struct Payment<T = ()>(pub std::marker::PhantomData<T>);

pub struct Api;

impl Api {
    #[paid(price = "0.01 USDC", network = "base")]
    pub async fn weather(&self, _payment: Payment) {}
}

fn main() {}
