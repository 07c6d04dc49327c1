//! The browser paywall: a 402 a person can pay.
//!
//! A browser that opens a paid URL without paying gets the usual 402 (status, `PAYMENT-REQUIRED`
//! header) with a small self-contained HTML page as its body instead of JSON. The page shows
//! what is sold and its price, connects the browser's wallet (EIP-1193, discovered through
//! EIP-6963 or `window.ethereum`), switches it to the payment's chain, asks it to sign an
//! EIP-3009 `TransferWithAuthorization` (`eth_signTypedData_v4`), sends the same URL again
//! with the `PAYMENT-SIGNATURE` header, and shows what was bought: an HTML answer replaces the
//! page, text and JSON are shown in it, anything else is offered as a download. Failures are
//! said in words (no wallet, signature declined, wrong chain, not enough funds, the server's
//! refusal with its reason code).
//!
//! It is **off by default**: APIs keep answering JSON until a server opts in with
//! [`X402Builder::paywall`](crate::X402Builder::paywall), or a route with
//! [`RouteSpec::paywall`](crate::RouteSpec::paywall). A route can opt out with
//! [`RouteSpec::no_paywall`](crate::RouteSpec::no_paywall), which `#[paid(…, paywall = false)]`
//! emits.
//!
//! # When the page is served
//!
//! Like the reference servers: the request's `Accept` contains `text/html` **and** its
//! `User-Agent` contains `Mozilla` ([`wants_html`]), and the 402 is the challenge for a request
//! without payment (none at all, or an entitlement token that expired or was used up: the page
//! then says so). Answers to a payment that failed stay JSON, since the page's own script
//! reads them. Routes that speak only protocol v1 get JSON too: the page pays with v2.
//!
//! The response is the JSON 402 (its status, `PAYMENT-REQUIRED` header and
//! `cache-control: no-store`) with `content-type: text/html; charset=utf-8` and the page as
//! body. Everything the page needs is inline (one `<style>`, one `<script>`, the v2
//! `PaymentRequired` as a JSON data block): no CDN, no fonts, nothing fetched but the paid URL
//! itself. The default page weighs about 17 KB (6 KB gzipped): 11.5 KB of script, 3 KB of
//! style, and about 1 KB of data for one way to pay.
//!
//! Like the JSON challenge, the page for a request without payment is kept per route and
//! resource URL (the last one rendered), so a browser reloading a paid URL costs a copy of it
//! rather than a new render (`cargo bench -p x402-runtime --bench paywall`).
//!
//! # Example
//!
//! ```
//! use x402_runtime::paywall::PaywallConfig;
//! use x402_runtime::{Decision, Gate, RequestView, RouteSpec};
//!
//! struct Browser;
//! impl RequestView for Browser {
//!     fn method(&self) -> &str { "GET" }
//!     fn path_and_query(&self) -> &str { "/report" }
//!     fn header(&self, name: &str) -> Option<&str> {
//!         match name.to_ascii_lowercase().as_str() {
//!             "host" => Some("shop.example"),
//!             "accept" => Some("text/html,application/xhtml+xml,*/*;q=0.8"),
//!             "user-agent" => Some("Mozilla/5.0 (X11; Linux x86_64) Chrome/130.0"),
//!             _ => None,
//!         }
//!     }
//! }
//!
//! static REPORT: RouteSpec = RouteSpec::fixed("$0.25")
//!     .networks(&["base-sepolia"])
//!     .description("The quarterly report");
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let gate = Gate::builder()
//!     .embedded_facilitator()
//!     .pay_to("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC")
//!     .paywall(
//!         PaywallConfig::new()
//!             .app_name("Example Shop")
//!             .primary_color("#0f766e"),
//!     )
//!     .build()?;
//! let Decision::Challenge(challenge) = gate.evaluate(&Browser, &REPORT).await else {
//!     unreachable!("no payment was sent");
//! };
//! let response = challenge.to_response();
//! assert_eq!(response.status, 402);
//! assert_eq!(response.header("content-type"), Some("text/html; charset=utf-8"));
//! assert!(response.header("payment-required").is_some()); // programs can still pay
//! let page = std::str::from_utf8(&response.body).unwrap();
//! assert!(page.contains("The quarterly report") && page.contains("0.25 USDC"));
//! # Ok::<(), x402_runtime::ConfigError>(())
//! # }).unwrap();
//! ```
//!
//! # Custom templates
//!
//! [`PaywallConfig::template`] replaces the whole page. Placeholders are written `{{name}}`;
//! unknown ones are left as they are.
//!
//! | placeholder | becomes |
//! | --- | --- |
//! | `{{x402:head}}` | the default `<style>` element (put it in `<head>`) |
//! | `{{x402:body}}` | the default payment card: description, price, network, pay button, status line |
//! | `{{x402:script}}` | the page's data (a `<script type="application/json" id="x402-data">`) and its script; **required**, inserted before `</body>` when missing |
//! | `{{title}}` | the page title: the description, else the app name, else "Payment required" |
//! | `{{app_name}}`, `{{description}}`, `{{resource}}` | the app name, what is sold, the paid URL |
//! | `{{price}}`, `{{network}}` | the first way to pay, e.g. `0.01 USDC` and `Base Sepolia` |
//! | `{{logo_url}}`, `{{primary_color}}` | the configured logo URL and colour |
//!
//! Text placeholders are HTML-escaped, so they are safe in element content and in quoted
//! attributes. A template without `{{x402:body}}` must carry the elements the script drives,
//! by id: `x402-pay` (the button; without it the default card is inserted), and optionally
//! `x402-status`, `x402-price`, `x402-network`, `x402-option`, `x402-wallet`, `x402-content`.
//!
//! # Solana
//!
//! The page pays EVM `exact` (EIP-3009) options. Each option in the page's data carries its
//! CAIP-2 `family` (`eip155`, later `solana`), and the script looks its payment builder up by
//! that family (`builders` in `paywall.js`; also reachable as `window.x402Paywall.builders`).
//! Options without a builder are listed but cannot be chosen. Solana support is one more
//! builder (Wallet Standard `standard:connect` + `solana:signTransaction`, resolving to the
//! `{transaction}` payload): Solana options already carry the family `solana`.

