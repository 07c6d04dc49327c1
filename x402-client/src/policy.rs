//! Which of a 402's offers to pay, and whether to pay at all: known networks and tokens,
//! preferences, the per-request cap and the total budget.
//!
//! # Units of caps and budgets
//!
//! Caps and budgets are written like prices: `"$0.10"` (or `"0.10 USD"`) is a limit in US
//! dollars and covers every token the [`NetworkRegistry`] marks as a USD stablecoin (USDC on
//! every network), summed across networks; `"5 EURC"` is a limit in that token, by symbol,
//! summed across networks. A payment must fit every limit that covers its token, and a token
//! that no configured limit covers is not paid at all (fail closed). Amounts are compared
//! exactly, scaled by each token's decimals; nothing goes through floating point.
//!
//! # Chains
//!
//! EVM offers are considered only when the payer has an EVM signer
//! ([`PaymentSigner`](crate::PaymentSigner)), Solana offers only when it has a Solana signer
//! ([`SolanaPaymentSigner`](crate::SolanaPaymentSigner)); the refusal of the others says so.
//! Caps, budgets and preferences apply to both alike: USDC on Solana is a USD stablecoin like
//! USDC on Base, so `"$0.10"` covers both.
//!
//! The budget counts every authorization the client signs, whether or not the server then
//! settles it: a signed authorization can be settled by whoever holds it until it expires, so
//! it is money committed.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use alloy_primitives::U256;
use x402_protocol::amount::format_units;
use x402_protocol::exact::EXACT;
use x402_protocol::facilitator::PaymentRequirements;
use x402_protocol::verify::RequirementTerms;
use x402_protocol::{
    AssetInfo, ChainAddress, Family, NetworkInfo, NetworkRegistry, Price, PriceUnit, SolanaAddress,
};

use crate::challenge::{Challenge, Offered, describe_amount};

/// Fixed-point precision used to compare amounts of tokens with different decimals.
const VALUE_DECIMALS: u8 = 18;

/// What a limit is counted in.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LimitUnit {
    /// US dollars, covering every USD stablecoin.
    Usd,
    /// A token, by upper-case symbol.
    Token(String),
}

impl fmt::Display for LimitUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LimitUnit::Usd => f.write_str("USD"),
            LimitUnit::Token(symbol) => f.write_str(symbol),
        }
    }
}

/// An amount in a [`LimitUnit`], held with 18 decimals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Value(U256);

impl Value {
    /// `atomic` units of a token with `decimals`, rounded up when the token has more than 18
    /// decimals (so a limit is never under-counted).
    fn of(atomic: U256, decimals: u8) -> Option<Value> {
        if decimals <= VALUE_DECIMALS {
            let factor = U256::from(10u8).checked_pow(U256::from(VALUE_DECIMALS - decimals))?;
            atomic.checked_mul(factor).map(Value)
        } else {
            let divisor = U256::from(10u8).checked_pow(U256::from(decimals - VALUE_DECIMALS))?;
            let (quotient, remainder) = atomic.div_rem(divisor);
            Some(Value(if remainder.is_zero() {
                quotient
            } else {
                quotient.saturating_add(U256::from(1u8))
            }))
        }
    }

    fn display(self, unit: &LimitUnit) -> String {
        let number = format_units(self.0, VALUE_DECIMALS);
        match unit {
            LimitUnit::Usd => {
                // Cents at least: `$0.10`, `$0.00`, `$0.005`.
                let decimals = number.split_once('.').map_or(0, |(_, f)| f.len());
                let padding = "0".repeat(2usize.saturating_sub(decimals));
                let dot = if decimals == 0 { "." } else { "" };
                format!("${number}{dot}{padding}")
            }
            LimitUnit::Token(symbol) => format!("{number} {symbol}"),
        }
    }
}

/// Why a limit could not be configured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("limit {text:?}: {reason}")]
pub struct LimitError {
    text: String,
    reason: String,
}

/// Parses `"$0.10"`, `"0.10 USD"`, `"0.10"` (dollars) or `"5 EURC"` into a limit.
pub(crate) fn parse_limit(text: &str) -> Result<(LimitUnit, U256), LimitError> {
    let fail = |reason: String| LimitError {
        text: text.to_owned(),
        reason,
    };
    let trimmed = text.trim();
    // A bare number is dollars: that is what `--max 0.05` means to people.
    let price = if trimmed.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        Price::usd(trimmed)
    } else {
        Price::from_str(trimmed)
    }
    .map_err(|e| fail(e.to_string()))?;
    let unit = match price.unit() {
        PriceUnit::Usd => LimitUnit::Usd,
        PriceUnit::Token(symbol) => LimitUnit::Token(symbol.to_ascii_uppercase()),
        PriceUnit::Atomic => {
            return Err(fail(
                "atomic units differ per token; write dollars (\"$0.10\") or a token (\"0.10 USDC\")"
                    .to_owned(),
            ));
        }
    };
    let value = price
        .amount()
        .to_atomic(VALUE_DECIMALS)
        .map_err(|e| fail(e.to_string()))?;
    Ok((unit, value))
}

