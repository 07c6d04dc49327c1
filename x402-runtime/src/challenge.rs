//! What a route charges, resolved against the server's networks and schemes (a
//! [`PreparedRoute`], built once for a fixed price), and the [`Challenge`] a 402 carries.

use std::sync::{Arc, Mutex, PoisonError};

use x402_protocol::bazaar::{
    BazaarExtension, DiscoveredResource, EXTENSION_KEY, LastUpdated, ServiceMetadata, canonical_url,
};
use x402_protocol::facilitator::PaymentRequirements;
use x402_protocol::{AssetInfo, ChainAddress, NetworkInfo, ProtocolVersion, U256, v1, v2};

use crate::discovery::DiscoveryCatalog;
use crate::response::ResponseParts;
use crate::route::{AccessSpec, RouteSpec, SettleMode};
use crate::scheme::Scheme;

/// One accepted way to pay on a route: scheme, network, token, amount and recipient.
#[derive(Clone)]
pub struct AcceptOption {
    /// The scheme that offers it and checks its payments.
    pub scheme: Arc<dyn Scheme>,
    /// The network.
    pub network: Arc<NetworkInfo>,
    /// The token.
    pub asset: Arc<AssetInfo>,
    /// The exact amount, in atomic units.
    pub amount: U256,
    /// The recipient.
    pub pay_to: ChainAddress,
    /// Whether this option buys a prepaid balance rather than one request.
    pub prepaid: bool,
    /// The account that may settle it, for schemes whose payer names it (`upto`:
    /// `extra.facilitatorAddress`; Solana: the fee payer, `extra.feePayer`).
    pub facilitator: Option<ChainAddress>,
    /// A recent blockhash payers may build on instead of asking a node (Solana
    /// `extra.recentBlockhash`), when the facilitator has a fixed one: the dev ledger's.
    pub blockhash: Option<String>,
}

impl std::fmt::Debug for AcceptOption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcceptOption")
            .field("scheme", &self.scheme.describe())
            .field("network", &self.network.name)
            .field("asset", &self.asset.address)
            .field("amount", &self.amount)
            .field("pay_to", &self.pay_to)
            .field("prepaid", &self.prepaid)
            .field("facilitator", &self.facilitator)
            .field("blockhash", &self.blockhash)
            .finish()
    }
}

/// A route ready to answer requests: its options and both generations' requirements.
#[derive(Debug)]
pub(crate) struct PreparedRoute {
    /// The spec it was prepared from.
    pub(crate) spec: &'static RouteSpec,
    pub(crate) options: Vec<AcceptOption>,
    pub(crate) settle: SettleMode,
    pub(crate) access: Option<AccessSpec>,
    pub(crate) prepay: bool,
    /// Whether the 402 carries the v1 body / the v2 header (and such payments are accepted).
    pub(crate) v1: bool,
    pub(crate) v2: bool,
    /// Both generations' requirements, for matching payments; v1 entries have an empty
    /// `resource`, filled in per request.
    pub(crate) accepts: Vec<PaymentRequirements>,
    /// Which option each entry of `accepts` came from.
    pub(crate) accept_option: Vec<usize>,
    /// The v2 entries, as sent in `PAYMENT-REQUIRED`.
    pub(crate) v2_accepts: Vec<v2::PaymentRequirements>,
    /// The v1 entries, as sent in the 402 body (resource filled in per request).
    pub(crate) v1_accepts: Vec<v1::PaymentRequirements>,
    /// The v2 `extensions` the 402 declares (payment-identifier, …).
    pub(crate) extensions: Option<serde_json::Value>,
    /// The route's Bazaar declaration, narrowed per request into `extensions.bazaar`.
    pub(crate) bazaar: Option<BazaarExtension>,
    /// The route's valid Bazaar service metadata, sent in the v2 402's `resource`.
    pub(crate) service: ServiceMetadata,
    /// The resource last listed in the discovery catalogue, so that a route asked for again
    /// is not listed again.
    pub(crate) listed: Mutex<Option<String>>,
    /// The last bare challenge rendered, with its resource URL: a paid route asked for
    /// repeatedly without payment answers identically each time.
    pub(crate) last_challenge: Mutex<Option<Arc<CachedChallenge>>>,
    /// The same for the browser paywall's page.
    pub(crate) paywall_page: crate::paywall::PageCache,
}

