//! The `payload` object of a payment: what the client signed, in the shape of its scheme and
//! transfer method.
//!
//! The same object travels in v1 (`X-PAYMENT`) and v2 (`PAYMENT-SIGNATURE`) payments. Its kind
//! is told by its shape, as the reference facilitators do: an `authorization` is an EIP-3009
//! `transferWithAuthorization` (EVM), a `transaction` is a partially signed Solana transaction.
//!
//! ```
//! use x402_protocol::payload::SchemePayload;
//!
//! let solana: SchemePayload = serde_json::from_str(r#"{"transaction": "AQID"}"#)?;
//! assert!(matches!(solana, SchemePayload::Solana(_)));
//! let unknown = serde_json::from_str::<SchemePayload>(r#"{"voucher": "x"}"#).unwrap_err();
//! assert!(unknown.to_string().contains("authorization"));
//! # Ok::<(), serde_json::Error>(())
//! ```

use alloy_primitives::Bytes;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};

use crate::address::ChainAddress;
use crate::exact::{Eip3009Authorization, ExactEvmPayload};

/// `payload` of an `exact` payment on Solana: a base64 serialized, partially signed versioned
/// transaction (the client's signature present, the fee payer's slot empty).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SvmPayload {
    /// The transaction, standard base64.
    pub transaction: String,
}

/// A payment's `payload`, by kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum SchemePayload {
    /// An EIP-3009 `transferWithAuthorization` and its signature (`exact` on EVM).
    Eip3009(ExactEvmPayload),
    /// A partially signed Solana transaction (`exact` on Solana).
    Solana(SvmPayload),
}

impl SchemePayload {
    /// The payer the payload names, when it names one without decoding a transaction
    /// (unverified: the signature has not been checked).
    pub fn claimed_payer(&self) -> Option<ChainAddress> {
        match self {
            SchemePayload::Eip3009(p) => Some(ChainAddress::Evm(p.authorization.from)),
            SchemePayload::Solana(_) => None,
        }
    }

    /// The EIP-3009 payload, if this is one.
    pub fn as_eip3009(&self) -> Option<&ExactEvmPayload> {
        match self {
            SchemePayload::Eip3009(p) => Some(p),
            SchemePayload::Solana(_) => None,
        }
    }

    /// The Solana payload, if this is one.
    pub fn as_solana(&self) -> Option<&SvmPayload> {
        match self {
            SchemePayload::Solana(p) => Some(p),
            SchemePayload::Eip3009(_) => None,
        }
    }

    /// A short name of the kind, for messages: `EIP-3009`, `Solana transaction`.
    pub fn kind(&self) -> &'static str {
        match self {
            SchemePayload::Eip3009(_) => "EIP-3009",
            SchemePayload::Solana(_) => "Solana transaction",
        }
    }
}

impl From<ExactEvmPayload> for SchemePayload {
    fn from(payload: ExactEvmPayload) -> Self {
        SchemePayload::Eip3009(payload)
    }
}

impl From<SvmPayload> for SchemePayload {
    fn from(payload: SvmPayload) -> Self {
        SchemePayload::Solana(payload)
    }
}

impl<'de> Deserialize<'de> for SchemePayload {
    /// Reads every known field in one pass, then decides by which are present, so that a
    /// malformed field is reported by name (not as "did not match any variant").
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Shape {
            #[serde(default)]
            signature: Option<Bytes>,
            #[serde(default)]
            authorization: Option<Eip3009Authorization>,
            #[serde(default)]
            transaction: Option<String>,
        }
        let shape = Shape::deserialize(deserializer)?;
        match shape {
            Shape {
                authorization: Some(authorization),
                transaction: None,
                signature,
            } => {
                let signature = signature.ok_or_else(|| {
                    D::Error::custom(
                        "an EIP-3009 payload needs a `signature` beside its `authorization`",
                    )
                })?;
                Ok(SchemePayload::Eip3009(ExactEvmPayload {
                    signature,
                    authorization,
                }))
            }
            Shape {
                transaction: Some(transaction),
                authorization: None,
                ..
            } => Ok(SchemePayload::Solana(SvmPayload { transaction })),
            Shape {
                authorization: Some(_),
                transaction: Some(_),
                ..
            } => Err(D::Error::custom(
                "the payload carries both an EVM `authorization` and a Solana `transaction`",
            )),
            _ => Err(D::Error::custom(
                "unknown payload: expected an `authorization` (EIP-3009) or a `transaction` (Solana)",
            )),
        }
    }
}
