//! Sign-in-with-x (SIWX): a wallet that paid before proves it controls the paying address,
//! so a server can restore what it bought without a new payment.
//!
//! The extension (key `sign-in-with-x`, x402 v2) runs between resource server and client:
//!
//! 1. **Declare.** Each 402 carries `extensions["sign-in-with-x"]` = [`SiwxDeclaration`]: a
//!    fresh challenge ([`SiwxInfo`]: domain, URI, nonce, issue time, …), the chains a wallet
//!    may sign for ([`SupportedChain`], derived from the route's networks) and a JSON Schema.
//!    [`declare`] builds it.
//! 2. **Sign.** The client builds the CAIP-122 text ([`message`]): EIP-4361 "Sign-In with
//!    Ethereum" for `eip155` chains, its Solana twin (SIWS) for `solana` chains. It signs it
//!    (EIP-191 `personal_sign`, or ed25519) and retries with the header `SIGN-IN-WITH-X` =
//!    base64 JSON of [`SiwxPayload`]. [`sign_evm`] (and `sign_solana`, feature `siws`) do
//!    this.
//! 3. **Verify.** The server parses the header ([`parse_header`]), checks the message against
//!    what it expects ([`check_message`]: domain, URI origin, issue time, expiry, not-before,
//!    chain) and the signature ([`verify_signature`]: EOA recovery or ed25519, offline).
//!    Smart-contract wallets (EIP-1271/6492) need a chain; the runtime asks a verifier for
//!    those. Nonce single use is the runtime's too (it needs a store).
//!
//! Every refusal is a [`SiwxError`] with its own reason code ([`reasons`]).
//!
//! The message text is byte-identical to what the official TypeScript client
//! (`@x402/extensions` 2.27, which uses `@signinwithethereum/siwe`) signs; the tests check it
//! against that client's recorded headers.
//!
//! ```
//! use std::time::Duration;
//! use x402_protocol::eip3009::LocalSigner;
//! use x402_protocol::siwx::{self, DeclareOptions, Expectations};
//!
//! let now_ms = 1_796_050_053_000;
//! // Server: the 402 declaration for a route that accepts USDC on Base.
//! let declaration = siwx::declare(
//!     "https://api.example.com/reports/7",
//!     &["eip155:8453"],
//!     &DeclareOptions::default(),
//!     siwx::random_nonce(),
//!     now_ms,
//! )?;
//! assert_eq!(declaration.info.domain, "api.example.com");
//!
//! // Client: sign in with the wallet that paid.
//! let wallet = LocalSigner::random();
//! let chain = &declaration.supported_chains[0];
//! let header = siwx::encode_header(&siwx::sign_evm(&declaration.info, chain, &wallet)?);
//!
//! // Server: check the header it received.
//! let payload = siwx::parse_header(&header)?;
//! let expected = Expectations::for_resource("https://api.example.com/reports/7")?;
//! siwx::check_message(&payload, &expected, now_ms + 2_000)?;
//! let signer = siwx::verify_signature(&payload)?;
//! assert_eq!(signer.to_string(), wallet.address().to_checksum(None));
//! # Ok::<(), x402_protocol::siwx::SiwxError>(())
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::codec;

mod check;
mod message;
mod origin;
mod sign;

pub use check::{
    Expectations, SiwxError, SiwxSigner, check_message, evm_signing_hash, reasons, verify_signature,
};
/// The ed25519 crate Solana sign-ins are made with (feature `siws`), for building a
/// [`SigningKey`](ed25519_dalek::SigningKey) to give to `sign_solana`.
#[cfg(feature = "siws")]
pub use ed25519_dalek;
pub use message::message;
pub use origin::Origin;
pub use sign::sign_evm;
#[cfg(feature = "siws")]
pub use sign::sign_solana;

/// The extension's key in `PaymentRequired.extensions`.
pub const EXTENSION_KEY: &str = "sign-in-with-x";

