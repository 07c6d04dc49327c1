//! The `payment-identifier` extension: a client-chosen id that makes a paid request
//! idempotent (a retry with the same id gets the first answer instead of paying twice).
//!
//! The server declares it in the 402 (`{"info": {"required": bool}, "schema": …}`); the
//! client echoes the declaration in `PaymentPayload.extensions` with `info.id` added (16–128
//! characters of `[A-Za-z0-9_-]`, the reference client uses `pay_` + 32 hex digits) and keeps
//! the id across retries. What the server does with the id (stored responses, `409` for a
//! different request under a known id) is the runtime's journal; this module is the wire part.
//!
//! ```
//! use x402_protocol::payment_identifier::{self as pid, PaymentIdError};
//!
//! // Server: the 402 declaration.
//! let mut extensions = serde_json::json!({ pid::EXTENSION_KEY: pid::declare(true) });
//! // Client: echo it with an id.
//! let id = pid::generate_id();
//! pid::append_id(&mut extensions, &id)?;
//! // Server: read it back from the payment, enforcing `required`.
//! assert_eq!(pid::extract_id(Some(&extensions), true)?, Some(id));
//! assert_eq!(pid::extract_id(None, true), Err(PaymentIdError::Missing));
//! # Ok::<(), PaymentIdError>(())
//! ```

use serde_json::{Value, json};

use crate::reason::Reason;

/// The extension's key in `extensions`.
pub const EXTENSION_KEY: &str = "payment-identifier";

/// Shortest accepted id.
pub const MIN_LENGTH: usize = 16;

/// Longest accepted id.
pub const MAX_LENGTH: usize = 128;

/// Reason code for a missing required id or a malformed one.
pub const REASON_INVALID: &str = "invalid_payment_identifier";

/// Why a payment's identifier was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PaymentIdError {
    /// The server requires an id and the payment has none.
    #[error(
        "this resource requires a payment identifier (extensions[\"payment-identifier\"].info.id)"
    )]
    Missing,
    /// The id is not 16–128 characters of `[A-Za-z0-9_-]`.
    #[error(
        "payment identifier {0:?} must be 16 to 128 characters of letters, digits, '_' and '-'"
    )]
    Malformed(String),
    /// The extension object does not have the declared shape.
    #[error("the payment-identifier extension is malformed: {0}")]
    Shape(&'static str),
}

impl PaymentIdError {
    /// The reason code (`invalid_payment_identifier`); servers answer it with HTTP 400.
    pub fn reason(&self) -> Reason {
        Reason::new(REASON_INVALID)
    }
}

/// The JSON Schema of `info`, as the reference server declares it.
pub fn schema() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "required": {"type": "boolean"},
            "id": {
                "type": "string",
                "minLength": MIN_LENGTH,
                "maxLength": MAX_LENGTH,
                "pattern": "^[a-zA-Z0-9_-]+$",
            },
        },
        "required": ["required"],
    })
}

/// The server's declaration, `{"info": {"required": …}, "schema": …}`.
pub fn declare(required: bool) -> Value {
    json!({"info": {"required": required}, "schema": schema()})
}

/// Whether `id` is a valid payment identifier.
pub fn is_valid_id(id: &str) -> bool {
    (MIN_LENGTH..=MAX_LENGTH).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A fresh id: `pay_` and 32 random hex digits, the reference client's format.
pub fn generate_id() -> String {
    let mut bytes = [0u8; 16];
    // The OS generator failing means the platform cannot make ids safely at all.
    #[allow(clippy::expect_used)]
    getrandom::fill(&mut bytes).expect("the operating system's random number generator failed");
    format!("pay_{}", alloy_primitives::hex::encode(bytes))
}

/// Client side: adds `id` to the echoed declaration in a payment's `extensions`. Does nothing
/// when the server did not declare the extension.
pub fn append_id(extensions: &mut Value, id: &str) -> Result<(), PaymentIdError> {
    if !is_valid_id(id) {
        return Err(PaymentIdError::Malformed(id.to_owned()));
    }
    if let Some(info) = extensions
        .get_mut(EXTENSION_KEY)
        .and_then(|e| e.get_mut("info"))
        .and_then(Value::as_object_mut)
    {
        info.insert("id".into(), Value::String(id.to_owned()));
    }
    Ok(())
}

/// Server side: the id in a payment's `extensions`, if any.
///
/// `required` is the server's own declaration (never the client's echo of it). A present
/// extension must have an object `info` with a boolean `required`; a present id must be
/// valid. Without an id: `Ok(None)`, or [`PaymentIdError::Missing`] when required.
pub fn extract_id(
    extensions: Option<&Value>,
    required: bool,
) -> Result<Option<String>, PaymentIdError> {
    let Some(extension) = extensions.and_then(|e| e.get(EXTENSION_KEY)) else {
        return if required {
            Err(PaymentIdError::Missing)
        } else {
            Ok(None)
        };
    };
    let info = extension
        .get("info")
        .and_then(Value::as_object)
        .ok_or(PaymentIdError::Shape("info must be an object"))?;
    if !info.get("required").is_some_and(Value::is_boolean) {
        return Err(PaymentIdError::Shape("info.required must be a boolean"));
    }
    match info.get("id") {
        None => {
            if required {
                Err(PaymentIdError::Missing)
            } else {
                Ok(None)
            }
        }
        Some(Value::String(id)) if is_valid_id(id) => Ok(Some(id.clone())),
        Some(Value::String(id)) => Err(PaymentIdError::Malformed(id.clone())),
        Some(_) => Err(PaymentIdError::Shape("info.id must be a string")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_the_reference_rules() {
        let id = generate_id();
        assert_eq!(id.len(), 36);
        assert!(is_valid_id(&id));
        assert!(is_valid_id(&"a".repeat(16)));
        assert!(!is_valid_id(&"a".repeat(15)));
        assert!(is_valid_id(&"a".repeat(128)));
        assert!(!is_valid_id(&"a".repeat(129)));
        assert!(!is_valid_id("pay_with a space!!"));
        assert_ne!(generate_id(), generate_id());
    }

    #[test]
    fn extraction_refuses_bad_shapes_and_missing_required_ids() {
        let declared = json!({EXTENSION_KEY: declare(false)});
        assert_eq!(extract_id(Some(&declared), false), Ok(None));
        assert_eq!(
            extract_id(Some(&declared), true),
            Err(PaymentIdError::Missing)
        );
        assert_eq!(
            extract_id(Some(&json!({})), true),
            Err(PaymentIdError::Missing)
        );
        let bad = json!({EXTENSION_KEY: {"info": {"required": false, "id": "short"}}});
        assert_eq!(
            extract_id(Some(&bad), false),
            Err(PaymentIdError::Malformed("short".into()))
        );
        let bad = json!({EXTENSION_KEY: {"info": {"required": "no"}}});
        assert!(matches!(
            extract_id(Some(&bad), false),
            Err(PaymentIdError::Shape(_))
        ));
        let bad = json!({EXTENSION_KEY: {"info": {"required": true, "id": 7}}});
        assert!(matches!(
            extract_id(Some(&bad), false),
            Err(PaymentIdError::Shape(_))
        ));
        let mut none = json!({});
        append_id(&mut none, &generate_id()).unwrap();
        assert_eq!(none, json!({}), "nothing to append to");
        assert!(append_id(&mut none, "bad id").is_err());
    }
}
