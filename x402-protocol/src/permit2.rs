//! Permit2 payments: the `exact` scheme paid through Permit2 (`extra.assetTransferMethod:
//! "permit2"`, any ERC-20) and the metered `upto` scheme (a signed maximum, charged what was
//! used). Wire types, EIP-712 hashing of `PermitWitnessTransferFrom` with the x402 witnesses,
//! and the checks a verifier can make without a chain (schemes notes §1.2–§1.5 and §2.2).
//!
//! The payer signs, in the domain `{name: "Permit2", chainId, verifyingContract: Permit2}`
//! (no `version`), a transfer of `permitted` to the x402 proxy (`spender`), with a witness
//! that fixes the recipient (`to`), the earliest time (`validAfter`) and, for `upto`, the
//! facilitator allowed to settle. Permit2's `deadline` is the latest time.
//!
//! ```
//! use alloy_primitives::{address, U256};
//! use x402_protocol::eip3009::LocalSigner;
//! use x402_protocol::permit2::{self, ExactPermit2Terms};
//!
//! let payer = LocalSigner::random();
//! let terms = ExactPermit2Terms {
//!     chain_id: 8453,
//!     token: address!("0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"),
//!     pay_to: address!("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"),
//!     amount: U256::from(10_000u64),
//! };
//! let now = 1_800_000_000;
//! let payload = permit2::authorize_exact(&payer, &terms, now, 300);
//! assert_eq!(permit2::verify_exact(&payload, &terms, now).unwrap(), payer.address());
//! assert!(permit2::verify_exact(&payload, &terms, now + 300).is_err()); // past the deadline
//! ```

use std::sync::LazyLock;

use alloy_primitives::{Address, B256, Bytes, U256, address, keccak256};
use serde::{Deserialize, Serialize};

use crate::eip3009::{LocalSigner, RecoveryBackend, SignatureError, random_nonce};
use crate::reason::Reason;
use crate::serde_util::{checksummed, decimal_u256};

/// The `upto` scheme's name.
pub const UPTO: &str = "upto";

/// The value of `extra.assetTransferMethod` that asks for a Permit2 `exact` payment.
pub const ASSET_TRANSFER_METHOD: &str = "permit2";

/// Uniswap's canonical Permit2 contract (the same address on every chain), the EIP-712
/// `verifyingContract` of every Permit2 signature.
pub const PERMIT2_ADDRESS: Address = address!("0x000000000022D473030F116dDEE9F6B43aC78BA3");

/// The x402 exact Permit2 proxy: the `spender` of every `exact` Permit2 payment.
pub const EXACT_PERMIT2_PROXY: Address = address!("0x402085c248EeA27D92E8b30b2C58ed07f9E20001");

/// The x402 upto Permit2 proxy: the `spender` of every `upto` payment.
pub const UPTO_PERMIT2_PROXY: Address = address!("0x4020A4f3b7b90ccA423B9fabCc0CE57C6C240002");

/// Permit2's EIP-712 domain type: no `version`.
pub const PERMIT2_DOMAIN_TYPE: &str =
    "EIP712Domain(string name,uint256 chainId,address verifyingContract)";

/// Permit2's EIP-712 domain name.
pub const PERMIT2_DOMAIN_NAME: &str = "Permit2";

/// The EIP-712 type of the permitted token and amount.
pub const TOKEN_PERMISSIONS_TYPE: &str = "TokenPermissions(address token,uint256 amount)";

/// The `exact` witness type.
pub const EXACT_WITNESS_TYPE: &str = "Witness(address to,uint256 validAfter)";

/// The `upto` witness type.
pub const UPTO_WITNESS_TYPE: &str = "Witness(address to,address facilitator,uint256 validAfter)";

/// The full encoded type an `exact` Permit2 payer signs (referenced types sorted by name).
pub const EXACT_PERMIT_WITNESS_TRANSFER_FROM_TYPE: &str = "PermitWitnessTransferFrom(TokenPermissions permitted,address spender,uint256 nonce,uint256 deadline,Witness witness)TokenPermissions(address token,uint256 amount)Witness(address to,uint256 validAfter)";

/// The full encoded type an `upto` payer signs (referenced types sorted by name).
pub const UPTO_PERMIT_WITNESS_TRANSFER_FROM_TYPE: &str = "PermitWitnessTransferFrom(TokenPermissions permitted,address spender,uint256 nonce,uint256 deadline,Witness witness)TokenPermissions(address token,uint256 amount)Witness(address to,address facilitator,uint256 validAfter)";

/// Seconds of headroom the `deadline` must leave after now, so the transfer can still be mined
/// (the reference checks `deadline ≥ now + 6`).
pub const DEADLINE_GRACE_SECONDS: u64 = 6;