/// A bare challenge as rendered for one resource URL, in both forms integrations take.
#[derive(Debug)]
pub(crate) struct CachedChallenge {
    pub(crate) resource: String,
    pub(crate) parts: ResponseParts,
    /// The same status and headers as `http` types (made when first asked for), whose values
    /// are shared, not copied, by every response that serves them.
    pub(crate) http: std::sync::OnceLock<(http::StatusCode, http::HeaderMap)>,
}

impl PreparedRoute {
    pub(crate) fn new(
        spec: &'static RouteSpec,
        options: Vec<AcceptOption>,
        max_timeout_seconds: u64,
        extensions: Option<serde_json::Value>,
    ) -> Self {
        let (v1, v2) = match spec.only {
            None => (true, true),
            Some(ProtocolVersion::V1) => (true, false),
            Some(ProtocolVersion::V2) => (false, true),
        };
        let prepay = options.iter().any(|o| o.prepaid);
        // `extra` is the scheme's (an EVM token's EIP-712 domain, a Solana fee payer…);
        // prepaid options also say so, so clients can tell a session purchase from a single
        // request (clients echo `extra` unchanged).
        let extra = |option: &AcceptOption| {
            let mut extra = option.scheme.extra(option);
            if option.prepaid {
                let balance = serde_json::json!({ "balance": option.amount.to_string() });
                match &mut extra {
                    Some(serde_json::Value::Object(map)) => {
                        map.insert("prepaid".to_owned(), balance);
                    }
                    _ => extra = Some(serde_json::json!({ "prepaid": balance })),
                }
            }
            extra
        };
        // Legacy v1 clients reject a whole 402 that lists a network they do not know; leave
        // such networks out of the v1 body unless nothing else remains.
        let any_legacy = options.iter().any(|o| o.network.legacy_v1);
        let mut accepts = Vec::new();
        let mut accept_option = Vec::new();
        let mut v1_accepts = Vec::new();
        for (index, option) in options.iter().enumerate() {
            // Permit2 and `upto` are v2 additions: v1 clients neither know nor sign them.
            let v2_only = option.scheme.method() == crate::scheme::TransferMethod::Permit2;
            if v1 && !v2_only && (!any_legacy || option.network.legacy_v1) {
                let entry = v1::PaymentRequirements {
                    scheme: option.scheme.name().to_owned(),
                    network: option.network.wire_id(ProtocolVersion::V1).to_owned(),
                    max_amount_required: option.amount,
                    resource: String::new(),
                    description: spec.description.to_owned(),
                    mime_type: spec.mime_type.to_owned(),
                    output_schema: None,
                    pay_to: option.pay_to.to_string(),
                    max_timeout_seconds,
                    asset: option.asset.address.to_string(),
                    extra: extra(option),
                };
                v1_accepts.push(entry.clone());
                accepts.push(PaymentRequirements::V1(entry));
                accept_option.push(index);
            }
        }
        let mut v2_accepts = Vec::new();
        for (index, option) in options.iter().enumerate().filter(|_| v2) {
            let entry = v2::PaymentRequirements {
                scheme: option.scheme.name().to_owned(),
                network: option.network.wire_id(ProtocolVersion::V2).to_owned(),
                amount: option.amount,
                asset: option.asset.address.to_string(),
                pay_to: option.pay_to.to_string(),
                max_timeout_seconds,
                extra: extra(option),
            };
            v2_accepts.push(entry.clone());
            accepts.push(PaymentRequirements::V2(entry));
            accept_option.push(index);
        }
        PreparedRoute {
            spec,
            options,
            settle: spec.settle,
            access: spec.access,
            prepay,
            v1,
            v2,
            accepts,
            accept_option,
            v2_accepts,
            v1_accepts,
            extensions,
            bazaar: spec.discovery.map(|declare| declare()),
            service: spec.service_metadata(),
            listed: Mutex::new(None),
            last_challenge: Mutex::new(None),
            paywall_page: Default::default(),
        }
    }

