//! Serde helpers for the number and address formats the wire uses.
//!
//! x402 sends token amounts and EIP-3009 times as base-10 integer *strings* (JSON numbers would
//! lose precision above 2^53) and reference clients write EVM addresses in EIP-55 checksummed
//! form. These helpers are public so downstream wire types can reuse them with
//! `#[serde(with = "...")]`.

/// `U256` as a base-10 string: `"10000"`.
///
/// Deserialising also accepts a non-negative JSON integer, because some clients in the wild
/// send small values as numbers; serialising always writes a string.
pub mod decimal_u256 {
    use alloy_primitives::U256;
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    /// Writes `value` as a base-10 string.
    pub fn serialize<S: Serializer>(value: &U256, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(value)
    }

    /// Reads a base-10 string (or a JSON integer) into a `U256`.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<U256, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr<'a> {
            Str(&'a str),
            String(String),
            Int(u64),
        }
        let parse = |s: &str| {
            crate::amount::parse_decimal_u256(s)
                .map_err(|e| D::Error::custom(format!("{e}: {s:?}")))
        };
        match Repr::deserialize(deserializer)? {
            Repr::Str(s) => parse(s),
            Repr::String(s) => parse(&s),
            Repr::Int(n) => Ok(U256::from(n)),
        }
    }
}

/// An EVM `Address` written in EIP-55 checksummed form and read in any letter case.
pub mod checksummed {
    use alloy_primitives::Address;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes the EIP-55 checksummed form (remembered for addresses in use, see
    /// [`checksum`](crate::checksum)).
    pub fn serialize<S: Serializer>(value: &Address, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&crate::checksum::checksummed(value))
    }

    /// Reads a `0x`-prefixed, 40-hex-digit address in any letter case.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Address, D::Error> {
        Address::deserialize(deserializer)
    }
}

/// A `String` that may arrive as `null` or be missing, read as `""`.
///
/// Legacy Python v1 clients post `null` for optional fields (§1 of the wire notes).
pub mod null_as_empty {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes the string as is.
    pub fn serialize<S: Serializer>(value: &str, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(value)
    }

    /// Reads a string, treating `null` as `""`.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
        Ok(Option::<String>::deserialize(deserializer)?.unwrap_or_default())
    }
}
