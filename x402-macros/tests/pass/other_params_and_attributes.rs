//! A handler with other parameters and attributes: only the `Payment` parameter's type
//! changes, whatever path it is written with, and the other attributes stay.
#![deny(warnings)]

#[path = "../support/mod.rs"]
mod support;

use support::{fixed, run, spec_of_2nd_of_3};
use x402_runtime::{PaidRoute, paid};

/// A module path in front of `Payment`, as with `axum_x402::Payment`.
mod framework {
    pub use crate::support::Payment;
}

struct Query(&'static str);

/// Documented handler.
#[paid(price = "0.02 USDC", network = "polygon")]
#[must_use = "the report should be sent"]
#[cfg_attr(all(), allow(clippy::needless_pass_by_value))]
#[cfg(not(any()))]
async fn report(query: Query, mut payment: framework::Payment, suffix: String) -> String {
    let _: &mut framework::Payment<__X402Tag_report> = &mut payment;
    format!("{}{suffix}", query.0)
}

/// The path may start at the crate root, too.
#[paid(price = "0.03 USDC", network = "polygon")]
fn rooted(_: u8, _payment: crate::support::Payment, _: u8) {}

fn main() {
    let spec = spec_of_2nd_of_3(report);
    assert_eq!(fixed(spec), "0.02 USDC");
    assert_eq!(spec.networks, ["polygon"]);
    assert_eq!(
        run(report(Query("q"), framework::Payment::new(), "!".to_owned())),
        "q!"
    );
    assert_eq!(fixed(spec_of_2nd_of_3(rooted)), "0.03 USDC");

    // The tag derives the usual traits, so a `Payment<T>` deriving them keeps them.
    let payment: framework::Payment<__X402Tag_report> = framework::Payment::new();
    let copy = payment;
    let _clone = copy.clone();
    let _still_usable = payment;
    let debug = format!("{payment:?}");
    assert!(debug.starts_with("Payment(PhantomData<") && debug.ends_with("__X402Tag_report>)"), "{debug}");
    assert!(std::ptr::eq(<__X402Tag_report as PaidRoute>::spec(), spec));
}
