//! Checking a payment against requirements: the pure part of a facilitator's `/verify`.
//!
//! [`select_requirement`] finds which of a route's requirements a payment answers (what a
//! resource server does), and [`verify_payment`] checks the payment against one requirement
//! (what a facilitator does): version, scheme, network, asset, then the checks of the payload's
//! kind ([`eip3009::verify`] for EIP-3009,
//! [`permit2::verify_exact`] and
//! [`permit2::verify_upto`] for Permit2). Ledger questions (balance,
//! nonce already used on chain) are left to whoever holds the ledger. Solana payments are
//! checked by the `x402-svm` crate, which decodes transactions.

use std::fmt;
use std::str::FromStr;

use alloy_primitives::{Address, B256, U256};

use crate::address::ChainAddress;
use crate::eip3009::{self, PaymentTerms, RecoveryBackend, SignatureError, TokenDomain};
use crate::exact::{EXACT, ExactEvmPayload};
use crate::facilitator::{PaymentPayload, PaymentRequirements};
use crate::network::{NetworkInfo, NetworkRegistry};
use crate::payload::SchemePayload;
use crate::permit2::{
    self, ASSET_TRANSFER_METHOD, ExactPermit2Payload, ExactPermit2Terms, UPTO, UptoPermit2Payload,
    UptoTerms,
};
use crate::reason::Reason;

/// A payment that does not satisfy the requirements: a reason code, a human message, and the
/// claimed payer when the payload named one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {message}")]
pub struct InvalidPayment {
    /// Machine-readable code.
    pub reason: Reason,
    /// What was wrong, for people.
    pub message: String,
    /// The payer the payload names, unverified.
    pub payer: Option<ChainAddress>,
}

impl InvalidPayment {
    /// A rejection with a reason and message.
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        InvalidPayment {
            reason,
            message: message.into(),
            payer: None,
        }
    }

    /// Names the payer the payload claims.
    pub fn with_payer(mut self, payer: Option<ChainAddress>) -> Self {
        self.payer = payer.or(self.payer);
        self
    }
}

/// What makes one payment unique: at most one request may be served with it, and the journal
/// files it under this key. Built by the verifier of the payment's kind, for example
/// `eip155:8453/eip3009/<token>/<payer>/<nonce>` (lower-case hex).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PaymentKey(String);

impl PaymentKey {
    /// A key from its parts, joined with `/`.
    pub fn from_parts<I, S>(parts: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut key = String::with_capacity(160);
        for (i, part) in parts.into_iter().enumerate() {
            if i > 0 {
                key.push('/');
            }
            key.push_str(part.as_ref());
        }
        PaymentKey(key)
    }

    /// A key stored earlier, as text.
    pub fn from_stored(text: impl Into<String>) -> Self {
        PaymentKey(text.into())
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key of an EIP-3009 authorization: `(chain, token, from, nonce)` is what the token
    /// contract records.
    pub fn eip3009(chain_id: u64, token: Address, payload: &ExactEvmPayload) -> Self {
        let auth = &payload.authorization;
        PaymentKey(format!(
            "eip155:{chain_id}/eip3009/{token:x}/{:x}/{:x}",
            auth.from, auth.nonce
        ))
    }
}

impl PaymentKey {
    /// The key of a Permit2 transfer (`exact` or `upto`): Permit2 records each
    /// `(owner, nonce)` once on a chain, whatever the token or spender, so the key is
    /// `eip155:<chain>/permit2/<from>/<nonce in hex>`.
    pub fn permit2(chain_id: u64, from: Address, nonce: U256) -> Self {
        PaymentKey(format!("eip155:{chain_id}/permit2/{from:x}/{nonce:x}"))
    }
}

impl fmt::Display for PaymentKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How far the payer's signature was checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureCheck {
    /// ECDSA recovery gave the payer: nothing is left to check.
    Recovered,
    /// Not a 65-byte ECDSA signature that recovers to the payer, but possibly a contract
    /// wallet's (ERC-1271, or ERC-6492 for one not deployed yet), which only the chain can
    /// check. Whoever admits the payment must check the payload's signature over `digest` for
    /// the payer on chain, or refuse the payment with `without_chain`.
    OnChain {
        /// The EIP-712 digest the payer signed (EIP-3009 or Permit2).
        digest: B256,
        /// The refusal when nobody can check on chain:
        /// [`Reason::SMART_WALLET_NEEDS_RPC`] for a signature that is not 65 bytes, the
        /// scheme's invalid-signature reason for a 65-byte one made by another key (a forged
        /// signature, unless the payer is a contract wallet).
        without_chain: Box<InvalidPayment>,
    },
    /// Not checked at all: the payment was only read, for a remote facilitator to verify.
    Unchecked,
}

