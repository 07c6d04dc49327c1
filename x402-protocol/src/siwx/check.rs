//! The server's checks of a signed sign-in: message fields, then signature.

use std::fmt;
use std::time::Duration;

use alloy_primitives::{Address, B256};

use super::{
    DEFAULT_CLOCK_SKEW, DEFAULT_MAX_AGE, Origin, SignatureType, SiwxPayload, VERSION, message,
    parse_timestamp,
};
use crate::eip3009::RecoveryBackend;
use crate::reason::Reason;

/// The reason codes of sign-in refusals. Where the reference implementation names a
/// condition, the same code is used.
pub mod reasons {
    /// The header is not base64 JSON of a sign-in with every required field.
    pub const HEADER: &str = "invalid_siwx_header";
    /// A field cannot be part of a sign-in message (line breaks, a short nonce, version ≠ 1…).
    pub const MESSAGE: &str = "invalid_siwx_message";
    /// The address is not an address of the chain's kind.
    pub const ADDRESS: &str = "invalid_siwx_address";
    /// The chain is not one this server accepts sign-ins for.
    pub const UNSUPPORTED_CHAIN: &str = "invalid_siwx_unsupported_chain";
    /// The CAIP-2 chain id is malformed.
    pub const CHAIN_ID: &str = "invalid_siwx_chain_id";
    /// The signature type does not belong to the chain (`ed25519` on `eip155`, …).
    pub const TYPE_MISMATCH: &str = "invalid_siwx_type_mismatch";
    /// The message is for another domain.
    pub const DOMAIN_MISMATCH: &str = "invalid_siwx_domain_mismatch";
    /// The message's URI is not on this server's origin.
    pub const URI_MISMATCH: &str = "invalid_siwx_uri_mismatch";
    /// `issuedAt` is not an RFC 3339 time.
    pub const ISSUED_AT: &str = "invalid_siwx_issued_at";
    /// `issuedAt` is older than the maximum age.
    pub const ISSUED_AT_TOO_OLD: &str = "invalid_siwx_issued_at_too_old";
    /// `issuedAt` is in the future.
    pub const ISSUED_AT_IN_FUTURE: &str = "invalid_siwx_issued_at_in_future";
    /// `expirationTime` is not an RFC 3339 time.
    pub const EXPIRATION_TIME: &str = "invalid_siwx_expiration_time";
    /// `expirationTime` has passed.
    pub const EXPIRED: &str = "invalid_siwx_expired";
    /// `notBefore` is not an RFC 3339 time.
    pub const NOT_BEFORE: &str = "invalid_siwx_not_before";
    /// `notBefore` has not been reached.
    pub const NOT_YET_VALID: &str = "invalid_siwx_not_yet_valid";
    /// The signature is not encoded as the chain's signatures are.
    pub const MALFORMED_SIGNATURE: &str = "invalid_siwx_malformed_signature";
    /// The signature was not made by the address over this message.
    pub const SIGNATURE: &str = "invalid_siwx_signature";
    /// The smart-wallet verifier failed to answer.
    pub const VERIFIER_ERROR: &str = "invalid_siwx_verifier_error";
    /// The nonce was already used.
    pub const NONCE: &str = "invalid_siwx_nonce";
}