/// The request header carrying a signed sign-in (header names are case-insensitive; the
/// official client sends it lower-case).
pub const HEADER: &str = "SIGN-IN-WITH-X";

/// How old a sign-in's `issuedAt` may be, unless configured otherwise (the reference
/// servers' default).
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(5 * 60);

/// How far in the future `issuedAt` / `notBefore` may lie, to absorb clocks of replicas and
/// clocks that count whole seconds.
pub const DEFAULT_CLOCK_SKEW: Duration = Duration::from_secs(5);

/// Upper bound on an encoded `SIGN-IN-WITH-X` header value.
pub const MAX_HEADER_BYTES: usize = codec::DEFAULT_MAX_HEADER_BYTES;

/// The CAIP-122 version this implementation speaks.
pub const VERSION: &str = "1";

/// What kind of signature a chain's wallets make.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignatureType {
    /// EVM `personal_sign` (EIP-191); smart wallets via EIP-1271/6492.
    Eip191,
    /// Solana ed25519.
    Ed25519,
}

impl SignatureType {
    /// The signature type of a CAIP-2 namespace: `eip155` → EIP-191, `solana` → ed25519.
    pub fn for_chain(chain_id: &str) -> Option<SignatureType> {
        match chain_id.split_once(':')?.0 {
            "eip155" => Some(SignatureType::Eip191),
            "solana" => Some(SignatureType::Ed25519),
            _ => None,
        }
    }
}

/// A hint from the client on how its signature should be checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignatureScheme {
    /// An ordinary EVM account's `personal_sign`.
    Eip191,
    /// A deployed smart-contract wallet (`isValidSignature`).
    Eip1271,
    /// A smart-contract wallet that may not be deployed yet (ERC-6492 wrapper).
    Eip6492,
    /// Sign-In With Solana.
    Siws,
}

/// One chain a wallet may sign in for, as listed in the declaration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SupportedChain {
    /// CAIP-2 chain id (`eip155:8453`, `solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1`).
    pub chain_id: String,
    /// The signature its wallets make.
    #[serde(rename = "type")]
    pub signature_type: SignatureType,
    /// Optional hint on how signatures are checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_scheme: Option<SignatureScheme>,
}

/// The server's challenge: the message fields a client signs, fresh in every 402.
///
/// Fields are in the order the reference server writes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SiwxInfo {
    /// `host[:port]` of the resource (the server's origin authority).
    pub domain: String,
    /// The resource URL.
    pub uri: String,
    /// CAIP-122 version, `"1"`.
    pub version: String,
    /// A single-use random value (16 random bytes, hex).
    pub nonce: String,
    /// When the challenge was made (RFC 3339, milliseconds, UTC).
    pub issued_at: String,
    /// Resources the sign-in is about (`[uri]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Vec<String>>,
    /// When the challenge stops being accepted, if it has a fixed end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_time: Option<String>,
    /// Human-readable text shown by the wallet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statement: Option<String>,
    /// When the challenge starts being accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<String>,
    /// An application request id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// `PaymentRequired.extensions["sign-in-with-x"]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SiwxDeclaration {
    /// The challenge.
    pub info: SiwxInfo,
    /// Chains a wallet may sign in for.
    pub supported_chains: Vec<SupportedChain>,
    /// JSON Schema (2020-12) of the signed header ([`schema`]).
    pub schema: serde_json::Value,
}

/// The signed sign-in a client sends, base64 JSON in the `SIGN-IN-WITH-X` header.
///
/// Fields are in the order the reference client writes them; unknown fields are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SiwxPayload {
    /// `host[:port]` the client signed in to.
    pub domain: String,
    /// The signing wallet: `0x` EVM address or base58 Solana public key.
    pub address: String,
    /// Text shown by the wallet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statement: Option<String>,
    /// The resource URL.
    pub uri: String,
    /// CAIP-122 version.
    pub version: String,
    /// CAIP-2 chain id the wallet signed for.
    pub chain_id: String,
    /// The signature type.
    #[serde(rename = "type")]
    pub signature_type: SignatureType,
    /// The server's nonce.
    pub nonce: String,
    /// The server's issue time.
    pub issued_at: String,
    /// Expiry, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_time: Option<String>,
    /// Start of validity, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<String>,
    /// Application request id, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Resources, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Vec<String>>,
    /// How to check the signature, if the client says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_scheme: Option<SignatureScheme>,
    /// EVM: `0x` hex; Solana: base58 of the 64-byte ed25519 signature.
    pub signature: String,
}