mod chains;
mod render;

use std::sync::{Arc, Mutex, PoisonError};

use x402_protocol::{ProtocolVersion, Reason};

use crate::request::RequestView;
use crate::response::ResponseParts;
use crate::{Challenge, Rejection};

/// How the paywall page looks: app name, logo, colour, or a whole template of your own.
///
/// Every setter is `const`, so a route's own look can be a `static` (see
/// [`RouteSpec::paywall`](crate::RouteSpec::paywall)). Values are checked when the page is
/// rendered: a colour that is not a plain CSS colour, or a logo URL that is not `https:`,
/// `http:`, a `data:image/` URL or a path, is left out (and logged).
///
/// ```
/// use x402_runtime::paywall::PaywallConfig;
///
/// static LOOK: PaywallConfig = PaywallConfig::new()
///     .app_name("Weather Pro")
///     .logo_url("/static/logo.svg")
///     .primary_color("#1d4ed8")
///     .testnet(true);
/// assert_eq!(LOOK.app_name_str(), "Weather Pro");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaywallConfig {
    app_name: &'static str,
    logo_url: Option<&'static str>,
    primary_color: &'static str,
    template: Option<&'static str>,
    /// Set only by [`template_owned`](Self::template_owned), which wins over `template`.
    template_owned: Option<Arc<str>>,
    testnet: Option<bool>,
}

/// The colour of the pay button and accents unless configured.
pub const DEFAULT_PRIMARY_COLOR: &str = "#2563eb";

