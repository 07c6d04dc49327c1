//! Building the gate, and the start-up checks of its routes and facilitator.

use super::*;

impl<T: From<Gate>> X402Builder<T> {
    /// Checks the configuration and builds it.
    ///
    /// Every `#[paid]` route linked into the program (and every route given to
    /// [`check_route`](Self::check_route)) is resolved now, as its first request would: a route
    /// with no recipient, an unknown network, a price that cannot be paid in the network's
    /// token, reusable access without durable keys, or a `max_timeout_seconds` beyond the
    /// authorization lifetime this server accepts fails the build with a sentence naming the
    /// route ([`RouteCheck`] to relax this). Inside a tokio runtime, a background task also asks
    /// the facilitator's `/supported` and logs what it does not handle
    /// ([`Gate::check_facilitator`] does the same on demand).
    ///
    /// With a remote facilitator, a metered (`upto`) route whose settling account is not
    /// configured ([`upto_facilitator`](Self::upto_facilitator)) is not refused here: that
    /// background task learns it from `/supported`, and until then the route answers 500
    /// `x402_not_configured` (no handler runs). [`build_checked`](Self::build_checked) learns
    /// it before returning.
    pub fn build(self) -> Result<T, ConfigError> {
        let (gate, needs) = self.build_checked_routes()?;
        if tokio::runtime::Handle::try_current().is_ok() && gate.embedded.is_none() {
            let facilitator = gate.facilitator.clone();
            let learned = SettlingAccounts {
                registry: gate.registry.clone(),
                accounts: gate.settling_accounts.clone(),
            };
            tokio::spawn(async move {
                match facilitator.supported().await {
                    Ok(supported) => {
                        learned.learn(&supported);
                        if let Err(error) = missing_support(&supported, &needs) {
                            tracing::warn!(target: "x402::config", %error, "start-up check of the facilitator");
                        }
                    }
                    Err(error) => {
                        tracing::warn!(target: "x402::config", %error, "start-up check of the facilitator: its /supported could not be read");
                    }
                }
            });
        }
        Ok(T::from(gate))
    }

    /// [`build`](Self::build), then asks the facilitator's `/supported` whether it handles the
    /// scheme and network of every route, and fails if it does not (or cannot be asked).
    ///
    /// It also learns from `/supported` the account the facilitator settles metered (`upto`)
    /// payments from on each network (`extra.facilitatorAddress`), for networks
    /// [`upto_facilitator`](Self::upto_facilitator) does not name.
    pub async fn build_checked(self) -> Result<T, ConfigError> {
        let route_check = self.route_check;
        let extra_routes = self.extra_routes.clone();
        let gate = self.build_gate()?;
        // One /supported answer serves both: the upto accounts it lists are learned before the
        // routes are checked, then the routes' needs are checked against it.
        let supported = gate.facilitator.supported().await;
        if gate.embedded.is_none()
            && let Ok(supported) = &supported
        {
            SettlingAccounts {
                registry: gate.registry.clone(),
                accounts: gate.settling_accounts.clone(),
            }
            .learn(supported);
        }
        let needs = gate.check_routes(route_check, &extra_routes)?;
        warn_without_public_url(&gate);
        if !needs.is_empty() {
            missing_support(&supported.map_err(unreadable)?, &needs)?;
        }
        Ok(T::from(gate))
    }

    fn build_checked_routes(self) -> Result<(Gate, Vec<Need>), ConfigError> {
        let route_check = self.route_check;
        let extra_routes = self.extra_routes.clone();
        let gate = self.build_gate()?;
        let needs = gate.check_routes(route_check, &extra_routes)?;
        warn_without_public_url(&gate);
        Ok((gate, needs))
    }

