//! Reading a 402: the v2 `PAYMENT-REQUIRED` header or the v1 JSON body, entry by entry.
//!
//! Every `accepts` entry is kept as the server sent it (raw JSON) beside its parsed form, so a
//! v2 payment can echo the chosen entry verbatim, unknown fields included, and one malformed
//! entry does not hide the others.

use std::fmt;

use serde_json::Value;
use x402_protocol::amount::format_units;
use x402_protocol::facilitator::PaymentRequirements;
use x402_protocol::{NetworkRegistry, ProtocolVersion, codec, headers, v1, v2};

/// The largest `PAYMENT-REQUIRED` header value read (a 402 listing many networks is a few
/// KiB; this leaves room for extensions).
pub const MAX_CHALLENGE_HEADER_BYTES: usize = 64 * 1024;

/// One way to pay that a 402 offers.
#[derive(Debug, Clone, PartialEq)]
pub struct Offered {
    /// The entry exactly as the server sent it.
    pub raw: Value,
    /// The entry parsed for this protocol generation, or why it could not be.
    pub requirements: Result<PaymentRequirements, String>,
}

impl Offered {
    /// One line for people: `0.01 USDC on base-sepolia (eip155:84532) to 0x3C44…, exact`.
    pub fn describe(&self, registry: &NetworkRegistry) -> String {
        match &self.requirements {
            Ok(r) => describe_requirements(r, registry),
            Err(e) => format!("an unreadable entry ({e}): {}", self.raw),
        }
    }
}

/// The amount of a requirement for people: `0.01 USDC` when the token is known to `registry`,
/// else `10000 atomic units of 0x…`.
pub fn describe_amount(requirements: &PaymentRequirements, registry: &NetworkRegistry) -> String {
    let known = registry.network(requirements.network()).ok().and_then(|n| {
        requirements
            .asset()
            .parse()
            .ok()
            .and_then(|a: x402_protocol::ChainAddress| registry.asset(n, a))
    });
    match known {
        Some(asset) => format!(
            "{} {}",
            format_units(requirements.amount(), asset.decimals),
            asset.symbol
        ),
        None => format!(
            "{} atomic units of {}",
            requirements.amount(),
            requirements.asset()
        ),
    }
}

/// The network of a requirement for people: `base-sepolia (eip155:84532)` when known.
pub fn describe_network(id: &str, registry: &NetworkRegistry) -> String {
    match registry.network(id) {
        Ok(n) => format!("{} ({})", n.name, n.caip2),
        Err(_) => format!("{id} (unknown network)"),
    }
}

fn describe_requirements(r: &PaymentRequirements, registry: &NetworkRegistry) -> String {
    format!(
        "{} on {} to {}, scheme {}",
        describe_amount(r, registry),
        describe_network(r.network(), registry),
        r.pay_to(),
        r.scheme()
    )
}

/// A parsed 402 challenge.
#[derive(Debug, Clone, PartialEq)]
pub struct Challenge {
    /// The generation the server speaks here: v2 when the `PAYMENT-REQUIRED` header is present,
    /// v1 when only the body describes the payment.
    pub version: ProtocolVersion,
    /// The server's `error` text (why payment is required, or why a payment was refused).
    pub error: Option<String>,
    /// A human message some servers add beside `error` (this workspace's servers do).
    pub message: Option<String>,
    /// v2 `resource`, as sent.
    pub resource: Option<Value>,
    /// v2 `extensions`, as sent.
    pub extensions: Option<Value>,
    /// The payer a rejected payment came from, when the server names it (v1 `payer`).
    pub payer: Option<String>,
    /// The ways to pay.
    pub accepts: Vec<Offered>,
}

/// Why a 402 could not be read as an x402 challenge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChallengeError {
    /// Neither a `PAYMENT-REQUIRED` header nor a v1 JSON body.
    #[error(
        "the 402 carries no x402 challenge (no PAYMENT-REQUIRED header and no JSON body with x402Version 1)"
    )]
    NotX402,
    /// The challenge is there but malformed.
    #[error("the x402 challenge is malformed: {0}")]
    Malformed(String),
}