    /// The option a matched requirements entry came from.
    pub(crate) fn option_of(&self, matched: &PaymentRequirements) -> &AcceptOption {
        let index = self
            .accepts
            .iter()
            .position(|r| std::ptr::eq(r, matched))
            .map_or(0, |i| self.accept_option[i]);
        &self.options[index]
    }

    /// The last bare challenge rendered for `resource`, if it is the one asked for.
    pub(crate) fn cached_challenge(&self, resource: &str) -> Option<Arc<CachedChallenge>> {
        let cache = self
            .last_challenge
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        cache
            .as_ref()
            .filter(|cached| cached.resource == resource)
            .cloned()
    }

    /// Remembers the bare challenge rendered for `resource`.
    pub(crate) fn cache_challenge(&self, cached: Arc<CachedChallenge>) {
        *self
            .last_challenge
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(cached);
    }
}

/// What a 402 offers: the resource and the ways to pay for it, in both generations.
#[derive(Debug, Clone)]
pub struct Challenge {
    route: Arc<PreparedRoute>,
    resource: String,
    /// Set when a browser asked and the route has a paywall: the 402 is an HTML page.
    paywall: Option<crate::paywall::Chosen>,
    /// The route's Bazaar declaration for this request (`extensions.bazaar`).
    bazaar: Option<serde_json::Value>,
    /// This 402's sign-in challenge (`extensions["sign-in-with-x"]`), fresh each time.
    sign_in: Option<serde_json::Value>,
}

impl Challenge {
    pub(crate) fn new(route: Arc<PreparedRoute>, resource: String) -> Self {
        Challenge {
            route,
            resource,
            paywall: None,
            bazaar: None,
            sign_in: None,
        }
    }

    /// Declares sign-in-with-x in this 402 (v2 only: v1 has no extensions), with a fresh
    /// nonce, for a route that grants access.
    pub(crate) fn with_sign_in(mut self, verifier: &crate::siwx::SiwxVerifier) -> Self {
        if !self.route.v2 || !self.grants() {
            return self;
        }
        let chains = crate::gate::signin_chains(&self);
        match verifier.declare(&self.resource, &chains) {
            Ok(declaration) => match serde_json::to_value(declaration) {
                Ok(value) => self.sign_in = Some(value),
                Err(error) => {
                    tracing::warn!(target: "x402::siwx", %error, "could not write a sign-in declaration");
                }
            },
            Err(error) => {
                tracing::warn!(target: "x402::siwx", %error, resource = %self.resource, "no sign-in declaration for this resource");
            }
        }
        self
    }

    /// Whether the 402 is the same for every request to the resource (no per-request
    /// challenge such as a sign-in nonce), so that its rendering can be reused.
    pub(crate) fn is_reusable(&self) -> bool {
        self.sign_in.is_none()
    }

    /// Adds the route's Bazaar declaration, narrowed to a request with `method` to `path`
    /// (a HEAD request is answered for the GET it stands for).
    pub(crate) fn with_bazaar(mut self, method: &str, path: &str) -> Self {
        let method = if method.eq_ignore_ascii_case("HEAD") {
            "GET"
        } else {
            method
        };
        self.bazaar = self
            .route
            .bazaar
            .as_ref()
            .map(|declared| declared.for_request(method, None, path).to_value());
        self
    }