impl Default for PaywallConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl PaywallConfig {
    /// The default page: no app name, no logo, blue accents, testnet label from the network.
    pub const fn new() -> Self {
        PaywallConfig {
            app_name: "",
            logo_url: None,
            primary_color: DEFAULT_PRIMARY_COLOR,
            template: None,
            template_owned: None,
            testnet: None,
        }
    }

    /// The name shown above what is sold.
    pub const fn app_name(mut self, name: &'static str) -> Self {
        self.app_name = name;
        self
    }

    /// A logo shown at the top of the card: an `https:`/`http:` URL, a `data:image/` URL or a
    /// path on this server.
    pub const fn logo_url(mut self, url: &'static str) -> Self {
        self.logo_url = Some(url);
        self
    }

    /// The accent colour: `#rgb`, `#rrggbb`, `#rrggbbaa`, a colour name, or
    /// `rgb(…)`/`hsl(…)`.
    pub const fn primary_color(mut self, color: &'static str) -> Self {
        self.primary_color = color;
        self
    }

    /// A whole page of your own, with the placeholders of the [module docs](self).
    pub const fn template(mut self, html: &'static str) -> Self {
        self.template = Some(html);
        self
    }

    /// Like [`template`](Self::template), for a template read at start-up; it takes precedence
    /// over a `template` set before or after.
    pub fn template_owned(mut self, html: impl Into<Arc<str>>) -> Self {
        self.template_owned = Some(html.into());
        self
    }

    /// Labels the page as a test network (no real money) or not. Unset, the label follows the
    /// network of the first way to pay.
    pub const fn testnet(mut self, testnet: bool) -> Self {
        self.testnet = Some(testnet);
        self
    }

    /// The configured app name (empty when unset).
    pub fn app_name_str(&self) -> &str {
        self.app_name
    }

    /// The configured template, if any.
    pub(crate) fn template_str(&self) -> Option<&str> {
        self.template_owned.as_deref().or(self.template)
    }
}