impl Challenge {
    /// Reads a 402 from its `PAYMENT-REQUIRED` header value (if any) and its body.
    ///
    /// The v2 header wins; the body is read only when there is no usable header and it says
    /// `x402Version: 1`.
    ///
    /// ```
    /// use x402_client::Challenge;
    ///
    /// let body = br#"{"x402Version":1,"error":"X-PAYMENT header is required","accepts":[{
    ///   "scheme":"exact","network":"base-sepolia","maxAmountRequired":"10000",
    ///   "resource":"http://api.test/weather","description":"","mimeType":"",
    ///   "payTo":"0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC","maxTimeoutSeconds":60,
    ///   "asset":"0x036CbD53842c5426634e7929541eC2318f3dCF7e"}]}"#;
    /// let challenge = Challenge::parse(None, body)?;
    /// assert_eq!(challenge.version, x402_protocol::ProtocolVersion::V1);
    /// assert_eq!(challenge.accepts.len(), 1);
    /// # Ok::<(), x402_client::ChallengeError>(())
    /// ```
    pub fn parse(header: Option<&str>, body: &[u8]) -> Result<Self, ChallengeError> {
        let header_result = header.map(Self::from_header);
        match header_result {
            Some(Ok(challenge)) => Ok(challenge),
            Some(Err(header_error)) => {
                // A broken header next to a readable v1 body: the body still says how to pay.
                Self::from_v1_body(body).map_err(|_| header_error)
            }
            None => Self::from_v1_body(body),
        }
    }

    /// Reads a v2 `PAYMENT-REQUIRED` header value.
    pub fn from_header(value: &str) -> Result<Self, ChallengeError> {
        let json: Value = codec::decode(value, MAX_CHALLENGE_HEADER_BYTES).map_err(|e| {
            ChallengeError::Malformed(format!(
                "{}: {e}",
                headers::PAYMENT_REQUIRED.to_ascii_uppercase()
            ))
        })?;
        Self::from_json(&json)
    }

    /// Reads a JSON 402 object of either generation (a v1 body or a decoded v2 header).
    pub fn from_json(json: &Value) -> Result<Self, ChallengeError> {
        let version = json
            .get("x402Version")
            .and_then(Value::as_u64)
            .ok_or_else(|| ChallengeError::Malformed("x402Version is missing".into()))?;
        let version = ProtocolVersion::from_number(version).ok_or_else(|| {
            ChallengeError::Malformed(format!(
                "x402Version {version} is not one this client speaks"
            ))
        })?;
        let accepts = json
            .get("accepts")
            .and_then(Value::as_array)
            .ok_or_else(|| ChallengeError::Malformed("accepts is missing or not a list".into()))?;
        let accepts = accepts
            .iter()
            .map(|raw| Offered {
                raw: raw.clone(),
                requirements: parse_entry(version, raw),
            })
            .collect();
        let text = |key: &str| json.get(key).and_then(Value::as_str).map(str::to_owned);
        let object = |key: &str| json.get(key).filter(|v| !v.is_null()).cloned();
        Ok(Challenge {
            version,
            error: text("error").filter(|e| !e.is_empty()),
            message: text("message").filter(|m| !m.is_empty()),
            resource: object("resource").filter(|_| version == ProtocolVersion::V2),
            extensions: object("extensions").filter(|_| version == ProtocolVersion::V2),
            payer: text("payer"),
            accepts,
        })
    }

    fn from_v1_body(body: &[u8]) -> Result<Self, ChallengeError> {
        let json: Value = serde_json::from_slice(body).map_err(|_| ChallengeError::NotX402)?;
        if json.get("x402Version").and_then(Value::as_u64) != Some(1) {
            return Err(ChallengeError::NotX402);
        }
        Self::from_json(&json)
    }

    /// The resource URL the server names: v2 `resource.url`, else the first v1 entry's
    /// `resource`.
    pub fn resource_url(&self) -> Option<&str> {
        if let Some(url) = self
            .resource
            .as_ref()
            .and_then(|r| r.get("url"))
            .and_then(Value::as_str)
        {
            return Some(url);
        }
        self.accepts.iter().find_map(|o| match &o.requirements {
            Ok(PaymentRequirements::V1(r)) => Some(r.resource.as_str()),
            _ => None,
        })
    }

    /// The v2 `resource`, typed, when present and well formed.
    pub fn resource_info(&self) -> Option<v2::ResourceInfo> {
        self.resource
            .as_ref()
            .and_then(|r| serde_json::from_value(r.clone()).ok())
    }

