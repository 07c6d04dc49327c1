//! Protocol v2 wire types: requirements in the `PAYMENT-REQUIRED` header,
//! `PAYMENT-SIGNATURE` request header, CAIP-2 network ids, `amount`, and an `accepted` echo.

use alloy_primitives::U256;
use serde::{Deserialize, Serialize};

use crate::payload::SchemePayload;
use crate::serde_util::{decimal_u256, null_as_empty};
use crate::version::V2;

/// The paid resource, described once per 402 (v1 repeated it in every requirement).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceInfo {
    /// Absolute URL of the resource.
    pub url: String,
    /// What is being paid for; `""` when not configured, as the reference servers send.
    #[serde(default, with = "null_as_empty")]
    pub description: String,
    /// MIME type of the resource; `""` when not configured.
    #[serde(default, with = "null_as_empty")]
    pub mime_type: String,
    /// Bazaar service metadata (June 2026 spec): the service's name, ≤ 32 printable ASCII
    /// characters. Clients echo it in the payment, where facilitators catalogue it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    /// Bazaar service metadata: up to five topical tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// Bazaar service metadata: an absolute `http(s)` icon URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon_url: Option<String>,
}

/// One way to pay, as listed in a v2 `PaymentRequired.accepts`.
///
/// Clients echo the chosen entry in [`PaymentPayload::accepted`] without modification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequirements {
    /// Payment scheme, `exact`.
    pub scheme: String,
    /// CAIP-2 network id such as `eip155:8453`.
    pub network: String,
    /// Amount in the asset's atomic units.
    #[serde(with = "decimal_u256")]
    pub amount: U256,
    /// Token contract address.
    pub asset: String,
    /// Recipient address.
    pub pay_to: String,
    /// How long the server waits for the payment to complete, in seconds.
    pub max_timeout_seconds: u64,
    /// Scheme-specific data; for exact EVM the token's EIP-712 `{name, version}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<serde_json::Value>,
}

/// The v2 402 description, sent base64-encoded in `PAYMENT-REQUIRED`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequired {
    /// Always 2.
    pub x402_version: V2,
    /// Why payment is required (a reason code for rejected payments).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The paid resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<ResourceInfo>,
    /// Accepted ways to pay.
    pub accepts: Vec<PaymentRequirements>,
    /// Protocol extensions, keyed by extension id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<serde_json::Value>,
}

/// The v2 payment, sent base64-encoded in `PAYMENT-SIGNATURE`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentPayload {
    /// Always 2.
    pub x402_version: V2,
    /// The resource, copied from the 402.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<ResourceInfo>,
    /// The chosen requirements entry, copied verbatim.
    pub accepted: PaymentRequirements,
    /// What the client signed: an EIP-3009 authorization, a Solana transaction, ….
    pub payload: SchemePayload,
    /// Extensions echoed from the 402 (and possibly extended by the client).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<serde_json::Value>,
}
