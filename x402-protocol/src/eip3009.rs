//! EIP-3009 `TransferWithAuthorization`: EIP-712 hashing, signing, signer recovery, and the
//! checks a facilitator runs before accepting a payment (wire notes §6.1–§6.2).
//!
//! ```
//! use alloy_primitives::{address, U256};
//! use x402_protocol::eip3009::{authorize, verify, LocalSigner, PaymentTerms, TokenDomain};
//!
//! let payer = LocalSigner::random();
//! let terms = PaymentTerms {
//!     token: TokenDomain {
//!         name: "USD Coin",
//!         version: "2",
//!         chain_id: 8453,
//!         verifying_contract: address!("0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"),
//!     },
//!     pay_to: address!("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"),
//!     amount: U256::from(10_000u64),
//! };
//! let now = 1_800_000_000;
//! let payload = authorize(&payer, &terms, now, 300);
//! assert_eq!(verify(&payload, &terms, now).unwrap(), payer.address());
//! assert!(verify(&payload, &terms, now + 300).is_err()); // expired
//! ```

use std::fmt;
use std::sync::{LazyLock, Mutex, PoisonError};

use alloy_primitives::{Address, B256, Bytes, U256, keccak256};

use crate::exact::{Eip3009Authorization, ExactEvmPayload};
use crate::reason::Reason;

/// The EIP-712 encoded type of the signed struct.
pub const TRANSFER_WITH_AUTHORIZATION_TYPE: &str = "TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)";

/// The EIP-712 domain type tokens such as USDC use.
pub const EIP712_DOMAIN_TYPE: &str =
    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)";

/// Seconds of headroom `validBefore` must leave after now, so the transfer can still be mined.
pub const VALID_BEFORE_GRACE_SECONDS: u64 = 6;

/// How far back reference clients date `validAfter` to absorb clock skew.
pub const VALID_AFTER_SKEW_SECONDS: u64 = 600;

static TRANSFER_TYPEHASH: LazyLock<B256> =
    LazyLock::new(|| keccak256(TRANSFER_WITH_AUTHORIZATION_TYPE));

static DOMAIN_TYPEHASH: LazyLock<B256> = LazyLock::new(|| keccak256(EIP712_DOMAIN_TYPE));

/// keccak256 of [`TRANSFER_WITH_AUTHORIZATION_TYPE`] (computed once).
pub fn transfer_with_authorization_typehash() -> B256 {
    *TRANSFER_TYPEHASH
}

/// keccak256 of [`EIP712_DOMAIN_TYPE`] (computed once).
pub fn eip712_domain_typehash() -> B256 {
    *DOMAIN_TYPEHASH
}

/// The EIP-712 `hashStruct` of an authorization:
/// `keccak256(typeHash ‖ from ‖ to ‖ value ‖ validAfter ‖ validBefore ‖ nonce)`, each field one
/// 32-byte word (addresses left-padded).
pub fn hash_authorization(authorization: &Eip3009Authorization) -> B256 {
    let mut buf = [0u8; 7 * 32];
    buf[0..32].copy_from_slice(TRANSFER_TYPEHASH.as_slice());
    buf[44..64].copy_from_slice(authorization.from.as_slice());
    buf[76..96].copy_from_slice(authorization.to.as_slice());
    buf[96..128].copy_from_slice(&authorization.value.to_be_bytes::<32>());
    buf[128..160].copy_from_slice(&authorization.valid_after.to_be_bytes::<32>());
    buf[160..192].copy_from_slice(&authorization.valid_before.to_be_bytes::<32>());
    buf[192..224].copy_from_slice(authorization.nonce.as_slice());
    keccak256(buf)
}

/// The EIP-712 domain of an EIP-3009 token: `{name, version, chainId, verifyingContract}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenDomain<'a> {
    /// The token's `name()`, e.g. `USD Coin` (the requirement's `extra.name`).
    pub name: &'a str,
    /// The token's `version()`, e.g. `2` (the requirement's `extra.version`).
    pub version: &'a str,
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// The token contract.
    pub verifying_contract: Address,
}

