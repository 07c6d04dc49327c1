//! `discovery = f` where `f` is not a `fn() -> BazaarExtension`: the compiler says so.
use x402_runtime::paid;

/// Stands in for an integration's `Payment<T>`.
pub struct Payment<T = ()>(pub std::marker::PhantomData<T>);

fn declaration() -> String {
    String::new()
}

#[paid(price = "0.01 USDC", network = "base", discovery = declaration)]
pub async fn weather(_payment: Payment) {}

fn main() {}