    /// What the server accepts, one line per entry, for error messages.
    pub fn describe_accepts(&self, registry: &NetworkRegistry) -> String {
        if self.accepts.is_empty() {
            return "  (the server lists no way to pay)".to_owned();
        }
        self.accepts
            .iter()
            .map(|o| format!("  - {}", o.describe(registry)))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl fmt::Display for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "x402 {} challenge with {} way(s) to pay",
            self.version,
            self.accepts.len()
        )?;
        if let Some(error) = &self.error {
            write!(f, " (error: {error})")?;
        }
        Ok(())
    }
}

fn parse_entry(version: ProtocolVersion, raw: &Value) -> Result<PaymentRequirements, String> {
    let parsed = match version {
        ProtocolVersion::V1 => serde_json::from_value::<v1::PaymentRequirements>(raw.clone())
            .map(PaymentRequirements::V1),
        ProtocolVersion::V2 => serde_json::from_value::<v2::PaymentRequirements>(raw.clone())
            .map(PaymentRequirements::V2),
    };
    parsed.map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2_header() -> String {
        codec::encode(&serde_json::json!({
            "x402Version": 2,
            "error": "payment_required",
            "resource": {"url": "http://api.test/x", "description": "", "mimeType": ""},
            "accepts": [
                {"scheme": "exact", "network": "eip155:84532", "amount": "10000",
                 "asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
                 "payTo": "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
                 "maxTimeoutSeconds": 300, "extra": {"name": "USDC", "version": "2"},
                 "futureField": {"kept": true}},
                {"scheme": "exact", "network": "eip155:8453"}
            ],
            "extensions": {"bazaar": {"info": {}}}
        }))
    }

    #[test]
    fn the_v2_header_wins_and_keeps_entries_verbatim() {
        let body = br#"{"x402Version":1,"error":"x","accepts":[]}"#;
        let challenge = Challenge::parse(Some(&v2_header()), body).unwrap();
        assert_eq!(challenge.version, ProtocolVersion::V2);
        assert_eq!(challenge.error.as_deref(), Some("payment_required"));
        assert_eq!(challenge.resource_url(), Some("http://api.test/x"));
        assert!(challenge.extensions.is_some());
        assert_eq!(challenge.accepts.len(), 2);
        assert_eq!(challenge.accepts[0].raw["futureField"]["kept"], true);
        assert!(challenge.accepts[0].requirements.is_ok());
        // The incomplete entry is reported, not fatal.
        let err = challenge.accepts[1].requirements.as_ref().unwrap_err();
        assert!(err.contains("amount"), "{err}");
        let registry = NetworkRegistry::builtin();
        let text = challenge.describe_accepts(&registry);
        assert!(
            text.contains("0.01 USDC on base-sepolia (eip155:84532)"),
            "{text}"
        );
        assert!(text.contains("unreadable entry"), "{text}");
    }

    #[test]
    fn v1_bodies_are_read_only_without_a_header() {
        let body = br#"{"x402Version":1,"error":"X-PAYMENT header is required","accepts":[{
          "scheme":"exact","network":"base","maxAmountRequired":"10000",
          "resource":"http://api.test/w","description":"","mimeType":"",
          "payTo":"0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC","maxTimeoutSeconds":60,
          "asset":"0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"}],"payer":"0xabc","message":"m"}"#;
        let challenge = Challenge::parse(None, body).unwrap();
        assert_eq!(challenge.version, ProtocolVersion::V1);
        assert_eq!(challenge.resource_url(), Some("http://api.test/w"));
        assert_eq!(challenge.payer.as_deref(), Some("0xabc"));
        assert_eq!(challenge.message.as_deref(), Some("m"));
        // A broken header falls back to a readable body.
        let fallback = Challenge::parse(Some("%%%"), body).unwrap();
        assert_eq!(fallback.version, ProtocolVersion::V1);
    }

    #[test]
    fn other_402s_are_not_x402() {
        assert_eq!(Challenge::parse(None, b"{}"), Err(ChallengeError::NotX402));
        assert_eq!(
            Challenge::parse(None, b"<html>pay</html>"),
            Err(ChallengeError::NotX402)
        );
        assert_eq!(
            Challenge::parse(None, br#"{"x402Version":2,"accepts":[]}"#),
            Err(ChallengeError::NotX402),
            "v2 is only read from the header"
        );
        assert!(matches!(
            Challenge::parse(Some("%%%"), b"{}"),
            Err(ChallengeError::Malformed(_))
        ));
    }
}