impl SignatureCheck {
    /// Whether ECDSA recovery already proved the payer.
    pub fn is_recovered(&self) -> bool {
        matches!(self, SignatureCheck::Recovered)
    }
}

/// A payment that passed every check a verifier can make without a ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedPayment {
    /// The payer: proven by the signature when [`signature`](Self::signature) is
    /// [`SignatureCheck::Recovered`], else only claimed until the chain confirms it.
    pub payer: ChainAddress,
    /// The network it pays on.
    pub network: NetworkInfo,
    /// The token contract or mint.
    pub asset: ChainAddress,
    /// The recipient.
    pub pay_to: ChainAddress,
    /// The amount it authorizes, in atomic units (for `upto`, the signed maximum: the charge
    /// is chosen at settlement).
    pub amount: U256,
    /// What makes it unique.
    pub key: PaymentKey,
    /// Unix time after which it can no longer be settled, when the payload says
    /// (`validBefore`, a Permit2 `deadline`); `None` when it depends on the chain (a Solana
    /// blockhash).
    pub expires_at: Option<u64>,
    /// How far the signature was checked: a contract wallet's is left to the chain.
    pub signature: SignatureCheck,
}

/// What a requirements entry asks for an EIP-3009 payment, resolved: network, token domain,
/// recipient, amount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequirementTerms {
    /// The network.
    pub network: NetworkInfo,
    /// Its EIP-155 chain id.
    pub chain_id: u64,
    /// The token contract.
    pub asset: Address,
    /// The token's EIP-712 domain name.
    pub eip712_name: String,
    /// The token's EIP-712 domain version.
    pub eip712_version: String,
    /// The recipient.
    pub pay_to: Address,
    /// The amount in atomic units.
    pub amount: U256,
}

impl RequirementTerms {
    /// Resolves a requirements entry on an EVM network: the network must be known to
    /// `registry`, `asset` and `payTo` must be addresses, and the EIP-712 domain comes from
    /// `extra` (or, when absent, from the registry's record of the token).
    pub fn resolve(
        requirements: &PaymentRequirements,
        registry: &NetworkRegistry,
    ) -> Result<Self, InvalidPayment> {
        let network = registry
            .network(requirements.network())
            .map_err(|e| InvalidPayment::new(Reason::INVALID_NETWORK, e.to_string()))?;
        let Some(chain_id) = network.chain_id() else {
            return Err(InvalidPayment::new(
                Reason::INVALID_NETWORK,
                format!(
                    "{} is not an EVM network; an EIP-3009 authorization cannot pay there",
                    network.name
                ),
            ));
        };
        let asset = parse_address("asset", requirements.asset())?;
        let pay_to = parse_address("payTo", requirements.pay_to())?;
        let extra = requirements.extra();
        let extra_str = |key: &str| {
            extra
                .and_then(|e| e.get(key))
                .and_then(serde_json::Value::as_str)
        };
        let known = registry.asset(network, asset);
        let (Some(name), Some(version)) = (
            extra_str("name").or(known.map(|a| a.eip712_name.as_ref())),
            extra_str("version").or(known.map(|a| a.eip712_version.as_ref())),
        ) else {
            return Err(InvalidPayment::new(
                Reason::INVALID_PAYMENT_REQUIREMENTS,
                format!(
                    "the requirement's extra lacks the token's EIP-712 name and version, and {asset} is not a known token"
                ),
            ));
        };
        Ok(RequirementTerms {
            eip712_name: name.to_owned(),
            eip712_version: version.to_owned(),
            network: network.clone(),
            chain_id,
            asset,
            pay_to,
            amount: requirements.amount(),
        })
    }

    /// The terms in the form [`eip3009`] signs and verifies.
    pub fn as_terms(&self) -> PaymentTerms<'_> {
        PaymentTerms {
            token: TokenDomain {
                name: &self.eip712_name,
                version: &self.eip712_version,
                chain_id: self.chain_id,
                verifying_contract: self.asset,
            },
            pay_to: self.pay_to,
            amount: self.amount,
        }
    }
}