/// A route's paywall setting, for [`RouteSpec::paywall`](crate::RouteSpec::paywall) and
/// [`RouteSpec::no_paywall`](crate::RouteSpec::no_paywall).
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub enum RoutePaywall {
    /// Whatever the server says ([`X402Builder::paywall`](crate::X402Builder::paywall); off
    /// when not configured). The default.
    #[default]
    Server,
    /// Never: this route always answers JSON.
    Off,
    /// This look, even when the server has no paywall.
    Custom(&'static PaywallConfig),
}

/// Whether a request comes from a browser that should get the HTML page: its `Accept` contains
/// `text/html` and its `User-Agent` contains `Mozilla`, as the reference servers decide.
///
/// ```
/// use x402_runtime::{RequestView, paywall::wants_html};
///
/// struct Curl;
/// impl RequestView for Curl {
///     fn method(&self) -> &str { "GET" }
///     fn path_and_query(&self) -> &str { "/" }
///     fn header(&self, name: &str) -> Option<&str> {
///         match name { "accept" => Some("*/*"), "user-agent" => Some("curl/8.5"), _ => None }
///     }
/// }
/// assert!(!wants_html(&Curl));
/// ```
pub fn wants_html(view: &dyn RequestView) -> bool {
    let accepts_html = view
        .header("accept")
        .is_some_and(|accept| contains_ignore_case(accept, "text/html"));
    accepts_html
        && view
            .header("user-agent")
            .is_some_and(|agent| agent.contains("Mozilla"))
}

fn contains_ignore_case(haystack: &str, needle: &str) -> bool {
    haystack
        .as_bytes()
        .windows(needle.len())
        .any(|window| window.eq_ignore_ascii_case(needle.as_bytes()))
}

/// The paywall a challenge was rendered for: the server's or a route's own.
#[derive(Debug, Clone)]
pub(crate) enum Chosen {
    Server(Arc<PaywallConfig>),
    Route(&'static PaywallConfig),
}

impl std::ops::Deref for Chosen {
    type Target = PaywallConfig;

    fn deref(&self) -> &PaywallConfig {
        match self {
            Chosen::Server(config) => config,
            Chosen::Route(config) => config,
        }
    }
}

/// The paywall to render a route's challenge with for this request, if any: the route's
/// setting decides, then the server's; only browsers get one.
pub(crate) fn choose(
    server: Option<&Arc<PaywallConfig>>,
    route: RoutePaywall,
    view: &dyn RequestView,
) -> Option<Chosen> {
    let chosen = match route {
        RoutePaywall::Off => return None,
        RoutePaywall::Custom(config) => Chosen::Route(config),
        RoutePaywall::Server => Chosen::Server(server?.clone()),
    };
    wants_html(view).then_some(chosen)
}

/// `content-type` of the paywall page.
pub use crate::response::CONTENT_TYPE_HTML;

/// The paywall page for a rejection, when it is the challenge of a browser's request without
/// payment on a route with a paywall; `None` for every other rejection (they stay JSON).
/// `json` renders the JSON 402 the page is built on (its status and headers are kept).
///
/// A bare challenge's page depends only on the route and the resource URL (the route's
/// paywall is fixed for a gate), so the route keeps the last one rendered, like the JSON
/// challenge: a browser reloading a paid URL gets the same bytes without a new render.
pub(crate) fn page(
    rejection: &Rejection,
    json: fn(&Rejection) -> ResponseParts,
) -> Option<ResponseParts> {
    let challenge = rejection.challenge()?;
    let config = challenge.paywall()?;
    // No payment was sent: either nothing at all, or an entitlement token that no longer
    // works (expired, used up…), whose reason the page then explains.
    let reason = rejection.reason();
    let unpaid = rejection.payer().is_none()
        && rejection.version().is_none()
        && rejection.settlement().is_none()
        && (*reason == Reason::PAYMENT_REQUIRED || reason.as_str().starts_with("entitlement_"));
    if !unpaid || rejection.status() != 402 || !challenge.route().v2 {
        return None;
    }
    let route = challenge.route();
    let bare = rejection.is_bare_challenge();
    if bare && let Some(parts) = route.paywall_page.get(challenge.resource()) {
        return Some(parts);
    }
    let parts = page_response(config, challenge, reason, json(rejection));
    if bare {
        route.paywall_page.put(challenge.resource(), &parts);
    }
    Some(parts)
}

/// The last paywall page a route rendered for a bare challenge, with its resource URL (one
/// slot, like the route's JSON challenge cache).
#[derive(Debug, Default)]
pub(crate) struct PageCache(Mutex<Option<(String, ResponseParts)>>);

impl PageCache {
    /// The page rendered for `resource`, if it is the one kept.
    fn get(&self, resource: &str) -> Option<ResponseParts> {
        let slot = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match slot.as_ref() {
            Some((cached, parts)) if cached == resource => Some(parts.clone()),
            _ => None,
        }
    }

    /// Keeps the page rendered for `resource`.
    fn put(&self, resource: &str, parts: &ResponseParts) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((resource.to_owned(), parts.clone()));
    }
}

fn page_response(
    config: &PaywallConfig,
    challenge: &Challenge,
    reason: &Reason,
    mut parts: ResponseParts,
) -> ResponseParts {
    let required = serde_json::to_string(&challenge.v2(reason.for_version(ProtocolVersion::V2)))
        // The wire types serialise without fail (no maps with non-string keys, no I/O).
        .unwrap_or_default();
    let page = render::page(config, challenge, &required);
    parts.headers.retain(|(name, _)| {
        !name.eq_ignore_ascii_case("content-type") && !name.eq_ignore_ascii_case("cache-control")
    });
    parts
        .headers
        .push(("content-type".into(), CONTENT_TYPE_HTML.to_owned()));
    parts
        .headers
        .push(("cache-control".into(), crate::response::NO_STORE.to_owned()));
    parts.body = page.into();
    parts
}