impl TokenDomain<'_> {
    /// The EIP-712 domain separator. Remembered per domain (a server sees a handful of
    /// tokens), so five keccak rounds are paid once per token rather than once per payment.
    pub fn separator(&self) -> B256 {
        separators::get(self)
    }

    /// The separator, computed.
    fn compute_separator(&self) -> B256 {
        let mut buf = [0u8; 160];
        buf[0..32].copy_from_slice(DOMAIN_TYPEHASH.as_slice());
        buf[32..64].copy_from_slice(keccak256(self.name.as_bytes()).as_slice());
        buf[64..96].copy_from_slice(keccak256(self.version.as_bytes()).as_slice());
        buf[96..128].copy_from_slice(&U256::from(self.chain_id).to_be_bytes::<32>());
        buf[140..160].copy_from_slice(self.verifying_contract.as_slice());
        keccak256(buf)
    }

    /// The digest a payer signs for `authorization` in this domain:
    /// `keccak256(0x1901 ‖ domainSeparator ‖ hashStruct(authorization))`.
    pub fn signing_hash(&self, authorization: &Eip3009Authorization) -> B256 {
        let mut buf = [0u8; 66];
        buf[0..2].copy_from_slice(&[0x19, 0x01]);
        buf[2..34].copy_from_slice(self.separator().as_slice());
        buf[34..66].copy_from_slice(hash_authorization(authorization).as_slice());
        keccak256(buf)
    }
}

/// Domain separators already computed, in a small direct-mapped table keyed by the whole
/// domain (a colliding domain only costs a recomputation).
mod separators {
    use super::*;

    const SLOTS: usize = 64;

    struct Entry {
        chain_id: u64,
        contract: Address,
        name: Box<str>,
        version: Box<str>,
        separator: B256,
    }

    static TABLE: [Mutex<Option<Entry>>; SLOTS] = [const { Mutex::new(None) }; SLOTS];

    pub(super) fn get(domain: &TokenDomain<'_>) -> B256 {
        // Contract addresses are hash outputs: their last byte spreads domains evenly.
        let index =
            (usize::from(domain.verifying_contract.0[19]) ^ (domain.chain_id as usize)) % SLOTS;
        let slot = &TABLE[index];
        if let Some(entry) = &*slot.lock().unwrap_or_else(PoisonError::into_inner)
            && entry.chain_id == domain.chain_id
            && entry.contract == domain.verifying_contract
            && *entry.name == *domain.name
            && *entry.version == *domain.version
        {
            return entry.separator;
        }
        let separator = domain.compute_separator();
        *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(Entry {
            chain_id: domain.chain_id,
            contract: domain.verifying_contract,
            name: domain.name.into(),
            version: domain.version.into(),
            separator,
        });
        separator
    }
}

/// What the server asked for: the token's domain, the recipient and the exact amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaymentTerms<'a> {
    /// The token and chain, which form the EIP-712 domain.
    pub token: TokenDomain<'a>,
    /// The requirement's `payTo`.
    pub pay_to: Address,
    /// The requirement's amount in atomic units.
    pub amount: U256,
}

/// Why a signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// Not 65 bytes. Longer signatures come from smart-contract wallets (ERC-1271/6492), which
    /// need a chain to check.
    #[error(
        "signature is {0} bytes; only 65-byte ECDSA signatures from ordinary accounts can be checked offline"
    )]
    Length(usize),
    /// The last byte is not 0, 1, 27 or 28.
    #[error("signature recovery byte is {0}; expected 27 or 28")]
    RecoveryByte(u8),
    /// `s` is in the upper half of the curve order: a malleated copy of another signature.
    #[error("signature has a high s value (malleable); canonical signatures have s <= n/2")]
    HighS,
    /// `r` or `s` is zero or not below the curve order.
    #[error("signature scalars are out of range")]
    Scalar,
    /// No public key can be recovered from the signature.
    #[error("no signer can be recovered from the signature")]
    Unrecoverable,
}

/// secp256k1 group order n, and n/2 (the largest canonical s).
const SECP256K1_N: U256 = alloy_primitives::uint!(
    0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141_U256
);

/// The library that recovers signers. Both give the same answers; libsecp256k1 is faster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecoveryBackend {
    /// Pure-Rust `k256`.
    K256,
    /// libsecp256k1 (C), with the `secp256k1` cargo feature.
    #[cfg(feature = "secp256k1")]
    Secp256k1,
}

