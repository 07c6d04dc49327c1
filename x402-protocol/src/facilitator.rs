//! Bodies of the facilitator HTTP API (`POST /verify`, `POST /settle`, `GET /supported`),
//! and the version-spanning payload and requirements types they carry.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use alloy_primitives::Bytes;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};

use crate::payload::SchemePayload;
use crate::serde_util::null_as_empty;
use crate::version::ProtocolVersion;
use crate::{v1, v2};

/// A payment of either generation, as a facilitator receives it.
// Both variants are a few hundred bytes; boxing one would only add an allocation per payment.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum PaymentPayload {
    /// A v1 `X-PAYMENT` payload.
    V1(v1::PaymentPayload),
    /// A v2 `PAYMENT-SIGNATURE` payload.
    V2(v2::PaymentPayload),
}

impl PaymentPayload {
    /// The protocol generation.
    pub fn version(&self) -> ProtocolVersion {
        match self {
            PaymentPayload::V1(_) => ProtocolVersion::V1,
            PaymentPayload::V2(_) => ProtocolVersion::V2,
        }
    }

    /// The scheme the client chose.
    pub fn scheme(&self) -> &str {
        match self {
            PaymentPayload::V1(p) => &p.scheme,
            PaymentPayload::V2(p) => &p.accepted.scheme,
        }
    }

    /// The network the client chose, as written on the wire.
    pub fn network(&self) -> &str {
        match self {
            PaymentPayload::V1(p) => &p.network,
            PaymentPayload::V2(p) => &p.accepted.network,
        }
    }

    /// What the client signed.
    pub fn payload(&self) -> &SchemePayload {
        match self {
            PaymentPayload::V1(p) => &p.payload,
            PaymentPayload::V2(p) => &p.payload,
        }
    }

    /// The client's `extensions` (v2 only; v1 payloads carry none).
    pub fn extensions(&self) -> Option<&serde_json::Value> {
        match self {
            PaymentPayload::V1(_) => None,
            PaymentPayload::V2(p) => p.extensions.as_ref(),
        }
    }
}

impl<'de> Deserialize<'de> for PaymentPayload {
    /// Reads `x402Version` first, then the matching generation, so errors name the right
    /// fields.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        let version = value.get("x402Version").and_then(serde_json::Value::as_u64);
        match version.and_then(ProtocolVersion::from_number) {
            Some(ProtocolVersion::V1) => serde_json::from_value(value).map(PaymentPayload::V1),
            Some(ProtocolVersion::V2) => serde_json::from_value(value).map(PaymentPayload::V2),
            None => {
                return Err(D::Error::custom(format!(
                    "unsupported x402Version {}",
                    version.map_or_else(|| "(missing)".to_owned(), |v| v.to_string())
                )));
            }
        }
        .map_err(D::Error::custom)
    }
}

/// Payment requirements of either generation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum PaymentRequirements {
    /// v1 requirements (`maxAmountRequired`, short network name).
    V1(v1::PaymentRequirements),
    /// v2 requirements (`amount`, CAIP-2 network id).
    V2(v2::PaymentRequirements),
}

impl PaymentRequirements {
    /// The protocol generation.
    pub fn version(&self) -> ProtocolVersion {
        match self {
            PaymentRequirements::V1(_) => ProtocolVersion::V1,
            PaymentRequirements::V2(_) => ProtocolVersion::V2,
        }
    }

    /// The scheme.
    pub fn scheme(&self) -> &str {
        match self {
            PaymentRequirements::V1(r) => &r.scheme,
            PaymentRequirements::V2(r) => &r.scheme,
        }
    }

    /// The network id as written on the wire.
    pub fn network(&self) -> &str {
        match self {
            PaymentRequirements::V1(r) => &r.network,
            PaymentRequirements::V2(r) => &r.network,
        }
    }

    /// The amount in atomic units.
    pub fn amount(&self) -> alloy_primitives::U256 {
        match self {
            PaymentRequirements::V1(r) => r.max_amount_required,
            PaymentRequirements::V2(r) => r.amount,
        }
    }

    /// The same requirement asking for `amount` atomic units instead (an `upto` settlement
    /// asks for the charge, not the maximum it was verified at).
    pub fn with_amount(mut self, amount: alloy_primitives::U256) -> Self {
        match &mut self {
            PaymentRequirements::V1(r) => r.max_amount_required = amount,
            PaymentRequirements::V2(r) => r.amount = amount,
        }
        self
    }

