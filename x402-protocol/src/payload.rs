//! The `payload` object of a payment: what the client signed, in the shape of its scheme and
//! transfer method.
//!
//! The same object travels in v1 (`X-PAYMENT`) and v2 (`PAYMENT-SIGNATURE`) payments. Its kind
//! is told by its shape, as the reference facilitators do: an `authorization` is an EIP-3009
//! `transferWithAuthorization` (EVM), a `permit2Authorization` is a Permit2 transfer (`exact`
//! when its witness is `{to, validAfter}`, `upto` when it also names a `facilitator`), a
//! `transaction` is a partially signed Solana transaction.
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

use alloy_primitives::{Address, Bytes, U256};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};

use crate::address::ChainAddress;
use crate::exact::{Eip3009Authorization, ExactEvmPayload};
use crate::permit2::{
    ExactPermit2Payload, ExactWitness, Permit2Authorization, Permit2Payload, UptoPermit2Payload,
    UptoWitness,
};

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
    /// A Permit2 transfer to the x402 exact proxy and its signature (`exact` on EVM with
    /// `extra.assetTransferMethod: "permit2"`).
    Permit2Exact(ExactPermit2Payload),
    /// A Permit2 transfer of at most an amount to the x402 upto proxy (`upto` on EVM).
    Permit2Upto(UptoPermit2Payload),
    /// A partially signed Solana transaction (`exact` on Solana).
    Solana(SvmPayload),
}

impl SchemePayload {
    /// The payer the payload names, when it names one without decoding a transaction
    /// (unverified: the signature has not been checked).
    pub fn claimed_payer(&self) -> Option<ChainAddress> {
        match self {
            SchemePayload::Eip3009(p) => Some(ChainAddress::Evm(p.authorization.from)),
            SchemePayload::Permit2Exact(p) => Some(ChainAddress::Evm(p.permit2_authorization.from)),
            SchemePayload::Permit2Upto(p) => Some(ChainAddress::Evm(p.permit2_authorization.from)),
            SchemePayload::Solana(_) => None,
        }
    }

    /// The EIP-3009 payload, if this is one.
    pub fn as_eip3009(&self) -> Option<&ExactEvmPayload> {
        match self {
            SchemePayload::Eip3009(p) => Some(p),
            _ => None,
        }
    }

    /// The Permit2 `exact` payload, if this is one.
    pub fn as_permit2_exact(&self) -> Option<&ExactPermit2Payload> {
        match self {
            SchemePayload::Permit2Exact(p) => Some(p),
            _ => None,
        }
    }

    /// The `upto` payload, if this is one.
    pub fn as_permit2_upto(&self) -> Option<&UptoPermit2Payload> {
        match self {
            SchemePayload::Permit2Upto(p) => Some(p),
            _ => None,
        }
    }

    /// The Solana payload, if this is one.
    pub fn as_solana(&self) -> Option<&SvmPayload> {
        match self {
            SchemePayload::Solana(p) => Some(p),
            _ => None,
        }
    }

    /// A short name of the kind, for messages: `EIP-3009`, `Permit2`, `Permit2 upto`,
    /// `Solana transaction`.
    pub fn kind(&self) -> &'static str {
        match self {
            SchemePayload::Eip3009(_) => "EIP-3009",
            SchemePayload::Permit2Exact(_) => "Permit2",
            SchemePayload::Permit2Upto(_) => "Permit2 upto",
            SchemePayload::Solana(_) => "Solana transaction",
        }
    }
}

impl From<ExactPermit2Payload> for SchemePayload {
    fn from(payload: ExactPermit2Payload) -> Self {
        SchemePayload::Permit2Exact(payload)
    }
}

impl From<UptoPermit2Payload> for SchemePayload {
    fn from(payload: UptoPermit2Payload) -> Self {
        SchemePayload::Permit2Upto(payload)
    }
}

/// A Permit2 witness of either scheme, as read before the kind is known.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AnyWitness {
    #[serde(with = "crate::serde_util::checksummed")]
    to: Address,
    #[serde(default)]
    facilitator: Option<Address>,
    #[serde(with = "crate::serde_util::decimal_u256")]
    valid_after: U256,
}

fn permit2_payload(signature: Bytes, auth: Permit2Authorization<AnyWitness>) -> SchemePayload {
    let Permit2Authorization {
        from,
        permitted,
        spender,
        nonce,
        deadline,
        witness,
    } = auth;
    match witness.facilitator {
        Some(facilitator) => SchemePayload::Permit2Upto(Permit2Payload {
            signature,
            permit2_authorization: Permit2Authorization {
                from,
                permitted,
                spender,
                nonce,
                deadline,
                witness: UptoWitness {
                    to: witness.to,
                    facilitator,
                    valid_after: witness.valid_after,
                },
            },
        }),
        None => SchemePayload::Permit2Exact(Permit2Payload {
            signature,
            permit2_authorization: Permit2Authorization {
                from,
                permitted,
                spender,
                nonce,
                deadline,
                witness: ExactWitness {
                    to: witness.to,
                    valid_after: witness.valid_after,
                },
            },
        }),
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
            #[serde(default, rename = "permit2Authorization")]
            permit2_authorization: Option<Permit2Authorization<AnyWitness>>,
            #[serde(default)]
            transaction: Option<String>,
        }
        let shape = Shape::deserialize(deserializer)?;
        let kinds = usize::from(shape.authorization.is_some())
            + usize::from(shape.permit2_authorization.is_some())
            + usize::from(shape.transaction.is_some());
        if kinds > 1 {
            return Err(D::Error::custom(
                "the payload carries more than one of an EIP-3009 `authorization`, a `permit2Authorization` and a Solana `transaction`",
            ));
        }
        match shape {
            Shape {
                permit2_authorization: Some(auth),
                signature,
                ..
            } => {
                let signature = signature.ok_or_else(|| {
                    D::Error::custom(
                        "a Permit2 payload needs a `signature` beside its `permit2Authorization`",
                    )
                })?;
                Ok(permit2_payload(signature, auth))
            }
            Shape {
                authorization: Some(authorization),
                signature,
                ..
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
                ..
            } => Ok(SchemePayload::Solana(SvmPayload { transaction })),
            _ => Err(D::Error::custom(
                "unknown payload: expected an `authorization` (EIP-3009), a `permit2Authorization` (Permit2) or a `transaction` (Solana)",
            )),
        }
    }
}