impl Default for RecoveryBackend {
    /// libsecp256k1 when the `secp256k1` feature is on, else `k256`.
    fn default() -> Self {
        #[cfg(feature = "secp256k1")]
        {
            RecoveryBackend::Secp256k1
        }
        #[cfg(not(feature = "secp256k1"))]
        {
            RecoveryBackend::K256
        }
    }
}

/// A 65-byte signature split and checked: canonical (low-s), in range, recovery id 0 or 1.
struct Parts {
    rs: [u8; 64],
    recovery_id: u8,
}

fn parse_signature(signature: &[u8]) -> Result<Parts, SignatureError> {
    let bytes: &[u8; 65] = signature
        .try_into()
        .map_err(|_| SignatureError::Length(signature.len()))?;
    let recovery_id = match bytes[64] {
        0 | 27 => 0,
        1 | 28 => 1,
        other => return Err(SignatureError::RecoveryByte(other)),
    };
    let r = U256::from_be_slice(&bytes[0..32]);
    let s = U256::from_be_slice(&bytes[32..64]);
    if r.is_zero() || s.is_zero() || r >= SECP256K1_N || s >= SECP256K1_N {
        return Err(SignatureError::Scalar);
    }
    if s > SECP256K1_N >> 1 {
        return Err(SignatureError::HighS);
    }
    let mut rs = [0u8; 64];
    rs.copy_from_slice(&bytes[..64]);
    Ok(Parts { rs, recovery_id })
}

impl RecoveryBackend {
    /// Recovers the address that signed `hash`. Rejects malleable (high-s) signatures, which
    /// some libraries would silently normalise.
    pub fn recover(self, hash: &B256, signature: &[u8]) -> Result<Address, SignatureError> {
        let parts = parse_signature(signature)?;
        match self {
            RecoveryBackend::K256 => recover_k256(hash, &parts),
            #[cfg(feature = "secp256k1")]
            RecoveryBackend::Secp256k1 => recover_secp256k1(hash, &parts),
        }
    }
}

fn address_of_uncompressed(point: &[u8]) -> Address {
    // `point` is 0x04 ‖ x ‖ y; the address is the last 20 bytes of keccak256(x ‖ y).
    Address::from_slice(&keccak256(&point[1..])[12..])
}

fn recover_k256(hash: &B256, parts: &Parts) -> Result<Address, SignatureError> {
    use k256::ecdsa::{RecoveryId, Signature, VerifyingKey};
    let signature = Signature::from_slice(&parts.rs).map_err(|_| SignatureError::Scalar)?;
    let recovery_id = RecoveryId::from_byte(parts.recovery_id)
        .ok_or(SignatureError::RecoveryByte(parts.recovery_id))?;
    let key = VerifyingKey::recover_from_prehash(hash.as_slice(), &signature, recovery_id)
        .map_err(|_| SignatureError::Unrecoverable)?;
    Ok(address_of_uncompressed(
        key.to_encoded_point(false).as_bytes(),
    ))
}

#[cfg(feature = "secp256k1")]
fn recover_secp256k1(hash: &B256, parts: &Parts) -> Result<Address, SignatureError> {
    use secp256k1::ecdsa::{RecoverableSignature, RecoveryId};
    let recovery_id = RecoveryId::try_from(i32::from(parts.recovery_id))
        .map_err(|_| SignatureError::RecoveryByte(parts.recovery_id))?;
    let signature = RecoverableSignature::from_compact(&parts.rs, recovery_id)
        .map_err(|_| SignatureError::Scalar)?;
    let message = secp256k1::Message::from_digest(hash.0);
    let key = secp256k1::SECP256K1
        .recover_ecdsa(message, &signature)
        .map_err(|_| SignatureError::Unrecoverable)?;
    Ok(address_of_uncompressed(&key.serialize_uncompressed()))
}