/// Parses a `0x` address as written in requirements.
pub fn parse_address(field: &str, value: &str) -> Result<Address, InvalidPayment> {
    Address::from_str(value).map_err(|_| {
        InvalidPayment::new(
            Reason::INVALID_PAYMENT_REQUIREMENTS,
            format!("{field} {value:?} is not an EVM address"),
        )
    })
}

/// Whether two addresses as written on the wire name the same account: EVM hex compares
/// without regard to case (checksums), base58 exactly.
pub fn same_address(a: &str, b: &str) -> bool {
    if a.starts_with("0x") || a.starts_with("0X") {
        a.eq_ignore_ascii_case(b)
    } else {
        a == b
    }
}

/// Whether every key of `required` (the server's `extra`) is present in `echoed` (the client's
/// `accepted.extra`) with an equal value. Clients may add keys; they may not drop or change the
/// server's.
pub fn extra_is_subset(
    required: Option<&serde_json::Value>,
    echoed: Option<&serde_json::Value>,
) -> bool {
    match required.and_then(serde_json::Value::as_object) {
        None => true,
        Some(required) => {
            let echoed = echoed.and_then(serde_json::Value::as_object);
            required
                .iter()
                .all(|(key, value)| echoed.and_then(|e| e.get(key)) == Some(value))
        }
    }
}