    /// Lists the resource in `catalog` when the route declares Bazaar metadata and speaks v2
    /// (once per resource in a row: a route asked for repeatedly is listed once).
    pub(crate) fn list_in(&self, catalog: &DiscoveryCatalog) {
        let Some(bazaar) = self.bazaar.as_ref().filter(|_| self.route.v2) else {
            return;
        };
        let resource = canonical_url(&self.resource, None).unwrap_or_else(|| self.resource.clone());
        {
            let mut listed = self
                .route
                .listed
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if listed.as_deref() == Some(resource.as_str()) {
                return;
            }
            *listed = Some(resource.clone());
        }
        let spec = self.route.spec;
        let text = |s: &str| Some(s.to_owned()).filter(|s| !s.is_empty());
        catalog.upsert(DiscoveredResource {
            resource,
            kind: "http".to_owned(),
            x402_version: 2,
            accepts: self
                .route
                .v2_accepts
                .iter()
                .filter_map(|entry| serde_json::to_value(entry).ok())
                .collect(),
            // Set by the catalogue.
            last_updated: LastUpdated::Text(String::new()),
            description: text(spec.description),
            mime_type: text(spec.mime_type),
            service_name: self.route.service.service_name.clone(),
            tags: self.route.service.tags.clone(),
            icon_url: self.route.service.icon_url.clone(),
            extensions: Some(serde_json::json!({ EXTENSION_KEY: bazaar })),
        });
    }

    /// The `extensions` of this challenge's v2 402: the route's, `bazaar` when declared, and
    /// `sign-in-with-x` when offered.
    pub(crate) fn extensions(&self) -> Option<serde_json::Value> {
        if self.bazaar.is_none() && self.sign_in.is_none() {
            return self.route.extensions.clone();
        }
        let mut extensions = match &self.route.extensions {
            Some(serde_json::Value::Object(map)) => map.clone(),
            _ => serde_json::Map::new(),
        };
        if let Some(bazaar) = &self.bazaar {
            extensions.insert(EXTENSION_KEY.to_owned(), bazaar.clone());
        }
        if let Some(sign_in) = &self.sign_in {
            extensions.insert(
                x402_protocol::siwx::EXTENSION_KEY.to_owned(),
                sign_in.clone(),
            );
        }
        Some(serde_json::Value::Object(extensions))
    }

    pub(crate) fn with_paywall(mut self, paywall: Option<crate::paywall::Chosen>) -> Self {
        self.paywall = paywall;
        self
    }

    pub(crate) fn paywall(&self) -> Option<&crate::paywall::Chosen> {
        self.paywall.as_ref()
    }

    pub(crate) fn route(&self) -> &Arc<PreparedRoute> {
        &self.route
    }

    /// The absolute URL of the paid resource.
    pub fn resource(&self) -> &str {
        &self.resource
    }

    /// The accepted ways to pay.
    pub fn options(&self) -> &[AcceptOption] {
        &self.route.options
    }

    /// Whether this route grants reusable access or prepaid sessions.
    pub(crate) fn grants(&self) -> bool {
        self.route.access.is_some() || self.route.prepay
    }

    /// The v2 `PaymentRequired` this challenge sends in `PAYMENT-REQUIRED`, with `error`.
    pub fn v2(&self, error: &str) -> v2::PaymentRequired {
        let spec = self.route.spec;
        v2::PaymentRequired {
            x402_version: Default::default(),
            error: Some(error.to_owned()),
            resource: Some(v2::ResourceInfo {
                url: self.resource.clone(),
                description: spec.description.to_owned(),
                mime_type: spec.mime_type.to_owned(),
                service_name: self.route.service.service_name.clone(),
                tags: self.route.service.tags.clone(),
                icon_url: self.route.service.icon_url.clone(),
            }),
            accepts: self.route.v2_accepts.clone(),
            extensions: self.extensions(),
        }
    }

    /// The v1 402 body this challenge sends, with `error`.
    pub fn v1(&self, error: &str) -> v1::PaymentRequired {
        v1::PaymentRequired {
            x402_version: Default::default(),
            error: error.to_owned(),
            accepts: self
                .route
                .v1_accepts
                .iter()
                .map(|entry| v1::PaymentRequirements {
                    resource: self.resource.clone(),
                    ..entry.clone()
                })
                .collect(),
            payer: None,
        }
    }
}