/// Why an authorization does not pay for the terms. Each variant maps to a spec reason code
/// with [`VerifyError::reason`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The authorization pays someone else.
    #[error("authorization pays {found}, but the recipient is {expected}")]
    RecipientMismatch {
        /// `payTo` of the requirement.
        expected: Address,
        /// `to` of the authorization.
        found: Address,
    },
    /// The authorized value is not the required amount.
    #[error("authorization is for {found} atomic units, but the price is {expected}")]
    ValueMismatch {
        /// The required amount.
        expected: U256,
        /// The authorized value.
        found: U256,
    },
    /// `validBefore` is past or less than [`VALID_BEFORE_GRACE_SECONDS`] away.
    #[error(
        "authorization expired or expires too soon: validBefore {valid_before}, now {now} (needs {VALID_BEFORE_GRACE_SECONDS}s headroom)"
    )]
    Expired {
        /// The authorization's `validBefore`.
        valid_before: U256,
        /// The verifier's clock.
        now: u64,
    },
    /// `validAfter` is in the future.
    #[error("authorization is not valid yet: validAfter {valid_after}, now {now}")]
    NotYetValid {
        /// The authorization's `validAfter`.
        valid_after: U256,
        /// The verifier's clock.
        now: u64,
    },
    /// The signature is malformed or malleable.
    #[error("invalid signature: {0}")]
    Signature(#[from] SignatureError),
    /// The signature is valid but made by someone other than `from`.
    #[error("signature was made by {recovered}, not by the payer {from}")]
    WrongSigner {
        /// `from` of the authorization.
        from: Address,
        /// Who actually signed.
        recovered: Address,
    },
}

impl VerifyError {
    /// The reason code for this failure.
    pub fn reason(&self) -> Reason {
        match self {
            VerifyError::RecipientMismatch { .. } => Reason::RECIPIENT_MISMATCH,
            VerifyError::ValueMismatch { .. } => Reason::VALUE_MISMATCH,
            VerifyError::Expired { .. } => Reason::VALID_BEFORE,
            VerifyError::NotYetValid { .. } => Reason::VALID_AFTER,
            VerifyError::Signature(_) | VerifyError::WrongSigner { .. } => {
                Reason::INVALID_SIGNATURE
            }
        }
    }
}

/// Checks an `exact` EVM payment against the terms at unix time `now`, and returns the payer.
///
/// In order (cheap checks first, so a wrong payment costs no signature recovery): `to` equals
/// `payTo`; `value` equals the amount; `validBefore ≥ now + 6`; `validAfter ≤ now`; the
/// signature is a canonical 65-byte ECDSA signature that recovers to `from` over the EIP-712
/// digest of the terms' domain. Scheme, network and asset matching happen before this, when the
/// payment is matched to a requirement; nonce reuse and balance are the ledger's business.
pub fn verify(
    payload: &ExactEvmPayload,
    terms: &PaymentTerms<'_>,
    now: u64,
) -> Result<Address, VerifyError> {
    verify_with(RecoveryBackend::default(), payload, terms, now)
}

/// [`verify`] with an explicit recovery backend.
pub fn verify_with(
    backend: RecoveryBackend,
    payload: &ExactEvmPayload,
    terms: &PaymentTerms<'_>,
    now: u64,
) -> Result<Address, VerifyError> {
    let auth = &payload.authorization;
    if auth.to != terms.pay_to {
        return Err(VerifyError::RecipientMismatch {
            expected: terms.pay_to,
            found: auth.to,
        });
    }
    if auth.value != terms.amount {
        return Err(VerifyError::ValueMismatch {
            expected: terms.amount,
            found: auth.value,
        });
    }
    if auth.valid_before < U256::from(now.saturating_add(VALID_BEFORE_GRACE_SECONDS)) {
        return Err(VerifyError::Expired {
            valid_before: auth.valid_before,
            now,
        });
    }
    if auth.valid_after > U256::from(now) {
        return Err(VerifyError::NotYetValid {
            valid_after: auth.valid_after,
            now,
        });
    }
    let digest = terms.token.signing_hash(auth);
    let recovered = backend.recover(&digest, &payload.signature)?;
    if recovered != auth.from {
        return Err(VerifyError::WrongSigner {
            from: auth.from,
            recovered,
        });
    }
    Ok(recovered)
}

/// Why a private key could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Not 64 hex digits (with or without `0x`).
    #[error("a private key is 64 hex digits (32 bytes), optionally prefixed with 0x")]
    Format,
    /// Zero or not below the curve order.
    #[error("the bytes are not a valid secp256k1 private key")]
    OutOfRange,
}

/// A secp256k1 private key held in memory, able to sign EIP-3009 authorizations.
///
/// `Debug` shows only the address; the key is zeroed when dropped.
#[derive(Clone)]
pub struct LocalSigner {
    key: k256::ecdsa::SigningKey,
    address: Address,
}