/// Why a sign-in was refused. [`SiwxError::reason`] gives the reason code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SiwxError {
    /// The header could not be decoded.
    #[error("SIGN-IN-WITH-X header: {0}")]
    Header(String),
    /// A field that cannot be part of a sign-in message.
    #[error("sign-in field {field}: {problem}")]
    Field {
        /// The field, as named on the wire.
        field: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// The address is not one of the chain's.
    #[error("sign-in address {0:?} is not a valid address for its chain")]
    Address(String),
    /// A chain this server does not accept sign-ins for.
    #[error("sign-in chain {0:?} is not accepted here")]
    UnsupportedChain(String),
    /// A malformed chain id.
    #[error("sign-in chain id {0:?} is malformed")]
    ChainId(String),
    /// The signature type does not belong to the chain.
    #[error("signature type {signature_type:?} does not belong to chain {chain_id:?}")]
    TypeMismatch {
        /// The chain.
        chain_id: String,
        /// The type sent.
        signature_type: SignatureType,
    },
    /// Another domain.
    #[error("sign-in is for domain {found:?}, expected {expected:?}")]
    DomainMismatch {
        /// This server's domain.
        expected: String,
        /// The message's.
        found: String,
    },
    /// A URI off this server's origin.
    #[error("sign-in URI {found:?} is not on {expected}")]
    UriMismatch {
        /// This server's origin.
        expected: String,
        /// The message's URI.
        found: String,
    },
    /// `issuedAt` is unreadable.
    #[error("issuedAt {0:?} is not an RFC 3339 time")]
    IssuedAt(String),
    /// `issuedAt` is too old.
    #[error("sign-in was issued {age_ms} ms ago, more than the {max_ms} ms allowed")]
    TooOld {
        /// Its age.
        age_ms: i64,
        /// The limit.
        max_ms: u64,
    },
    /// `issuedAt` is in the future.
    #[error("sign-in is issued {ahead_ms} ms in the future")]
    IssuedInFuture {
        /// How far ahead.
        ahead_ms: i64,
    },
    /// `expirationTime` is unreadable.
    #[error("expirationTime {0:?} is not an RFC 3339 time")]
    ExpirationTime(String),
    /// `expirationTime` has passed.
    #[error("sign-in expired at {0}")]
    Expired(String),
    /// `notBefore` is unreadable.
    #[error("notBefore {0:?} is not an RFC 3339 time")]
    NotBefore(String),
    /// `notBefore` lies ahead.
    #[error("sign-in is not valid before {0}")]
    NotYetValid(String),
    /// The signature is not encoded as the chain's are.
    #[error("malformed signature: {0}")]
    MalformedSignature(String),
    /// The signature does not match.
    #[error("signature check failed: {0}")]
    Signature(String),
    /// The smart-wallet verifier failed.
    #[error("smart-wallet signature verifier failed: {0}")]
    Verifier(String),
    /// The nonce was used before.
    #[error("sign-in nonce was already used")]
    NonceReused,
}

impl SiwxError {
    /// The reason code for this refusal.
    pub fn reason(&self) -> Reason {
        Reason::new(self.code())
    }

    /// The reason code as a static string.
    pub fn code(&self) -> &'static str {
        match self {
            SiwxError::Header(_) => reasons::HEADER,
            SiwxError::Field { .. } => reasons::MESSAGE,
            SiwxError::Address(_) => reasons::ADDRESS,
            SiwxError::UnsupportedChain(_) => reasons::UNSUPPORTED_CHAIN,
            SiwxError::ChainId(_) => reasons::CHAIN_ID,
            SiwxError::TypeMismatch { .. } => reasons::TYPE_MISMATCH,
            SiwxError::DomainMismatch { .. } => reasons::DOMAIN_MISMATCH,
            SiwxError::UriMismatch { .. } => reasons::URI_MISMATCH,
            SiwxError::IssuedAt(_) => reasons::ISSUED_AT,
            SiwxError::TooOld { .. } => reasons::ISSUED_AT_TOO_OLD,
            SiwxError::IssuedInFuture { .. } => reasons::ISSUED_AT_IN_FUTURE,
            SiwxError::ExpirationTime(_) => reasons::EXPIRATION_TIME,
            SiwxError::Expired(_) => reasons::EXPIRED,
            SiwxError::NotBefore(_) => reasons::NOT_BEFORE,
            SiwxError::NotYetValid(_) => reasons::NOT_YET_VALID,
            SiwxError::MalformedSignature(_) => reasons::MALFORMED_SIGNATURE,
            SiwxError::Signature(_) => reasons::SIGNATURE,
            SiwxError::Verifier(_) => reasons::VERIFIER_ERROR,
            SiwxError::NonceReused => reasons::NONCE,
        }
    }
}