/// Decodes a `SIGN-IN-WITH-X` header value (standard base64 of JSON).
///
/// Refuses values over [`MAX_HEADER_BYTES`], bad base64, bad JSON and missing required
/// fields, all with reason `invalid_siwx_header`.
pub fn parse_header(value: &str) -> Result<SiwxPayload, SiwxError> {
    codec::decode(value, MAX_HEADER_BYTES).map_err(|e| SiwxError::Header(e.to_string()))
}

/// Encodes a signed sign-in as a `SIGN-IN-WITH-X` header value.
pub fn encode_header(payload: &SiwxPayload) -> String {
    codec::encode(payload)
}

/// How the server's declaration looks beyond the per-request fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeclareOptions {
    /// Text the wallet shows (must be one line).
    pub statement: Option<String>,
    /// Give each challenge an `expirationTime` this far after its issue time. Without it, a
    /// challenge is accepted for the verifier's maximum age only.
    pub expiration: Option<Duration>,
    /// Offer these CAIP-2 chains instead of the route's networks.
    pub networks: Option<Vec<String>>,
}

/// Builds the 402 declaration for one request: `domain` and `uri` from `resource_url`,
/// `nonce` as given (use [`random_nonce`]), `issuedAt` = `now_ms`, `resources` = `[uri]`,
/// and one [`SupportedChain`] per distinct network of the route (`route_networks`, CAIP-2 ids
/// or built-in v1 names) that wallets can sign for: `eip155:*`, and `solana:*` when built with
/// the `siws` feature.
///
/// Fails with `invalid_siwx_uri_mismatch` when `resource_url` is not an absolute `http(s)`
/// URL and with `invalid_siwx_message` when the statement has a line break.
pub fn declare<N: AsRef<str>>(
    resource_url: &str,
    route_networks: &[N],
    options: &DeclareOptions,
    nonce: String,
    now_ms: u64,
) -> Result<SiwxDeclaration, SiwxError> {
    let (origin, rest) = Origin::split(resource_url).ok_or_else(|| SiwxError::UriMismatch {
        expected: "an absolute http(s) URL".into(),
        found: resource_url.to_owned(),
    })?;
    // The URI is the resource without its fragment; an empty path is `/`, as URL parsers
    // normalise it.
    let rest = rest.split('#').next().unwrap_or("");
    let path = if rest.starts_with('/') {
        rest.to_owned()
    } else {
        format!("/{rest}")
    };
    declare_with(origin, &path, route_networks, options, nonce, now_ms)
}

fn declare_with<N: AsRef<str>>(
    origin: Origin,
    path: &str,
    route_networks: &[N],
    options: &DeclareOptions,
    nonce: String,
    now_ms: u64,
) -> Result<SiwxDeclaration, SiwxError> {
    if let Some(statement) = &options.statement {
        check::one_line("statement", statement)?;
    }
    let uri = format!("{origin}{path}");
    let expiration_time = options.expiration.map(|d| {
        let millis = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        format_timestamp(now_ms.saturating_add(millis))
    });
    let networks: Vec<&str> = match &options.networks {
        Some(networks) => networks.iter().map(String::as_str).collect(),
        None => route_networks.iter().map(AsRef::as_ref).collect(),
    };
    Ok(SiwxDeclaration {
        info: SiwxInfo {
            domain: origin.authority(),
            uri: uri.clone(),
            version: VERSION.to_owned(),
            nonce,
            issued_at: format_timestamp(now_ms),
            resources: Some(vec![uri]),
            expiration_time,
            statement: options.statement.clone(),
            not_before: None,
            request_id: None,
        },
        supported_chains: supported_chains(&networks),
        schema: schema(),
    })
}