/// Finds the requirement a payment answers among a route's `accepts` (all of the payment's
/// generation), and says precisely why when none does.
///
/// A v2 payment names the entry it pays in `accepted`: it must match one entry's scheme,
/// network, asset, recipient and amount exactly, and carry every key of that entry's `extra`
/// unchanged (the reference servers match the same way). A v1 payment is matched by scheme and
/// network, as the reference servers do; among several entries left (one network and token
/// offered at several amounts), the one whose amount an EIP-3009 authorization pays is chosen,
/// and its amount and recipient are checked later by [`verify_payment`].
pub fn select_requirement<'r>(
    payload: &PaymentPayload,
    accepts: &'r [PaymentRequirements],
) -> Result<&'r PaymentRequirements, InvalidPayment> {
    let payer = payload.payload().claimed_payer();
    let fail = |reason: Reason, message: String| {
        Err(InvalidPayment::new(reason, message).with_payer(payer))
    };
    let same_version: Vec<_> = accepts
        .iter()
        .filter(|r| r.version() == payload.version())
        .collect();
    if same_version.is_empty() {
        return fail(
            Reason::INVALID_X402_VERSION,
            format!(
                "this route does not accept x402 {} payments",
                payload.version()
            ),
        );
    }
    let same_scheme: Vec<_> = same_version
        .into_iter()
        .filter(|r| r.scheme() == payload.scheme())
        .collect();
    if same_scheme.is_empty() {
        let offered: Vec<_> = accepts.iter().map(PaymentRequirements::scheme).collect();
        return fail(
            Reason::UNSUPPORTED_SCHEME,
            format!(
                "scheme {:?} is not accepted here; accepted: {}",
                payload.scheme(),
                dedup(offered).join(", ")
            ),
        );
    }
    let same_network: Vec<_> = same_scheme
        .into_iter()
        .filter(|r| r.network() == payload.network())
        .collect();
    if same_network.is_empty() {
        let accepted: Vec<_> = accepts.iter().map(PaymentRequirements::network).collect();
        return fail(
            Reason::INVALID_NETWORK,
            format!(
                "network {:?} is not accepted here; accepted: {}",
                payload.network(),
                dedup(accepted).join(", ")
            ),
        );
    }
    let PaymentPayload::V2(p) = payload else {
        // v1: choose by the amount an authorization pays, else the first entry.
        let value = payload
            .payload()
            .as_eip3009()
            .map(|p| p.authorization.value);
        return Ok(same_network
            .iter()
            .find(|r| Some(r.amount()) == value)
            .copied()
            .unwrap_or(same_network[0]));
    };
    let accepted = &p.accepted;
    let same_asset: Vec<_> = same_network
        .iter()
        .filter(|r| same_address(r.asset(), &accepted.asset))
        .copied()
        .collect();
    if same_asset.is_empty() {
        return fail(
            Reason::ASSET_MISMATCH,
            format!(
                "asset {} is not accepted on {}; accepted: {}",
                accepted.asset,
                accepted.network,
                same_network
                    .iter()
                    .map(|r| r.asset())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }
    let same_pay_to: Vec<_> = same_asset
        .iter()
        .filter(|r| same_address(r.pay_to(), &accepted.pay_to))
        .copied()
        .collect();
    if same_pay_to.is_empty() {
        return fail(
            Reason::ACCEPTED_MISMATCH,
            format!(
                "`accepted.payTo` {} is not the recipient this route names ({})",
                accepted.pay_to,
                same_asset[0].pay_to()
            ),
        );
    }
    let Some(same_amount) = same_pay_to
        .iter()
        .find(|r| r.amount() == accepted.amount)
        .copied()
    else {
        return fail(
            Reason::ACCEPTED_MISMATCH,
            format!(
                "`accepted.amount` {} is not an amount this route asks ({})",
                accepted.amount,
                same_pay_to
                    .iter()
                    .map(|r| r.amount().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    };
    if !extra_is_subset(same_amount.extra(), accepted.extra.as_ref()) {
        return fail(
            Reason::ACCEPTED_MISMATCH,
            "`accepted.extra` drops or changes what the route's `extra` says; echo the entry unchanged"
                .to_owned(),
        );
    }
    Ok(same_amount)
}

fn dedup(mut items: Vec<&str>) -> Vec<&str> {
    items.sort_unstable();
    items.dedup();
    items
}

/// Checks a payment against the requirement it claims to answer, at unix time `now`.
///
/// Runs, in order: same protocol version; a scheme this crate verifies; same network, known to
/// `registry`; (v2) `accepted.asset` equals the requirement's asset; then the checks of the
/// payload's kind. For an EIP-3009 payload: the EIP-712 domain from `extra` (or, when absent,
/// from the registry's record of the token), then [`eip3009::verify`]. For a Permit2 `exact`
/// payload: the requirement offers Permit2, then [`permit2::verify_exact`]. For an `upto`
/// payload: the requirement's `extra.facilitatorAddress`, then [`permit2::verify_upto`].
///
/// Only what can be proven offline is accepted: a signature only a chain can judge (a contract
/// wallet's, see [`SignatureCheck::OnChain`]) is refused, with
/// [`Reason::SMART_WALLET_NEEDS_RPC`] when it is not 65 bytes long and as an invalid signature
/// when it is 65 bytes made by another key. [`verify_eip3009`], [`verify_exact_permit2`] and
/// [`verify_upto_permit2`] leave it to the chain instead, for a facilitator that has one.
pub fn verify_payment(
    payload: &PaymentPayload,
    requirements: &PaymentRequirements,
    registry: &NetworkRegistry,
    now: u64,
) -> Result<VerifiedPayment, InvalidPayment> {
    verify_payment_with(
        RecoveryBackend::default(),
        payload,
        requirements,
        registry,
        now,
    )
}

/// The checks every kind of payment shares: version, network and asset agree between the
/// payment and the requirement. Returns the requirement's network.
pub fn check_common<'r>(
    payload: &PaymentPayload,
    requirements: &PaymentRequirements,
    registry: &'r NetworkRegistry,
) -> Result<&'r NetworkInfo, InvalidPayment> {
    let payer = payload.payload().claimed_payer();
    let fail = |reason: Reason, message: String| {
        Err(InvalidPayment::new(reason, message).with_payer(payer))
    };
    if payload.version() != requirements.version() {
        return fail(
            Reason::INVALID_X402_VERSION,
            format!(
                "payment is x402 {} but the requirements are {}",
                payload.version(),
                requirements.version()
            ),
        );
    }
    if payload.scheme() != requirements.scheme() {
        return fail(
            Reason::INVALID_SCHEME,
            format!(
                "payment is for scheme {:?} but the requirement is {:?}",
                payload.scheme(),
                requirements.scheme()
            ),
        );
    }
    if payload.network() != requirements.network() {
        return fail(
            Reason::INVALID_NETWORK,
            format!(
                "payment is for {:?} but the requirement is for {:?}",
                payload.network(),
                requirements.network()
            ),
        );
    }
    let network = registry.network(requirements.network()).map_err(|e| {
        InvalidPayment::new(Reason::INVALID_NETWORK, e.to_string()).with_payer(payer)
    })?;
    if let PaymentPayload::V2(p) = payload
        && !same_address(&p.accepted.asset, requirements.asset())
    {
        return fail(
            Reason::ASSET_MISMATCH,
            format!(
                "payment is in {} but the requirement is {}",
                p.accepted.asset,
                requirements.asset()
            ),
        );
    }
    Ok(network)
}

/// [`verify_payment`] with an explicit signature-recovery backend.
pub fn verify_payment_with(
    backend: RecoveryBackend,
    payload: &PaymentPayload,
    requirements: &PaymentRequirements,
    registry: &NetworkRegistry,
    now: u64,
) -> Result<VerifiedPayment, InvalidPayment> {
    let network = check_common(payload, requirements, registry)?;
    let payer = payload.payload().claimed_payer();
    let verified = match (requirements.scheme(), payload.payload()) {
        (EXACT, SchemePayload::Eip3009(exact)) => {
            verify_eip3009(backend, exact, requirements, registry, now)
        }
        (EXACT, SchemePayload::Permit2Exact(exact)) => {
            verify_exact_permit2(backend, exact, requirements, registry, now)
        }
        (UPTO, SchemePayload::Permit2Upto(upto)) => {
            verify_upto_permit2(backend, upto, requirements, registry, now, None)
        }
        (_, SchemePayload::Solana(_)) => Err(InvalidPayment::new(
            Reason::UNSUPPORTED_SCHEME,
            format!(
                "Solana payments on {} are verified by the x402-svm crate, which this verifier does not include",
                network.name
            ),
        )),
        (scheme, kind) => Err(InvalidPayment::new(
            Reason::UNSUPPORTED_SCHEME,
            format!(
                "scheme {scheme:?} cannot be paid with a {} payload",
                kind.kind()
            ),
        )
        .with_payer(payer)),
    }?;
    match verified.signature {
        SignatureCheck::OnChain { without_chain, .. } => Err(*without_chain),
        _ => Ok(verified),
    }
}

/// How a signature check failed, as far as deferring it to the chain goes.
enum SignatureFailure {
    /// Not 65 bytes: only a contract wallet's (ERC-1271, ERC-6492) can be valid.
    Length(usize),
    /// 65 bytes made by another key: forged, unless the payer is a contract wallet that its
    /// owner's key signs for.
    OtherSigner,
    /// Malformed or malleable: refused.
    Malformed,
}

impl SignatureFailure {
    fn of(error: &SignatureError) -> Self {
        match error {
            SignatureError::Length(length) => SignatureFailure::Length(*length),
            _ => SignatureFailure::Malformed,
        }
    }
}

/// The outcome of a failed signature check of a payment whose every other check passed: a
/// signature the chain may still accept becomes [`SignatureCheck::OnChain`]; a malformed one
/// stays refused with `invalid`.
fn defer_to_chain(
    failure: SignatureFailure,
    invalid: InvalidPayment,
    digest: B256,
    from: Address,
) -> Result<(Address, SignatureCheck), InvalidPayment> {
    let claimed = Some(ChainAddress::Evm(from));
    let without_chain = match failure {
        SignatureFailure::Length(length) => InvalidPayment::new(
            Reason::SMART_WALLET_NEEDS_RPC,
            format!(
                "the {length}-byte signature can only be a contract wallet's (ERC-1271 or ERC-6492), which needs an RPC for the chain to check, and none is configured here"
            ),
        ),
        SignatureFailure::OtherSigner => invalid,
        SignatureFailure::Malformed => return Err(invalid.with_payer(claimed)),
    };
    Ok((
        from,
        SignatureCheck::OnChain {
            digest,
            without_chain: Box::new(without_chain.with_payer(claimed)),
        },
    ))
}

/// Checks an EIP-3009 `exact` payload against its requirement (network, asset and version
/// already agree: see [`check_common`]).
///
/// A signature only a chain can judge is not refused here: the payment comes back with
/// [`SignatureCheck::OnChain`], which whoever admits it must honour.
pub fn verify_eip3009(
    backend: RecoveryBackend,
    exact: &ExactEvmPayload,
    requirements: &PaymentRequirements,
    registry: &NetworkRegistry,
    now: u64,
) -> Result<VerifiedPayment, InvalidPayment> {
    let claimed = Some(ChainAddress::Evm(exact.authorization.from));
    let terms =
        RequirementTerms::resolve(requirements, registry).map_err(|e| e.with_payer(claimed))?;
    let (payer, signature) = match eip3009::verify_with(backend, exact, &terms.as_terms(), now) {
        Ok(payer) => (payer, SignatureCheck::Recovered),
        Err(e) => {
            let failure = match &e {
                eip3009::VerifyError::Signature(error) => SignatureFailure::of(error),
                eip3009::VerifyError::WrongSigner { .. } => SignatureFailure::OtherSigner,
                _ => {
                    return Err(InvalidPayment::new(e.reason(), e.to_string()).with_payer(claimed));
                }
            };
            let digest = terms.as_terms().token.signing_hash(&exact.authorization);
            defer_to_chain(
                failure,
                InvalidPayment::new(e.reason(), e.to_string()),
                digest,
                exact.authorization.from,
            )?
        }
    };
    Ok(VerifiedPayment {
        signature,
        payer: ChainAddress::Evm(payer),
        key: PaymentKey::eip3009(terms.chain_id, terms.asset, exact),
        expires_at: Some(exact.authorization.valid_before.saturating_to::<u64>()),
        network: terms.network,
        asset: ChainAddress::Evm(terms.asset),
        pay_to: ChainAddress::Evm(terms.pay_to),
        amount: terms.amount,
    })
}

/// Network, chain id, asset and recipient of a requirements entry on an EVM network.
pub(crate) struct EvmTerms {
    pub(crate) network: NetworkInfo,
    pub(crate) chain_id: u64,
    pub(crate) asset: Address,
    pub(crate) pay_to: Address,
}

/// Resolves a requirements entry on an EVM network, for a `kind` payment (named in errors).
pub(crate) fn resolve_evm(
    requirements: &PaymentRequirements,
    registry: &NetworkRegistry,
    kind: &str,
) -> Result<EvmTerms, InvalidPayment> {
    let network = registry
        .network(requirements.network())
        .map_err(|e| InvalidPayment::new(Reason::INVALID_NETWORK, e.to_string()))?;
    let Some(chain_id) = network.chain_id() else {
        return Err(InvalidPayment::new(
            Reason::INVALID_NETWORK,
            format!(
                "{} is not an EVM network; a {kind} payment cannot pay there",
                network.name
            ),
        ));
    };
    Ok(EvmTerms {
        chain_id,
        asset: parse_address("asset", requirements.asset())?,
        pay_to: parse_address("payTo", requirements.pay_to())?,
        network: network.clone(),
    })
}

/// A string field of a requirement's `extra`.
pub(crate) fn extra_str<'r>(requirements: &'r PaymentRequirements, key: &str) -> Option<&'r str> {
    requirements
        .extra()
        .and_then(|e| e.get(key))
        .and_then(serde_json::Value::as_str)
}