    /// The token contract, as written.
    pub fn asset(&self) -> &str {
        match self {
            PaymentRequirements::V1(r) => &r.asset,
            PaymentRequirements::V2(r) => &r.asset,
        }
    }

    /// The recipient, as written.
    pub fn pay_to(&self) -> &str {
        match self {
            PaymentRequirements::V1(r) => &r.pay_to,
            PaymentRequirements::V2(r) => &r.pay_to,
        }
    }

    /// `maxTimeoutSeconds`.
    pub fn max_timeout_seconds(&self) -> u64 {
        match self {
            PaymentRequirements::V1(r) => r.max_timeout_seconds,
            PaymentRequirements::V2(r) => r.max_timeout_seconds,
        }
    }

    /// Scheme-specific `extra` data.
    pub fn extra(&self) -> Option<&serde_json::Value> {
        match self {
            PaymentRequirements::V1(r) => r.extra.as_ref(),
            PaymentRequirements::V2(r) => r.extra.as_ref(),
        }
    }
}

impl<'de> Deserialize<'de> for PaymentRequirements {
    /// v1 requirements are recognised by `maxAmountRequired`, v2 by `amount`.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        if value.get("maxAmountRequired").is_some() {
            serde_json::from_value(value).map(PaymentRequirements::V1)
        } else {
            serde_json::from_value(value).map(PaymentRequirements::V2)
        }
        .map_err(D::Error::custom)
    }
}

/// Body of `POST /verify` and `POST /settle`; both endpoints take the same shape.
///
/// Its JSON is written once, when first asked for with [`json`](Self::json), and reused for
/// every later call (a payment goes to `/verify` and then `/settle`); clones made after that
/// share it. Build requests with [`new`](Self::new) and treat them as values: a field changed
/// after the JSON was written would not be sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FacilitatorRequest {
    /// The payload's `x402Version`.
    pub x402_version: u8,
    /// The client's payment, unchanged.
    pub payment_payload: PaymentPayload,
    /// The server's requirements entry the payment was matched to.
    pub payment_requirements: PaymentRequirements,
    #[serde(skip)]
    json: JsonOnce,
}

/// The JSON of a value, written at most once. Equal to any other (it is derived data), and
/// shown only as whether it was written.
#[derive(Clone, Default)]
struct JsonOnce(OnceLock<Bytes>);

impl PartialEq for JsonOnce {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for JsonOnce {}

impl std::fmt::Debug for JsonOnce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() {
            "written"
        } else {
            "not written"
        })
    }
}

/// Body of `POST /verify`.
pub type VerifyRequest = FacilitatorRequest;
/// Body of `POST /settle`.
pub type SettleRequest = FacilitatorRequest;

impl FacilitatorRequest {
    /// Pairs a payload with the requirements it was matched to.
    pub fn new(payment_payload: PaymentPayload, payment_requirements: PaymentRequirements) -> Self {
        FacilitatorRequest {
            x402_version: payment_payload.version().number(),
            payment_payload,
            payment_requirements,
            json: JsonOnce::default(),
        }
    }

    /// The same payment with the requirement asking for `amount` instead (what an `upto`
    /// settlement sends: the charge, not the maximum). A new request, whose JSON is written
    /// afresh.
    pub fn with_amount(&self, amount: alloy_primitives::U256) -> Self {
        FacilitatorRequest::new(
            self.payment_payload.clone(),
            self.payment_requirements.clone().with_amount(amount),
        )
    }

