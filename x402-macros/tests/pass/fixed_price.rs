//! A literal price on one network, with the descriptive keys; the handler still runs.
#![deny(warnings)]

#[path = "../support/mod.rs"]
mod support;

use support::{Payment, fixed, run, spec_of};
use x402_runtime::{SettleMode, paid};

#[paid(
    price = "0.01 USDC",
    network = "base",
    description = "Current weather",
    mime_type = "application/json",
    max_timeout_seconds = 60,
)]
async fn weather(payment: Payment) -> String {
    // The parameter's type was rewritten; the handler's body is untouched.
    let _: Payment<__X402Tag_weather> = payment;
    "sunny".to_owned()
}

fn main() {
    let spec = spec_of(weather);
    assert_eq!(fixed(spec), "0.01 USDC");
    assert_eq!(spec.networks, ["base"]);
    assert_eq!(spec.description, "Current weather");
    assert_eq!(spec.mime_type, "application/json");
    assert_eq!(spec.max_timeout_seconds, Some(60));
    // Keys not given keep the runtime's defaults.
    assert_eq!(spec.pay_to, None);
    assert_eq!(spec.asset, None);
    assert_eq!(spec.settle, SettleMode::After);
    assert!(spec.access.is_none());
    assert_eq!(spec.prepay, None);
    assert_eq!(spec.resource, None);
    // The spec is one static, not rebuilt per call.
    assert!(std::ptr::eq(spec, spec_of(weather)));

    assert_eq!(run(weather(Payment::new())), "sunny");
}