static DOMAIN_TYPEHASH: LazyLock<B256> = LazyLock::new(|| keccak256(PERMIT2_DOMAIN_TYPE));
static DOMAIN_NAME_HASH: LazyLock<B256> = LazyLock::new(|| keccak256(PERMIT2_DOMAIN_NAME));
static TOKEN_PERMISSIONS_TYPEHASH: LazyLock<B256> =
    LazyLock::new(|| keccak256(TOKEN_PERMISSIONS_TYPE));
static EXACT_WITNESS_TYPEHASH: LazyLock<B256> = LazyLock::new(|| keccak256(EXACT_WITNESS_TYPE));
static UPTO_WITNESS_TYPEHASH: LazyLock<B256> = LazyLock::new(|| keccak256(UPTO_WITNESS_TYPE));
static EXACT_TYPEHASH: LazyLock<B256> =
    LazyLock::new(|| keccak256(EXACT_PERMIT_WITNESS_TRANSFER_FROM_TYPE));
static UPTO_TYPEHASH: LazyLock<B256> =
    LazyLock::new(|| keccak256(UPTO_PERMIT_WITNESS_TRANSFER_FROM_TYPE));

/// `PaymentPayload.payload` of a Permit2 payment: the signed authorization and its signature.
/// `W` is the witness: [`ExactWitness`] or [`UptoWitness`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Permit2Payload<W> {
    /// The payer's EIP-712 signature (65 bytes `r‖s‖v` for ordinary accounts).
    pub signature: Bytes,
    /// What was signed.
    pub permit2_authorization: Permit2Authorization<W>,
}

/// The payload of an `exact` payment through Permit2.
pub type ExactPermit2Payload = Permit2Payload<ExactWitness>;

/// The payload of an `upto` payment.
pub type UptoPermit2Payload = Permit2Payload<UptoWitness>;

/// The fields of `PermitWitnessTransferFrom` as the wire carries them, plus the payer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Permit2Authorization<W> {
    /// The payer (token owner).
    #[serde(with = "checksummed")]
    pub from: Address,
    /// The token and the amount (for `upto`, the maximum).
    pub permitted: TokenPermissions,
    /// Who may pull the tokens: the x402 proxy of the scheme.
    #[serde(with = "checksummed")]
    pub spender: Address,
    /// Permit2's unordered nonce: any uint256, used once per payer. Written in base 10; a `0x`
    /// hex string is accepted too.
    #[serde(with = "nonce_u256")]
    pub nonce: U256,
    /// Unix time (seconds) after which the signature is void.
    #[serde(with = "decimal_u256")]
    pub deadline: U256,
    /// The x402 witness.
    pub witness: W,
}

/// Permit2's `TokenPermissions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenPermissions {
    /// The ERC-20 token; must equal the requirement's `asset`.
    #[serde(with = "checksummed")]
    pub token: Address,
    /// Atomic amount.
    #[serde(with = "decimal_u256")]
    pub amount: U256,
}

/// The witness of an `exact` Permit2 payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExactWitness {
    /// The recipient; must equal the requirement's `payTo`.
    #[serde(with = "checksummed")]
    pub to: Address,
    /// Unix time (seconds) from which the payment may be settled.
    #[serde(with = "decimal_u256")]
    pub valid_after: U256,
}

/// The witness of an `upto` payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UptoWitness {
    /// The recipient; must equal the requirement's `payTo`.
    #[serde(with = "checksummed")]
    pub to: Address,
    /// The only account allowed to settle (the requirement's `extra.facilitatorAddress`).
    #[serde(with = "checksummed")]
    pub facilitator: Address,
    /// Unix time (seconds) from which the payment may be settled.
    #[serde(with = "decimal_u256")]
    pub valid_after: U256,
}

/// An x402 Permit2 witness: what it hashes to and which proxy it is for.
pub trait Witness: private::Sealed {
    /// The full EIP-712 type of `PermitWitnessTransferFrom` with this witness.
    const PERMIT_TYPE: &'static str;
    /// The proxy that must be the `spender`.
    const PROXY: Address;
    /// keccak256 of [`Witness::PERMIT_TYPE`].
    fn permit_typehash() -> B256;
    /// The EIP-712 `hashStruct` of the witness.
    fn hash_struct(&self) -> B256;
    /// The recipient.
    fn to(&self) -> Address;
    /// The earliest settlement time.
    fn valid_after(&self) -> U256;
}

mod private {
    pub trait Sealed {}
    impl Sealed for super::ExactWitness {}
    impl Sealed for super::UptoWitness {}
}

impl Witness for ExactWitness {
    const PERMIT_TYPE: &'static str = EXACT_PERMIT_WITNESS_TRANSFER_FROM_TYPE;
    const PROXY: Address = EXACT_PERMIT2_PROXY;

    fn permit_typehash() -> B256 {
        *EXACT_TYPEHASH
    }

