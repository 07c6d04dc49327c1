//! Items the `#[paid]` attribute's output names. Not a public API: may change in any release.

pub use crate::route::{AccessSpec, PriceSpec, PriceTag, RouteSpec, SettleMode};
