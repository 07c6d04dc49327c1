//! Protocol generations and the header names each one uses.

use std::fmt;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An x402 protocol generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProtocolVersion {
    /// v1: requirements in the 402 JSON body, `X-PAYMENT` / `X-PAYMENT-RESPONSE`, short
    /// network names.
    V1,
    /// v2: requirements in the `PAYMENT-REQUIRED` header, `PAYMENT-SIGNATURE` /
    /// `PAYMENT-RESPONSE`, CAIP-2 network ids.
    V2,
}

impl ProtocolVersion {
    /// The `x402Version` number.
    pub const fn number(self) -> u8 {
        match self {
            ProtocolVersion::V1 => 1,
            ProtocolVersion::V2 => 2,
        }
    }

    /// The version for an `x402Version` number, if it is one this crate speaks.
    pub const fn from_number(n: u64) -> Option<Self> {
        match n {
            1 => Some(ProtocolVersion::V1),
            2 => Some(ProtocolVersion::V2),
            _ => None,
        }
    }

    /// The request header a client pays with (lower-case, as HTTP/2 requires).
    pub const fn payment_header(self) -> &'static str {
        match self {
            ProtocolVersion::V1 => headers::X_PAYMENT,
            ProtocolVersion::V2 => headers::PAYMENT_SIGNATURE,
        }
    }

    /// The response header that carries the settlement receipt.
    pub const fn settlement_header(self) -> &'static str {
        match self {
            ProtocolVersion::V1 => headers::X_PAYMENT_RESPONSE,
            ProtocolVersion::V2 => headers::PAYMENT_RESPONSE,
        }
    }
}

impl fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.number())
    }
}

/// Header names, lower-case (HTTP header names are case-insensitive; reference code writes
/// them upper-case).
pub mod headers {
    /// v1 request header carrying the base64 payment payload.
    pub const X_PAYMENT: &str = "x-payment";
    /// v2 request header carrying the base64 payment payload.
    pub const PAYMENT_SIGNATURE: &str = "payment-signature";
    /// v2 response header on a 402 carrying the base64 `PaymentRequired`.
    pub const PAYMENT_REQUIRED: &str = "payment-required";
    /// v1 response header carrying the base64 settlement receipt.
    pub const X_PAYMENT_RESPONSE: &str = "x-payment-response";
    /// v2 response header carrying the base64 settlement receipt.
    pub const PAYMENT_RESPONSE: &str = "payment-response";
    /// Browsers only let scripts read response headers listed here.
    pub const EXPOSE_VALUE: &str = "PAYMENT-REQUIRED, PAYMENT-RESPONSE, X-PAYMENT-RESPONSE";
}

/// The `x402Version` field of a type that belongs to one generation: serialises as `N` and
/// refuses any other number when deserialising.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Version<const N: u8>;

/// `x402Version: 1`.
pub type V1 = Version<1>;
/// `x402Version: 2`.
pub type V2 = Version<2>;

impl<const N: u8> Serialize for Version<N> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u8(N)
    }
}

impl<'de, const N: u8> Deserialize<'de> for Version<N> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let found = u64::deserialize(deserializer)?;
        if found == u64::from(N) {
            Ok(Version)
        } else {
            Err(D::Error::custom(format!(
                "expected x402Version {N}, found {found}"
            )))
        }
    }
}