/// Why one offered way to pay was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RefusalReason {
    /// The entry could not be parsed.
    Unreadable(String),
    /// A scheme other than `exact`.
    UnsupportedScheme(String),
    /// A network the client's registry does not know.
    UnknownNetwork(String),
    /// A network outside the client's allowed list.
    NetworkNotAllowed(String),
    /// The client has no key for the offer's chain family.
    NoSigner(Family),
    /// A token the client's registry does not know on that network (its decimals, and so its
    /// value, are unknown).
    UnknownAsset(String),
    /// The entry is inconsistent (bad address, no EIP-712 domain…).
    Invalid(String),
    /// No configured per-request cap covers the token.
    NoCap(String),
    /// Over the per-request cap.
    OverCap {
        /// The price.
        amount: String,
        /// The cap.
        cap: String,
    },
    /// No configured budget covers the token.
    NoBudget(String),
    /// The total budget does not have room for it.
    OverBudget {
        /// The price.
        amount: String,
        /// What is left of the budget.
        remaining: String,
    },
}

impl fmt::Display for RefusalReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RefusalReason::Unreadable(e) => write!(f, "unreadable entry: {e}"),
            RefusalReason::UnsupportedScheme(s) => {
                write!(f, "scheme {s:?} is not supported (only \"exact\")")
            }
            RefusalReason::UnknownNetwork(e) => write!(f, "{e}"),
            RefusalReason::NetworkNotAllowed(n) => {
                write!(f, "network {n} is not among the allowed networks")
            }
            RefusalReason::NoSigner(Family::Evm) => f.write_str(
                "an EVM offer, and this client has no EVM key (give the payer a PaymentSigner to pay on EVM chains)",
            ),
            RefusalReason::NoSigner(Family::Solana) => f.write_str(
                "a Solana offer, and this client has no Solana key (add one with PayerBuilder::solana to pay on Solana)",
            ),
            RefusalReason::UnknownAsset(e) => write!(f, "{e}"),
            RefusalReason::Invalid(e) => write!(f, "{e}"),
            RefusalReason::NoCap(symbol) => write!(
                f,
                "no per-request cap covers {symbol}; add one (e.g. \"1 {symbol}\") to pay in it"
            ),
            RefusalReason::OverCap { amount, cap } => {
                write!(f, "{amount} is over the per-request cap of {cap}")
            }
            RefusalReason::NoBudget(symbol) => write!(
                f,
                "no budget covers {symbol}; add one (e.g. \"10 {symbol}\") to pay in it"
            ),
            RefusalReason::OverBudget { amount, remaining } => {
                write!(
                    f,
                    "{amount} does not fit in the remaining budget of {remaining}"
                )
            }
        }
    }
}

/// One offered way to pay and why it was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The offer, for people.
    pub offer: String,
    /// Why.
    pub reason: RefusalReason,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.offer, self.reason)
    }
}

/// An offer the client can pay.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    /// Index in the challenge's `accepts`.
    pub(crate) index: usize,
    pub(crate) requirements: PaymentRequirements,
    pub(crate) network: NetworkInfo,
    pub(crate) asset: AssetInfo,
    pub(crate) pay_to: ChainAddress,
    value: Value,
    units: Vec<LimitUnit>,
    network_rank: usize,
    asset_rank: usize,
}

impl Candidate {
    pub(crate) fn amount(&self) -> U256 {
        self.requirements.amount()
    }

    pub(crate) fn amount_display(&self) -> String {
        format!(
            "{} {}",
            format_units(self.amount(), self.asset.decimals),
            self.asset.symbol
        )
    }
}

/// A preferred token: by address or by symbol.
#[derive(Debug, Clone)]
enum AssetPreference {
    Address(ChainAddress),
    Symbol(String),
}

/// The client's rules for choosing and limiting payments.
#[derive(Debug, Clone)]
pub(crate) struct Policy {
    pub(crate) registry: NetworkRegistry,
    /// Chain ids allowed; `None` allows every known network.
    allowed: Option<Vec<String>>,
    preferred_networks: Vec<String>,
    preferred_assets: Vec<AssetPreference>,
    /// `None`: no per-request cap at all.
    per_request: Option<BTreeMap<LimitUnit, Value>>,
    /// `None`: no total budget.
    budget: Option<BTreeMap<LimitUnit, Value>>,
    /// Whether the payer can sign EVM payments.
    evm: bool,
    /// Whether the payer can sign Solana payments.
    solana: bool,
}

