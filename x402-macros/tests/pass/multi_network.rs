//! Several networks, in order, including one the application registers at run time.
#![deny(warnings)]

#[path = "../support/mod.rs"]
mod support;

use support::{Payment, fixed, spec_of};
use x402_runtime::paid;

#[paid(price = "$0.001", network = ["base", "base-sepolia", "eip155:137", "eip155:31337"])]
async fn quote(payment: Payment) -> u32 {
    let _ = payment;
    42
}

// A trailing comma in the list is fine.
#[paid(price = "0.25 USDC", network = ["avalanche-fuji",])]
async fn single(payment: Payment) {
    let _ = payment;
}

fn main() {
    let spec = spec_of(quote);
    assert_eq!(fixed(spec), "$0.001");
    assert_eq!(spec.networks, ["base", "base-sepolia", "eip155:137", "eip155:31337"]);

    assert_eq!(spec_of(single).networks, ["avalanche-fuji"]);
}
