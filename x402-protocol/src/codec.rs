//! Header encoding: standard base64 (with `=` padding) over UTF-8 JSON.
//!
//! Every x402 header (`X-PAYMENT`, `PAYMENT-SIGNATURE`, `PAYMENT-REQUIRED`,
//! `X-PAYMENT-RESPONSE`, `PAYMENT-RESPONSE`) carries a JSON object encoded this way. Encoding
//! always pads; decoding tolerates missing padding but never the URL-safe alphabet, which the
//! reference TypeScript and Python decoders reject.

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Strict on output: standard alphabet, always padded.
const ENCODER: GeneralPurpose =
    GeneralPurpose::new(&alphabet::STANDARD, GeneralPurposeConfig::new());

/// Lenient about padding on input, strict about the alphabet.
const DECODER: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Default upper bound on an encoded header value, in bytes. A v2 payment header from the
/// reference clients is about 1.3 KiB; 8 KiB leaves room for extensions without letting a
/// client make the server decode megabytes.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 8 * 1024;

/// Why a header value could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The value is longer than the configured limit.
    #[error("header value is {len} bytes, more than the {max}-byte limit")]
    TooLarge {
        /// Length of the value.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The value is empty.
    #[error("header value is empty")]
    Empty,
    /// The value is not standard base64.
    #[error("header value is not standard base64: {0}")]
    Base64(String),
    /// The decoded bytes are not the expected JSON object.
    #[error("header value is not a valid x402 JSON object: {0}")]
    Json(String),
}

/// Encodes a value as base64 JSON, the format of every x402 header.
///
/// ```
/// let header = x402_protocol::codec::encode(&serde_json::json!({"x402Version": 2}));
/// assert_eq!(header, "eyJ4NDAyVmVyc2lvbiI6Mn0=");
/// ```
pub fn encode<T: Serialize + ?Sized>(value: &T) -> String {
    // Serialising our own wire types cannot fail: they hold only strings, numbers, maps with
    // string keys and `serde_json::Value`s.
    let json = serde_json::to_vec(value).unwrap_or_default();
    ENCODER.encode(json)
}

/// Encodes raw bytes (already-serialised JSON) as padded standard base64.
pub fn encode_bytes(json: &[u8]) -> String {
    ENCODER.encode(json)
}

/// Decodes a base64 JSON header value, refusing values longer than `max_len` bytes before
/// doing any work.
///
/// ```
/// use x402_protocol::codec::{decode, DecodeError};
///
/// let v: serde_json::Value = decode("eyJ4NDAyVmVyc2lvbiI6Mn0", 1024).unwrap(); // unpadded is fine
/// assert_eq!(v["x402Version"], 2);
/// assert!(matches!(decode::<serde_json::Value>("eyJ4_-", 1024), Err(DecodeError::Base64(_))));
/// ```
pub fn decode<T: DeserializeOwned>(value: &str, max_len: usize) -> Result<T, DecodeError> {
    let bytes = decode_bytes(value, max_len)?;
    serde_json::from_slice(&bytes).map_err(|e| DecodeError::Json(e.to_string()))
}

/// Decodes a base64 header value to its raw bytes, with the same checks as [`decode`].
pub fn decode_bytes(value: &str, max_len: usize) -> Result<Vec<u8>, DecodeError> {
    if value.len() > max_len {
        return Err(DecodeError::TooLarge {
            len: value.len(),
            max: max_len,
        });
    }
    let value = value.trim();
    if value.is_empty() {
        return Err(DecodeError::Empty);
    }
    DECODER
        .decode(value)
        .map_err(|e| DecodeError::Base64(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_pads() {
        let value = serde_json::json!({"a": "é", "b": [1, 2, 3]});
        let encoded = encode(&value);
        assert!(encoded.ends_with('='));
        assert_eq!(decode::<serde_json::Value>(&encoded, 1024).unwrap(), value);
    }

    #[test]
    fn rejects_bad_input_with_reasons() {
        assert_eq!(decode::<serde_json::Value>("", 10), Err(DecodeError::Empty));
        assert!(matches!(
            decode::<serde_json::Value>("!!!!", 10),
            Err(DecodeError::Base64(_))
        ));
        assert!(matches!(
            decode::<serde_json::Value>("bm90IGpzb24=", 64),
            Err(DecodeError::Json(_))
        ));
        assert!(matches!(
            decode::<serde_json::Value>(&"A".repeat(65), 64),
            Err(DecodeError::TooLarge { len: 65, max: 64 })
        ));
    }
}