    fn build_gate(self) -> Result<Gate, ConfigError> {
        if let Some(error) = self.deferred_error {
            return Err(error);
        }
        let mut pay_to: Vec<ChainAddress> = Vec::new();
        for text in &self.pay_to {
            let address = ChainAddress::from_str(text.trim())
                .map_err(|_| ConfigError::InvalidPayTo(text.clone()))?;
            pay_to.retain(|a| a.family() != address.family());
            pay_to.push(address);
        }
        let mut registry = NetworkRegistry::builtin();
        for network in self.networks {
            registry.register_network(network)?;
        }
        for (network, asset) in self.assets {
            registry.register_asset(&network, asset)?;
        }
        for network in &self.default_networks {
            registry.network(network)?;
        }
        let registry = Arc::new(registry);
        let clock = self.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let mut dev_ledger = None;
        let mut embedded = None;
        let facilitator: Arc<dyn Facilitator> = match self
            .facilitator
            .ok_or(ConfigError::MissingFacilitator)?
        {
            FacilitatorChoice::Url(url, auth) => {
                let mut builder = HttpFacilitator::builder(url)
                    .request_timeout(self.facilitator_timeout.max(self.settlement_timeout));
                if let Some(auth) = auth {
                    builder = builder.header("authorization", &auth)?;
                }
                Arc::new(builder.build()?)
            }
            FacilitatorChoice::Embedded(given) => {
                let facilitator = match given {
                    Some(facilitator) => facilitator,
                    None => {
                        tracing::warn!(
                            target: "x402::config",
                            "using the embedded facilitator: payments settle into an in-memory dev ledger and no money moves"
                        );
                        EmbeddedFacilitator::builder()
                            .registry(registry.clone())
                            .clock(clock.clone())
                            .schemes(self.schemes.clone())
                            .build()
                    }
                };
                dev_ledger = facilitator.dev_ledger().cloned();
                let facilitator = Arc::new(facilitator);
                embedded = Some(facilitator.clone());
                facilitator
            }
            FacilitatorChoice::Given(facilitator) => facilitator,
        };
        let durable = self.journal.is_some();
        let journal = self
            .journal
            .unwrap_or_else(|| Arc::new(MemoryJournal::new()));
        if !durable && dev_ledger.is_none() {
            tracing::warn!(
                target: "x402::config",
                "payments are journaled in memory only: records of real payments are lost on restart; configure X402Builder::journal or X402_JOURNAL_URL (sqlite://… for one server, postgres://… for replicas)"
            );
        }
        let replay = self
            .replay
            .unwrap_or_else(|| Arc::new(MemoryReplayStore::new()));
        let reconciler = Reconciler {
            journal: journal.clone(),
            replay: replay.clone(),
            facilitator: facilitator.clone(),
            embedded: embedded.clone(),
            schemes: self.schemes.clone(),
            registry: registry.clone(),
            timeout: self.settlement_timeout,
            after: self
                .reconcile_after
                .unwrap_or_else(|| (self.settlement_timeout * 2).max(Duration::from_secs(120))),
        };
        if let Some(every) = self.reconcile_every
            && tokio::runtime::Handle::try_current().is_ok()
        {
            let reconciler = reconciler.clone();
            tokio::spawn(async move {
                loop {
                    if let Err(error) = reconciler.run().await {
                        tracing::warn!(target: "x402::journal", %error, "reconciliation pass failed");
                    }
                    tokio::time::sleep(every).await;
                }
            });
        }
        let mut settling_accounts = HashMap::new();
        for (network, address) in &self.settling_accounts {
            let address = address.as_str();
            let info = registry.network(network)?;
            let address = ChainAddress::parse_for(info.family(), address).map_err(|_| {
                ConfigError::InvalidSettlingAccount {
                    network: info.name.to_string(),
                    address: address.to_owned(),
                }
            })?;
            settling_accounts.insert(info.caip2.to_string(), address);
        }
        Ok(Gate {
            facilitator,
            embedded,
            settling_accounts: Arc::new(RwLock::new(settling_accounts)),
            chain_checks: self.chain_checks,
            local_checks: self.local_checks,
            schemes: self.schemes,
            replay,
            registry,
            clock,
            pay_to,
            default_networks: self.default_networks,
            resource_policy: self.resource_policy,
            facilitator_timeout: self.facilitator_timeout,
            settlement_timeout: self.settlement_timeout,
            max_header_bytes: self.max_header_bytes,
            max_authorization_lifetime: self.max_authorization_lifetime,
            dev_ledger,
            routes: RwLock::new(HashMap::new()),
            ephemeral_keys: self.entitlement_keys.is_none(),
            entitlement_keys: self
                .entitlement_keys
                .unwrap_or_else(EntitlementKeys::random),
            entitlements: self
                .entitlements
                .unwrap_or_else(|| Arc::new(MemoryEntitlementStore::new())),
            paywall: self.paywall.map(Arc::new),
            settlements: Default::default(),
            journal,
            keep_response_bytes: self.keep_response_bytes,
            payment_ids: self.payment_ids,
            reconciler,
            hooks: self.hooks,
            discovery: self.discovery,
            siwx: self.siwx,
        })
    }
}

/// What one route needs from the facilitator: a (version, scheme, network) kind.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Need {
    route: String,
    version: x402_protocol::ProtocolVersion,
    scheme: String,
    network: String,
}

