//! What a paid route charges: the [`RouteSpec`] the `#[paid]` attribute emits, or that you
//! write by hand.

use std::time::Duration;

use x402_protocol::{Price, PriceError, ProtocolVersion};

use crate::paywall::{PaywallConfig, RoutePaywall};
use crate::request::RequestView;
use crate::scheme::TransferMethod;

/// A price computed from the request at run time (`#[paid(price = my_fn, …)]`).
///
/// ```
/// use x402_runtime::{Price, PriceError, RequestView};
///
/// fn by_size(request: &dyn RequestView) -> Result<Price, PriceError> {
///     if request.path_and_query().contains("size=large") { Price::usd("0.05") } else { Price::usd("0.01") }
/// }
/// let _: x402_runtime::DynamicPrice = by_size;
/// ```
pub type DynamicPrice = fn(&dyn RequestView) -> Result<Price, PriceError>;

/// Where a route's price comes from.
#[derive(Debug, Clone, Copy)]
pub enum PriceSpec {
    /// A literal such as `"0.01 USDC"` or `"$0.01"`; resolved once per network and cached.
    Fixed(&'static str),
    /// A function of the request, evaluated on every request.
    Dynamic(DynamicPrice),
}

/// When the payment is settled relative to the handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SettleMode {
    /// After the handler, and only if it succeeded (status < 400). The default: a failing
    /// handler costs the client nothing.
    #[default]
    After,
    /// Before the handler runs; the handler sees the transaction in its `Payment`. Use when
    /// the handler's work must not happen unpaid (the payer is charged even if it then fails).
    Before,
}

/// How access bought by one payment can be reused (issue: entitlements).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AccessSpec {
    /// How long the grant lasts, if limited in time.
    pub duration: Option<Duration>,
    /// How many requests it covers, if limited in number.
    pub uses: Option<u64>,
    /// A named group of routes sharing the grant; `None` scopes it to this route.
    pub scope: Option<&'static str>,
}

/// Everything about how one route is paid for.
///
/// `#[paid(...)]` emits one of these as a `static`; all constructors are `const`.
///
/// ```
/// use x402_runtime::{RouteSpec, SettleMode};
///
/// static WEATHER: RouteSpec = RouteSpec::fixed("$0.01")
///     .networks(&["base", "base-sepolia"])
///     .description("Current weather")
///     .mime_type("application/json")
///     .settle(SettleMode::After);
/// assert_eq!(WEATHER.networks, &["base", "base-sepolia"]);
/// ```
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct RouteSpec {
    /// The price.
    pub price: PriceSpec,
    /// Accepted networks (v1 names or CAIP-2 ids). Empty means the server's default networks.
    pub networks: &'static [&'static str],
    /// Recipient; `None` uses the server's default `pay_to`.
    pub pay_to: Option<&'static str>,
    /// A specific token contract instead of the network's default stablecoin.
    pub asset: Option<&'static str>,
    /// What the client pays for.
    pub description: &'static str,
    /// MIME type of the response.
    pub mime_type: &'static str,
    /// `maxTimeoutSeconds` of the requirements; `None` uses the default (300, like v2
    /// reference servers).
    pub max_timeout_seconds: Option<u64>,
    /// When to settle.
    pub settle: SettleMode,
    /// A fixed resource URL instead of the request's.
    pub resource: Option<&'static str>,
    /// Reuse of a payment (entitlement), if any.
    pub access: Option<AccessSpec>,
    /// A prepaid option: pay this once, then each request draws the route's price from it.
    pub prepay: Option<&'static str>,
    /// Accept only this protocol generation (`None`: both, the default).
    pub only: Option<ProtocolVersion>,
    /// The handler this spec prices, as `module::path::function` (`#[paid]` fills it in); it
    /// names the route in start-up errors and binds entitlement tokens to it. Empty when
    /// written by hand without [`handler`](Self::handler).
    pub handler: &'static str,
    /// Whether browsers get the HTML paywall (default: as the server says).
    pub paywall: RoutePaywall,
    /// The route's Bazaar declaration (what it takes and returns), sent in the v2 402 as
    /// `extensions.bazaar`; see [`discoverable`](Self::discoverable).
    pub discovery: Option<fn() -> x402_protocol::bazaar::BazaarExtension>,
    /// Bazaar service metadata: the service's name, sent in the v2 402 as
    /// `resource.serviceName` (1–32 printable ASCII characters; an invalid one is dropped).
    pub service_name: Option<&'static str>,
    /// Bazaar service metadata: topical tags, sent as `resource.tags` (at most five of 1–32
    /// printable ASCII characters; invalid ones and case-insensitive repeats are dropped).
    pub tags: &'static [&'static str],
    /// Bazaar service metadata: an absolute `http(s)` icon URL, sent as `resource.iconUrl`
    /// (dropped unless [`is_valid_icon_url`](x402_protocol::bazaar::is_valid_icon_url)).
    pub icon_url: Option<&'static str>,
    /// How EVM payments may move the token, one offer per method (empty: EIP-3009, the
    /// default). `#[paid(transfer = "permit2")]` or `transfer = ["eip3009", "permit2"]`.
    pub transfers: &'static [TransferMethod],
    /// Metered pricing (the `upto` scheme): the price is a maximum the client authorizes, and
    /// the handler sets the actual charge with
    /// [`PaymentInfo::charge`](crate::PaymentInfo::charge). `#[paid(upto = "0.50 USDC")]`.
    pub upto: bool,
}

