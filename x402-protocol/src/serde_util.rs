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
    use serde::{Deserializer, Serializer};

    /// Writes `value` as a base-10 string.
    pub fn serialize<S: Serializer>(value: &U256, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(value)
    }

    /// Reads a base-10 string (or a JSON integer) into a `U256`, straight from the input (no
    /// buffering of the value, as an untagged enum would).
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<U256, D::Error> {
        struct Decimal;

        impl serde::de::Visitor<'_> for Decimal {
            type Value = U256;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a base-10 integer string")
            }

            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<U256, E> {
                crate::amount::parse_decimal_u256(s).map_err(|e| E::custom(format!("{e}: {s:?}")))
            }

            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<U256, E> {
                Ok(U256::from(n))
            }

            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<U256, E> {
                u64::try_from(n)
                    .map(U256::from)
                    .map_err(|_| E::custom(format!("a negative amount: {n}")))
            }
        }

        deserializer.deserialize_any(Decimal)
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

#[cfg(test)]
mod tests {
    use alloy_primitives::U256;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Amount(#[serde(with = "super::decimal_u256")] U256);

    #[test]
    fn decimal_amounts_come_as_strings_or_small_integers() {
        let read = |json: &str| serde_json::from_str::<Amount>(json).map(|a| a.0);
        assert_eq!(read(r#""10000""#).unwrap(), U256::from(10_000u64));
        assert_eq!(read("10000").unwrap(), U256::from(10_000u64));
        let big = "115792089237316195423570985008687907853269984665640564039457584007913129639935";
        assert_eq!(read(&format!("\"{big}\"")).unwrap(), U256::MAX);
        // Escaped text is read after unescaping, and from a `Value` too.
        assert_eq!(read(r#""1\u0030""#).unwrap(), U256::from(10u64));
        let value = serde_json::json!("42");
        assert_eq!(
            serde_json::from_value::<Amount>(value).unwrap().0,
            U256::from(42u64)
        );
        for bad in [r#""0x10""#, r#""-1""#, "-1", "1.5", r#""""#, "null", "[1]"] {
            assert!(read(bad).is_err(), "{bad}");
        }
        let error = read(r#""12a""#).unwrap_err().to_string();
        assert!(error.contains("12a"), "{error}");
    }
}