    /// `keccak256(typeHash ‖ to ‖ validAfter)`.
    fn hash_struct(&self) -> B256 {
        let mut buf = [0u8; 3 * 32];
        buf[0..32].copy_from_slice(EXACT_WITNESS_TYPEHASH.as_slice());
        buf[44..64].copy_from_slice(self.to.as_slice());
        buf[64..96].copy_from_slice(&self.valid_after.to_be_bytes::<32>());
        keccak256(buf)
    }

    fn to(&self) -> Address {
        self.to
    }

    fn valid_after(&self) -> U256 {
        self.valid_after
    }
}

impl Witness for UptoWitness {
    const PERMIT_TYPE: &'static str = UPTO_PERMIT_WITNESS_TRANSFER_FROM_TYPE;
    const PROXY: Address = UPTO_PERMIT2_PROXY;

    fn permit_typehash() -> B256 {
        *UPTO_TYPEHASH
    }

    /// `keccak256(typeHash ‖ to ‖ facilitator ‖ validAfter)`.
    fn hash_struct(&self) -> B256 {
        let mut buf = [0u8; 4 * 32];
        buf[0..32].copy_from_slice(UPTO_WITNESS_TYPEHASH.as_slice());
        buf[44..64].copy_from_slice(self.to.as_slice());
        buf[76..96].copy_from_slice(self.facilitator.as_slice());
        buf[96..128].copy_from_slice(&self.valid_after.to_be_bytes::<32>());
        keccak256(buf)
    }

    fn to(&self) -> Address {
        self.to
    }

    fn valid_after(&self) -> U256 {
        self.valid_after
    }
}

/// keccak256 of [`EXACT_WITNESS_TYPE`], the `WITNESS_TYPEHASH` of the exact proxy.
pub fn exact_witness_typehash() -> B256 {
    *EXACT_WITNESS_TYPEHASH
}

/// keccak256 of [`UPTO_WITNESS_TYPE`], the `WITNESS_TYPEHASH` of the upto proxy.
pub fn upto_witness_typehash() -> B256 {
    *UPTO_WITNESS_TYPEHASH
}

/// keccak256 of [`TOKEN_PERMISSIONS_TYPE`].
pub fn token_permissions_typehash() -> B256 {
    *TOKEN_PERMISSIONS_TYPEHASH
}

/// keccak256 of [`PERMIT2_DOMAIN_TYPE`].
pub fn domain_typehash() -> B256 {
    *DOMAIN_TYPEHASH
}

/// The EIP-712 domain separator of Permit2 on a chain:
/// `keccak256(domainTypeHash ‖ keccak256("Permit2") ‖ chainId ‖ Permit2)`.
pub fn domain_separator(chain_id: u64) -> B256 {
    let mut buf = [0u8; 4 * 32];
    buf[0..32].copy_from_slice(DOMAIN_TYPEHASH.as_slice());
    buf[32..64].copy_from_slice(DOMAIN_NAME_HASH.as_slice());
    buf[64..96].copy_from_slice(&U256::from(chain_id).to_be_bytes::<32>());
    buf[108..128].copy_from_slice(PERMIT2_ADDRESS.as_slice());
    keccak256(buf)
}

impl TokenPermissions {
    /// The EIP-712 `hashStruct`: `keccak256(typeHash ‖ token ‖ amount)`.
    pub fn hash_struct(&self) -> B256 {
        let mut buf = [0u8; 3 * 32];
        buf[0..32].copy_from_slice(TOKEN_PERMISSIONS_TYPEHASH.as_slice());
        buf[44..64].copy_from_slice(self.token.as_slice());
        buf[64..96].copy_from_slice(&self.amount.to_be_bytes::<32>());
        keccak256(buf)
    }
}

impl<W: Witness> Permit2Authorization<W> {
    /// The EIP-712 `hashStruct` of `PermitWitnessTransferFrom`:
    /// `keccak256(typeHash ‖ hash(permitted) ‖ spender ‖ nonce ‖ deadline ‖ hash(witness))`.
    /// (`from` is not signed: Permit2 checks the signature against the owner it is given.)
    pub fn hash_struct(&self) -> B256 {
        let mut buf = [0u8; 6 * 32];
        buf[0..32].copy_from_slice(W::permit_typehash().as_slice());
        buf[32..64].copy_from_slice(self.permitted.hash_struct().as_slice());
        buf[76..96].copy_from_slice(self.spender.as_slice());
        buf[96..128].copy_from_slice(&self.nonce.to_be_bytes::<32>());
        buf[128..160].copy_from_slice(&self.deadline.to_be_bytes::<32>());
        buf[160..192].copy_from_slice(self.witness.hash_struct().as_slice());
        keccak256(buf)
    }

    /// The digest the payer signs on chain `chain_id`:
    /// `keccak256(0x1901 ‖ domainSeparator ‖ hashStruct)`.
    pub fn signing_hash(&self, chain_id: u64) -> B256 {
        let mut buf = [0u8; 66];
        buf[0..2].copy_from_slice(&[0x19, 0x01]);
        buf[2..34].copy_from_slice(domain_separator(chain_id).as_slice());
        buf[34..66].copy_from_slice(self.hash_struct().as_slice());
        keccak256(buf)
    }
}