/// `maxTimeoutSeconds` when a route does not set one.
pub const DEFAULT_MAX_TIMEOUT_SECONDS: u64 = 300;

impl RouteSpec {
    const fn with_price(price: PriceSpec) -> Self {
        RouteSpec {
            price,
            networks: &[],
            pay_to: None,
            asset: None,
            description: "",
            mime_type: "",
            max_timeout_seconds: None,
            settle: SettleMode::After,
            resource: None,
            access: None,
            prepay: None,
            only: None,
            handler: "",
            paywall: RoutePaywall::Server,
            discovery: None,
            service_name: None,
            tags: &[],
            icon_url: None,
            transfers: &[],
            upto: false,
        }
    }

    /// A route with a literal price such as `"0.01 USDC"`.
    pub const fn fixed(price: &'static str) -> Self {
        Self::with_price(PriceSpec::Fixed(price))
    }

    /// A route whose price is computed per request.
    pub const fn dynamic(price: DynamicPrice) -> Self {
        Self::with_price(PriceSpec::Dynamic(price))
    }

    /// A metered route (the `upto` scheme) charging at most `maximum`: the client signs a
    /// Permit2 authorization for the maximum, the handler charges what was used with
    /// [`PaymentInfo::charge`](crate::PaymentInfo::charge) (the maximum when it does not say),
    /// and only that is settled, after the handler. EVM networks only.
    ///
    /// ```
    /// use x402_runtime::RouteSpec;
    ///
    /// static COMPLETION: RouteSpec = RouteSpec::upto("0.50 USDC").networks(&["base"]);
    /// assert!(COMPLETION.upto);
    /// ```
    pub const fn upto(maximum: &'static str) -> Self {
        let mut spec = Self::with_price(PriceSpec::Fixed(maximum));
        spec.upto = true;
        spec
    }

    /// Offers these EVM transfer methods, one option each (default: EIP-3009 only). Permit2
    /// works with any ERC-20, EIP-3009 only with tokens that implement it (USDC).
    ///
    /// ```
    /// use x402_runtime::RouteSpec;
    /// use x402_runtime::scheme::TransferMethod;
    ///
    /// static REPORT: RouteSpec = RouteSpec::fixed("0.01 USDC")
    ///     .networks(&["base"])
    ///     .transfers(&[TransferMethod::Eip3009, TransferMethod::Permit2]);
    /// assert_eq!(REPORT.transfers.len(), 2);
    /// ```
    pub const fn transfers(mut self, methods: &'static [TransferMethod]) -> Self {
        self.transfers = methods;
        self
    }