    /// The request as JSON, the body of `POST /verify` and `POST /settle`: written on the first
    /// call, then shared (a cheap reference-counted copy).
    ///
    /// ```
    /// use x402_protocol::facilitator::FacilitatorRequest;
    ///
    /// let requirements = serde_json::json!({
    ///     "scheme": "exact", "network": "eip155:84532", "amount": "10000",
    ///     "asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
    ///     "payTo": "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC", "maxTimeoutSeconds": 300,
    /// });
    /// let request: FacilitatorRequest = serde_json::from_value(serde_json::json!({
    ///     "x402Version": 2,
    ///     "paymentPayload": {
    ///         "x402Version": 2,
    ///         "accepted": requirements,
    ///         "payload": {"signature": "0x01", "authorization": {
    ///             "from": "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
    ///             "to": "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC", "value": "10000",
    ///             "validAfter": "0", "validBefore": "1800000000",
    ///             "nonce": "0x0101010101010101010101010101010101010101010101010101010101010101",
    ///         }},
    ///     },
    ///     "paymentRequirements": requirements,
    /// }))?;
    /// let body = request.json()?;
    /// assert_eq!(body, serde_json::to_vec(&request)?);
    /// assert_eq!(body.as_ptr(), request.clone().json()?.as_ptr()); // written once, shared
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    pub fn json(&self) -> Result<Bytes, serde_json::Error> {
        if let Some(json) = self.json.0.get() {
            return Ok(json.clone());
        }
        let json = Bytes::from(serde_json::to_vec(self)?);
        // Two threads may race to write it; both wrote the same bytes.
        Ok(self.json.0.get_or_init(|| json).clone())
    }
}

/// Answer of `POST /verify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyResponse {
    /// Whether the payment is valid for the requirements.
    pub is_valid: bool,
    /// Machine-readable reason when invalid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid_reason: Option<String>,
    /// Human-readable detail when invalid (v2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid_message: Option<String>,
    /// The payer; always present on the wire (`null` if unknown) because the Python v1 client
    /// requires the key.
    #[serde(default)]
    pub payer: Option<String>,
    /// Extension data (v2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<serde_json::Value>,
}

impl VerifyResponse {
    /// A positive answer.
    pub fn valid(payer: impl Into<String>) -> Self {
        VerifyResponse {
            is_valid: true,
            invalid_reason: None,
            invalid_message: None,
            payer: Some(payer.into()),
            extensions: None,
        }
    }

    /// A negative answer with a reason code and a human message.
    pub fn invalid(
        reason: impl Into<String>,
        message: impl Into<String>,
        payer: Option<String>,
    ) -> Self {
        VerifyResponse {
            is_valid: false,
            invalid_reason: Some(reason.into()),
            invalid_message: Some(message.into()),
            payer,
            extensions: None,
        }
    }
}

/// Answer of `POST /settle`, also the content of the `X-PAYMENT-RESPONSE` /
/// `PAYMENT-RESPONSE` headers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SettleResponse {
    /// Whether the transfer happened.
    pub success: bool,
    /// Machine-readable reason when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_reason: Option<String>,
    /// Human-readable detail when it failed (v2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// The payer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer: Option<String>,
    /// Transaction hash; `""` when settlement failed (the TypeScript client requires a string).
    #[serde(default, with = "null_as_empty")]
    pub transaction: String,
    /// Network id, echoed from the payload.
    #[serde(default, with = "null_as_empty")]
    pub network: String,
    /// Amount actually settled, in atomic units (v2, `upto` scheme).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<String>,
    /// Extension data (v2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<serde_json::Value>,
}

impl SettleResponse {
    /// A failed settlement with a reason code and a human message.
    pub fn failure(
        reason: impl Into<String>,
        message: impl Into<String>,
        network: impl Into<String>,
        payer: Option<String>,
    ) -> Self {
        SettleResponse {
            success: false,
            error_reason: Some(reason.into()),
            error_message: Some(message.into()),
            payer,
            transaction: String::new(),
            network: network.into(),
            amount: None,
            extensions: None,
        }
    }
}

/// One (version, scheme, network) a facilitator handles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SupportedKind {
    /// Protocol generation.
    pub x402_version: u8,
    /// Scheme.
    pub scheme: String,
    /// Network id in that generation's format.
    pub network: String,
    /// Scheme-specific data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<serde_json::Value>,
}

/// Answer of `GET /supported`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SupportedResponse {
    /// Everything the facilitator can verify and settle.
    pub kinds: Vec<SupportedKind>,
    /// Extension ids (v2).
    #[serde(default)]
    pub extensions: Vec<String>,
    /// Signer addresses by chain family. Implementations disagree on the key format
    /// (`eip155:*`, `eip155`, `eip155:8453`), so values are kept as sent.
    #[serde(default)]
    pub signers: BTreeMap<String, serde_json::Value>,
}

impl SupportedResponse {
    /// Whether `(version, scheme, network)` is listed.
    pub fn supports(&self, version: ProtocolVersion, scheme: &str, network: &str) -> bool {
        self.kinds.iter().any(|k| {
            k.x402_version == version.number() && k.scheme == scheme && k.network == network
        })
    }
}
