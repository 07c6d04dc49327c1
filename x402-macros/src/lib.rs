//! The `#[paid(...)]` attribute for x402 paid routes.
//!
//! Use it through [`x402-runtime`](https://docs.rs/x402-runtime) or a framework integration
//! (`axum-x402`, `actix-web-x402`, `rocket-x402`), which re-export it; see [`paid`].
//!
//! The attribute checks prices, networks and addresses while compiling, with the same parser
//! the runtime uses (`x402-protocol`), and emits a `RouteSpec` for the runtime to serve.
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod args;
mod discovery;
mod duration;
mod errors;
mod expand;
mod paths;
mod validate;

use proc_macro::TokenStream;

/// Marks a handler as paid: requests must carry an x402 payment for `price` on one of the
/// `network`s before the handler runs.
///
/// ```
/// # use x402_runtime::{paid, PaidRoute, RouteSpec};
/// # struct Payment<T = ()>(std::marker::PhantomData<T>);
/// #[paid(price = "0.01 USDC", network = "base", description = "Current weather")]
/// async fn weather(payment: Payment) -> String {
///     "sunny".to_owned()
/// }
/// # assert_eq!(<__X402Tag_weather as PaidRoute>::spec().networks, ["base"]);
/// ```
///
/// The handler takes the payment as a parameter of type `Payment`, imported from the
/// integration for your framework (`axum_x402::Payment`, `actix_web_x402::Payment` or
/// `rocket_x402::Payment`): that choice is all the macro needs to know about the framework.
/// Inside the handler, the `Payment` tells who paid, how much, on which network, and (once
/// settled) the transaction.
///
/// # Keys
///
/// `price` (or `upto`) and `network` are required; every other key is optional. Values are literals (the
/// macro checks them while compiling, so constants and expressions cannot be used), except
/// where a path is allowed.
///
/// | key | value | meaning |
/// | --- | --- | --- |
/// | `price` | `"$0.01"`, `"0.01 USD"`, `"0.01 USDC"`, `"10000 atomic"` | What one request costs: dollars (paid in the network's USD stablecoin), an amount of a token named by its symbol, or atomic units of the token. |
/// | `price` | a path: `pricing::by_size` | A price computed for each request by a function of type [`DynamicPrice`](https://docs.rs/x402-runtime/latest/x402_runtime/type.DynamicPrice.html), `fn(&dyn RequestView) -> Result<Price, PriceError>`. |
/// | `network` | `"base"` or `["base", "base-sepolia"]` | The network the payment is made on, or a list: each network becomes one accepted way to pay, in this order. A network is a built-in name (`base`, `base-sepolia`, `ethereum`, `polygon`, `polygon-amoy`, `arbitrum`, `arbitrum-sepolia`, `optimism`, `avalanche`, `avalanche-fuji`), a built-in CAIP-2 id (`"eip155:8453"`), or the CAIP-2 id `"eip155:<chain id>"` of a network your application registers at run time (e.g. a local chain, `"eip155:31337"`). |
/// | `pay_to` | `"0x…"` | The recipient, instead of the server's default. |
/// | `asset` | `"0x…"` | The token contract to be paid in, instead of the network's default stablecoin. |
/// | `description` | `"Current weather"` | What the client pays for, shown to it in the 402 challenge. |
/// | `mime_type` | `"application/json"` | The MIME type of the response. |
/// | `max_timeout_seconds` | `60` | `maxTimeoutSeconds` of the payment requirements: how long a payment authorization stays usable (default 300). |
/// | `protocol` | `"v1"` or `"v2"` | Speak only this x402 generation: a v1-only route sends no `PAYMENT-REQUIRED` header and refuses `PAYMENT-SIGNATURE`, a v2-only route sends no v1 body and refuses `X-PAYMENT`. Leave it out (the default) to accept both. |
/// | `settle` | `"after"` or `"before"` | `"after"` (the default): settle once the handler has succeeded, so a failing handler costs the client nothing. `"before"`: settle before the handler runs, which then sees the transaction. |
/// | `access` | `"90s"`, `"30m"`, `"1h"`, `"7d"` | One payment buys access for this long: a whole number and one unit (seconds, minutes, hours, days). |
/// | `uses` | `100` | One payment buys this many requests. With `access`, both limits apply. |
/// | `scope` | `"reports"` | Routes with the same scope share the access one payment buys. Only with `access` and/or `uses`. |
/// | `prepay` | `"1 USDC"` | Also offer a prepaid balance: pay this once, then each request draws its price from it. A price literal in the price's token, checked like `price`, and more than one request's price. |
/// | `upto` | `"0.50 USDC"` | Metered pricing (the x402 `upto` scheme), instead of `price`: the client authorizes at most this much through Permit2, the handler charges what was used with `payment.charge(amount)` (atomic units; the maximum if it never does), and only that is settled, after the handler. A zero charge settles nothing. EVM networks, x402 v2, `settle = "after"` only; not with `access`, `uses`, `scope` or `prepay`. |
/// | `transfer` | `"permit2"` or `["eip3009", "permit2"]` | How EVM payments move the token, one accepted way to pay per method: `"eip3009"` (`transferWithAuthorization`, the default: USDC and tokens like it) or `"permit2"` (any ERC-20 the payer has approved Uniswap's Permit2 for; x402 v2 only). A payer without that approval is answered 412 `permit2_allowance_required`. |
/// | `paywall` | `false` | Answer browsers on this route with the JSON 402 even when the server shows them its HTML paywall (`X402Builder::paywall`). Leave it out to follow the server; `true` is refused, since it is the default. |
/// | `bazaar` | `bazaar(input = r#"{"city": "Oslo"}"#, output = r#"{"temperature": 21}"#, …)` | Bazaar discovery metadata, sent in the v2 402 as `extensions.bazaar` (what the route takes and returns) and in `resource` (`serviceName`, `tags`, `iconUrl`), so that facilitators can catalogue the route and agents find it. Its keys are below. |
/// | `discovery` | a path: `declarations::weather` | A computed Bazaar declaration: a `fn() -> BazaarExtension` (built with `x402_protocol::bazaar::declare_http` or `declare_mcp`), instead of the call keys of `bazaar(…)`; `bazaar(service = …, tags = …, icon = …)` may still name the service. |
/// | `crate` | `"my_crate::x402"` | The path the output uses to reach the runtime, for crates that re-export it (default `::x402_runtime`). |
///
/// ## `bazaar(…)` keys
///
/// All optional; `bazaar(…)` with any of them makes the route discoverable (with none of the
/// call keys, it is declared as a `GET` without parameters). JSON values are string literals,
/// most readably raw strings (`r#"…"#`).
///
/// | key | value | meaning |
/// | --- | --- | --- |
/// | `method` | `"GET"`, `"POST"`, … | The method, when the route takes only one. Left out, each 402 names the request's method. |
/// | `body` | `"json"`, `"form-data"`, `"text"` | The call sends its input in a body of this type (with `POST`, `PUT` or `PATCH`); without `body`, the input is query parameters. |
/// | `input` | JSON | An example input: the query parameters (an object), or the body (an object for `form-data`, a string for `text`). |
/// | `input_schema` | JSON object | JSON Schema keywords for the input (`properties`, `required`, …). |
/// | `output` | JSON | An example response. |
/// | `output_schema` | JSON object | JSON Schema keywords for the example response (needs `output`). |
/// | `service` | `"Weather"` | The service's name: 1–32 printable ASCII characters. |
/// | `tags` | `"weather"` or `["weather", "forecast"]` | Up to five topical tags of 1–32 printable ASCII characters, distinct without regard to case. |
/// | `icon` | `"https://example.com/icon.png"` | An absolute `http(s)` icon URL whose host is a DNS name. |
///
/// ```
/// # use x402_runtime::{paid, PaidRoute};
/// # struct Payment<T = ()>(std::marker::PhantomData<T>);
/// #[paid(
///     price = "$0.01",
///     network = "base-sepolia",
///     bazaar(
///         method = "POST",
///         body = "json",
///         input = r#"{"city": "Oslo"}"#,
///         input_schema = r#"{"properties": {"city": {"type": "string"}}, "required": ["city"]}"#,
///         output = r#"{"temperature": 21}"#,
///         service = "Weather",
///         tags = ["weather"],
///     )
/// )]
/// async fn forecast(payment: Payment) -> String {
///     "sunny".to_owned()
/// }
///
/// let spec = <__X402Tag_forecast as PaidRoute>::spec();
/// let declared = (spec.discovery.expect("discoverable"))().to_value();
/// assert_eq!(declared["info"]["input"]["body"]["city"], "Oslo");
/// assert_eq!(declared["info"]["output"]["example"]["temperature"], 21);
/// assert_eq!(spec.tags, ["weather"]);
/// ```
///
/// A declaration computed in code, with the service named beside it:
///
/// ```
/// # use x402_runtime::paid;
/// # struct Payment<T = ()>(std::marker::PhantomData<T>);
/// use x402_runtime::protocol::bazaar::{self, BazaarExtension, McpDeclaration};
///
/// fn forecast_tool() -> BazaarExtension {
///     bazaar::declare_mcp(&McpDeclaration {
///         tool_name: "forecast".into(),
///         input_schema: serde_json::json!({"type": "object"}),
///         description: Some("Weather forecast".into()),
///         transport: None,
///         example: None,
///         output_example: None,
///         output_schema: None,
///     })
/// }
///
/// #[paid(price = "$0.01", network = "base", discovery = forecast_tool, bazaar(service = "Weather"))]
/// async fn forecast(payment: Payment) {}
/// ```
///
/// # What is checked while compiling
///
/// - A literal `price` (and `prepay`) is parsed by `x402-protocol`, the runtime's own parser,
///   and resolved on every built-in network listed: too many decimal places for the token, a
///   token the network does not have (`"1 DAI"` on `base`), or a `$` price in a token that is
///   not a dollar stablecoin fail the build. Networks registered at run time, and tokens given
///   by `asset` that are not the network's default stablecoin, are checked by the runtime
///   when it starts serving the route. To price in a token you register at run time, give
///   its `asset` address as well.
/// - Networks are known (or well-formed `eip155:<chain id>`) and listed once; addresses are
///   `0x` and 40 hex digits, with a correct EIP-55 checksum when written in mixed case, and
///   not the zero address; `settle`, durations and MIME types are well formed; integers are
///   positive.
/// - `bazaar(…)`: its keys are known (with a suggestion for a misspelled one); JSON literals
///   parse (the error gives the line and column inside the literal) and have the shape their
///   key needs; the method fits the body (or its absence); the declaration passes
///   `x402_protocol::bazaar::validate_spec`, the facilitator's check; service name, tags and
///   icon URL pass the validators facilitators apply (which would otherwise drop them). The
///   route must speak v2. A `discovery` function's type is checked by the compiler.
/// - The handler is a function with exactly one parameter whose type is `Payment` (written
///   with any path: `Payment`, `axum_x402::Payment`, …), taken by value.
///
/// Each mistake is reported on the token at fault, all of them in one build.
///
/// # With actix-web and Rocket: `#[paid]` above the route attribute
///
/// Their route attributes (`#[get]`, `#[post]`, …) read the handler's parameter types when
/// they expand, so `#[paid]` must expand first, which means it is written above them:
///
/// ```ignore
/// use rocket_x402::{paid, Payment};
///
/// #[paid(price = "$0.01", network = "base")]
/// #[get("/weather")]
/// async fn weather(payment: Payment) -> String { todo!() }
/// ```
///
/// # What it generates
///
/// For a handler `fn weather(payment: Payment)`, `#[paid]` generates:
///
/// 1. A hidden zero-sized type `__X402Tag_weather`, with the handler's visibility (and its
///    `#[cfg]` attributes), deriving `Clone`, `Copy` and `Debug`, that implements the
///    runtime's `PaidRoute` trait. Its `spec()` returns a `static` `RouteSpec`
///    built from the arguments, e.g.
///    `RouteSpec::fixed("0.01 USDC").networks(&["base"]).description("Current weather")
///    .handler("my_app::routes::weather")`.
/// 2. A registration of that route (`inventory`), so that start-up can check every route
///    before the first request.
/// 3. The handler, unchanged except for its `Payment` parameter's type, which becomes
///    `Payment<__X402Tag_weather>` (keeping the path you wrote). The framework's extractor for
///    `Payment<T>` finds the route's price through `T::spec()`.
///
/// With `settle = "before"`, the handler also settles first thing in its body (once every
/// extractor of the request has accepted, so a request refused by a later extractor costs
/// nothing): it becomes `async` and returns `Result<its output, PaymentRejection>`, and its
/// own body runs unchanged after the settlement.
///
/// The output names only `<crate>::__private::…`, where `<crate>` is `::x402_runtime` or the
/// `crate` key. Set the environment variable `X402_MACROS_DEBUG=1` to print each expansion
/// while compiling (cargo does not rerun the macro just because the variable changed: touch
/// the source file).
///
/// # Examples
///
/// A dynamic price, several networks, a recipient and reusable access. (The examples use a
/// stand-in for an integration's `Payment`.)
///
/// ```
/// # use x402_runtime::{paid, PaidRoute, RouteSpec, SettleMode};
/// # struct Payment<T = ()>(std::marker::PhantomData<T>);
/// # impl<T: Send> x402_runtime::__private::SettleFirst for Payment<T> {
/// #     type Rejection = ();
/// #     async fn settle_first(&mut self) -> Result<(), ()> { Ok(()) }
/// # }
/// mod pricing {
///     use x402_runtime::{Price, PriceError, RequestView};
///
///     pub fn by_size(request: &dyn RequestView) -> Result<Price, PriceError> {
///         if request.path_and_query().contains("size=large") {
///             Price::usd("0.05")
///         } else {
///             Price::usd("0.01")
///         }
///     }
/// }
///
/// #[paid(
///     price = pricing::by_size,
///     network = ["base", "base-sepolia", "eip155:31337"],
///     pay_to = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
///     access = "1h",
///     uses = 100,
///     scope = "reports",
///     settle = "before",
/// )]
/// pub async fn report(payment: Payment) -> String {
///     "…".to_owned()
/// }
///
/// let spec: &RouteSpec = <__X402Tag_report as PaidRoute>::spec();
/// assert_eq!(spec.networks, ["base", "base-sepolia", "eip155:31337"]);
/// assert_eq!(spec.settle, SettleMode::Before);
/// assert_eq!(spec.access.and_then(|a| a.uses), Some(100));
/// ```
///
/// Metered pricing, and a fixed price that any ERC-20 pays through Permit2 as well as with
/// EIP-3009:
///
/// ```
/// # use x402_runtime::{paid, PaidRoute, PaymentInfo, RouteSpec, U256};
/// # use x402_runtime::scheme::TransferMethod;
/// # struct Payment<T = ()>(PaymentInfo, std::marker::PhantomData<T>);
/// # impl<T> std::ops::Deref for Payment<T> { type Target = PaymentInfo; fn deref(&self) -> &PaymentInfo { &self.0 } }
/// # fn tokens_in(prompt: &str) -> u64 { prompt.len() as u64 }
/// // At most 0.50 USDC; 0.000002 USDC (2 atomic units) per token used.
/// #[paid(upto = "0.50 USDC", network = "base")]
/// pub async fn complete(payment: Payment, prompt: String) -> String {
///     let used = tokens_in(&prompt);
///     let cost = U256::from(used * 2).min(payment.amount());
///     payment.charge(cost).expect("within the maximum");
///     format!("{used} tokens")
/// }
///
/// #[paid(price = "0.01 USDC", network = "base", transfer = ["eip3009", "permit2"])]
/// pub async fn report(payment: Payment) -> &'static str {
///     "…"
/// }
///
/// assert!(<__X402Tag_complete as PaidRoute>::spec().upto);
/// assert_eq!(
///     <__X402Tag_report as PaidRoute>::spec().transfers,
///     [TransferMethod::Eip3009, TransferMethod::Permit2]
/// );
/// ```
///
/// Mistakes fail the build on the token at fault:
///
/// ```compile_fail
/// # use x402_runtime::paid;
/// # struct Payment<T = ()>(std::marker::PhantomData<T>);
/// #[paid(price = "0.0000001 USDC", network = "base")] // USDC has 6 decimals
/// async fn weather(payment: Payment) {}
/// ```
#[proc_macro_attribute]
pub fn paid(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand::paid(attr.into(), item.into()).into()
}
