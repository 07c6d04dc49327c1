//! Configuring a [`Gate`]: facilitator, recipient, networks, stores.
//!
//! This file holds the builder and its basic settings; `services.rs` the journal, hooks,
//! configuration files and discovery; `env.rs` the environment; `build.rs` building and the
//! start-up checks.

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
    /// The account given to [`X402Builder::upto_facilitator`] or [`X402Builder::fee_payer`]
    /// is not an address of its network's chain family.
    #[error("the facilitator account on {network}: {address:?} is not an address of that chain")]
    InvalidSettlingAccount {
        /// The network.
        network: String,
        /// What was given.
        address: String,
    },
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
    siwx: Option<crate::siwx::SiwxVerifier>,
    settling_accounts: Vec<(String, String)>,
    chain_checks: Vec<Arc<dyn crate::facilitator::Settler>>,
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
            siwx: None,
            settling_accounts: Vec::new(),
            chain_checks: Vec::new(),
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

    /// The account a remote facilitator settles metered (`upto`) payments from on `network`
    /// (v1 name or CAIP-2 id): payers name it in their authorization
    /// (`extra.facilitatorAddress`), and only it can settle. Not needed with the embedded
    /// facilitator, which names its own settling account.
    ///
    /// ```
    /// use x402_runtime::{Gate, X402Builder};
    ///
    /// let builder: X402Builder<Gate> = X402Builder::new()
    ///     .facilitator("https://facilitator.example")
    ///     .upto_facilitator("base", "0x1111111111111111111111111111111111111111");
    /// # let _ = builder;
    /// ```
    pub fn upto_facilitator(mut self, network: &str, address: &str) -> Self {
        self.settling_accounts
            .push((network.to_owned(), address.to_owned()));
        self
    }

    /// The fee payer a remote facilitator co-signs Solana payments with on `network` (v1 name
    /// or CAIP-2 id): payers build their transaction around it (`extra.feePayer`). Not needed
    /// with the embedded facilitator, which names its own, nor with
    /// [`build_checked`](Self::build_checked), which learns it from the facilitator's
    /// `/supported` (as [`build`](Self::build) does in the background).
    ///
    /// ```
    /// use x402_runtime::{Gate, X402Builder};
    ///
    /// let builder: X402Builder<Gate> = X402Builder::new()
    ///     .facilitator("https://facilitator.example")
    ///     .fee_payer("solana-devnet", "9hSR6S7WPtxmTojgo6GG3k4yDPecgJY292j7xrsUGWBu");
    /// # let _ = builder;
    /// ```
    pub fn fee_payer(mut self, network: &str, address: &str) -> Self {
        self.settling_accounts
            .push((network.to_owned(), address.to_owned()));
        self
    }

    /// A settler this gate asks, when it uses a remote facilitator, about what only a chain can
    /// judge before the facilitator is asked: a smart-contract wallet's signature (ERC-1271, or
    /// ERC-6492 before the wallet exists), with the payer's balance and the transfer simulated
    /// (for example an `x402_evm::EvmSettler` for the chain; it sends nothing from here).
    ///
    /// Without one, a 65-byte signature that recovers to someone other than the payer is
    /// refused here as a forgery (offline it cannot be told from a contract wallet's), and a
    /// longer one is left to the facilitator. With the embedded facilitator its own settlers
    /// do this.
    pub fn chain_checks(mut self, settler: Arc<dyn crate::facilitator::Settler>) -> Self {
        self.chain_checks.push(settler);
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

    /// Lets a payer who bought access get it back by signing in with its wallet
    /// (the `sign-in-with-x` extension) instead of paying again: the 402 of every v2 route
    /// that grants access (`access`, `uses`, `prepay`) declares a sign-in challenge, a grant
    /// delivered after settlement is also kept by payer in the
    /// [entitlement store](Self::entitlement_store), and a request whose `SIGN-IN-WITH-X`
    /// header `verifier` accepts is served within that grant, its token delivered again.
    ///
    /// Nonces are single-use across replicas only with a shared
    /// [`NonceStore`](crate::store::NonceStore) in the verifier (`RedisNonceStore`), and
    /// grants are found on every replica only with a shared entitlement store.
    ///
    /// ```
    /// use x402_runtime::siwx::SiwxVerifier;
    /// use x402_runtime::{Gate, X402Builder};
    ///
    /// let gate: Gate = X402Builder::new()
    ///     .embedded_facilitator()
    ///     .pay_to("0x209693Bc6afc0C5328bA36FaF03C514EF312287C")
    ///     .sign_in_with_x(SiwxVerifier::builder().statement("Sign in to get your access back").build())
    ///     .build()?;
    /// # let _ = gate;
    /// # Ok::<(), x402_runtime::ConfigError>(())
    /// ```
    pub fn sign_in_with_x(mut self, verifier: crate::siwx::SiwxVerifier) -> Self {
        self.siwx = Some(verifier);
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
}

mod build;
mod env;
mod services;
#[cfg(test)]
mod tests;