/// What the server expects of a sign-in: its origin, how old and how early a message may
/// be, and (optionally) which chains it accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectations {
    /// The resource's origin; the message's `domain` must be its authority and its `uri`
    /// must be on it.
    pub origin: Origin,
    /// Largest accepted age of `issuedAt` ([`DEFAULT_MAX_AGE`]).
    pub max_age: Duration,
    /// Tolerance for `issuedAt` and `notBefore` in the future ([`DEFAULT_CLOCK_SKEW`]).
    pub clock_skew: Duration,
    /// CAIP-2 chains accepted (the declaration's `supportedChains`); empty accepts every
    /// chain this build can verify.
    pub chains: Vec<String>,
}

impl Expectations {
    /// Expectations for a resource URL, with default ages and any chain.
    pub fn for_resource(resource_url: &str) -> Result<Self, SiwxError> {
        let origin = Origin::parse(resource_url).ok_or_else(|| SiwxError::UriMismatch {
            expected: "an absolute http(s) URL".into(),
            found: resource_url.to_owned(),
        })?;
        Ok(Expectations {
            origin,
            max_age: DEFAULT_MAX_AGE,
            clock_skew: DEFAULT_CLOCK_SKEW,
            chains: Vec::new(),
        })
    }

    /// Accepts only these chains.
    pub fn with_chains<I: IntoIterator<Item = S>, S: Into<String>>(mut self, chains: I) -> Self {
        self.chains = chains.into_iter().map(Into::into).collect();
        self
    }
}

/// Checks a sign-in's fields against the server's expectations at `now_ms` (unix ms), in
/// order: version and field shapes, chain (namespace, type, accepted), `domain`, `uri`
/// origin, `issuedAt` (readable, not older than the maximum age, not ahead by more than the
/// skew), `expirationTime` (not passed), `notBefore` (reached, within the skew).
///
/// The signature is [`verify_signature`]'s business and nonce reuse the caller's.
pub fn check_message(
    payload: &SiwxPayload,
    expected: &Expectations,
    now_ms: u64,
) -> Result<(), SiwxError> {
    check_fields(payload)?;
    check_chain(payload, &expected.chains)?;
    let domain = expected.origin.authority();
    if payload.domain != domain {
        return Err(SiwxError::DomainMismatch {
            expected: domain,
            found: payload.domain.clone(),
        });
    }
    if Origin::parse(&payload.uri).as_ref() != Some(&expected.origin) {
        return Err(SiwxError::UriMismatch {
            expected: expected.origin.to_string(),
            found: payload.uri.clone(),
        });
    }
    let now = i64::try_from(now_ms).unwrap_or(i64::MAX);
    let skew = millis(expected.clock_skew);
    let issued = parse_timestamp(&payload.issued_at)
        .ok_or_else(|| SiwxError::IssuedAt(payload.issued_at.clone()))?;
    let age = now.saturating_sub(issued);
    let max_ms = u64::try_from(expected.max_age.as_millis()).unwrap_or(u64::MAX);
    if age > millis(expected.max_age) {
        return Err(SiwxError::TooOld {
            age_ms: age,
            max_ms,
        });
    }
    if age < -skew {
        return Err(SiwxError::IssuedInFuture { ahead_ms: -age });
    }
    if let Some(expiration) = nonempty(&payload.expiration_time) {
        let at = parse_timestamp(expiration)
            .ok_or_else(|| SiwxError::ExpirationTime(expiration.to_owned()))?;
        if at < now {
            return Err(SiwxError::Expired(expiration.to_owned()));
        }
    }
    if let Some(not_before) = nonempty(&payload.not_before) {
        let at = parse_timestamp(not_before)
            .ok_or_else(|| SiwxError::NotBefore(not_before.to_owned()))?;
        if now < at.saturating_sub(skew) {
            return Err(SiwxError::NotYetValid(not_before.to_owned()));
        }
    }
    Ok(())
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// `Some(s)` for a present, non-empty optional field (how the reference treats them).
pub(super) fn nonempty(field: &Option<String>) -> Option<&str> {
    field.as_deref().filter(|s| !s.is_empty())
}

/// Refuses a value that would add or break lines of the message.
pub(super) fn one_line(field: &'static str, value: &str) -> Result<(), SiwxError> {
    if value.chars().any(char::is_control) {
        return Err(SiwxError::Field {
            field,
            problem: "contains a line break or another control character".into(),
        });
    }
    Ok(())
}

/// Refuses an empty value or one with whitespace or control characters.
fn token(field: &'static str, value: &str) -> Result<(), SiwxError> {
    if value.is_empty() || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(SiwxError::Field {
            field,
            problem: "must be non-empty, without spaces or control characters".into(),
        });
    }
    Ok(())
}