/// Checks a Permit2 `exact` payload against its requirement (network, asset and version
/// already agree: see [`check_common`]). The requirement must offer Permit2
/// (`extra.assetTransferMethod: "permit2"`); then [`permit2::verify_exact_with`].
///
/// The payer's Permit2 allowance and balance are the chain's business; when the allowance is
/// short, a gas-sponsoring extension in the payment may make up for it: check it with
/// [`crate::eip2612::Eip2612GasSponsoring::check`] or
/// [`crate::erc20_approval::Erc20ApprovalGasSponsoring::check`].
///
/// A signature only a chain can judge is not refused here: the payment comes back with
/// [`SignatureCheck::OnChain`], which whoever admits it must honour.
pub fn verify_exact_permit2(
    backend: RecoveryBackend,
    exact: &ExactPermit2Payload,
    requirements: &PaymentRequirements,
    registry: &NetworkRegistry,
    now: u64,
) -> Result<VerifiedPayment, InvalidPayment> {
    let auth = &exact.permit2_authorization;
    let claimed = Some(ChainAddress::Evm(auth.from));
    if extra_str(requirements, "assetTransferMethod") != Some(ASSET_TRANSFER_METHOD) {
        return Err(InvalidPayment::new(
            Reason::ASSET_TRANSFER_METHOD_MISMATCH,
            "this requirement does not offer Permit2 (its extra.assetTransferMethod is not \"permit2\")",
        )
        .with_payer(claimed));
    }
    let evm = resolve_evm(requirements, registry, "Permit2").map_err(|e| e.with_payer(claimed))?;
    let terms = ExactPermit2Terms {
        chain_id: evm.chain_id,
        token: evm.asset,
        pay_to: evm.pay_to,
        amount: requirements.amount(),
    };
    let (payer, signature) = permit2_outcome(
        permit2::verify_exact_with(backend, exact, &terms, now),
        auth.signing_hash(evm.chain_id),
        auth.from,
    )?;
    Ok(VerifiedPayment {
        signature,
        payer: ChainAddress::Evm(payer),
        key: PaymentKey::permit2(evm.chain_id, auth.from, auth.nonce),
        expires_at: Some(auth.deadline.saturating_to::<u64>()),
        network: evm.network,
        asset: ChainAddress::Evm(evm.asset),
        pay_to: ChainAddress::Evm(evm.pay_to),
        amount: terms.amount,
    })
}

