//! Configuring a [`Gate`]: facilitator, recipient, networks, stores.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::str::FromStr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use x402_protocol::{AssetInfo, ChainAddress, NetworkError, NetworkInfo, NetworkRegistry, codec};

use crate::clock::{Clock, SystemClock};
use crate::discovery::DiscoveryCatalog;
use crate::entitlement::EntitlementKeys;
use crate::facilitator::{EmbeddedFacilitator, Facilitator, FacilitatorError, HttpFacilitator};
use crate::gate::reconcile::Reconciler;
use crate::gate::{Gate, PaymentIds};
use crate::hooks::{HookRunner, Hooks};
use crate::journal::{Journal, LazyJournal, MemoryJournal};
use crate::paywall::PaywallConfig;
use crate::request::ResourcePolicy;
use crate::route::{RouteSpec, registered_routes};
use crate::scheme::{Scheme, Schemes};
use crate::store::{EntitlementStore, MemoryEntitlementStore, MemoryReplayStore, ReplayStore};

/// Why a configuration could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// No facilitator was chosen.
    #[error(
        "no facilitator configured: call .facilitator(\"https://…\") for a real one, or \
         .embedded_facilitator() for development (or set X402_FACILITATOR_URL)"
    )]
    MissingFacilitator,
    /// The recipient is not an address.
    #[error(
        "pay_to {0:?} is not an address: give an EVM address (0x followed by 40 hex digits) or a Solana address (base58)"
    )]
    InvalidPayTo(String),
    /// Routes that cannot be served as configured, each with a sentence naming the route and
    /// what to change.
    #[error("{} paid route(s) are misconfigured:\n- {}", .0.len(), .0.join("\n- "))]
    Routes(Vec<String>),
    /// The facilitator does not handle what routes need.
    #[error("the facilitator does not handle what these routes need:\n- {}", .0.join("\n- "))]
    Unsupported(Vec<String>),
    /// A network or token could not be registered or found.
    #[error(transparent)]
    Network(#[from] NetworkError),
    /// An entitlement key was refused.
    #[error(transparent)]
    EntitlementKey(#[from] crate::entitlement::KeyError),
    /// The HTTP facilitator client could not be built.
    #[error("facilitator: {0}")]
    Facilitator(#[from] FacilitatorError),
    /// The configuration file (or `X402_CONFIG_TOML`) has a mistake, or a secret it names
    /// could not be read.
    #[error(transparent)]
    File(#[from] crate::config::ConfigFileError),
    /// An environment variable held an unusable value.
    #[error("environment variable {var}: {message}")]
    Env {
        /// The variable.
        var: &'static str,
        /// What was wrong.
        message: String,
    },
}

enum FacilitatorChoice {
    Url(String, Option<String>),
    Embedded(Option<EmbeddedFacilitator>),
    Given(Arc<dyn Facilitator>),
}

/// The default largest response body kept for retries.
pub const DEFAULT_KEEP_RESPONSE_BYTES: usize = 1 << 20;

/// What [`X402Builder::build`] does with a `#[paid]` route it cannot serve as configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RouteCheck {
    /// Refuse to build, listing every such route (the default).
    #[default]
    Fail,
    /// Log each one as an error and build anyway: those routes answer 500
    /// `x402_not_configured` until fixed. For programs that link routes belonging to several
    /// differently configured servers.
    Warn,
    /// Check nothing at start-up.
    Skip,
}

/// Builds the x402 configuration a server runs with; `T` is what you get back (the runtime's
/// [`Gate`], or a framework integration's `X402`).
///
/// ```
/// use x402_runtime::{Gate, X402Builder};
///
/// let gate: Gate = X402Builder::new()
///     .embedded_facilitator()
///     .pay_to("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC")
///     .default_network("base-sepolia")
///     .build()?;
/// assert!(gate.dev_ledger().is_some());
/// # Ok::<(), x402_runtime::ConfigError>(())
/// ```
#[must_use]
pub struct X402Builder<T = Gate> {
    facilitator: Option<FacilitatorChoice>,
    pay_to: Vec<String>,
    schemes: Schemes,
    local_checks: bool,
    route_check: RouteCheck,
    extra_routes: Vec<&'static RouteSpec>,
    networks: Vec<NetworkInfo>,
    assets: Vec<(String, AssetInfo)>,
    default_networks: Vec<String>,
    replay: Option<Arc<dyn ReplayStore>>,
    entitlements: Option<Arc<dyn EntitlementStore>>,
    entitlement_keys: Option<EntitlementKeys>,
    clock: Option<Arc<dyn Clock>>,
    resource_policy: ResourcePolicy,
    facilitator_timeout: Duration,
    settlement_timeout: Duration,
    max_header_bytes: usize,
    max_authorization_lifetime: Duration,
    paywall: Option<PaywallConfig>,
    deferred_error: Option<ConfigError>,
    journal: Option<Arc<dyn Journal>>,
    keep_response_bytes: usize,
    payment_ids: PaymentIds,
    reconcile_after: Option<Duration>,
    reconcile_every: Option<Duration>,
    hooks: HookRunner,
    discovery: Option<Arc<DiscoveryCatalog>>,
    target: PhantomData<fn() -> T>,
}

impl<T> Default for X402Builder<T> {
    fn default() -> Self {
        X402Builder {
            facilitator: None,
            pay_to: Vec::new(),
            schemes: Schemes::default(),
            local_checks: true,
            route_check: RouteCheck::default(),
            extra_routes: Vec::new(),
            networks: Vec::new(),
            assets: Vec::new(),
            default_networks: Vec::new(),
            replay: None,
            entitlements: None,
            entitlement_keys: None,
            clock: None,
            resource_policy: ResourcePolicy::default(),
            facilitator_timeout: Duration::from_secs(10),
            settlement_timeout: Duration::from_secs(60),
            max_header_bytes: codec::DEFAULT_MAX_HEADER_BYTES,
            max_authorization_lifetime: Duration::from_secs(24 * 60 * 60),
            paywall: None,
            deferred_error: None,
            journal: None,
            keep_response_bytes: DEFAULT_KEEP_RESPONSE_BYTES,
            payment_ids: PaymentIds::Optional,
            reconcile_after: None,
            reconcile_every: Some(Duration::from_secs(30)),
            hooks: HookRunner::new(),
            discovery: None,
            target: PhantomData,
        }
    }
}

impl<T: From<Gate>> X402Builder<T> {
    /// An empty configuration.
    pub fn new() -> Self {
        Self::default()
    }

    /// Uses the facilitator at this URL (e.g. `https://x402.org/facilitator`).
    pub fn facilitator(mut self, url: impl Into<String>) -> Self {
        self.facilitator = Some(FacilitatorChoice::Url(url.into(), None));
        self
    }

    /// Uses the facilitator at this URL, sending `Authorization: <value>` with each call.
    pub fn facilitator_with_auth(
        mut self,
        url: impl Into<String>,
        authorization: impl Into<String>,
    ) -> Self {
        self.facilitator = Some(FacilitatorChoice::Url(
            url.into(),
            Some(authorization.into()),
        ));
        self
    }

    /// Verifies in process and settles into an in-memory dev ledger (see
    /// [`Gate::dev_ledger`]). For development and tests: no money moves.
    pub fn embedded_facilitator(mut self) -> Self {
        self.facilitator = Some(FacilitatorChoice::Embedded(None));
        self
    }

    /// Verifies in process with this configured [`EmbeddedFacilitator`] (for example one that
    /// settles on a chain through `x402-evm`). Its checks are the gate's own, so each payment's
    /// signature is checked once.
    pub fn embedded_facilitator_with(mut self, facilitator: EmbeddedFacilitator) -> Self {
        self.facilitator = Some(FacilitatorChoice::Embedded(Some(facilitator)));
        self
    }

    /// Uses any [`Facilitator`].
    pub fn facilitator_client(mut self, facilitator: Arc<dyn Facilitator>) -> Self {
        self.facilitator = Some(FacilitatorChoice::Given(facilitator));
        self
    }

    /// The default recipient for routes that do not name one: an EVM address (`0x…`) for EVM
    /// networks or a Solana address (base58) for Solana clusters. Call it once per chain
    /// family you are paid on.
    pub fn pay_to(mut self, address: impl Into<String>) -> Self {
        self.pay_to.push(address.into());
        self
    }

    /// Adds a payment scheme beside the built-in ones (for example `x402-svm`'s Solana
    /// `exact`). A scheme for the same scheme name, family and transfer method replaces the
    /// built-in one.
    pub fn scheme(mut self, scheme: Arc<dyn Scheme>) -> Self {
        self.schemes.add(scheme);
        self
    }

    /// Whether the gate checks payments itself (amount, recipient, window, signature, replay)
    /// before asking a remote facilitator (default: yes). With checks on, a facilitator that
    /// answers `isValid: true` for a payment that fails them cannot get a handler run, and
    /// replayed payments cost no facilitator call. Switch off only to leave every check to a
    /// facilitator you trust. The embedded facilitator's checks always run, once.
    pub fn local_checks(mut self, enabled: bool) -> Self {
        self.local_checks = enabled;
        self
    }

    /// What [`build`](Self::build) does with a registered `#[paid]` route it cannot serve
    /// (default [`RouteCheck::Fail`]).
    pub fn route_check(mut self, check: RouteCheck) -> Self {
        self.route_check = check;
        self
    }

    /// Checks a route written without `#[paid]` at start-up too (registered `#[paid]` routes
    /// are checked anyway).
    pub fn check_route(mut self, spec: &'static RouteSpec) -> Self {
        self.extra_routes.push(spec);
        self
    }

    /// A network for routes that do not name one (may be called several times).
    pub fn default_network(mut self, network: impl Into<String>) -> Self {
        self.default_networks.push(network.into());
        self
    }

    /// Registers a network beyond the built-in ones, such as a local dev chain.
    pub fn network(mut self, network: NetworkInfo) -> Self {
        self.networks.push(network);
        self
    }

    /// Registers a token on a network beside its default stablecoin.
    pub fn asset(mut self, network: impl Into<String>, asset: AssetInfo) -> Self {
        self.assets.push((network.into(), asset));
        self
    }

    /// Where used payment authorizations are recorded (default: in memory). Replicas behind
    /// one load balancer must share a store.
    pub fn replay_store(mut self, store: impl ReplayStore) -> Self {
        self.replay = Some(Arc::new(store));
        self
    }

    /// Where entitlement use counts and prepaid balances are kept (default: in memory).
    /// Replicas behind one load balancer must share a store.
    pub fn entitlement_store(mut self, store: impl EntitlementStore) -> Self {
        self.entitlements = Some(Arc::new(store));
        self
    }

    /// The keys that sign entitlement tokens. Replicas must share them; without them each
    /// process signs with a random key of its own (tokens then work on that process only, and
    /// not after a restart).
    pub fn entitlement_keys(mut self, keys: EntitlementKeys) -> Self {
        self.entitlement_keys = Some(keys);
        self
    }

    /// The clock (default: system time). Tests use [`ManualClock`](crate::clock::ManualClock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The public origin of this server (`https://api.example.com`), used in `resource` URLs
    /// instead of the request's `Host`.
    pub fn public_url(mut self, url: impl Into<String>) -> Self {
        self.resource_policy.public_url = Some(url.into());
        self
    }

    /// Believes `Forwarded` / `X-Forwarded-*` headers when building `resource` URLs. Enable only
    /// behind a proxy that sets them.
    pub fn trust_forwarded_headers(mut self, trust: bool) -> Self {
        self.resource_policy.trust_forwarded_headers = trust;
        self
    }

    /// How long to wait for the facilitator to verify a payment before answering 504
    /// (default 10 s).
    pub fn facilitator_timeout(mut self, timeout: Duration) -> Self {
        self.facilitator_timeout = timeout;
        self
    }

    /// How long to wait for the facilitator to settle a payment (default 60 s: settling means
    /// waiting for a block). Giving up early does not stop a transfer that is already
    /// submitted, so keep this longer than the facilitator takes to settle.
    pub fn settlement_timeout(mut self, timeout: Duration) -> Self {
        self.settlement_timeout = timeout;
        self
    }

    /// The largest payment header accepted, in bytes (default 8 KiB); longer ones get 431.
    pub fn max_header_bytes(mut self, bytes: usize) -> Self {
        self.max_header_bytes = bytes;
        self
    }

    /// The longest an authorization may stay valid (default 24 h). Authorizations are
    /// remembered until they expire, so this bounds replay-store memory.
    pub fn max_authorization_lifetime(mut self, lifetime: Duration) -> Self {
        self.max_authorization_lifetime = lifetime;
        self
    }

    /// Answers browsers that open a paid route without paying with an HTML page they can pay
    /// on (see [`paywall`](crate::paywall)); off unless called. Routes can opt out with
    /// [`RouteSpec::no_paywall`](crate::RouteSpec::no_paywall) or bring their own look.
    pub fn paywall(mut self, config: PaywallConfig) -> Self {
        self.paywall = Some(config);
        self
    }

    /// Takes networks, tokens and server settings from a parsed configuration (see
    /// [`config`](crate::config)): its networks and tokens are registered; its
    /// `[server]` table sets the facilitator (and its bearer token, read now from where the
    /// file says), recipients, default networks, public URL and timeouts. Settings made after
    /// this call override it.
    pub fn config(mut self, config: &crate::config::Config) -> Self {
        for entry in &config.networks {
            if entry.declared {
                self.networks.push(entry.network.clone());
            }
            for token in &entry.tokens {
                self.assets
                    .push((entry.network.caip2.to_string(), token.clone()));
            }
        }
        let server = &config.server;
        if let Some(url) = &server.facilitator {
            self = if url.eq_ignore_ascii_case("embedded") {
                self.embedded_facilitator()
            } else {
                match &server.facilitator_token {
                    None => self.facilitator(url.clone()),
                    Some(source) => match source.read() {
                        Ok(token) => self.facilitator_with_auth(
                            url.clone(),
                            format!("Bearer {}", token.as_str()),
                        ),
                        Err(message) => {
                            self.deferred_error.get_or_insert(ConfigError::File(
                                config.error("server.facilitator_token", message),
                            ));
                            self
                        }
                    },
                }
            };
        }
        for address in &server.pay_to {
            self = self.pay_to(address.trim());
        }
        if !server.networks.is_empty() {
            self.default_networks = server.networks.clone();
        }
        if let Some(url) = &server.public_url {
            self = self.public_url(url.trim());
        }
        if let Some(timeout) = server.settlement_timeout {
            self.settlement_timeout = timeout;
        }
        if let Some(timeout) = server.facilitator_timeout {
            self.facilitator_timeout = timeout;
        }
        self
    }

    /// Reads a configuration file ([`config`](crate::config) describes the format) and
    /// applies it as [`config`](Self::config) does. A mistake in it is reported by
    /// [`build`](Self::build), as a sentence naming the file, line and key.
    pub fn config_file(mut self, path: impl AsRef<std::path::Path>) -> Self {
        match crate::config::Config::load(path) {
            Ok(config) => self.config(&config),
            Err(error) => {
                self.deferred_error.get_or_insert(ConfigError::File(error));
                self
            }
        }
    }

    /// Where admitted payments and every change of their state are recorded (default: in
    /// memory). Use a SQLite file for a single server, Postgres for replicas: the journal is
    /// what answers a client whose answer was lost, what reconciliation resolves after a crash,
    /// and what `x402ctl payments` reports.
    ///
    /// ```no_run
    /// # #[cfg(feature = "sqlite")]
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// use x402_runtime::Gate;
    /// use x402_runtime::journal::SqliteJournal;
    ///
    /// let gate = Gate::builder()
    ///     .facilitator("https://x402.org/facilitator")
    ///     .pay_to("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC")
    ///     .journal(SqliteJournal::open("payments.db").await?)
    ///     .build()?;
    /// # let _ = gate; Ok(()) }
    /// ```
    pub fn journal(mut self, journal: impl Journal) -> Self {
        self.journal = Some(Arc::new(journal));
        self
    }

    /// The journal at `url` (`sqlite://payments.db`, `postgres://…`, `memory:`), opened (and
    /// created, migrated) in the background as the gate starts; until it is open, paid
    /// requests wait for it, and fail closed (503) if it cannot be opened.
    pub fn journal_url(mut self, url: impl Into<String>) -> Self {
        self.journal = Some(Arc::new(LazyJournal::new(url)));
        self
    }

    /// The largest response body kept in the journal to answer a retried payment (default
    /// 1 MiB); larger or streamed responses are not kept, and a retry gets 409
    /// `payment_already_settled` with the receipt instead.
    pub fn keep_response_bytes(mut self, bytes: usize) -> Self {
        self.keep_response_bytes = bytes;
        self
    }

    /// How the `payment-identifier` extension is offered (default: declared, optional).
    pub fn payment_ids(mut self, policy: PaymentIds) -> Self {
        self.payment_ids = policy;
        self
    }

    /// How old an open journal record (verified, settling, unknown) must be before
    /// reconciliation resolves it (default: twice the settlement timeout, at least 2 minutes).
    /// It must exceed the time a handler and its settlement can take, or reconciliation would
    /// release payments still being served.
    pub fn reconcile_after(mut self, age: Duration) -> Self {
        self.reconcile_after = Some(age);
        self
    }

    /// How often the gate reconciles in the background (default every 30 s, starting at
    /// start-up, when built inside a tokio runtime); `None` turns it off
    /// ([`Gate::reconcile`] still works).
    pub fn reconcile_every(mut self, every: Option<Duration>) -> Self {
        self.reconcile_every = every;
        self
    }

    /// Adds lifecycle hooks (see [`hooks`](crate::hooks)): code of the server's own run before
    /// and after a payment is verified, and after it is settled or fails to. Hooks added by
    /// several calls run in the order they were added; a hook that aborts stops the request
    /// (nothing settled, the handler not run), and one that fails, panics or hangs refuses it
    /// (500 `hook_failed`).
    ///
    /// ```
    /// use x402_runtime::hooks::{Abort, FnHooks, HookContext, Verdict};
    /// use x402_runtime::{Gate, Reason};
    ///
    /// let gate = Gate::builder()
    ///     .embedded_facilitator()
    ///     .pay_to("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC")
    ///     .hooks(FnHooks::new().after_verify(|ctx: HookContext| async move {
    ///         Ok(match ctx.payment.payer.as_deref() {
    ///             Some("0x000000000000000000000000000000000000dEaD") => Verdict::Abort(
    ///                 Abort::new(403, Reason::new("payer_blocked"), "this payer is blocked"),
    ///             ),
    ///             _ => Verdict::Continue,
    ///         })
    ///     }))
    ///     .build()?;
    /// # let _ = gate;
    /// # Ok::<(), x402_runtime::ConfigError>(())
    /// ```
    pub fn hooks(mut self, hooks: impl Hooks) -> Self {
        self.hooks = self.hooks.with(hooks);
        self
    }

    /// How long each lifecycle hook may run before it counts as failed (default 10 s).
    pub fn hook_timeout(mut self, timeout: Duration) -> Self {
        self.hooks = self.hooks.timeout(timeout);
        self
    }

    /// Lists every route declared [`discoverable`](RouteSpec::discoverable) in `catalog` (with
    /// its price, description and `bazaar` declaration) once it has been asked for, e.g. for
    /// a facilitator in the same process to serve from `/discovery/resources`.
    pub fn discovery_catalog(mut self, catalog: Arc<DiscoveryCatalog>) -> Self {
        self.discovery = Some(catalog);
        self
    }

    /// Reads settings from the environment, overriding what was set before
    /// (`X402_PAY_TO` may list one address per chain family, comma-separated). A
    /// configuration named by `X402_CONFIG` (a file) or held in `X402_CONFIG_TOML` is applied
    /// first, so the variables below override it:
    ///
    /// | variable | meaning |
    /// | --- | --- |
    /// | `X402_CONFIG` | path of a configuration file ([`config`](crate::config)) |
    /// | `X402_CONFIG_TOML` | the configuration itself, as TOML text |
    /// | `X402_FACILITATOR_URL` | facilitator base URL, or `embedded` for the dev facilitator |
    /// | `X402_FACILITATOR_AUTHORIZATION` | `Authorization` header value for the facilitator |
    /// | `X402_PAY_TO` | default recipient |
    /// | `X402_NETWORKS` | default networks, comma-separated |
    /// | `X402_PUBLIC_URL` | public origin for `resource` URLs |
    /// | `X402_TRUST_FORWARDED_HEADERS` | `true` / `false` |
    /// | `X402_FACILITATOR_TIMEOUT_MS` | facilitator timeout in milliseconds |
    /// | `X402_ENTITLEMENT_KEYS` | `id:hexsecret[,id:hexsecret…]`, current key first, then previous keys |
    /// | `X402_JOURNAL_URL` | the payment journal: `sqlite://payments.db`, `postgres://…`, `memory:` |
    ///
    /// Bad values are reported by [`build`](Self::build).
    pub fn read_env(self) -> Self {
        self.read_env_with(|var| std::env::var(var).ok())
    }

    fn read_env_with(mut self, get: impl Fn(&str) -> Option<String>) -> Self {
        use crate::config::{CONFIG_ENV, CONFIG_TOML_ENV, Config};
        if let Some(path) = get(CONFIG_ENV).filter(|v| !v.trim().is_empty()) {
            self = self.config_file(path.trim());
        } else if let Some(text) = get(CONFIG_TOML_ENV).filter(|v| !v.trim().is_empty()) {
            self = match Config::parse(&text, CONFIG_TOML_ENV) {
                Ok(config) => self.config(&config),
                Err(error) => {
                    self.deferred_error.get_or_insert(ConfigError::File(error));
                    self
                }
            };
        }
        if let Some(url) = get("X402_FACILITATOR_URL").filter(|v| !v.trim().is_empty()) {
            self = if url.trim().eq_ignore_ascii_case("embedded") {
                self.embedded_facilitator()
            } else {
                match get("X402_FACILITATOR_AUTHORIZATION") {
                    Some(auth) => self.facilitator_with_auth(url.trim(), auth),
                    None => self.facilitator(url.trim()),
                }
            };
        }
        if let Some(pay_to) = get("X402_PAY_TO") {
            for address in pay_to.split(',').map(str::trim).filter(|a| !a.is_empty()) {
                self = self.pay_to(address);
            }
        }
        if let Some(networks) = get("X402_NETWORKS") {
            self.default_networks = networks
                .split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(String::from)
                .collect();
        }
        if let Some(url) = get("X402_PUBLIC_URL") {
            self = self.public_url(url.trim());
        }
        if let Some(trust) = get("X402_TRUST_FORWARDED_HEADERS") {
            match trust.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" => self.resource_policy.trust_forwarded_headers = true,
                "0" | "false" | "no" | "" => self.resource_policy.trust_forwarded_headers = false,
                other => {
                    self.deferred_error.get_or_insert(ConfigError::Env {
                        var: "X402_TRUST_FORWARDED_HEADERS",
                        message: format!("expected true or false, found {other:?}"),
                    });
                }
            }
        }
        if let Some(keys) = get("X402_ENTITLEMENT_KEYS").filter(|v| !v.trim().is_empty()) {
            match EntitlementKeys::parse(&keys) {
                Ok(keys) => self.entitlement_keys = Some(keys),
                Err(error) => {
                    self.deferred_error.get_or_insert(ConfigError::Env {
                        var: "X402_ENTITLEMENT_KEYS",
                        message: error.to_string(),
                    });
                }
            }
        }
        if let Some(url) = get("X402_JOURNAL_URL").filter(|v| !v.trim().is_empty()) {
            self = self.journal_url(url.trim());
        }
        if let Some(ms) = get("X402_FACILITATOR_TIMEOUT_MS") {
            match ms.trim().parse::<u64>() {
                Ok(ms) if ms > 0 => self.facilitator_timeout = Duration::from_millis(ms),
                _ => {
                    self.deferred_error.get_or_insert(ConfigError::Env {
                        var: "X402_FACILITATOR_TIMEOUT_MS",
                        message: format!(
                            "expected a positive number of milliseconds, found {ms:?}"
                        ),
                    });
                }
            }
        }
        self
    }

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
    pub fn build(self) -> Result<T, ConfigError> {
        let (gate, needs) = self.build_checked_routes()?;
        if tokio::runtime::Handle::try_current().is_ok() && gate.embedded.is_none() {
            let facilitator = gate.facilitator.clone();
            tokio::spawn(async move {
                if let Err(error) = check_support(facilitator.as_ref(), &needs).await {
                    tracing::warn!(target: "x402::config", %error, "start-up check of the facilitator");
                }
            });
        }
        Ok(T::from(gate))
    }

    /// [`build`](Self::build), then asks the facilitator's `/supported` whether it handles the
    /// scheme and network of every route, and fails if it does not (or cannot be asked).
    pub async fn build_checked(self) -> Result<T, ConfigError> {
        let (gate, needs) = self.build_checked_routes()?;
        check_support(gate.facilitator.as_ref(), &needs).await?;
        Ok(T::from(gate))
    }

    fn build_checked_routes(self) -> Result<(Gate, Vec<Need>), ConfigError> {
        let route_check = self.route_check;
        let extra_routes = self.extra_routes.clone();
        let gate = self.build_gate()?;
        let needs = gate.check_routes(route_check, &extra_routes)?;
        if gate.resource_policy.public_url.is_none() && gate.embedded.is_none() {
            tracing::warn!(
                target: "x402::config",
                "no public URL configured: 402 challenges name resources by the request's Host header (checked to be a plain host[:port]); set X402Builder::public_url (X402_PUBLIC_URL) so clients see the URL you intend"
            );
        }
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
        Ok(Gate {
            facilitator,
            embedded,
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

async fn check_support(facilitator: &dyn Facilitator, needs: &[Need]) -> Result<(), ConfigError> {
    if needs.is_empty() {
        return Ok(());
    }
    let supported = facilitator.supported().await.map_err(|error| {
        ConfigError::Unsupported(vec![format!(
            "its /supported could not be read ({error}), so no route could be checked"
        )])
    })?;
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

impl Gate {
    /// Starts configuring a gate.
    pub fn builder() -> X402Builder<Gate> {
        X402Builder::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_to_guess_a_facilitator() {
        let err = X402Builder::<Gate>::new()
            .pay_to("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC")
            .build()
            .unwrap_err();
        assert_eq!(err, ConfigError::MissingFacilitator);
        assert!(err.to_string().contains("embedded_facilitator"));
    }

    #[test]
    fn reads_the_environment_and_reports_bad_values() {
        let env: HashMap<&str, &str> = [
            ("X402_FACILITATOR_URL", "embedded"),
            ("X402_PAY_TO", "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"),
            ("X402_NETWORKS", "base, base-sepolia"),
        ]
        .into();
        let gate: Gate = X402Builder::new()
            .read_env_with(|k| env.get(k).map(|v| v.to_string()))
            .build()
            .unwrap();
        assert!(gate.dev_ledger().is_some());
        assert_eq!(gate.default_networks, ["base", "base-sepolia"]);

        let bad: HashMap<&str, &str> = [
            ("X402_FACILITATOR_URL", "embedded"),
            ("X402_FACILITATOR_TIMEOUT_MS", "soon"),
        ]
        .into();
        let err = X402Builder::<Gate>::new()
            .read_env_with(|k| bad.get(k).map(|v| v.to_string()))
            .build()
            .unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Env {
                var: "X402_FACILITATOR_TIMEOUT_MS",
                ..
            }
        ));

        let err = X402Builder::<Gate>::new()
            .embedded_facilitator()
            .pay_to("bob!")
            .build()
            .unwrap_err();
        assert_eq!(err, ConfigError::InvalidPayTo("bob!".into()));
        let err = X402Builder::<Gate>::new()
            .embedded_facilitator()
            .default_network("mars")
            .build()
            .unwrap_err();
        assert!(matches!(err, ConfigError::Network(_)));
    }

    const ANVIL: &str = "[[network]]\nname = \"anvil\"\nchain_id = 31337\n[[network.token]]\naddress = \"0x5FbDB2315678afecb367f032d93F642f64180aa3\"\nsymbol = \"USDC\"\ndecimals = 6\neip712_name = \"X402 Test USD\"\neip712_version = \"2\"\nusd = true\n";

    #[test]
    fn a_local_chain_comes_from_the_configuration_alone() {
        // Without a configuration, the chain is unknown and the message says how to declare it.
        let bare: HashMap<&str, &str> = [
            ("X402_FACILITATOR_URL", "embedded"),
            ("X402_NETWORKS", "eip155:31337"),
        ]
        .into();
        let err = X402Builder::<Gate>::new()
            .read_env_with(|k| bare.get(k).map(|v| v.to_string()))
            .build()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("[[network]]") && err.contains("X402_CONFIG"),
            "{err}"
        );

        let env: HashMap<&str, &str> = [
            ("X402_CONFIG_TOML", ANVIL),
            ("X402_FACILITATOR_URL", "embedded"),
            ("X402_NETWORKS", "eip155:31337"),
            ("X402_PAY_TO", "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"),
        ]
        .into();
        let gate: Gate = X402Builder::new()
            .read_env_with(|k| env.get(k).map(|v| v.to_string()))
            .build()
            .unwrap();
        let anvil = gate.registry().network("eip155:31337").unwrap();
        assert_eq!(anvil.name, "anvil");
        assert_eq!(anvil.default_asset.eip712_name, "X402 Test USD");

        let dir = std::env::temp_dir().join(format!("x402-builder-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x402.toml");
        std::fs::write(&path, format!("{ANVIL}\n[server]\nfacilitator = \"embedded\"\nnetworks = \"anvil\"\npay_to = \"0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC\"\n")).unwrap();
        let gate: Gate = X402Builder::new().config_file(&path).build().unwrap();
        assert_eq!(gate.default_networks, ["anvil"]);
        assert!(gate.dev_ledger().is_some());

        std::fs::write(&path, "[server]\nfacilitator = \"ftp://x\"\n").unwrap();
        let err = X402Builder::<Gate>::new()
            .config_file(&path)
            .build()
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("x402.toml") && text.contains("server.facilitator"),
            "{text}"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