/// The field rules every message obeys (EIP-4361 / CAIP-122), so that no field can forge
/// another line of the signed text.
pub(super) fn check_fields(p: &SiwxPayload) -> Result<(), SiwxError> {
    token("domain", &p.domain)?;
    token("address", &p.address)?;
    token("uri", &p.uri)?;
    token("chainId", &p.chain_id)?;
    token("issuedAt", &p.issued_at)?;
    if p.version != VERSION {
        return Err(SiwxError::Field {
            field: "version",
            problem: format!("is {:?}; only \"1\" exists", p.version),
        });
    }
    if p.nonce.len() < 8
        || p.nonce.len() > 128
        || !p.nonce.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return Err(SiwxError::Field {
            field: "nonce",
            problem: "must be 8 to 128 letters and digits".into(),
        });
    }
    if let Some(statement) = &p.statement {
        one_line("statement", statement)?;
    }
    for (field, value) in [
        ("expirationTime", &p.expiration_time),
        ("notBefore", &p.not_before),
        ("requestId", &p.request_id),
    ] {
        if let Some(value) = value {
            one_line(field, value)?;
        }
    }
    for resource in p.resources.iter().flatten() {
        token("resources", resource)?;
    }
    Ok(())
}

/// The chain reference of a CAIP-2 id this build can verify: the EIP-155 chain id for
/// `eip155`, the genesis-hash prefix for `solana`.
pub(super) fn chain_reference(chain_id: &str) -> Result<&str, SiwxError> {
    let (namespace, reference) = chain_id
        .split_once(':')
        .ok_or_else(|| SiwxError::ChainId(chain_id.to_owned()))?;
    let well_formed = match namespace {
        "eip155" => {
            !reference.is_empty()
                && reference.bytes().all(|b| b.is_ascii_digit())
                && reference.parse::<u64>().is_ok()
        }
        "solana" => {
            (1..=32).contains(&reference.len())
                && reference.bytes().all(|b| b.is_ascii_alphanumeric())
        }
        _ => return Err(SiwxError::UnsupportedChain(chain_id.to_owned())),
    };
    if well_formed {
        Ok(reference)
    } else {
        Err(SiwxError::ChainId(chain_id.to_owned()))
    }
}

fn check_chain(p: &SiwxPayload, accepted: &[String]) -> Result<(), SiwxError> {
    chain_reference(&p.chain_id)?;
    let expected = SignatureType::for_chain(&p.chain_id)
        .ok_or_else(|| SiwxError::UnsupportedChain(p.chain_id.clone()))?;
    if expected != p.signature_type {
        return Err(SiwxError::TypeMismatch {
            chain_id: p.chain_id.clone(),
            signature_type: p.signature_type,
        });
    }
    if expected == SignatureType::Ed25519 && !cfg!(feature = "siws") {
        return Err(SiwxError::UnsupportedChain(p.chain_id.clone()));
    }
    if !accepted.is_empty() && !accepted.contains(&p.chain_id) {
        return Err(SiwxError::UnsupportedChain(p.chain_id.clone()));
    }
    Ok(())
}

/// The wallet a valid signature came from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SiwxSigner {
    /// An EVM account.
    Evm(Address),
    /// A Solana account (base58 public key).
    Solana(String),
}

impl fmt::Display for SiwxSigner {
    /// EIP-55 checksummed for EVM, base58 for Solana.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SiwxSigner::Evm(address) => f.write_str(&address.to_checksum(None)),
            SiwxSigner::Solana(key) => f.write_str(key),
        }
    }
}