/// The chains wallets can sign in for, one per distinct signable network, in order.
///
/// Built-in v1 names (`base`) become their CAIP-2 ids; networks outside `eip155` (and
/// `solana`, with the `siws` feature) are left out.
pub fn supported_chains(networks: &[&str]) -> Vec<SupportedChain> {
    let mut chains: Vec<SupportedChain> = Vec::new();
    for network in networks {
        let caip2 = match crate::network::builtin_network(network) {
            Some(info) => info.caip2.to_string(),
            None => (*network).to_owned(),
        };
        let Some(signature_type) = SignatureType::for_chain(&caip2) else {
            continue;
        };
        if check::chain_reference(&caip2).is_err() {
            continue;
        }
        if signature_type == SignatureType::Ed25519 && !cfg!(feature = "siws") {
            continue;
        }
        if chains.iter().any(|c| c.chain_id == caip2) {
            continue;
        }
        chains.push(SupportedChain {
            chain_id: caip2,
            signature_type,
            signature_scheme: None,
        });
    }
    chains
}

/// 16 random bytes as 32 lower-case hex digits: a fresh challenge nonce.
pub fn random_nonce() -> String {
    let mut bytes = [0u8; 16];
    // The OS generator failing means the platform cannot make nonces safely at all.
    #[allow(clippy::expect_used)]
    getrandom::fill(&mut bytes).expect("the operating system's random number generator failed");
    alloy_primitives::hex::encode(bytes)
}

/// Unix milliseconds as RFC 3339 UTC with exactly three fractional digits
/// (`2026-11-30T14:47:33.926Z`), as JavaScript's `Date.toISOString` writes it.
///
/// ```
/// assert_eq!(
///     x402_protocol::siwx::format_timestamp(1_796_050_053_926),
///     "2026-11-30T14:47:33.926Z"
/// );
/// ```
pub fn format_timestamp(unix_ms: u64) -> String {
    let nanos = i128::from(unix_ms) * 1_000_000;
    match time::OffsetDateTime::from_unix_timestamp_nanos(nanos) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            t.millisecond()
        ),
        // Only reachable beyond the year 9999; an unparseable time is refused by verifiers.
        Err(_) => "invalid".to_owned(),
    }
}

/// Parses an RFC 3339 timestamp (any offset) to unix milliseconds; `None` when it is not one.
///
/// ```
/// use x402_protocol::siwx::parse_timestamp;
/// assert_eq!(parse_timestamp("2026-11-30T14:47:33.926Z"), Some(1_796_050_053_926));
/// assert_eq!(parse_timestamp("2026-11-30T16:47:33.926+02:00"), Some(1_796_050_053_926));
/// assert_eq!(parse_timestamp("30 Nov 2026"), None);
/// ```
pub fn parse_timestamp(value: &str) -> Option<i64> {
    let t =
        time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos().div_euclid(1_000_000)).ok()
}

/// The JSON Schema (2020-12) of the signed header, as the reference server declares it.
pub fn schema() -> serde_json::Value {
    let string = || serde_json::json!({"type": "string"});
    let date_time = || serde_json::json!({"type": "string", "format": "date-time"});
    serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "domain": string(),
            "address": string(),
            "statement": string(),
            "uri": {"type": "string", "format": "uri"},
            "version": string(),
            "chainId": string(),
            "type": string(),
            "nonce": string(),
            "issuedAt": date_time(),
            "expirationTime": date_time(),
            "notBefore": date_time(),
            "requestId": string(),
            "resources": {"type": "array", "items": {"type": "string", "format": "uri"}},
            "signature": string(),
        },
        "required": [
            "domain", "address", "uri", "version", "chainId", "type", "nonce", "issuedAt",
            "signature",
        ],
    })
}