/// What an `exact` requirement paid through Permit2 asks for, resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExactPermit2Terms {
    /// EIP-155 chain id (part of the signed domain).
    pub chain_id: u64,
    /// The requirement's `asset`.
    pub token: Address,
    /// The requirement's `payTo`.
    pub pay_to: Address,
    /// The requirement's amount in atomic units; the permitted amount must equal it.
    pub amount: U256,
}

/// What an `upto` requirement asks for, resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UptoTerms<'a> {
    /// EIP-155 chain id (part of the signed domain).
    pub chain_id: u64,
    /// The requirement's `asset`.
    pub token: Address,
    /// The requirement's `payTo`.
    pub pay_to: Address,
    /// The requirement's amount (at verification, the maximum); the permitted amount must
    /// equal it.
    pub amount: U256,
    /// The accounts that may settle: the requirement's `extra.facilitatorAddress`, or a
    /// facilitator's own signer addresses. The witness must name one of them.
    pub facilitators: &'a [Address],
}

/// Why a Permit2 payment does not pay for the terms. Each variant maps to a reason code with
/// [`Permit2Error::reason`], spelled as the reference facilitator spells it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Permit2Error {
    /// The `spender` is not the x402 proxy of the scheme.
    #[error("Permit2 spender is {found}, but this scheme pays through the x402 proxy {expected}")]
    Spender {
        /// The scheme's proxy.
        expected: Address,
        /// The signed spender.
        found: Address,
    },
    /// The witness pays someone other than `payTo`.
    #[error("Permit2 witness pays {found}, but the recipient is {expected}")]
    RecipientMismatch {
        /// `payTo` of the requirement.
        expected: Address,
        /// `witness.to`.
        found: Address,
    },
    /// The `upto` witness names a facilitator that is not one of the accepted settlers.
    #[error("upto witness names facilitator {found}, which is not one of {expected:?}")]
    FacilitatorMismatch {
        /// The accepted facilitators.
        expected: Vec<Address>,
        /// `witness.facilitator`.
        found: Address,
    },
    /// The `deadline` is past or less than [`DEADLINE_GRACE_SECONDS`] away.
    #[error(
        "Permit2 deadline {deadline} is past or too close: now {now} (needs {DEADLINE_GRACE_SECONDS}s headroom)"
    )]
    DeadlineExpired {
        /// The signed deadline.
        deadline: U256,
        /// The verifier's clock.
        now: u64,
    },
    /// `witness.validAfter` is in the future.
    #[error("Permit2 payment is not valid yet: validAfter {valid_after}, now {now}")]
    NotYetValid {
        /// The witness's `validAfter`.
        valid_after: U256,
        /// The verifier's clock.
        now: u64,
    },
    /// The permitted amount is not the required amount.
    #[error("Permit2 permits {found} atomic units, but the requirement is {expected}")]
    AmountMismatch {
        /// The required amount.
        expected: U256,
        /// `permitted.amount`.
        found: U256,
    },
    /// The permitted token is not the requirement's asset.
    #[error("Permit2 permits token {found}, but the requirement is {expected}")]
    TokenMismatch {
        /// The requirement's asset.
        expected: Address,
        /// `permitted.token`.
        found: Address,
    },
    /// An `upto` charge above the signed maximum.
    #[error("a charge of {charge} atomic units exceeds the {maximum} the payer permitted")]
    ChargeExceedsMaximum {
        /// `permitted.amount`.
        maximum: U256,
        /// The charge asked.
        charge: U256,
    },
    /// The signature is malformed or malleable (or from a contract wallet, which needs a chain).
    #[error("invalid Permit2 signature: {0}")]
    Signature(#[from] SignatureError),
    /// The signature is valid but made by someone other than `from`.
    #[error("Permit2 signature was made by {recovered}, not by the payer {from}")]
    WrongSigner {
        /// `from` of the authorization.
        from: Address,
        /// Who actually signed.
        recovered: Address,
    },
}

impl Permit2Error {
    /// The reason code for this failure.
    pub fn reason(&self) -> Reason {
        match self {
            Permit2Error::Spender { .. } => Reason::PERMIT2_INVALID_SPENDER,
            Permit2Error::RecipientMismatch { .. } => Reason::PERMIT2_RECIPIENT_MISMATCH,
            Permit2Error::FacilitatorMismatch { .. } => Reason::UPTO_FACILITATOR_MISMATCH,
            Permit2Error::DeadlineExpired { .. } => Reason::PERMIT2_DEADLINE_EXPIRED,
            Permit2Error::NotYetValid { .. } => Reason::PERMIT2_NOT_YET_VALID,
            Permit2Error::AmountMismatch { .. } => Reason::PERMIT2_AMOUNT_MISMATCH,
            Permit2Error::TokenMismatch { .. } => Reason::PERMIT2_TOKEN_MISMATCH,
            Permit2Error::ChargeExceedsMaximum { .. } => Reason::UPTO_SETTLEMENT_EXCEEDS_AMOUNT,
            Permit2Error::Signature(_) | Permit2Error::WrongSigner { .. } => {
                Reason::PERMIT2_INVALID_SIGNATURE
            }
        }
    }
}

