//! Every optional key lands in the spec: recipient, token, settlement, entitlement, prepay,
//! paywall.
#![deny(warnings)]

#[path = "../support/mod.rs"]
mod support;

use std::time::Duration;

use support::{Payment, fixed, spec_of};
use x402_runtime::paywall::RoutePaywall;
use x402_runtime::{AccessSpec, SettleMode, paid};

#[paid(
    price = "$0.05",
    network = "base-sepolia",
    pay_to = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
    asset = "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
    settle = "before",
    access = "7d",
    uses = 100,
    scope = "reports",
    prepay = "1 USDC",
    paywall = false,
)]
async fn report(payment: Payment) {
    let _ = payment;
}

#[paid(price = "10000 atomic", network = "base", settle = "after", access = "90s")]
fn timed(payment: Payment) {
    let _ = payment;
}

#[paid(price = "0.5 USD", network = "eip155:8453", uses = 3)]
fn counted(payment: Payment) {
    let _ = payment;
}

fn main() {
    let spec = spec_of(report);
    assert_eq!(fixed(spec), "$0.05");
    assert_eq!(spec.networks, ["base-sepolia"]);
    assert_eq!(spec.pay_to, Some("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"));
    assert_eq!(spec.asset, Some("0x036CbD53842c5426634e7929541eC2318f3dCF7e"));
    assert_eq!(spec.settle, SettleMode::Before);
    assert_eq!(
        spec.access,
        Some(AccessSpec {
            duration: Some(Duration::from_secs(7 * 24 * 60 * 60)),
            uses: Some(100),
            scope: Some("reports"),
        })
    );
    assert_eq!(spec.prepay, Some("1 USDC"));
    assert!(matches!(spec.paywall, RoutePaywall::Off));

    let spec = spec_of(timed);
    assert_eq!(fixed(spec), "10000 atomic");
    assert!(matches!(spec.paywall, RoutePaywall::Server));
    assert_eq!(spec.settle, SettleMode::After);
    assert_eq!(
        spec.access,
        Some(AccessSpec {
            duration: Some(Duration::from_secs(90)),
            uses: None,
            scope: None,
        })
    );

    let spec = spec_of(counted);
    assert_eq!(fixed(spec), "0.5 USD");
    assert_eq!(spec.networks, ["eip155:8453"]);
    assert_eq!(
        spec.access,
        Some(AccessSpec {
            duration: None,
            uses: Some(3),
            scope: None,
        })
    );
}
