//! Checking a payment against requirements: the pure part of a facilitator's `/verify`.
//!
//! [`select_requirement`] finds which of a route's requirements a payment answers (what a
//! resource server does), and [`verify_payment`] checks the payment against one requirement
//! (what a facilitator does): version, scheme, network, asset, then the EIP-3009 checks of
//! [`eip3009::verify`](crate::eip3009::verify). Ledger questions (balance, nonce already used
//! on chain) are left to whoever holds the ledger.

use std::str::FromStr;

use alloy_primitives::{Address, U256};

use crate::eip3009::{self, PaymentTerms, RecoveryBackend, TokenDomain};
use crate::exact::EXACT;
use crate::facilitator::{PaymentPayload, PaymentRequirements};
use crate::network::{NetworkInfo, NetworkRegistry};
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
    /// `authorization.from` of the payload, unverified.
    pub payer: Option<Address>,
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

    fn with_payer(mut self, payer: Address) -> Self {
        self.payer = Some(payer);
        self
    }
}

/// A payment that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedPayment {
    /// The payer, recovered from the signature.
    pub payer: Address,
    /// The network it pays on.
    pub network: NetworkInfo,
    /// The token contract.
    pub asset: Address,
    /// The amount, in atomic units.
    pub amount: U256,
}

/// What a requirements entry asks for, resolved: network, token domain, recipient, amount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequirementTerms {
    /// The network.
    pub network: NetworkInfo,
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
    /// Resolves a requirements entry: the network must be known to `registry`, `asset` and
    /// `payTo` must be addresses, and the EIP-712 domain comes from `extra` (or, when absent,
    /// from the registry's record of the token).
    pub fn resolve(
        requirements: &PaymentRequirements,
        registry: &NetworkRegistry,
    ) -> Result<Self, InvalidPayment> {
        let network = registry
            .network(requirements.network())
            .map_err(|e| InvalidPayment::new(Reason::INVALID_NETWORK, e.to_string()))?;
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
                chain_id: self.network.chain_id,
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

/// Finds the requirement a payment answers among a route's `accepts` (all of the payment's
/// generation), and says precisely why when none does.
///
/// v1 payments are matched by scheme and network, as the reference servers do; v2 payments
/// also by asset, because `accepted` names it. Among several entries left (one network and
/// token offered at several amounts), the one whose amount the authorization pays is chosen.
/// Amount and recipient mismatches are left to [`verify_payment`], which reports them with
/// their own reasons.
pub fn select_requirement<'r>(
    payload: &PaymentPayload,
    accepts: &'r [PaymentRequirements],
) -> Result<&'r PaymentRequirements, InvalidPayment> {
    let payer = payload.exact().authorization.from;
    let same_version: Vec<_> = accepts
        .iter()
        .filter(|r| r.version() == payload.version())
        .collect();
    if same_version.is_empty() {
        return Err(InvalidPayment::new(
            Reason::INVALID_X402_VERSION,
            format!(
                "this route does not accept x402 {} payments",
                payload.version()
            ),
        )
        .with_payer(payer));
    }
    let same_scheme: Vec<_> = same_version
        .into_iter()
        .filter(|r| r.scheme() == payload.scheme())
        .collect();
    if same_scheme.is_empty() {
        return Err(InvalidPayment::new(
            Reason::UNSUPPORTED_SCHEME,
            format!(
                "scheme {:?} is not accepted here; use \"exact\"",
                payload.scheme()
            ),
        )
        .with_payer(payer));
    }
    let same_network: Vec<_> = same_scheme
        .into_iter()
        .filter(|r| r.network() == payload.network())
        .collect();
    if same_network.is_empty() {
        let accepted: Vec<_> = accepts.iter().map(PaymentRequirements::network).collect();
        return Err(InvalidPayment::new(
            Reason::INVALID_NETWORK,
            format!(
                "network {:?} is not accepted here; accepted: {}",
                payload.network(),
                accepted.join(", ")
            ),
        )
        .with_payer(payer));
    }
    let candidates: Vec<_> = match payload {
        PaymentPayload::V1(_) => same_network,
        PaymentPayload::V2(p) => {
            let same_asset: Vec<_> = same_network
                .iter()
                .filter(|r| r.asset().eq_ignore_ascii_case(&p.accepted.asset))
                .copied()
                .collect();
            if same_asset.is_empty() {
                return Err(InvalidPayment::new(
                    Reason::ASSET_MISMATCH,
                    format!(
                        "asset {} is not accepted on {}; accepted: {}",
                        p.accepted.asset,
                        p.accepted.network,
                        same_network
                            .iter()
                            .map(|r| r.asset())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
                .with_payer(payer));
            }
            same_asset
        }
    };
    // A route may offer several amounts on one network and token (a per-request price and a
    // prepaid balance): take the one the authorization pays, else the first, whose amount
    // check will then say what is wrong.
    let value = payload.exact().authorization.value;
    Ok(candidates
        .iter()
        .find(|r| r.amount() == value)
        .copied()
        .unwrap_or(candidates[0]))
}

/// Checks a payment against the requirement it claims to answer, at unix time `now`.
///
/// Runs, in order: same protocol version; scheme `exact`; same network, known to `registry`;
/// (v2) `accepted.asset` equals the requirement's asset; the EIP-712 domain from `extra` (or,
/// when absent, from the registry's record of the token); then [`eip3009::verify`].
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

/// [`verify_payment`] with an explicit signature-recovery backend.
pub fn verify_payment_with(
    backend: RecoveryBackend,
    payload: &PaymentPayload,
    requirements: &PaymentRequirements,
    registry: &NetworkRegistry,
    now: u64,
) -> Result<VerifiedPayment, InvalidPayment> {
    let authorization = &payload.exact().authorization;
    let payer = authorization.from;
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
    if requirements.scheme() != EXACT || payload.scheme() != EXACT {
        return fail(
            Reason::UNSUPPORTED_SCHEME,
            format!(
                "only the \"exact\" scheme is supported, got {:?}",
                payload.scheme()
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
    let terms =
        RequirementTerms::resolve(requirements, registry).map_err(|e| e.with_payer(payer))?;
    if let PaymentPayload::V2(p) = payload
        && !p.accepted.asset.eq_ignore_ascii_case(requirements.asset())
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
    let payer = eip3009::verify_with(backend, payload.exact(), &terms.as_terms(), now)
        .map_err(|e| InvalidPayment::new(e.reason(), e.to_string()).with_payer(payer))?;
    Ok(VerifiedPayment {
        payer,
        network: terms.network,
        asset: terms.asset,
        amount: terms.amount,
    })
}