/// Default per-request cap, the one the reference `x402-fetch` client uses: 0.10 USDC.
pub const DEFAULT_MAX_PER_REQUEST: &str = "$0.10";

/// Settings gathered by the builder, before they are checked against the registry.
#[derive(Debug, Clone, Default)]
pub(crate) struct PolicySettings {
    pub(crate) allowed: Option<Vec<String>>,
    pub(crate) preferred_networks: Vec<String>,
    pub(crate) preferred_assets: Vec<String>,
    /// `None`: the default cap; `Some(empty)`: no cap.
    pub(crate) per_request: Option<Vec<(LimitUnit, U256)>>,
    pub(crate) budget: Option<Vec<(LimitUnit, U256)>>,
    /// Whether the payer has an EVM signer.
    pub(crate) evm: bool,
    /// Whether the payer has a Solana signer.
    pub(crate) solana: bool,
}

impl Policy {
    pub(crate) fn new(
        registry: NetworkRegistry,
        settings: PolicySettings,
    ) -> Result<Self, crate::ConfigError> {
        let chain_ids = |ids: &[String]| -> Result<Vec<String>, crate::ConfigError> {
            ids.iter()
                .map(|id| {
                    registry
                        .network(id)
                        .map(|n| n.caip2.to_string())
                        .map_err(crate::ConfigError::Network)
                })
                .collect()
        };
        let allowed = settings.allowed.as_deref().map(chain_ids).transpose()?;
        let preferred_networks = chain_ids(&settings.preferred_networks)?;
        let preferred_assets = settings
            .preferred_assets
            .iter()
            .map(|a| match ChainAddress::from_str(a) {
                Ok(address) => AssetPreference::Address(address),
                Err(_) => AssetPreference::Symbol(a.to_ascii_uppercase()),
            })
            .collect();
        let per_request = match settings.per_request {
            None => {
                let (unit, value) =
                    parse_limit(DEFAULT_MAX_PER_REQUEST).map_err(crate::ConfigError::Limit)?;
                Some(BTreeMap::from([(unit, Value(value))]))
            }
            Some(limits) if limits.is_empty() => None,
            Some(limits) => Some(limits.into_iter().map(|(u, v)| (u, Value(v))).collect()),
        };
        let budget = settings
            .budget
            .map(|limits| limits.into_iter().map(|(u, v)| (u, Value(v))).collect());
        Ok(Policy {
            registry,
            allowed,
            preferred_networks,
            preferred_assets,
            per_request,
            budget,
            evm: settings.evm,
            solana: settings.solana,
        })
    }

    /// Splits a challenge's offers into payable candidates, best first, and refusals.
    pub(crate) fn candidates(&self, challenge: &Challenge) -> (Vec<Candidate>, Vec<Refusal>) {
        let mut candidates = Vec::new();
        let mut refusals = Vec::new();
        for (index, offered) in challenge.accepts.iter().enumerate() {
            match self.candidate(index, offered) {
                Ok(candidate) => candidates.push(candidate),
                Err(reason) => refusals.push(Refusal {
                    offer: offered.describe(&self.registry),
                    reason,
                }),
            }
        }
        // Preferences first, then the cheapest; the server's order breaks ties (stable sort).
        candidates.sort_by(|a, b| {
            (a.network_rank, a.asset_rank, a.value).cmp(&(b.network_rank, b.asset_rank, b.value))
        });
        (candidates, refusals)
    }