    /// Sets the accepted networks.
    pub const fn networks(mut self, networks: &'static [&'static str]) -> Self {
        self.networks = networks;
        self
    }

    /// Sets the recipient.
    pub const fn pay_to(mut self, pay_to: &'static str) -> Self {
        self.pay_to = Some(pay_to);
        self
    }

    /// Pins a token contract.
    pub const fn asset(mut self, asset: &'static str) -> Self {
        self.asset = Some(asset);
        self
    }

    /// Sets the description.
    pub const fn description(mut self, description: &'static str) -> Self {
        self.description = description;
        self
    }

    /// Sets the MIME type.
    pub const fn mime_type(mut self, mime_type: &'static str) -> Self {
        self.mime_type = mime_type;
        self
    }

    /// Sets `maxTimeoutSeconds`.
    pub const fn max_timeout_seconds(mut self, seconds: u64) -> Self {
        self.max_timeout_seconds = Some(seconds);
        self
    }

    /// Sets when to settle.
    pub const fn settle(mut self, settle: SettleMode) -> Self {
        self.settle = settle;
        self
    }

    /// Fixes the resource URL.
    pub const fn resource(mut self, resource: &'static str) -> Self {
        self.resource = Some(resource);
        self
    }

    /// Lets one payment buy repeated access.
    pub const fn access(mut self, access: AccessSpec) -> Self {
        self.access = Some(access);
        self
    }

    /// Speaks only one protocol generation: a v1-only route sends no `PAYMENT-REQUIRED` header
    /// and refuses `PAYMENT-SIGNATURE`; a v2-only route sends no v1 body and refuses
    /// `X-PAYMENT`. Routes speak both by default, so clients of either generation can pay.
    pub const fn only(mut self, version: ProtocolVersion) -> Self {
        self.only = Some(version);
        self
    }

    /// Serves browsers this paywall, whether or not the server has one (see
    /// [`paywall`](crate::paywall)).
    ///
    /// ```
    /// use x402_runtime::RouteSpec;
    /// use x402_runtime::paywall::PaywallConfig;
    ///
    /// static LOOK: PaywallConfig = PaywallConfig::new().app_name("Reports").primary_color("#7c3aed");
    /// static REPORT: RouteSpec = RouteSpec::fixed("$1").networks(&["base"]).paywall(&LOOK);
    /// # let _ = &REPORT;
    /// ```
    pub const fn paywall(mut self, config: &'static PaywallConfig) -> Self {
        self.paywall = RoutePaywall::Custom(config);
        self
    }

    /// Never serves the HTML paywall on this route, even when the server has one: browsers get
    /// the JSON 402 like any client. `#[paid(…, paywall = false)]` emits this.
    pub const fn no_paywall(mut self) -> Self {
        self.paywall = RoutePaywall::Off;
        self
    }

    /// Offers a prepaid balance next to the per-request price.
    pub const fn prepay(mut self, amount: &'static str) -> Self {
        self.prepay = Some(amount);
        self
    }

    /// Declares the route for Bazaar discovery: `declare` builds its `bazaar` extension
    /// (usually with [`declare_http`](x402_protocol::bazaar::declare_http)), which every v2 402
    /// of the route carries under `extensions.bazaar`, its method narrowed to the request's.
    /// With a [`DiscoveryCatalog`](crate::discovery::DiscoveryCatalog) on the builder
    /// ([`X402Builder::discovery_catalog`](crate::X402Builder::discovery_catalog)), the
    /// resource is also listed there once it has been asked for.
    ///
    /// ```
    /// use x402_protocol::bazaar::{self, BazaarExtension, HttpDeclaration};
    /// use x402_runtime::RouteSpec;
    ///
    /// fn weather() -> BazaarExtension {
    ///     bazaar::declare_http(&HttpDeclaration {
    ///         input: Some(serde_json::json!({"city": "Oslo"})),
    ///         output_example: Some(serde_json::json!({"temperature": 21})),
    ///         ..Default::default()
    ///     })
    /// }
    /// static WEATHER: RouteSpec = RouteSpec::fixed("$0.01").discoverable(weather);
    /// # let _ = &WEATHER;
    /// ```
    pub const fn discoverable(
        mut self,
        declare: fn() -> x402_protocol::bazaar::BazaarExtension,
    ) -> Self {
        self.discovery = Some(declare);
        self
    }

    /// Names the service this route belongs to, for Bazaar catalogues (`resource.serviceName`
    /// in the v2 402, which paying clients echo to the facilitator).
    ///
    /// ```
    /// use x402_runtime::RouteSpec;
    ///
    /// static WEATHER: RouteSpec = RouteSpec::fixed("$0.01")
    ///     .service_name("Weather")
    ///     .tags(&["weather", "forecast"])
    ///     .icon_url("https://example.com/icon.png");
    /// assert_eq!(WEATHER.tags, ["weather", "forecast"]);
    /// ```
    pub const fn service_name(mut self, name: &'static str) -> Self {
        self.service_name = Some(name);
        self
    }

    /// Tags the route for Bazaar catalogues (`resource.tags`); see
    /// [`service_name`](Self::service_name).
    pub const fn tags(mut self, tags: &'static [&'static str]) -> Self {
        self.tags = tags;
        self
    }

    /// Gives the route's service an icon for Bazaar catalogues (`resource.iconUrl`); see
    /// [`service_name`](Self::service_name).
    pub const fn icon_url(mut self, url: &'static str) -> Self {
        self.icon_url = Some(url);
        self
    }

    /// The route's Bazaar service metadata, with what the spec says to drop dropped.
    pub fn service_metadata(&self) -> x402_protocol::bazaar::ServiceMetadata {
        x402_protocol::bazaar::ServiceMetadata::sanitize(&serde_json::json!({
            "serviceName": self.service_name,
            "tags": self.tags,
            "iconUrl": self.icon_url,
        }))
    }

    /// Names the handler (`module::path::function`).
    pub const fn handler(mut self, handler: &'static str) -> Self {
        self.handler = handler;
        self
    }

    /// How the route is named in messages: its handler, or its price when written by hand.
    pub fn name(&self) -> String {
        if !self.handler.is_empty() {
            return format!("`{}`", self.handler);
        }
        match self.price {
            PriceSpec::Fixed(price) => format!("the route priced {price:?}"),
            PriceSpec::Dynamic(_) => "a route with a dynamic price".to_owned(),
        }
    }
}

