//! Step 1: a route's spec, resolved against the server's networks, tokens, recipients and
//! schemes into the options its 402 offers. Fixed prices are resolved once and cached; the
//! same resolution checks every registered route at start-up.

use std::str::FromStr;
use std::sync::{Arc, PoisonError};

use x402_protocol::{ChainAddress, Family, Price, Reason, U256};

use super::{Gate, PaymentIds};
use crate::challenge::{AcceptOption, Challenge, PreparedRoute};
use crate::rejection::Rejection;
use crate::request::RequestView;
use crate::route::{DEFAULT_MAX_TIMEOUT_SECONDS, PriceSpec, RouteSpec};
use crate::scheme::TransferMethod;
use crate::store::MAX_COUNTER;

/// The schemes and transfer methods a route offers on a network of `family`, one option each,
/// or why the route cannot be paid there.
fn offers(spec: &RouteSpec, family: Family) -> Result<Vec<(&'static str, TransferMethod)>, String> {
    if spec.upto {
        return match family {
            Family::Evm if spec.transfers.iter().all(|m| *m == TransferMethod::Permit2) => {
                Ok(vec![(x402_protocol::permit2::UPTO, TransferMethod::Permit2)])
            }
            Family::Evm => Err("metered (upto) payments move tokens through Permit2 only; drop the other transfer methods".to_owned()),
            Family::Solana => Err("metered (upto) payments are EVM-only here; use a fixed price on Solana networks".to_owned()),
        };
    }
    let exact = x402_protocol::exact::EXACT;
    let mine: Vec<_> = spec
        .transfers
        .iter()
        .copied()
        .filter(|method| method.family() == family)
        .collect();
    if mine.is_empty() {
        if !spec.transfers.is_empty() && family == Family::Evm {
            return Err(format!(
                "the route's transfer methods ({}) do not pay on EVM chains",
                spec.transfers
                    .iter()
                    .map(|m| m.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let default = match family {
            Family::Evm => TransferMethod::Eip3009,
            Family::Solana => TransferMethod::SplTransfer,
        };
        return Ok(vec![(exact, default)]);
    }
    let mut offers: Vec<(&'static str, TransferMethod)> = Vec::with_capacity(mine.len());
    for method in mine {
        if !offers.iter().any(|(_, m)| *m == method) {
            offers.push((exact, method));
        }
    }
    Ok(offers)
}

impl Gate {
    /// Resolves `spec` at `price` into a prepared route, or says what is misconfigured (a
    /// sentence naming the route and what to change).
    pub(crate) fn resolve(
        &self,
        spec: &'static RouteSpec,
        price: &Price,
    ) -> Result<PreparedRoute, String> {
        let route = spec.name();
        let asset = match spec.asset {
            Some(text) => Some(
                ChainAddress::from_str(text)
                    .map_err(|e| format!("{route}: asset {text:?} is not a token address ({e})"))?,
            ),
            None => None,
        };
        if (spec.access.is_some() || spec.prepay.is_some())
            && self.ephemeral_keys
            && self.dev_ledger.is_none()
        {
            // Tokens signed with a per-process random key die with the process and are refused
            // by other replicas: customers would lose what they paid for.
            return Err(format!(
                "{route} sells reusable access (access, uses or prepay), whose tokens must outlive a restart and work on every replica: configure X402Builder::entitlement_keys or X402_ENTITLEMENT_KEYS"
            ));
        }
        if spec.upto {
            if spec.settle != crate::route::SettleMode::After {
                return Err(format!(
                    "{route} is metered (upto): the charge is known only after the handler, so it must settle after it (drop settle = \"before\")"
                ));
            }
            if spec.access.is_some() || spec.prepay.is_some() {
                return Err(format!(
                    "{route} is metered (upto) and cannot also sell reusable access or prepaid balances"
                ));
            }
        }
        let max_timeout_seconds = spec
            .max_timeout_seconds
            .unwrap_or(DEFAULT_MAX_TIMEOUT_SECONDS);
        if max_timeout_seconds > self.max_authorization_lifetime.as_secs() {
            return Err(format!(
                "{route} asks clients for authorizations valid {max_timeout_seconds} s (max_timeout_seconds), but this server accepts at most {} s: lower max_timeout_seconds or raise X402Builder::max_authorization_lifetime",
                self.max_authorization_lifetime.as_secs()
            ));
        }
        let network_ids = self.network_ids(spec);
        if network_ids.is_empty() {
            return Err(format!(
                "{route} names no network and no default network is configured: add network = \"…\" to the route or call X402Builder::default_network"
            ));
        }
        let mut options = Vec::with_capacity(network_ids.len());
        for id in network_ids {
            let network = self
                .registry
                .network(id)
                .map_err(|e| format!("{route}: {e}"))?;
            let family = network.family();
            let pay_to = match spec.pay_to {
                Some(text) => ChainAddress::parse_for(family, text)
                    .map_err(|e| format!("{route}: pay_to on {}: {e}", network.name))?,
                None => self.pay_to(family).ok_or_else(|| {
                    format!(
                        "{route} is paid on {} but no {family} recipient is configured: set pay_to on the route or call X402Builder::pay_to with a {family} address",
                        network.name
                    )
                })?,
            };
            let resolved = self
                .registry
                .resolve_price(price, network, asset)
                .map_err(|e| format!("{route}: price {price} on {}: {e}", network.name))?;
            let shared_network = Arc::new(network.clone());
            let shared_asset = Arc::new(resolved.asset);
            for (name, method) in offers(spec, family)
                .map_err(|problem| format!("{route} on {}: {problem}", network.name))?
            {
                let scheme = self
                    .schemes
                    .offering(name, family, method)
                    .ok_or_else(|| {
                        format!(
                            "{route} is paid on {} but no scheme for {name} {family} payments by {} is configured{}",
                            network.name,
                            method.as_str(),
                            match family {
                                Family::Solana => ": add the x402-svm crate's scheme with X402Builder::scheme (cargo feature `svm` of the integrations)",
                                Family::Evm => "",
                            }
                        )
                    })?
                    .clone();
                let facilitator = if name == x402_protocol::permit2::UPTO {
                    Some(self.settling_account(network).ok_or_else(|| {
                        format!(
                            "{route} is metered (upto) on {}, whose payers must name the account that settles: this server's facilitator has none for that network; call X402Builder::upto_facilitator with the address your facilitator settles from, or build with X402Builder::build_checked to learn it from the facilitator's /supported",
                            network.name
                        )
                    })?)
                } else if method == TransferMethod::SplTransfer {
                    // The payer's transaction names the fee payer that co-signs it.
                    Some(self.settling_account(network).ok_or_else(|| {
                        format!(
                            "{route} is paid on {}, whose payers build a transaction naming the facilitator's fee payer: this server's facilitator has none for that network; call X402Builder::fee_payer with the address your facilitator pays fees from, or build with X402Builder::build_checked to learn it from the facilitator's /supported",
                            network.name
                        )
                    })?)
                } else {
                    None
                };
                let blockhash = match method {
                    TransferMethod::SplTransfer => self
                        .embedded
                        .as_ref()
                        .and_then(|embedded| embedded.fixed_blockhash(network)),
                    _ => None,
                };
                options.push(AcceptOption {
                    scheme,
                    network: shared_network.clone(),
                    asset: shared_asset.clone(),
                    amount: resolved.amount,
                    pay_to,
                    prepaid: false,
                    facilitator,
                    blockhash,
                });
            }
        }
        if spec.only == Some(x402_protocol::ProtocolVersion::V1)
            && options
                .iter()
                .any(|o| o.scheme.method() == TransferMethod::Permit2)
        {
            return Err(format!(
                "{route} speaks only x402 v1, but Permit2 and metered (upto) payments are x402 v2: drop only = \"v1\" or the Permit2 transfer"
            ));
        }
        if let Some(text) = spec.prepay {
            let prepay =
                Price::from_str(text).map_err(|e| format!("{route}: prepay {text:?}: {e}"))?;
            for index in 0..options.len() {
                let single = &options[index];
                let resolved = self
                    .registry
                    .resolve_price(
                        &prepay,
                        &single.network,
                        asset.or(Some(single.asset.address)),
                    )
                    .map_err(|e| {
                        format!(
                            "{route}: prepay {prepay} on {} (it must be in the price's token): {e}",
                            single.network.name
                        )
                    })?;
                if resolved.amount <= single.amount || resolved.amount > U256::from(MAX_COUNTER) {
                    return Err(format!(
                        "{route}: prepay {prepay} must be more than the price of one request and at most {MAX_COUNTER} atomic units"
                    ));
                }
                options.push(AcceptOption {
                    amount: resolved.amount,
                    prepaid: true,
                    ..single.clone()
                });
            }
        }
        let mut extensions = match self.payment_ids {
            PaymentIds::Off => None,
            policy => Some(serde_json::json!({
                x402_protocol::payment_identifier::EXTENSION_KEY:
                    x402_protocol::payment_identifier::declare(policy == PaymentIds::Required),
            })),
        };
        // A Permit2 option in a token with an EIP-712 domain (extra.name/version): payers
        // without a Permit2 allowance may send an EIP-2612 permit for it instead of approving.
        if options.iter().any(|o| {
            o.scheme.method() == TransferMethod::Permit2 && !o.asset.eip712_name.is_empty()
        }) {
            let object = extensions.get_or_insert_with(|| serde_json::json!({}));
            if let Some(map) = object.as_object_mut() {
                map.insert(
                    x402_protocol::eip2612::EXTENSION.to_owned(),
                    x402_protocol::eip2612::declaration(x402_protocol::eip2612::DESCRIPTION),
                );
            }
        }
        // A Permit2 option on a network where the embedded facilitator broadcasts approvals:
        // payers without a Permit2 allowance may send a signed approve(Permit2) transaction for
        // it to broadcast (and fund) first. Not declared with a remote facilitator.
        if options.iter().any(|o| {
            o.scheme.method() == TransferMethod::Permit2
                && self
                    .embedded
                    .as_ref()
                    .is_some_and(|embedded| embedded.broadcasts_approvals(&o.network))
        }) {
            let object = extensions.get_or_insert_with(|| serde_json::json!({}));
            if let Some(map) = object.as_object_mut() {
                map.insert(
                    x402_protocol::erc20_approval::EXTENSION.to_owned(),
                    x402_protocol::erc20_approval::declaration(
                        x402_protocol::erc20_approval::DESCRIPTION,
                    ),
                );
            }
        }
        Ok(PreparedRoute::new(
            spec,
            options,
            max_timeout_seconds,
            extensions,
        ))
    }

    /// The account that settles metered (`upto`) payments on `network`: the one configured
    /// for a remote facilitator, else the embedded facilitator's settling account there.
    /// The account payers name on `network`: the one that settles metered (`upto`) payments
    /// on EVM chains, the fee payer on Solana. Configured or learned first, else the embedded
    /// facilitator's own.
    fn settling_account(&self, network: &x402_protocol::NetworkInfo) -> Option<ChainAddress> {
        if let Some(address) = self
            .settling_accounts
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(network.caip2.as_ref())
        {
            return Some(*address);
        }
        self.embedded
            .as_ref()
            .and_then(|embedded| embedded.settling_account(network))
    }

    /// The networks a route is paid on: its own, or the server's defaults.
    fn network_ids<'s>(&'s self, spec: &'s RouteSpec) -> Vec<&'s str> {
        if spec.networks.is_empty() {
            self.default_networks.iter().map(String::as_str).collect()
        } else {
            spec.networks.to_vec()
        }
    }

    /// Whether `spec` is paid through a remote facilitator whose account that payers must name
    /// (the `upto` settling account, the Solana fee payer) on one of its networks is not known
    /// yet (learned from `/supported` after start-up).
    pub(crate) fn settling_account_pending(&self, spec: &RouteSpec) -> bool {
        if self.embedded.is_some() {
            return false;
        }
        self.network_ids(spec).iter().any(|id| {
            self.registry.network(id).is_ok_and(|network| {
                (spec.upto || network.family() == Family::Solana)
                    && self.settling_account(network).is_none()
            })
        })
    }

    /// The route resolved on this server's networks; fixed prices are resolved once.
    pub(crate) fn prepared(
        &self,
        spec: &'static RouteSpec,
        view: &dyn RequestView,
    ) -> Result<Arc<PreparedRoute>, Rejection> {
        let misconfigured = |message: String| {
            tracing::error!(target: "x402::config", %message, "paid route is misconfigured");
            Rejection::new(Reason::NOT_CONFIGURED, message)
        };
        match spec.price {
            PriceSpec::Fixed(text) => {
                let key = std::ptr::from_ref(spec) as usize;
                if let Some(route) = self
                    .routes
                    .read()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get(&key)
                {
                    return Ok(route.clone());
                }
                let price = Price::from_str(text)
                    .map_err(|e| misconfigured(format!("{}: price {text:?}: {e}", spec.name())))?;
                let route = Arc::new(self.resolve(spec, &price).map_err(misconfigured)?);
                self.routes
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(key, route.clone());
                Ok(route)
            }
            PriceSpec::Dynamic(price_of) => {
                let price = price_of(view).map_err(|e| {
                    tracing::error!(target: "x402::config", error = %e, route = %spec.name(), "dynamic price failed");
                    Rejection::new(
                        Reason::PRICE_UNAVAILABLE,
                        format!("the price could not be computed: {e}"),
                    )
                })?;
                self.resolve(spec, &price)
                    .map(Arc::new)
                    .map_err(misconfigured)
            }
        }
    }

    /// The 402 challenge for a request to a route, without looking at any payment.
    pub fn challenge(
        &self,
        view: &dyn RequestView,
        spec: &'static RouteSpec,
    ) -> Result<Challenge, Rejection> {
        let route = self.prepared(spec, view)?;
        let resource = match spec.resource {
            Some(resource) => resource.to_owned(),
            None => self.resource_policy.resource_url(view),
        };
        let paywall = crate::paywall::choose(self.paywall.as_ref(), spec.paywall, view);
        let mut challenge = Challenge::new(route, resource)
            .with_paywall(paywall)
            .with_bazaar(view.method(), view.path_and_query());
        if let Some(verifier) = &self.siwx {
            challenge = challenge.with_sign_in(verifier);
        }
        if let Some(catalog) = &self.discovery {
            challenge.list_in(catalog);
        }
        Ok(challenge)
    }

    /// Checks a route the way its first request would, without a request: everything but a
    /// dynamic price's value (a dynamic-price route is checked at a price of one atomic unit).
    /// Fixed-price routes are cached, so their first request does no more work.
    ///
    /// `Err` is a sentence naming the route and what to change.
    pub fn check_route(&self, spec: &'static RouteSpec) -> Result<(), String> {
        self.prepare_unrequested(spec).map(|_| ())
    }

    /// [`check_route`](Self::check_route), returning the prepared route.
    pub(crate) fn prepare_unrequested(
        &self,
        spec: &'static RouteSpec,
    ) -> Result<Arc<PreparedRoute>, String> {
        match spec.price {
            PriceSpec::Fixed(text) => {
                let price = Price::from_str(text)
                    .map_err(|e| format!("{}: price {text:?}: {e}", spec.name()))?;
                let route = Arc::new(self.resolve(spec, &price)?);
                self.routes
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(std::ptr::from_ref(spec) as usize, route.clone());
                Ok(route)
            }
            PriceSpec::Dynamic(_) => {
                let probe = Price::from_str("1 atomic").map_err(|e| e.to_string())?;
                self.resolve(spec, &probe).map(Arc::new)
            }
        }
    }
}
