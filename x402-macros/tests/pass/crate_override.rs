//! `crate = "…"`: the output reaches the runtime through a re-exporting path.
#![deny(warnings)]

#[path = "../support/mod.rs"]
mod support;

use support::{Payment, fixed};
use x402_macros::paid;

/// What a crate re-exporting the runtime looks like.
mod reexport {
    pub use x402_runtime as x402;
}

#[paid(price = "$0.01", network = "base", crate = "crate::reexport::x402")]
async fn through_reexport(payment: Payment) {
    let _ = payment;
}

/// A runtime look-alike whose `PaidRoute` is a different trait from x402_runtime's: the handler
/// below only compiles if the output names this module's items, not `::x402_runtime`'s.
mod lookalike {
    pub mod __private {
        pub use x402_runtime::__private::*;

        pub trait PaidRoute {
            fn spec() -> &'static RouteSpec;
        }
    }
}

#[paid(price = "$0.02", network = "base", crate = "self::lookalike")]
async fn through_lookalike(payment: Payment) {
    let _ = payment;
}

fn lookalike_spec<T: lookalike::__private::PaidRoute, R>(
    _: fn(Payment<T>) -> R,
) -> &'static x402_runtime::RouteSpec {
    T::spec()
}

fn main() {
    assert_eq!(fixed(support::spec_of(through_reexport)), "$0.01");
    assert_eq!(fixed(lookalike_spec(through_lookalike)), "$0.02");
}