/// Checks an `upto` payload against its requirement (network, asset and version already
/// agree: see [`check_common`]), then [`permit2::verify_upto_with`].
///
/// `witness.facilitator` must be one of `facilitators` when given (a facilitator passes its
/// own signer addresses), else the requirement's `extra.facilitatorAddress` (what a resource
/// server can check). The returned amount is the signed maximum; the charge is chosen at
/// settlement.
///
/// A signature only a chain can judge is not refused here: the payment comes back with
/// [`SignatureCheck::OnChain`], which whoever admits it must honour.
pub fn verify_upto_permit2(
    backend: RecoveryBackend,
    upto: &UptoPermit2Payload,
    requirements: &PaymentRequirements,
    registry: &NetworkRegistry,
    now: u64,
    facilitators: Option<&[Address]>,
) -> Result<VerifiedPayment, InvalidPayment> {
    let auth = &upto.permit2_authorization;
    let claimed = Some(ChainAddress::Evm(auth.from));
    let evm = resolve_evm(requirements, registry, "upto").map_err(|e| e.with_payer(claimed))?;
    let named;
    let facilitators = match facilitators {
        Some(list) => list,
        None => {
            let Some(text) = extra_str(requirements, "facilitatorAddress") else {
                return Err(InvalidPayment::new(
                    Reason::INVALID_PAYMENT_REQUIREMENTS,
                    "an upto requirement names the facilitator that may settle in extra.facilitatorAddress; this one does not",
                )
                .with_payer(claimed));
            };
            named = [parse_address("extra.facilitatorAddress", text)
                .map_err(|e| e.with_payer(claimed))?];
            &named[..]
        }
    };
    let terms = UptoTerms {
        chain_id: evm.chain_id,
        token: evm.asset,
        pay_to: evm.pay_to,
        amount: requirements.amount(),
        facilitators,
    };
    let (payer, signature) = permit2_outcome(
        permit2::verify_upto_with(backend, upto, &terms, now),
        auth.signing_hash(evm.chain_id),
        auth.from,
    )?;
    Ok(VerifiedPayment {
        signature,
        payer: ChainAddress::Evm(payer),
        key: PaymentKey::permit2(evm.chain_id, auth.from, auth.nonce),
        expires_at: Some(auth.deadline.saturating_to::<u64>()),
        network: evm.network,
        asset: ChainAddress::Evm(evm.asset),
        pay_to: ChainAddress::Evm(evm.pay_to),
        amount: auth.permitted.amount,
    })
}

/// The signature outcome of a Permit2 check (see [`defer_to_chain`]).
fn permit2_outcome(
    result: Result<Address, permit2::Permit2Error>,
    digest: B256,
    from: Address,
) -> Result<(Address, SignatureCheck), InvalidPayment> {
    match result {
        Ok(payer) => Ok((payer, SignatureCheck::Recovered)),
        Err(e) => {
            let invalid = InvalidPayment::new(e.reason(), e.to_string());
            let failure = match &e {
                permit2::Permit2Error::Signature(error) => SignatureFailure::of(error),
                permit2::Permit2Error::WrongSigner { .. } => SignatureFailure::OtherSigner,
                _ => return Err(invalid.with_payer(Some(ChainAddress::Evm(from)))),
            };
            defer_to_chain(failure, invalid, digest, from)
        }
    }
}
