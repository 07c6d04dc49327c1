//! Items the `#[paid]` attribute's output names. Not a public API: may change in any release.
//!
//! The macro's `src/paths.rs` lists every path it emits; each one resolves here.

pub use crate::route::{AccessSpec, PriceSpec, PriceTag, RouteSpec, SettleMode};
pub use x402_protocol::ProtocolVersion;

// Named through here so that a user's own `Some`, `Duration` or derive macros cannot capture
// the output. Each `pub use` of a derivable trait brings its derive macro along.
pub use core::clone::Clone;
pub use core::fmt::Debug;
pub use core::marker::Copy;
pub use core::option::Option::{None, Some};
pub use core::time::Duration;