    fn candidate(&self, index: usize, offered: &Offered) -> Result<Candidate, RefusalReason> {
        let requirements = offered
            .requirements
            .as_ref()
            .map_err(|e| RefusalReason::Unreadable(e.clone()))?;
        // `upto` is judged by its maximum: caps and budgets hold whatever the server charges.
        let upto = requirements.scheme() == x402_protocol::permit2::UPTO;
        if requirements.scheme() != EXACT && !upto {
            return Err(RefusalReason::UnsupportedScheme(
                requirements.scheme().to_owned(),
            ));
        }
        if upto
            && requirements
                .extra()
                .and_then(|extra| extra.get("facilitatorAddress"))
                .and_then(serde_json::Value::as_str)
                .and_then(|text| text.parse::<alloy_primitives::Address>().ok())
                .is_none()
        {
            return Err(RefusalReason::Invalid(
                "an upto offer must name the facilitator that may settle it (extra.facilitatorAddress)"
                    .to_owned(),
            ));
        }
        let network = self
            .registry
            .network(requirements.network())
            .map_err(|e| RefusalReason::UnknownNetwork(e.to_string()))?;
        if let Some(allowed) = &self.allowed
            && !allowed.iter().any(|id| *id == network.caip2)
        {
            return Err(RefusalReason::NetworkNotAllowed(network.to_string()));
        }
        let (asset_address, pay_to) = match network.family() {
            Family::Evm => {
                if !self.evm {
                    return Err(RefusalReason::NoSigner(Family::Evm));
                }
                let terms = RequirementTerms::resolve(requirements, &self.registry)
                    .map_err(|e| RefusalReason::Invalid(e.message))?;
                (
                    ChainAddress::Evm(terms.asset),
                    ChainAddress::Evm(terms.pay_to),
                )
            }
            Family::Solana => {
                if !self.solana {
                    return Err(RefusalReason::NoSigner(Family::Solana));
                }
                if upto {
                    return Err(RefusalReason::UnsupportedScheme(format!(
                        "{} on Solana",
                        requirements.scheme()
                    )));
                }
                solana_terms(requirements)?
            }
        };
        let asset = self
            .registry
            .asset(network, asset_address)
            .ok_or_else(|| {
                RefusalReason::UnknownAsset(format!(
                    "token {} is not known on {}; register it (NetworkRegistry::register_asset) to pay in it",
                    asset_address, network.name
                ))
            })?
            .clone();
        let value = Value::of(requirements.amount(), asset.decimals).ok_or_else(|| {
            RefusalReason::Invalid(format!(
                "amount {} is too large to be real",
                requirements.amount()
            ))
        })?;
        let mut units = vec![LimitUnit::Token(asset.symbol.to_ascii_uppercase())];
        if asset.usd_stablecoin {
            units.insert(0, LimitUnit::Usd);
        }
        let amount_text = describe_amount(requirements, &self.registry);
        if let Some(caps) = &self.per_request {
            let applicable: Vec<_> = units.iter().filter_map(|u| caps.get_key_value(u)).collect();
            if applicable.is_empty() {
                return Err(RefusalReason::NoCap(asset.symbol.to_string()));
            }
            if let Some((unit, cap)) = applicable.iter().find(|(_, cap)| value > **cap) {
                return Err(RefusalReason::OverCap {
                    amount: amount_text,
                    cap: cap.display(unit),
                });
            }
        }
        if let Some(budget) = &self.budget
            && !units.iter().any(|u| budget.contains_key(u))
        {
            return Err(RefusalReason::NoBudget(asset.symbol.to_string()));
        }
        let rank = |found: Option<usize>, len: usize| found.unwrap_or(len);
        let network_rank = rank(
            self.preferred_networks
                .iter()
                .position(|id| *id == network.caip2),
            self.preferred_networks.len(),
        );
        let asset_rank = rank(
            self.preferred_assets.iter().position(|p| match p {
                AssetPreference::Address(a) => asset.address == *a,
                AssetPreference::Symbol(s) => asset.symbol.eq_ignore_ascii_case(s),
            }),
            self.preferred_assets.len(),
        );
        Ok(Candidate {
            index,
            requirements: requirements.clone(),
            network: network.clone(),
            pay_to,
            asset,
            value,
            units,
            network_rank,
            asset_rank,
        })
    }
}

/// The mint and recipient of a Solana `exact` entry, after the checks that need no chain:
/// Solana addresses, an amount that fits an SPL amount (`u64`), and the fee payer
/// (`extra.feePayer`) that every Solana payment needs. The signer resolves the rest.
fn solana_terms(
    requirements: &PaymentRequirements,
) -> Result<(ChainAddress, ChainAddress), RefusalReason> {
    let address = |field: &str, text: &str| {
        SolanaAddress::from_str(text)
            .map(ChainAddress::Solana)
            .map_err(|_| {
                RefusalReason::Invalid(format!("{field} {text:?} is not a Solana address"))
            })
    };
    let mint = address("asset", requirements.asset())?;
    let pay_to = address("payTo", requirements.pay_to())?;
    if u64::try_from(requirements.amount()).is_err() {
        return Err(RefusalReason::Invalid(format!(
            "amount {} does not fit an SPL token amount (u64)",
            requirements.amount()
        )));
    }
    match requirements
        .extra()
        .and_then(|extra| extra.get("feePayer"))
        .and_then(serde_json::Value::as_str)
    {
        Some(fee_payer) => address("extra.feePayer", fee_payer)?,
        None => {
            return Err(RefusalReason::Invalid(
                "a Solana offer must name the facilitator's fee payer (extra.feePayer)".to_owned(),
            ));
        }
    };
    Ok((mint, pay_to))
}

