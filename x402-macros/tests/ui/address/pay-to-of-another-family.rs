//! An EVM recipient on a Solana network.
use x402_runtime::paid;

/// Stands in for an integration's `Payment<T>`.
pub struct Payment<T = ()>(pub std::marker::PhantomData<T>);

#[paid(
    price = "0.01 USDC",
    network = ["base", "solana-devnet"],
    pay_to = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
)]
pub async fn weather(_payment: Payment) {}

fn main() {}
