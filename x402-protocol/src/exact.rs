//! The payload of the `exact` scheme on EVM chains: an EIP-3009 authorization and its
//! signature. The same object travels in v1 and v2.

use alloy_primitives::{Address, B256, Bytes, U256};
use serde::{Deserialize, Serialize};

use crate::serde_util::{checksummed, decimal_u256};

/// The `exact` scheme's name.
pub const EXACT: &str = "exact";

/// `payload` of an `exact` EVM payment: the signed EIP-3009 `TransferWithAuthorization`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExactEvmPayload {
    /// The payer's EIP-712 signature (65 bytes `r‖s‖v` for ordinary accounts).
    pub signature: Bytes,
    /// The authorization that was signed.
    pub authorization: Eip3009Authorization,
}

/// The fields of EIP-3009 `TransferWithAuthorization`, in wire form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Eip3009Authorization {
    /// The payer.
    #[serde(with = "checksummed")]
    pub from: Address,
    /// The recipient; must equal the requirement's `payTo`.
    #[serde(with = "checksummed")]
    pub to: Address,
    /// Atomic amount; must equal the requirement's amount.
    #[serde(with = "decimal_u256")]
    pub value: U256,
    /// Unix time (seconds) from which the authorization is valid.
    #[serde(with = "decimal_u256")]
    pub valid_after: U256,
    /// Unix time (seconds) until which the authorization is valid.
    #[serde(with = "decimal_u256")]
    pub valid_before: U256,
    /// 32 random bytes; the token contract records each `(from, nonce)` once.
    pub nonce: B256,
}