/// The checks both schemes share, in the reference's order: spender, recipient, (the caller's
/// facilitator check), deadline, validAfter, amount, token, then the signature.
fn verify_common<W: Witness>(
    backend: RecoveryBackend,
    payload: &Permit2Payload<W>,
    terms: &ExactPermit2Terms,
    now: u64,
    facilitator_check: impl FnOnce(&W) -> Result<(), Permit2Error>,
) -> Result<Address, Permit2Error> {
    let ExactPermit2Terms {
        chain_id,
        token,
        pay_to,
        amount,
    } = *terms;
    let auth = &payload.permit2_authorization;
    if auth.spender != W::PROXY {
        return Err(Permit2Error::Spender {
            expected: W::PROXY,
            found: auth.spender,
        });
    }
    if auth.witness.to() != pay_to {
        return Err(Permit2Error::RecipientMismatch {
            expected: pay_to,
            found: auth.witness.to(),
        });
    }
    facilitator_check(&auth.witness)?;
    if auth.deadline < U256::from(now.saturating_add(DEADLINE_GRACE_SECONDS)) {
        return Err(Permit2Error::DeadlineExpired {
            deadline: auth.deadline,
            now,
        });
    }
    if auth.witness.valid_after() > U256::from(now) {
        return Err(Permit2Error::NotYetValid {
            valid_after: auth.witness.valid_after(),
            now,
        });
    }
    if auth.permitted.amount != amount {
        return Err(Permit2Error::AmountMismatch {
            expected: amount,
            found: auth.permitted.amount,
        });
    }
    if auth.permitted.token != token {
        return Err(Permit2Error::TokenMismatch {
            expected: token,
            found: auth.permitted.token,
        });
    }
    let digest = auth.signing_hash(chain_id);
    let recovered = backend.recover(&digest, &payload.signature)?;
    if recovered != auth.from {
        return Err(Permit2Error::WrongSigner {
            from: auth.from,
            recovered,
        });
    }
    Ok(recovered)
}

/// Checks an `exact` Permit2 payment against the terms at unix time `now`, and returns the
/// payer.
///
/// In the reference's order (cheap checks first): `spender` is the exact proxy; `witness.to`
/// is `payTo`; `deadline ≥ now + 6`; `validAfter ≤ now`; `permitted.amount` equals the amount;
/// `permitted.token` is the asset; the signature is a canonical 65-byte ECDSA signature that
/// recovers to `from` over the Permit2 digest on the terms' chain. Allowance, balance and
/// nonce use are the chain's business.
pub fn verify_exact(
    payload: &ExactPermit2Payload,
    terms: &ExactPermit2Terms,
    now: u64,
) -> Result<Address, Permit2Error> {
    verify_exact_with(RecoveryBackend::default(), payload, terms, now)
}

/// [`verify_exact`] with an explicit recovery backend.
pub fn verify_exact_with(
    backend: RecoveryBackend,
    payload: &ExactPermit2Payload,
    terms: &ExactPermit2Terms,
    now: u64,
) -> Result<Address, Permit2Error> {
    verify_common(backend, payload, terms, now, |_| Ok(()))
}

/// Checks an `upto` payment against the terms at unix time `now`, and returns the payer.
///
/// As [`verify_exact`], with the upto proxy as `spender`, and after the recipient check,
/// `witness.facilitator` must be one of `terms.facilitators`. The permitted amount (the
/// maximum) must equal the requirement's amount, as the reference requires at verification;
/// the actual charge is chosen at settlement and may not exceed it.
pub fn verify_upto(
    payload: &UptoPermit2Payload,
    terms: &UptoTerms<'_>,
    now: u64,
) -> Result<Address, Permit2Error> {
    verify_upto_with(RecoveryBackend::default(), payload, terms, now)
}

/// [`verify_upto`] with an explicit recovery backend.
pub fn verify_upto_with(
    backend: RecoveryBackend,
    payload: &UptoPermit2Payload,
    terms: &UptoTerms<'_>,
    now: u64,
) -> Result<Address, Permit2Error> {
    let common = ExactPermit2Terms {
        chain_id: terms.chain_id,
        token: terms.token,
        pay_to: terms.pay_to,
        amount: terms.amount,
    };
    verify_common(backend, payload, &common, now, |witness: &UptoWitness| {
        if terms.facilitators.contains(&witness.facilitator) {
            Ok(())
        } else {
            Err(Permit2Error::FacilitatorMismatch {
                expected: terms.facilitators.to_vec(),
                found: witness.facilitator,
            })
        }
    })
}

