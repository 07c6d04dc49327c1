//! Values passed through `macro_rules!` fragments (`$price:expr`, `$network:literal`) are
//! seen through the invisible groups they come wrapped in.
#![deny(warnings)]

#[path = "../support/mod.rs"]
mod support;

use support::{Payment, fixed, spec_of};
use x402_runtime::paid;

macro_rules! paid_route {
    ($name:ident, $price:expr, $network:literal, $payment:ty) => {
        #[paid(price = $price, network = $network)]
        async fn $name(payment: $payment) {
            let _ = payment;
        }
    };
}

paid_route!(cheap, "$0.001", "base", Payment);
paid_route!(dear, "2 USDC", "base-sepolia", support::Payment);

fn main() {
    assert_eq!(fixed(spec_of(cheap)), "$0.001");
    assert_eq!(spec_of(cheap).networks, ["base"]);
    assert_eq!(fixed(spec_of(dear)), "2 USDC");
}