/// Parses an EVM sign-in address the way `@signinwithethereum/siwe` accepts it: `0x` and 40
/// hex digits, either all one case or correctly EIP-55 checksummed.
pub(super) fn evm_address(address: &str) -> Result<Address, SiwxError> {
    let bad = || SiwxError::Address(address.to_owned());
    let hex = address.strip_prefix("0x").ok_or_else(bad)?;
    if hex.len() != 40 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let parsed: Address = address.parse().map_err(|_| bad())?;
    let one_case = hex == hex.to_ascii_lowercase() || hex == hex.to_ascii_uppercase();
    if one_case || parsed.to_checksum(None) == address {
        Ok(parsed)
    } else {
        Err(bad())
    }
}

/// The EIP-191 `personal_sign` digest of an EVM sign-in's message, and the claimed signer:
/// what a smart-wallet verifier (EIP-1271 `isValidSignature`, ERC-6492) checks.
pub fn evm_signing_hash(payload: &SiwxPayload) -> Result<(Address, B256), SiwxError> {
    let address = evm_address(&payload.address)?;
    let text = message(payload)?;
    Ok((
        address,
        alloy_primitives::eip191_hash_message(text.as_bytes()),
    ))
}

/// Checks a sign-in's signature offline and returns the signer.
///
/// - `eip155`: the signature (`0x` hex) must be a canonical 65-byte ECDSA signature that
///   recovers to `address` over the EIP-191 digest of [`message`]. Anything else is
///   [`SiwxError::Signature`]: a smart-contract wallet's signature needs a chain, which the
///   runtime's verifier hook provides.
/// - `solana` (feature `siws`): base58 64-byte ed25519 signature by the base58 32-byte public
///   key `address` over the UTF-8 message, checked strictly (no small-order keys, canonical
///   scalars).
pub fn verify_signature(payload: &SiwxPayload) -> Result<SiwxSigner, SiwxError> {
    check_fields(payload)?;
    match SignatureType::for_chain(&payload.chain_id) {
        Some(SignatureType::Eip191) => {
            let (address, hash) = evm_signing_hash(payload)?;
            let hex = payload.signature.strip_prefix("0x").ok_or_else(|| {
                SiwxError::MalformedSignature("an EVM signature is 0x-prefixed hex".into())
            })?;
            let bytes = alloy_primitives::hex::decode(hex)
                .map_err(|e| SiwxError::MalformedSignature(e.to_string()))?;
            let recovered = RecoveryBackend::default()
                .recover(&hash, &bytes)
                .map_err(|e| SiwxError::Signature(e.to_string()))?;
            if recovered != address {
                return Err(SiwxError::Signature(format!(
                    "signed by {recovered}, not by {address}"
                )));
            }
            Ok(SiwxSigner::Evm(address))
        }
        Some(SignatureType::Ed25519) => verify_ed25519(payload),
        None => Err(SiwxError::UnsupportedChain(payload.chain_id.clone())),
    }
}

#[cfg(feature = "siws")]
fn verify_ed25519(payload: &SiwxPayload) -> Result<SiwxSigner, SiwxError> {
    let key = super::sign::solana_key(&payload.address)?;
    let text = message(payload)?;
    let signature = bs58::decode(&payload.signature)
        .into_vec()
        .map_err(|e| SiwxError::MalformedSignature(format!("not base58: {e}")))?;
    let signature: [u8; 64] = signature.as_slice().try_into().map_err(|_| {
        SiwxError::MalformedSignature(format!(
            "an ed25519 signature is 64 bytes, not {}",
            signature.len()
        ))
    })?;
    key.verify_strict(
        text.as_bytes(),
        &ed25519_dalek::Signature::from_bytes(&signature),
    )
    .map_err(|_| SiwxError::Signature("the ed25519 signature does not verify".into()))?;
    Ok(SiwxSigner::Solana(payload.address.clone()))
}

#[cfg(not(feature = "siws"))]
fn verify_ed25519(payload: &SiwxPayload) -> Result<SiwxSigner, SiwxError> {
    Err(SiwxError::UnsupportedChain(format!(
        "{} (Solana sign-in needs the `siws` feature)",
        payload.chain_id
    )))
}