impl Permit2Payload<UptoWitness> {
    /// What to settle for a verified `upto` payment when the handler charges `charge`:
    /// `Ok(None)` for zero (nothing is settled and the nonce stays unused, as the reference
    /// does: the proxy refuses a zero transfer), `Ok(Some(charge))` up to the permitted
    /// maximum, and a refusal above it.
    pub fn settlement_amount(&self, charge: U256) -> Result<Option<U256>, Permit2Error> {
        let maximum = self.permit2_authorization.permitted.amount;
        if charge > maximum {
            return Err(Permit2Error::ChargeExceedsMaximum { maximum, charge });
        }
        Ok((!charge.is_zero()).then_some(charge))
    }
}

/// A fresh Permit2 nonce: 32 random bytes read as a uint256, as the reference client makes.
pub fn random_permit2_nonce() -> U256 {
    U256::from_be_bytes(random_nonce().0)
}

/// Signs a Permit2 authorization on chain `chain_id`.
pub fn sign<W: Witness>(
    signer: &LocalSigner,
    authorization: Permit2Authorization<W>,
    chain_id: u64,
) -> Permit2Payload<W> {
    let signature = signer.sign_hash(&authorization.signing_hash(chain_id));
    Permit2Payload {
        signature: Bytes::copy_from_slice(&signature),
        permit2_authorization: authorization,
    }
}

/// Builds and signs an `exact` Permit2 payment for `terms`, as the reference client does:
/// `validAfter` = `now - 600`, `deadline` = `now + valid_for_seconds`, a random nonce.
pub fn authorize_exact(
    signer: &LocalSigner,
    terms: &ExactPermit2Terms,
    now: u64,
    valid_for_seconds: u64,
) -> ExactPermit2Payload {
    let authorization = Permit2Authorization {
        from: signer.address(),
        permitted: TokenPermissions {
            token: terms.token,
            amount: terms.amount,
        },
        spender: EXACT_PERMIT2_PROXY,
        nonce: random_permit2_nonce(),
        deadline: U256::from(now.saturating_add(valid_for_seconds)),
        witness: ExactWitness {
            to: terms.pay_to,
            valid_after: U256::from(now.saturating_sub(crate::eip3009::VALID_AFTER_SKEW_SECONDS)),
        },
    };
    sign(signer, authorization, terms.chain_id)
}

/// Builds and signs an `upto` payment for the maximum `terms.amount`, settleable by
/// `facilitator`, valid as [`authorize_exact`].
pub fn authorize_upto(
    signer: &LocalSigner,
    terms: &UptoTerms<'_>,
    facilitator: Address,
    now: u64,
    valid_for_seconds: u64,
) -> UptoPermit2Payload {
    let authorization = Permit2Authorization {
        from: signer.address(),
        permitted: TokenPermissions {
            token: terms.token,
            amount: terms.amount,
        },
        spender: UPTO_PERMIT2_PROXY,
        nonce: random_permit2_nonce(),
        deadline: U256::from(now.saturating_add(valid_for_seconds)),
        witness: UptoWitness {
            to: terms.pay_to,
            facilitator,
            valid_after: U256::from(now.saturating_sub(crate::eip3009::VALID_AFTER_SKEW_SECONDS)),
        },
    };
    sign(signer, authorization, terms.chain_id)
}

/// A Permit2 nonce: written in base 10, read from base 10 or `0x` hex (the upto spec's example
/// writes hex; the reference client writes base 10).
pub mod nonce_u256 {
    use alloy_primitives::U256;
    use serde::{Deserializer, Serializer};

    /// Writes `value` in base 10.
    pub fn serialize<S: Serializer>(value: &U256, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(value)
    }

    /// Reads a base-10 string, a `0x` hex string of at most 64 digits, or a JSON integer.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<U256, D::Error> {
        struct Nonce;

        impl serde::de::Visitor<'_> for Nonce {
            type Value = U256;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a uint256 nonce in base 10 or 0x hex")
            }

            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<U256, E> {
                if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
                    if hex.is_empty()
                        || hex.len() > 64
                        || !hex.bytes().all(|b| b.is_ascii_hexdigit())
                    {
                        return Err(E::custom(format!(
                            "a Permit2 nonce in hex is 1 to 64 hex digits: {s:?}"
                        )));
                    }
                    U256::from_str_radix(hex, 16).map_err(|e| E::custom(format!("{e}: {s:?}")))
                } else {
                    crate::amount::parse_decimal_u256(s)
                        .map_err(|e| E::custom(format!("{e}: {s:?}")))
                }
            }

            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<U256, E> {
                Ok(U256::from(n))
            }
        }

        deserializer.deserialize_any(Nonce)
    }
}

#[cfg(test)]
mod tests {
    use alloy_primitives::b256;
    use alloy_sol_types::{Eip712Domain, SolStruct as _};

    use super::*;