impl LocalSigner {
    /// Loads a key from 32 bytes.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, KeyError> {
        let key =
            k256::ecdsa::SigningKey::from_bytes(bytes.into()).map_err(|_| KeyError::OutOfRange)?;
        let address =
            address_of_uncompressed(key.verifying_key().to_encoded_point(false).as_bytes());
        Ok(LocalSigner { key, address })
    }

    /// Loads a key from 64 hex digits, with or without `0x`.
    pub fn from_hex(hex: &str) -> Result<Self, KeyError> {
        let hex = hex.trim();
        let hex = hex.strip_prefix("0x").unwrap_or(hex);
        let mut bytes = [0u8; 32];
        alloy_primitives::hex::decode_to_slice(hex, &mut bytes).map_err(|_| KeyError::Format)?;
        let signer = Self::from_bytes(&bytes);
        bytes.fill(0);
        signer
    }

    /// A fresh key from the operating system's random number generator.
    pub fn random() -> Self {
        loop {
            let mut bytes = [0u8; 32];
            fill_random(&mut bytes);
            if let Ok(signer) = Self::from_bytes(&bytes) {
                bytes.fill(0);
                return signer;
            }
        }
    }

    /// The key's Ethereum address.
    pub fn address(&self) -> Address {
        self.address
    }

    /// The private key as `0x` + 64 hex digits. Handle with care: anyone holding it can spend
    /// the account's funds.
    pub fn secret_hex(&self) -> String {
        format!("0x{}", alloy_primitives::hex::encode(self.key.to_bytes()))
    }

    /// Signs a 32-byte digest; returns `r ‖ s ‖ v` with `v` = 27 or 28 and a low `s`.
    pub fn sign_hash(&self, hash: &B256) -> [u8; 65] {
        // Signing a 32-byte prehash with a valid key cannot fail in k256; fall back to an
        // all-zero signature (which no verifier accepts) rather than panic.
        let Ok((signature, recovery_id)) = self.key.sign_prehash_recoverable(hash.as_slice())
        else {
            return [0u8; 65];
        };
        let mut out = [0u8; 65];
        out[..64].copy_from_slice(&signature.to_bytes());
        out[64] = 27 + recovery_id.to_byte();
        out
    }

    /// Signs an authorization in a token's domain.
    pub fn sign_authorization(
        &self,
        authorization: &Eip3009Authorization,
        token: &TokenDomain<'_>,
    ) -> Bytes {
        Bytes::copy_from_slice(&self.sign_hash(&token.signing_hash(authorization)))
    }
}

impl fmt::Debug for LocalSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalSigner")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

fn fill_random(buf: &mut [u8]) {
    // The OS generator failing means the platform cannot produce keys or nonces safely at
    // all; there is no sensible fallback.
    #[allow(clippy::expect_used)]
    getrandom::fill(buf).expect("the operating system's random number generator failed");
}

/// 32 random bytes for an authorization nonce.
pub fn random_nonce() -> B256 {
    let mut nonce = B256::ZERO;
    fill_random(nonce.as_mut_slice());
    nonce
}

/// The unsigned authorization for `from` to pay `terms`: valid from `now - 600` (the reference
/// clients' clock-skew allowance) until `now + valid_for_seconds`, with a random nonce.
///
/// Sign [`TokenDomain::signing_hash`] of it with the payer's key; [`authorize`] does both.
pub fn authorization(
    from: Address,
    terms: &PaymentTerms<'_>,
    now: u64,
    valid_for_seconds: u64,
) -> Eip3009Authorization {
    Eip3009Authorization {
        from,
        to: terms.pay_to,
        value: terms.amount,
        valid_after: U256::from(now.saturating_sub(VALID_AFTER_SKEW_SECONDS)),
        valid_before: U256::from(now.saturating_add(valid_for_seconds)),
        nonce: random_nonce(),
    }
}

/// Builds and signs a payment for `terms`, valid from `now - 600` (the reference clients'
/// clock-skew allowance) until `now + valid_for_seconds`, with a random nonce.
pub fn authorize(
    signer: &LocalSigner,
    terms: &PaymentTerms<'_>,
    now: u64,
    valid_for_seconds: u64,
) -> ExactEvmPayload {
    let authorization = authorization(signer.address(), terms, now, valid_for_seconds);
    ExactEvmPayload {
        signature: signer.sign_authorization(&authorization, &terms.token),
        authorization,
    }
}