impl Gate {
    /// Resolves every registered route (and `extra`), as configured by `check`; returns what
    /// the routes need from the facilitator.
    fn check_routes(
        &self,
        check: RouteCheck,
        extra: &[&'static RouteSpec],
    ) -> Result<Vec<Need>, ConfigError> {
        if check == RouteCheck::Skip {
            return Ok(Vec::new());
        }
        let mut problems = Vec::new();
        let mut needs = Vec::new();
        for spec in registered_routes().chain(extra.iter().copied()) {
            if self.settling_account_pending(spec) {
                // Learned from the facilitator's /supported in the background; until then the
                // route answers 500 and runs nothing.
                tracing::info!(target: "x402::config", route = %spec.name(), "the facilitator account its payers name (upto settler, Solana fee payer) is asked of the facilitator's /supported");
                continue;
            }
            match self.prepare_unrequested(spec) {
                Ok(route) => {
                    for requirement in &route.accepts {
                        needs.push(Need {
                            route: spec.name(),
                            version: requirement.version(),
                            scheme: requirement.scheme().to_owned(),
                            network: requirement.network().to_owned(),
                        });
                    }
                }
                Err(problem) => problems.push(problem),
            }
        }
        problems.sort();
        problems.dedup();
        needs.sort();
        needs.dedup();
        if problems.is_empty() {
            return Ok(needs);
        }
        match check {
            RouteCheck::Fail => Err(ConfigError::Routes(problems)),
            _ => {
                for problem in &problems {
                    tracing::error!(target: "x402::config", %problem, "paid route is misconfigured");
                }
                Ok(needs)
            }
        }
    }

    /// Asks the facilitator's `/supported` whether it handles the scheme and network of every
    /// registered route; `Err` lists what it does not handle (or why it could not be asked).
    pub async fn check_facilitator(&self) -> Result<(), ConfigError> {
        let needs = self.check_routes(RouteCheck::Warn, &[])?;
        check_support(self.facilitator.as_ref(), &needs).await
    }
}

/// Asks `facilitator` whether it handles every need.
async fn check_support(facilitator: &dyn Facilitator, needs: &[Need]) -> Result<(), ConfigError> {
    if needs.is_empty() {
        return Ok(());
    }
    missing_support(&facilitator.supported().await.map_err(unreadable)?, needs)
}

/// A `/supported` that could not be read, as a start-up error.
fn unreadable(error: FacilitatorError) -> ConfigError {
    ConfigError::Unsupported(vec![format!(
        "its /supported could not be read ({error}), so no route could be checked"
    )])
}

/// Warns when 402s will name resources by the request's Host header.
fn warn_without_public_url(gate: &Gate) {
    if gate.resource_policy.public_url.is_none() && gate.embedded.is_none() {
        tracing::warn!(
            target: "x402::config",
            "no public URL configured: 402 challenges name resources by the request's Host header (checked to be a plain host[:port]); set X402Builder::public_url (X402_PUBLIC_URL) so clients see the URL you intend"
        );
    }
}

/// The routes' needs a facilitator's `/supported` does not list, as an error.
fn missing_support(
    supported: &x402_protocol::facilitator::SupportedResponse,
    needs: &[Need],
) -> Result<(), ConfigError> {
    let missing: Vec<String> = needs
        .iter()
        .filter(|need| !supported.supports(need.version, &need.scheme, &need.network))
        .map(|need| {
            format!(
                "{} needs scheme {:?} on {} (x402 {}), which the facilitator does not list",
                need.route, need.scheme, need.network, need.version
            )
        })
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(ConfigError::Unsupported(missing))
    }
}

/// The accounts a gate's remote facilitator settles from (upto) or pays fees with (Solana), learned from its `/supported`.
pub(crate) struct SettlingAccounts {
    pub(crate) registry: Arc<NetworkRegistry>,
    pub(crate) accounts: Arc<RwLock<HashMap<String, ChainAddress>>>,
}

impl SettlingAccounts {
    /// Takes the accounts a facilitator lists in `/supported` for networks without one:
    /// `extra.facilitatorAddress` of its v2 `upto` kinds, `extra.feePayer` of its Solana
    /// kinds.
    pub(crate) fn learn(&self, supported: &x402_protocol::facilitator::SupportedResponse) {
        for kind in &supported.kinds {
            let Ok(network) = self.registry.network(&kind.network) else {
                continue;
            };
            let field = if network.family() == x402_protocol::Family::Solana {
                "feePayer"
            } else if kind.scheme == x402_protocol::permit2::UPTO && kind.x402_version == 2 {
                "facilitatorAddress"
            } else {
                continue;
            };
            let address = kind
                .extra
                .as_ref()
                .and_then(|extra| extra.get(field))
                .and_then(serde_json::Value::as_str)
                .and_then(|text| ChainAddress::parse_for(network.family(), text).ok());
            if let Some(address) = address {
                self.accounts
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .entry(network.caip2.to_string())
                    .or_insert(address);
            }
        }
    }
}

impl Gate {
    /// Starts configuring a gate.
    pub fn builder() -> X402Builder<Gate> {
        X402Builder::new()
    }
}