    mod exact_sol {
        #![allow(missing_docs, unreachable_pub)]
        alloy_sol_types::sol! {
            struct TokenPermissions { address token; uint256 amount; }
            struct Witness { address to; uint256 validAfter; }
            struct PermitWitnessTransferFrom {
                TokenPermissions permitted;
                address spender;
                uint256 nonce;
                uint256 deadline;
                Witness witness;
            }
        }
    }

    mod upto_sol {
        #![allow(missing_docs, unreachable_pub)]
        alloy_sol_types::sol! {
            struct TokenPermissions { address token; uint256 amount; }
            struct Witness { address to; address facilitator; uint256 validAfter; }
            struct PermitWitnessTransferFrom {
                TokenPermissions permitted;
                address spender;
                uint256 nonce;
                uint256 deadline;
                Witness witness;
            }
        }
    }

    fn domain(chain_id: u64) -> Eip712Domain {
        Eip712Domain::new(
            Some("Permit2".into()),
            None,
            Some(U256::from(chain_id)),
            Some(PERMIT2_ADDRESS),
            None,
        )
    }

    const BASE_USDC: Address = address!("0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913");
    const PAY_TO: Address = address!("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC");
    const FACILITATOR: Address = address!("0x90F79bf6EB2c4f870365E785982E1f101E93b906");

    fn exact_terms() -> ExactPermit2Terms {
        ExactPermit2Terms {
            chain_id: 8453,
            token: BASE_USDC,
            pay_to: PAY_TO,
            amount: U256::from(10_000u64),
        }
    }

    /// The constants of schemes notes §1.3 and §2.
    #[test]
    fn typehashes_and_separators_match_the_notes() {
        assert_eq!(
            exact_witness_typehash(),
            b256!("0xd97b3239a7f32295517bd14cb074edfdd188dfe5eb42f802bb26d4fd1eb12c37")
        );
        assert_eq!(
            token_permissions_typehash(),
            b256!("0x618358ac3db8dc274f0cd8829da7e234bd48cd73c4a740aede1adec9846d06a1")
        );
        assert_eq!(
            ExactWitness::permit_typehash(),
            b256!("0xebc156cd23678a74c94df13d772ef5478420637f0c94bd10d509e1dc98f521c7")
        );
        assert_eq!(
            domain_typehash(),
            b256!("0x8cad95687ba82c2ce50e74f7b754645e5117c3a5bec8151c0726d5857980a866")
        );
        assert_eq!(
            domain_separator(8453),
            b256!("0x3b6f35e4fce979ef8eac3bcdc8c3fc38fe7911bb0c69c8fe72bf1fd1a17e6f07")
        );
        assert_eq!(
            domain_separator(84532),
            b256!("0x010f27a92fb9a32622f44f001dc4d15706a85b33499cfc2ce9033113ab26592c")
        );
        assert_eq!(
            upto_witness_typehash(),
            b256!("0xd4171c445a74218b01d4fd8af34ff1106580ea1e36ff837e64484bfaa2253b75")
        );
        assert_eq!(
            UptoWitness::permit_typehash(),
            b256!("0x51dff6974ad4388c499e7fcfe838d2bd767162553a144098ce20ea661d70c2ee")
        );
    }

    /// The hand-built type strings, struct hashes and digests agree with alloy's EIP-712.
    #[test]
    fn hashing_agrees_with_alloy() {
        let signer = LocalSigner::random();
        let exact = authorize_exact(&signer, &exact_terms(), 1_000_000, 60);
        let a = &exact.permit2_authorization;
        let sol = exact_sol::PermitWitnessTransferFrom {
            permitted: exact_sol::TokenPermissions {
                token: a.permitted.token,
                amount: a.permitted.amount,
            },
            spender: a.spender,
            nonce: a.nonce,
            deadline: a.deadline,
            witness: exact_sol::Witness {
                to: a.witness.to,
                validAfter: a.witness.valid_after,
            },
        };
        assert_eq!(sol.eip712_type_hash(), ExactWitness::permit_typehash());
        assert_eq!(sol.eip712_hash_struct(), a.hash_struct());
        assert_eq!(domain(8453).separator(), domain_separator(8453));
        assert_eq!(sol.eip712_signing_hash(&domain(8453)), a.signing_hash(8453));

        let facilitators = [FACILITATOR];
        let upto_terms = UptoTerms {
            chain_id: 84532,
            token: BASE_USDC,
            pay_to: PAY_TO,
            amount: U256::from(50_000u64),
            facilitators: &facilitators,
        };
        let upto = authorize_upto(&signer, &upto_terms, FACILITATOR, 1_000_000, 60);
        let a = &upto.permit2_authorization;
        let sol = upto_sol::PermitWitnessTransferFrom {
            permitted: upto_sol::TokenPermissions {
                token: a.permitted.token,
                amount: a.permitted.amount,
            },
            spender: a.spender,
            nonce: a.nonce,
            deadline: a.deadline,
            witness: upto_sol::Witness {
                to: a.witness.to,
                facilitator: a.witness.facilitator,
                validAfter: a.witness.valid_after,
            },
        };
        assert_eq!(sol.eip712_type_hash(), UptoWitness::permit_typehash());
        assert_eq!(sol.eip712_hash_struct(), a.hash_struct());
        assert_eq!(
            sol.eip712_signing_hash(&domain(84532)),
            a.signing_hash(84532)
        );
        assert_eq!(
            verify_upto(&upto, &upto_terms, 1_000_000),
            Ok(signer.address())
        );
    }

