//! Solana clusters are networks like any other: built-in names, CAIP-2 ids of clusters
//! registered at run time, base58 recipients, and routes offering EVM and Solana at once.
#![deny(warnings)]

#[path = "../support/mod.rs"]
mod support;

use support::{Payment, fixed, spec_of};
use x402_runtime::paid;

#[paid(price = "0.01 USDC", network = "solana-devnet")]
async fn devnet(payment: Payment) {
    let _ = payment;
}

#[paid(
    price = "$0.02",
    network = "solana",
    pay_to = "9aE476sH92Vz7DMPyq5WLPkrKWivxeuTKEFKd2sZZcde"
)]
async fn mainnet(payment: Payment) {
    let _ = payment;
}

#[paid(price = "1500 atomic", network = ["base-sepolia", "solana:8E9rvCKLFQia2Y35HXjjpWzj8weVo44K"])]
async fn both(payment: Payment) {
    let _ = payment;
}

fn main() {
    let spec = spec_of(devnet);
    assert_eq!(fixed(spec), "0.01 USDC");
    assert_eq!(spec.networks, ["solana-devnet"]);
    assert_eq!(
        spec_of(mainnet).pay_to,
        Some("9aE476sH92Vz7DMPyq5WLPkrKWivxeuTKEFKd2sZZcde")
    );
    assert_eq!(
        spec_of(both).networks,
        ["base-sepolia", "solana:8E9rvCKLFQia2Y35HXjjpWzj8weVo44K"]
    );
}