/// What has been committed against the budget.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    spent: BTreeMap<LimitUnit, Value>,
}

/// A budget reservation, returned by [`Ledger::reserve`] and given back on refusal.
#[derive(Debug)]
pub(crate) struct Reservation {
    entries: Vec<(LimitUnit, Value)>,
}

impl Ledger {
    /// Atomically checks the candidate against the budget and commits it.
    pub(crate) fn reserve(
        &mut self,
        policy: &Policy,
        candidate: &Candidate,
    ) -> Result<Reservation, RefusalReason> {
        let Some(budget) = &policy.budget else {
            return Ok(Reservation {
                entries: Vec::new(),
            });
        };
        let mut entries = Vec::new();
        for unit in &candidate.units {
            let Some(limit) = budget.get(unit) else {
                continue;
            };
            let spent = self.spent.get(unit).copied().unwrap_or(Value(U256::ZERO));
            let remaining = Value(limit.0.saturating_sub(spent.0));
            if candidate.value > remaining {
                return Err(RefusalReason::OverBudget {
                    amount: candidate.amount_display(),
                    remaining: remaining.display(unit),
                });
            }
            entries.push((unit.clone(), candidate.value));
        }
        if entries.is_empty() {
            return Err(RefusalReason::NoBudget(candidate.asset.symbol.to_string()));
        }
        for (unit, value) in &entries {
            let spent = self.spent.entry(unit.clone()).or_insert(Value(U256::ZERO));
            spent.0 = spent.0.saturating_add(value.0);
        }
        Ok(Reservation { entries })
    }

    /// Gives a reservation back (the payment was not signed after all).
    pub(crate) fn release(&mut self, reservation: Reservation) {
        for (unit, value) in reservation.entries {
            if let Some(spent) = self.spent.get_mut(&unit) {
                spent.0 = spent.0.saturating_sub(value.0);
            }
        }
    }

    /// Spent per unit, for people (`$0.03`).
    pub(crate) fn spent(&self) -> Vec<(LimitUnit, String)> {
        self.spent
            .iter()
            .map(|(unit, value)| (unit.clone(), value.display(unit)))
            .collect()
    }

    /// What is left of each budget, for people.
    pub(crate) fn remaining(&self, policy: &Policy) -> Vec<(LimitUnit, String)> {
        let Some(budget) = &policy.budget else {
            return Vec::new();
        };
        budget
            .iter()
            .map(|(unit, limit)| {
                let spent = self.spent.get(unit).copied().unwrap_or(Value(U256::ZERO));
                (
                    unit.clone(),
                    Value(limit.0.saturating_sub(spent.0)).display(unit),
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse_in_dollars_or_tokens() {
        let cents = U256::from(10u64).pow(U256::from(16u64));
        assert_eq!(
            parse_limit("$0.10").unwrap(),
            (LimitUnit::Usd, cents * U256::from(10u8))
        );
        assert_eq!(
            parse_limit("0.10").unwrap(),
            (LimitUnit::Usd, cents * U256::from(10u8))
        );
        assert_eq!(
            parse_limit("2 eurc").unwrap().0,
            LimitUnit::Token("EURC".into())
        );
        assert!(parse_limit("10000 atomic").is_err());
        assert!(parse_limit("lots").is_err());
        assert!(parse_limit("-1").is_err());
    }

    #[test]
    fn values_scale_by_decimals_and_round_up_past_18() {
        assert_eq!(
            Value::of(U256::from(10_000u64), 6),
            Value::of(U256::from(10u64).pow(U256::from(16u64)), 18)
        );
        // 1 atomic unit of a 20-decimal token is worth 0.01 of a 18-decimal unit: rounded up.
        assert_eq!(Value::of(U256::from(1u8), 20), Some(Value(U256::from(1u8))));
        assert_eq!(Value::of(U256::MAX, 6), None);
        let usd = |v: u64, scale: u64| {
            Value(U256::from(v) * U256::from(10u64).pow(U256::from(scale))).display(&LimitUnit::Usd)
        };
        assert_eq!(usd(1, 17), "$0.10");
        assert_eq!(usd(0, 0), "$0.00");
        assert_eq!(usd(5, 15), "$0.005");
        assert_eq!(usd(12, 18), "$12.00");
        assert_eq!(
            Value(U256::from(10u64).pow(U256::from(17u64)))
                .display(&LimitUnit::Token("EURC".into())),
            "0.1 EURC"
        );
    }
}
