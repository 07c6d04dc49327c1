//! Protocol v1 wire types: requirements in the 402 JSON body, `X-PAYMENT` request header,
//! short network names, `maxAmountRequired`.

use alloy_primitives::U256;
use serde::{Deserialize, Serialize};

use crate::payload::SchemePayload;
use crate::serde_util::{decimal_u256, null_as_empty};
use crate::version::V1;

/// One way to pay, as listed in a v1 402 body's `accepts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequirements {
    /// Payment scheme, `exact`.
    pub scheme: String,
    /// Short network name such as `base`.
    pub network: String,
    /// Amount in the asset's atomic units.
    #[serde(with = "decimal_u256")]
    pub max_amount_required: U256,
    /// Absolute URL of the paid resource.
    pub resource: String,
    /// What is being paid for (may be empty; reference clients require the key).
    #[serde(default, with = "null_as_empty")]
    pub description: String,
    /// MIME type of the resource (may be empty; legacy clients require the key).
    #[serde(default, with = "null_as_empty")]
    pub mime_type: String,
    /// Response schema for discovery; omitted when absent because the legacy TypeScript client
    /// rejects `null` here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<serde_json::Value>,
    /// Recipient address.
    pub pay_to: String,
    /// How long the server waits for the payment to complete, in seconds.
    pub max_timeout_seconds: u64,
    /// Token contract address.
    pub asset: String,
    /// Scheme-specific data; for exact EVM the token's EIP-712 `{name, version}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<serde_json::Value>,
}

/// The v1 402 response body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequired {
    /// Always 1.
    pub x402_version: V1,
    /// Why payment is required (a reason code for rejected payments). Required by the Python
    /// v1 client, so always sent.
    #[serde(default, with = "null_as_empty")]
    pub error: String,
    /// Accepted ways to pay.
    pub accepts: Vec<PaymentRequirements>,
    /// The payer, when a payment was received and rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer: Option<String>,
}

/// The v1 payment, sent base64-encoded in `X-PAYMENT`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentPayload {
    /// Always 1.
    pub x402_version: V1,
    /// Copied from the chosen requirements entry.
    pub scheme: String,
    /// Copied from the chosen requirements entry.
    pub network: String,
    /// What the client signed: an EIP-3009 authorization, a Solana transaction, ….
    pub payload: SchemePayload,
}