#[cfg(test)]
mod tests {
    use alloy_primitives::{address, b256};
    use alloy_sol_types::{Eip712Domain, SolStruct as _};

    use super::*;

    mod sol {
        #![allow(missing_docs, unreachable_pub)]
        alloy_sol_types::sol! {
            struct TransferWithAuthorization {
                address from;
                address to;
                uint256 value;
                uint256 validAfter;
                uint256 validBefore;
                bytes32 nonce;
            }
        }
    }

    fn to_sol(a: &Eip3009Authorization) -> sol::TransferWithAuthorization {
        sol::TransferWithAuthorization {
            from: a.from,
            to: a.to,
            value: a.value,
            validAfter: a.valid_after,
            validBefore: a.valid_before,
            nonce: a.nonce,
        }
    }

    const BASE_USDC: Address = address!("0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913");
    const BASE_SEPOLIA_USDC: Address = address!("0x036CbD53842c5426634e7929541eC2318f3dCF7e");

    fn base_terms() -> PaymentTerms<'static> {
        PaymentTerms {
            token: TokenDomain {
                name: "USD Coin",
                version: "2",
                chain_id: 8453,
                verifying_contract: BASE_USDC,
            },
            pay_to: address!("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"),
            amount: U256::from(10_000u64),
        }
    }

    /// The values listed in §6.1 of the wire notes.
    #[test]
    fn typehashes_and_domain_separators_match_section_6_1() {
        assert_eq!(
            transfer_with_authorization_typehash(),
            b256!("0x7c7c6cdb67a18743f49ec6fa9b35f50d52ed05cbed4cc592e13b44501c1a2267")
        );
        assert_eq!(
            keccak256(TRANSFER_WITH_AUTHORIZATION_TYPE),
            transfer_with_authorization_typehash()
        );
        assert_eq!(
            eip712_domain_typehash(),
            b256!("0x8b73c3c69bb8fe3d512ecc4cf759cc79239f7b179b0ffacaa9a75d522b39400f")
        );
        assert_eq!(
            base_terms().token.separator(),
            b256!("0x02fa7265e7c5d81118673727957699e4d68f74cd74b7db77da710fe8a2c7834f")
        );
        let sepolia = TokenDomain {
            name: "USDC",
            version: "2",
            chain_id: 84532,
            verifying_contract: BASE_SEPOLIA_USDC,
        };
        assert_eq!(
            sepolia.separator(),
            b256!("0x71f17a3b2ff373b803d70a5a07c046c1a2bc8e89c09ef722fcb047abe94c9818")
        );
    }

    /// The hand-rolled separator and digest agree with alloy's EIP-712 implementation.
    #[test]
    fn hashing_agrees_with_alloy() {
        let token = base_terms().token;
        let domain = Eip712Domain::new(
            Some(token.name.to_owned().into()),
            Some(token.version.to_owned().into()),
            Some(U256::from(token.chain_id)),
            Some(token.verifying_contract),
            None,
        );
        assert_eq!(domain.separator(), token.separator());
        let signer = LocalSigner::random();
        let payload = authorize(&signer, &base_terms(), 1_000_000, 60);
        assert_eq!(
            to_sol(&payload.authorization).eip712_signing_hash(&domain),
            token.signing_hash(&payload.authorization)
        );
        assert_eq!(
            to_sol(&payload.authorization).eip712_hash_struct(),
            hash_authorization(&payload.authorization)
        );
        assert_eq!(
            to_sol(&payload.authorization).eip712_type_hash(),
            transfer_with_authorization_typehash()
        );
    }

    /// Remembered separators are keyed by the whole domain: a domain that differs only in its
    /// name, version or chain gets its own, and asking again gives the same answer.
    #[test]
    fn remembered_separators_follow_every_field_of_the_domain() {
        let base = base_terms().token;
        let variants = [
            base,
            TokenDomain {
                name: "USDC",
                ..base
            },
            TokenDomain {
                version: "1",
                ..base
            },
            TokenDomain {
                chain_id: 1,
                ..base
            },
            TokenDomain {
                verifying_contract: BASE_SEPOLIA_USDC,
                ..base
            },
        ];
        for _ in 0..2 {
            for (i, a) in variants.iter().enumerate() {
                assert_eq!(a.separator(), a.compute_separator(), "{a:?}");
                for b in &variants[i + 1..] {
                    assert_ne!(a.separator(), b.separator(), "{a:?} vs {b:?}");
                }
            }
        }
    }

    #[test]
    fn signs_and_recovers_with_every_backend() {
        let signer = LocalSigner::from_hex(
            "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
        )
        .unwrap();
        assert_eq!(
            signer.address(),
            address!("0x70997970C51812dc3A010C7d01b50e0d17dc79C8")
        );
        let payload = authorize(&signer, &base_terms(), 1_000_000, 60);
        let backends = [
            RecoveryBackend::K256,
            #[cfg(feature = "secp256k1")]
            RecoveryBackend::Secp256k1,
        ];
        for backend in backends {
            assert_eq!(
                verify_with(backend, &payload, &base_terms(), 1_000_000),
                Ok(signer.address())
            );
        }
    }

    #[test]
    fn each_check_reports_its_own_reason() {
        let signer = LocalSigner::random();
        let now = 1_000_000;
        let terms = base_terms();
        let payload = authorize(&signer, &terms, now, 60);

        let mut other_payee = terms;
        other_payee.pay_to = Address::repeat_byte(7);
        let mut other_amount = terms;
        other_amount.amount = U256::from(10_001u64);
        let mut other_chain = terms;
        other_chain.token.chain_id = 1;

        let cases = [
            (
                verify(&payload, &other_payee, now),
                Reason::RECIPIENT_MISMATCH,
            ),
            (verify(&payload, &other_amount, now), Reason::VALUE_MISMATCH),
            (verify(&payload, &terms, now + 55), Reason::VALID_BEFORE),
            (verify(&payload, &terms, now - 601), Reason::VALID_AFTER),
            (
                verify(&payload, &other_chain, now),
                Reason::INVALID_SIGNATURE,
            ),
        ];
        for (result, reason) in cases {
            assert_eq!(result.unwrap_err().reason(), reason);
        }
        // Exactly the grace period left is still fine.
        assert!(verify(&payload, &terms, now + 60 - VALID_BEFORE_GRACE_SECONDS).is_ok());
    }

    #[test]
    fn rejects_malleable_and_malformed_signatures() {
        let signer = LocalSigner::random();
        let terms = base_terms();
        let payload = authorize(&signer, &terms, 1_000_000, 60);

        // Flip s to n - s and the recovery bit: the same key "signs" again, which EIP-2 forbids.
        let mut sig = payload.signature.to_vec();
        let s = U256::from_be_slice(&sig[32..64]);
        sig[32..64].copy_from_slice(&(SECP256K1_N - s).to_be_bytes::<32>());
        sig[64] = if sig[64] == 27 { 28 } else { 27 };
        let mut malleated = payload.clone();
        malleated.signature = sig.into();
        assert_eq!(
            verify(&malleated, &terms, 1_000_000),
            Err(VerifyError::Signature(SignatureError::HighS))
        );

        for (bytes, expected) in [
            (vec![0u8; 64], SignatureError::Length(64)),
            (vec![1u8; 66], SignatureError::Length(66)),
            (
                [&payload.signature[..64], &[29u8]].concat(),
                SignatureError::RecoveryByte(29),
            ),
            (
                [&[0u8; 32][..], &payload.signature[32..]].concat(),
                SignatureError::Scalar,
            ),
        ] {
            let mut bad = payload.clone();
            bad.signature = bytes.into();
            assert_eq!(
                verify(&bad, &terms, 1_000_000),
                Err(VerifyError::Signature(expected))
            );
        }
    }

    #[test]
    fn keys_load_and_do_not_leak_through_debug() {
        assert_eq!(LocalSigner::from_hex("12").unwrap_err(), KeyError::Format);
        assert_eq!(
            LocalSigner::from_hex(&"0".repeat(64)).unwrap_err(),
            KeyError::OutOfRange
        );
        let signer = LocalSigner::random();
        let again = LocalSigner::from_hex(&signer.secret_hex()).unwrap();
        assert_eq!(again.address(), signer.address());
        let debug = format!("{signer:?}");
        assert!(!debug.contains(&signer.secret_hex()[2..10]), "{debug}");
    }
}
