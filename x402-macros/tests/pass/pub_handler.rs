//! Public handlers get a public tag, so no private-in-public error, and no lint fires on it.
#![deny(warnings, missing_docs, unreachable_pub, missing_debug_implementations)]
//! (crate docs, for `missing_docs`)

#[path = "../support/mod.rs"]
#[allow(missing_docs, unreachable_pub, missing_debug_implementations)]
mod support;

use support::spec_of;

/// Handlers with every kind of visibility.
pub mod api {
    use crate::support::Payment;
    use x402_runtime::paid;

    /// A public handler.
    #[paid(price = "$0.01", network = "base")]
    pub async fn weather(payment: Payment) -> &'static str {
        let _ = payment;
        "sunny"
    }

    #[paid(price = "$0.02", network = "base")]
    pub(crate) async fn forecast(payment: Payment) -> &'static str {
        let _ = payment;
        "rain"
    }

    pub(crate) mod nested {
        use crate::support::Payment;
        use x402_runtime::paid;

        #[paid(price = "$0.03", network = "base")]
        pub(super) fn history(payment: Payment) {
            let _ = payment;
        }

        pub(crate) fn history_spec() -> &'static x402_runtime::RouteSpec {
            crate::spec_of(history)
        }
    }
}

fn main() {
    assert_eq!(support::fixed(spec_of(api::weather)), "$0.01");
    assert_eq!(support::fixed(spec_of(api::forecast)), "$0.02");
    assert_eq!(support::fixed(api::nested::history_spec()), "$0.03");
    // The tag is reachable where the handler is, as the signature requires.
    let _: fn(support::Payment<api::__X402Tag_weather>) -> _ = api::weather;
}