/// Connects a handler's `Payment<Tag>` parameter to its route's [`RouteSpec`].
///
/// `#[paid]` implements it on a hidden zero-sized type per handler (and registers the route so
/// that start-up can check it); write it by hand to guard a route without the attribute.
///
/// ```
/// use x402_runtime::{PaidRoute, RouteSpec};
///
/// struct Report;
/// impl PaidRoute for Report {
///     fn spec() -> &'static RouteSpec {
///         static SPEC: RouteSpec = RouteSpec::fixed("0.05 USDC").networks(&["base"]);
///         &SPEC
///     }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "this `Payment` has no price: its handler needs `#[paid(price = …, network = …)]`",
    label = "no `#[paid]` price for this `Payment`",
    note = "with actix-web and Rocket, put `#[paid(...)]` above the route attribute (`#[get]`, `#[post]`, …) so it sees the handler first"
)]
pub trait PaidRoute: Send + Sync + 'static {
    /// The route's spec.
    fn spec() -> &'static RouteSpec;
}

/// A `#[paid]` route, collected when the program is linked so that start-up can check every
/// route before the first request (see [`X402Builder::build`](crate::X402Builder::build)).
#[derive(Debug, Clone, Copy)]
pub struct RegisteredRoute {
    spec: fn() -> &'static RouteSpec,
}

impl RegisteredRoute {
    /// A registration; `#[paid]` emits one per handler.
    pub const fn new(spec: fn() -> &'static RouteSpec) -> Self {
        RegisteredRoute { spec }
    }

    /// The route's spec.
    pub fn spec(&self) -> &'static RouteSpec {
        (self.spec)()
    }
}

inventory::collect!(RegisteredRoute);

/// Every `#[paid]` route linked into this program.
///
/// ```
/// for route in x402_runtime::registered_routes() {
///     println!("{}", route.name());
/// }
/// ```
pub fn registered_routes() -> impl Iterator<Item = &'static RouteSpec> {
    inventory::iter::<RegisteredRoute>
        .into_iter()
        .map(RegisteredRoute::spec)
}