    #[test]
    fn each_check_reports_its_own_reason() {
        let signer = LocalSigner::random();
        let now = 1_000_000;
        let terms = exact_terms();
        let payload = authorize_exact(&signer, &terms, now, 60);
        assert_eq!(verify_exact(&payload, &terms, now), Ok(signer.address()));

        let mut spender = payload.clone();
        spender.permit2_authorization.spender = UPTO_PERMIT2_PROXY;
        let other_pay_to = ExactPermit2Terms {
            pay_to: Address::repeat_byte(7),
            ..terms
        };
        let other_amount = ExactPermit2Terms {
            amount: U256::from(9_999u64),
            ..terms
        };
        let other_token = ExactPermit2Terms {
            token: Address::repeat_byte(8),
            ..terms
        };
        let other_chain = ExactPermit2Terms {
            chain_id: 1,
            ..terms
        };
        let mut not_yet = payload.clone();
        not_yet.permit2_authorization.witness.valid_after = U256::from(now + 1);
        let mut forged = payload.clone();
        forged.permit2_authorization.from = Address::repeat_byte(9);

        let cases = [
            (
                verify_exact(&spender, &terms, now),
                Reason::PERMIT2_INVALID_SPENDER,
            ),
            (
                verify_exact(&payload, &other_pay_to, now),
                Reason::PERMIT2_RECIPIENT_MISMATCH,
            ),
            (
                verify_exact(&payload, &terms, now + 55),
                Reason::PERMIT2_DEADLINE_EXPIRED,
            ),
            (
                verify_exact(&not_yet, &terms, now),
                Reason::PERMIT2_NOT_YET_VALID,
            ),
            (
                verify_exact(&payload, &other_amount, now),
                Reason::PERMIT2_AMOUNT_MISMATCH,
            ),
            (
                verify_exact(&payload, &other_token, now),
                Reason::PERMIT2_TOKEN_MISMATCH,
            ),
            (
                verify_exact(&payload, &other_chain, now),
                Reason::PERMIT2_INVALID_SIGNATURE,
            ),
            (
                verify_exact(&forged, &terms, now),
                Reason::PERMIT2_INVALID_SIGNATURE,
            ),
        ];
        for (result, reason) in cases {
            assert_eq!(result.unwrap_err().reason(), reason);
        }
        // Exactly the grace period left is still fine.
        assert!(verify_exact(&payload, &terms, now + 60 - DEADLINE_GRACE_SECONDS).is_ok());
    }

    #[test]
    fn upto_charges_settle_up_to_the_maximum_and_zero_settles_nothing() {
        let facilitators = [FACILITATOR];
        let terms = UptoTerms {
            chain_id: 8453,
            token: BASE_USDC,
            pay_to: PAY_TO,
            amount: U256::from(50_000u64),
            facilitators: &facilitators,
        };
        let upto = authorize_upto(&LocalSigner::random(), &terms, FACILITATOR, 1_000_000, 60);
        assert_eq!(upto.settlement_amount(U256::ZERO), Ok(None));
        for charge in [1u64, 18_500, 50_000] {
            assert_eq!(
                upto.settlement_amount(U256::from(charge)),
                Ok(Some(U256::from(charge)))
            );
        }
        let err = upto.settlement_amount(U256::from(50_001u64)).unwrap_err();
        assert_eq!(err.reason(), Reason::UPTO_SETTLEMENT_EXCEEDS_AMOUNT);
    }

    #[test]
    fn nonces_read_decimal_and_hex_and_write_decimal() {
        #[derive(Debug, Serialize, Deserialize, PartialEq)]
        struct N(#[serde(with = "nonce_u256")] U256);
        let n: N = serde_json::from_str(r#""255""#).unwrap();
        assert_eq!(n.0, U256::from(255u64));
        let n: N = serde_json::from_str(r#""0xff""#).unwrap();
        assert_eq!(n.0, U256::from(255u64));
        assert_eq!(serde_json::to_string(&n).unwrap(), r#""255""#);
        for bad in [r#""0x""#, r#""-1""#, r#""0xzz""#, r#""1e3""#, r#""""#] {
            assert!(serde_json::from_str::<N>(bad).is_err(), "{bad}");
        }
        let too_long = format!("\"0x1{}\"", "0".repeat(64));
        assert!(serde_json::from_str::<N>(&too_long).is_err());
    }
}
