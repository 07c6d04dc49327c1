//! What the values mean: prices, networks, addresses, durations, and the handler's shape.
//!
//! Every check records its mistake on the token at fault and carries on, so one build shows
//! all of them. Prices are parsed and resolved with `x402-protocol`, the runtime's own code.

use std::collections::HashMap;

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::{FnArg, ItemFn, LitBool, LitInt, LitStr, Type};
use x402_protocol::network::{BUILTIN_NETWORKS, NetworkError, builtin_network, check_network_id};
use x402_protocol::{
    Address, ChainAddress, Family, NetworkInfo, NetworkRegistry, Price, PriceError, ResolvedPrice,
    SolanaAddress,
};

use crate::args::{
    self, ACCESS, CRATE, Keyed, MAX_TIMEOUT_SECONDS, NETWORK, PREPAY, PRICE, PaidArgs, PriceArg,
    SCOPE, UPTO, USES,
};
use crate::discovery::{self, Discovery};
use crate::duration;
use crate::errors::Errors;

/// A route whose every value has been checked.
pub(crate) struct Route {
    pub(crate) price: RoutePrice,
    /// Network ids as written (built-in names, built-in CAIP-2 ids, or `eip155:<id>`).
    pub(crate) networks: Vec<String>,
    pub(crate) pay_to: Option<String>,
    pub(crate) asset: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) mime_type: Option<String>,
    pub(crate) max_timeout_seconds: Option<u64>,
    pub(crate) settle: Option<Settle>,
    pub(crate) protocol: Option<Protocol>,
    pub(crate) access: Option<Access>,
    pub(crate) prepay: Option<String>,
    /// `paywall = false`: browsers get the JSON 402 on this route even when the server has a
    /// paywall.
    pub(crate) no_paywall: bool,
    /// `bazaar(…)` / `discovery = …`.
    pub(crate) discovery: Option<Discovery>,
    /// `upto = "…"`: the price is a maximum, the handler sets the charge.
    pub(crate) upto: bool,
    /// `transfer = …`: the EVM transfer methods offered (empty: the default).
    pub(crate) transfers: Vec<Transfer>,
}

/// `transfer = "eip3009" | "permit2"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transfer {
    Eip3009,
    Permit2,
}

/// Where the price comes from.
pub(crate) enum RoutePrice {
    /// A literal, as written; the runtime resolves it per network.
    Fixed(String),
    /// A `DynamicPrice` function; the compiler checks its type.
    Dynamic(syn::ExprPath),
}

/// `protocol = "v1" | "v2"`: the route speaks only that generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    V1,
    V2,
}

/// `settle = "after" | "before"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Settle {
    After,
    Before,
}

/// `access`, `uses` and `scope`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Access {
    pub(crate) duration_seconds: Option<u64>,
    pub(crate) uses: Option<u64>,
    pub(crate) scope: Option<String>,
}

/// How a network was recognised.
#[derive(Clone, Copy)]
enum KnownNetwork {
    /// A built-in network: its token and decimals are known, so prices are resolved now.
    Builtin(&'static NetworkInfo),
    /// A well-formed `eip155:<chain id>` the application registers at run time.
    Registered,
}

/// Checks every argument; `None` if anything is wrong (the mistakes are in `errors`).
pub(crate) fn route(args: &PaidArgs, errors: &mut Errors) -> Option<Route> {
    let before = errors.count();
    let missing = |errors: &mut Errors, key: &str, help: &str| {
        if !args.has(key) && !args.garbled {
            errors.push(syn::Error::new(
                Span::call_site(),
                format!("#[paid] needs `{key}`: add {help}"),
            ));
        }
    };
    if !args.has(UPTO) {
        missing(
            errors,
            PRICE,
            "price = \"0.01 USDC\" (or price = path::to::function for a price computed per request, or upto = \"0.50 USDC\" for metered pricing)",
        );
    } else if let (Some(price), Some(_)) = (&args.price, &args.upto) {
        errors.spanned(
            &price.key,
            "give either `price` (a fixed price) or `upto` (a maximum; the handler charges what was used), not both",
        );
    }
    missing(
        errors,
        NETWORK,
        "network = \"base\", or several: network = [\"base\", \"base-sepolia\"]",
    );

    let networks = args
        .network
        .as_ref()
        .map(|n| networks(&n.value.names, errors))
        .unwrap_or_default();
    let pay_to = args.pay_to.as_ref().and_then(|a| address(a, errors));
    let asset = args.asset.as_ref().and_then(|a| address(a, errors));
    for (arg, parsed) in [(&args.pay_to, &pay_to), (&args.asset, &asset)] {
        if let (Some(arg), Some((address, _))) = (arg, parsed) {
            same_family(arg, *address, &networks, errors);
        }
    }
    let asset_address = asset.as_ref().map(|a| a.0);

    let registry = NetworkRegistry::builtin();
    let price = match args.price.as_ref().map(|p| &p.value) {
        Some(PriceArg::Literal(lit)) => {
            let resolved = fixed_price(&registry, lit, PRICE, &networks, asset_address, errors);
            resolved.map(|resolved| (RoutePrice::Fixed(lit.value()), resolved))
        }
        Some(PriceArg::Function(path)) => Some((RoutePrice::Dynamic(path.clone()), Vec::new())),
        None => args.upto.as_ref().and_then(|upto| {
            let resolved = fixed_price(
                &registry,
                &upto.value,
                UPTO,
                &networks,
                asset_address,
                errors,
            )?;
            Some((RoutePrice::Fixed(upto.value.value()), resolved))
        }),
    };
    let upto = args.upto.is_some();
    let transfers = args
        .transfer
        .as_ref()
        .map(|t| transfers(&t.value, upto, errors))
        .unwrap_or_default();
    let prepay = args.prepay.as_ref().and_then(|prepay| {
        let resolved = fixed_price(
            &registry,
            &prepay.value,
            PREPAY,
            &networks,
            asset_address,
            errors,
        )?;
        if let Some((RoutePrice::Fixed(text), per_request)) = &price {
            prepay_covers_price(&prepay.value, &resolved, text, per_request, errors);
        }
        Some(prepay.value.value())
    });

    let description = args.description.as_ref().map(|d| d.value.value());
    let mime_type = args
        .mime_type
        .as_ref()
        .and_then(|m| mime_type(&m.value, errors));
    let max_timeout_seconds = args
        .max_timeout_seconds
        .as_ref()
        .and_then(|m| positive(&m.value, MAX_TIMEOUT_SECONDS, errors));
    let settle = args.settle.as_ref().and_then(|s| settle(&s.value, errors));
    let protocol = args
        .protocol
        .as_ref()
        .and_then(|p| protocol(&p.value, errors));
    let access = access(args, errors);
    let no_paywall = args
        .paywall
        .as_ref()
        .is_some_and(|p| no_paywall(&p.value, errors));
    let discovery = discovery::discovery(args, protocol == Some(Protocol::V1), errors);
    if let Some(Keyed { key, .. }) = &args.upto {
        metered(args, key, &networks, settle, protocol, errors);
    }

    if errors.count() > before {
        return None;
    }
    Some(Route {
        price: price?.0,
        networks: networks.iter().map(|(lit, _)| lit.value()).collect(),
        pay_to: pay_to.map(|a| a.1),
        asset: asset.map(|a| a.1),
        description,
        mime_type,
        max_timeout_seconds,
        settle,
        protocol,
        access,
        prepay,
        no_paywall,
        discovery,
        upto,
        transfers,
    })
}

/// `transfer = …`: each method known, none twice; `upto` moves tokens through Permit2 only.
fn transfers(lits: &[LitStr], upto: bool, errors: &mut Errors) -> Vec<Transfer> {
    let mut methods = Vec::with_capacity(lits.len());
    for lit in lits {
        let method = match lit.value().as_str() {
            "eip3009" => Transfer::Eip3009,
            "permit2" => Transfer::Permit2,
            other => {
                errors.spanned(
                    lit,
                    format!(
                        "`transfer` is \"eip3009\" (transferWithAuthorization, the default: USDC and tokens like it) or \"permit2\" (any ERC-20, through Uniswap's Permit2), or a list of both; not {other:?}"
                    ),
                );
                continue;
            }
        };
        if methods.contains(&method) {
            errors.spanned(lit, format!("{:?} is listed twice", lit.value()));
        } else if upto && method != Transfer::Permit2 {
            errors.spanned(
                lit,
                "metered (upto) payments move tokens through Permit2 only: transfer = \"permit2\" or leave `transfer` out",
            );
        } else {
            methods.push(method);
        }
    }
    methods
}

/// What a metered (`upto`) route cannot also be.
fn metered(
    args: &PaidArgs,
    key: &syn::Path,
    networks: &[(LitStr, KnownNetwork)],
    settle: Option<Settle>,
    protocol: Option<Protocol>,
    errors: &mut Errors,
) {
    if settle == Some(Settle::Before) {
        errors.spanned(
            key,
            "a metered (upto) route settles after its handler, which sets the charge: drop settle = \"before\"",
        );
    }
    if protocol == Some(Protocol::V1) {
        errors.spanned(
            key,
            "metered (upto) payments are x402 v2: drop protocol = \"v1\"",
        );
    }
    for other in [ACCESS, USES, SCOPE, PREPAY] {
        if args.has(other) {
            errors.spanned(
                key,
                format!("a metered (upto) route cannot also sell reusable access or prepaid balances: drop `{other}`"),
            );
        }
    }
    for (lit, known) in networks {
        if let KnownNetwork::Builtin(info) = known
            && info.family() != Family::Evm
        {
            errors.spanned(
                lit,
                format!(
                    "metered (upto) payments are paid on EVM chains; {:?} is not one",
                    lit.value()
                ),
            );
        }
    }
}

/// The runtime path the output names: `crate = "…"` or `::x402_runtime`.
pub(crate) fn crate_path(args: &PaidArgs, errors: &mut Errors) -> syn::Path {
    let default = || syn::parse_quote!(::x402_runtime);
    let Some(Keyed { value: lit, .. }) = &args.krate else {
        return default();
    };
    match lit.parse::<syn::Path>() {
        Ok(path) if path.segments.iter().all(|s| s.arguments.is_none()) => path,
        _ => {
            errors.spanned(
                lit,
                format!(
                    "`{CRATE}` takes the path of a crate or module that re-exports x402_runtime, e.g. crate = \"my_crate::x402\"; {:?} is not a path",
                    lit.value()
                ),
            );
            default()
        }
    }
}

/// Recognises each network; returns those that are usable, with their literal.
fn networks(names: &[LitStr], errors: &mut Errors) -> Vec<(LitStr, KnownNetwork)> {
    let mut usable = Vec::with_capacity(names.len());
    // Canonical id (CAIP-2) → the literal that first named it.
    let mut listed: HashMap<String, String> = HashMap::new();
    for lit in names {
        let id = lit.value();
        let (known, caip2) = match builtin_network(&id) {
            Some(info) => (KnownNetwork::Builtin(info), info.caip2.to_string()),
            None => match check_network_id(&id) {
                Ok(Some(chain_id)) => (KnownNetwork::Registered, format!("eip155:{chain_id}")),
                Ok(None) if id.starts_with("solana:") => (KnownNetwork::Registered, id.clone()),
                Ok(None) => {
                    errors.spanned(lit, unknown_network(&id));
                    continue;
                }
                Err(error @ NetworkError::Malformed(_)) => {
                    let lower = id.to_ascii_lowercase();
                    match builtin_network(&lower) {
                        Some(_) => errors.spanned(
                            lit,
                            format!(
                                "{error} (network names are lowercase: did you mean {lower:?}?)"
                            ),
                        ),
                        None => errors.spanned(lit, error),
                    }
                    continue;
                }
                Err(error) => {
                    errors.spanned(lit, error);
                    continue;
                }
            },
        };
        if let Some(first) = listed.get(&caip2) {
            let message = if *first == id {
                format!("{id:?} is listed twice")
            } else {
                format!("{id:?} is the same network as {first:?}, already listed")
            };
            errors.spanned(lit, message);
            continue;
        }
        listed.insert(caip2, id);
        usable.push((lit.clone(), known));
    }
    usable
}

fn unknown_network(id: &str) -> String {
    let names: Vec<&str> = BUILTIN_NETWORKS.iter().map(|n| n.name.as_ref()).collect();
    let mut message = format!(
        "unknown network {id:?}; the built-in networks are {}. A network registered at run time is named by its CAIP-2 id, e.g. \"eip155:31337\" or \"solana:<genesis hash>\"",
        names.join(", ")
    );
    if let Some(close) = args::closest(id, names.iter().copied()) {
        message.push_str(&format!(" (did you mean {close:?}?)"));
    }
    message
}

/// The chain family of a recognised network.
fn family_of(lit: &LitStr, known: KnownNetwork) -> Family {
    match known {
        KnownNetwork::Builtin(info) => info.family(),
        KnownNetwork::Registered if lit.value().starts_with("solana:") => Family::Solana,
        KnownNetwork::Registered => Family::Evm,
    }
}

/// A literal address (`pay_to`, `asset`) must belong to the family of every listed network.
fn same_family(
    arg: &Keyed<LitStr>,
    address: ChainAddress,
    networks: &[(LitStr, KnownNetwork)],
    errors: &mut Errors,
) {
    let key = arg.key.to_token_stream().to_string();
    if let Some((lit, known)) = networks
        .iter()
        .find(|(lit, known)| family_of(lit, *known) != address.family())
    {
        errors.spanned(
            &arg.value,
            format!(
                "`{key}` is a{} {} address, but network {:?} is a{} {} network; a route paid on several chain families takes its recipients from X402Builder::pay_to (one per family)",
                if address.family() == Family::Evm { "n" } else { "" },
                address.family(),
                lit.value(),
                if family_of(lit, *known) == Family::Evm { "n" } else { "" },
                family_of(lit, *known),
            ),
        );
    }
}

/// Parses a price literal and resolves it on each built-in network.
///
/// Returns the resolved amounts (for comparing `prepay` with `price`), or `None` after
/// recording why the literal is not a usable price.
fn fixed_price(
    registry: &NetworkRegistry,
    lit: &LitStr,
    key: &str,
    networks: &[(LitStr, KnownNetwork)],
    asset: Option<ChainAddress>,
    errors: &mut Errors,
) -> Option<Vec<(&'static NetworkInfo, ResolvedPrice)>> {
    let text = lit.value();
    let price: Price = match text.parse() {
        Ok(price) => price,
        Err(error) if key == PRICE => {
            errors.spanned(lit, error);
            return None;
        }
        Err(error) => {
            errors.spanned(lit, format!("invalid `{key}`: {error}"));
            return None;
        }
    };
    let mut resolved = Vec::new();
    for (_, known) in networks {
        let KnownNetwork::Builtin(network) = *known else {
            // Registered at run time: its tokens are not known here.
            continue;
        };
        let pinned = match asset {
            None => None,
            Some(address) if address == network.default_asset.address => Some(address),
            // A token registered at run time: its symbol and decimals are not known here.
            Some(_) => continue,
        };
        match registry.resolve_price(&price, network, pinned) {
            Ok(price) => resolved.push((network, price)),
            Err(error) => {
                let hint = match error {
                    PriceError::UnknownToken { .. } => {
                        "; for a token registered at run time, also give its address: asset = \"0x…\""
                    }
                    _ => "",
                };
                errors.spanned(
                    lit,
                    format!("cannot charge {text:?} on {}: {error}{hint}", network.name),
                );
                // One message per literal: the other networks would mostly repeat it.
                return None;
            }
        }
    }
    Some(resolved)
}

/// A prepaid balance must buy more than one request (the runtime refuses it otherwise).
fn prepay_covers_price(
    prepay: &LitStr,
    prepaid: &[(&'static NetworkInfo, ResolvedPrice)],
    price_text: &str,
    per_request: &[(&'static NetworkInfo, ResolvedPrice)],
    errors: &mut Errors,
) {
    for (network, prepaid) in prepaid {
        let Some((_, price)) = per_request
            .iter()
            .find(|(n, p)| n.caip2 == network.caip2 && p.asset.address == prepaid.asset.address)
        else {
            continue;
        };
        if prepaid.amount <= price.amount {
            errors.spanned(
                prepay,
                format!(
                    "prepay {:?} must be more than one request's price {price_text:?} (on {})",
                    prepay.value(),
                    network.name
                ),
            );
            return;
        }
    }
}

/// `pay_to` / `asset`: an EVM address (`0x` and 40 hex digits, EIP-55 checksum right if
/// mixed-case) or a Solana address (base58 of 32 bytes).
fn address(arg: &Keyed<LitStr>, errors: &mut Errors) -> Option<(ChainAddress, String)> {
    let key = arg.key.to_token_stream().to_string();
    let lit = &arg.value;
    let text = lit.value();
    let form = "an EVM address: \"0x\" followed by 40 hex digits";
    let Some(hex) = text.strip_prefix("0x") else {
        if let Ok(solana) = text.parse::<SolanaAddress>() {
            return Some((ChainAddress::Solana(solana), text));
        }
        errors.spanned(
            lit,
            format!("`{key}` must be {form}, or a Solana address (base58 of 32 bytes)"),
        );
        return None;
    };
    if let Some(bad) = hex.chars().find(|c| !c.is_ascii_hexdigit()) {
        errors.spanned(
            lit,
            format!("`{key}` must be {form}; {bad:?} is not a hex digit"),
        );
        return None;
    }
    if hex.len() != 40 {
        errors.spanned(
            lit,
            format!("`{key}` must be {form}; this one has {}", hex.len()),
        );
        return None;
    }
    let mixed_case =
        hex.bytes().any(|b| b.is_ascii_uppercase()) && hex.bytes().any(|b| b.is_ascii_lowercase());
    let parsed = if mixed_case {
        Address::parse_checksummed(&text, None).ok()
    } else {
        text.parse::<Address>().ok()
    };
    let Some(address) = parsed else {
        errors.spanned(
            lit,
            format!(
                "`{key}` has a wrong EIP-55 checksum (the mix of upper and lower case): a character is probably mistyped; copy the address again from its source"
            ),
        );
        return None;
    };
    if address == Address::ZERO {
        errors.spanned(
            lit,
            format!("`{key}` is the zero address; nothing sent to it can be recovered"),
        );
        return None;
    }
    Some((ChainAddress::Evm(address), text))
}

fn mime_type(lit: &LitStr, errors: &mut Errors) -> Option<String> {
    let text = lit.value();
    let essence = text.split(';').next().unwrap_or_default().trim();
    let well_formed = essence.split_once('/').is_some_and(|(kind, sub)| {
        let token = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-*'".contains(&b))
        };
        token(kind) && token(sub)
    });
    if !well_formed {
        errors.spanned(
            lit,
            format!(
                "{text:?} is not a MIME type; write it as type/subtype, e.g. \"application/json\""
            ),
        );
        return None;
    }
    Some(text)
}

fn positive(lit: &LitInt, key: &str, errors: &mut Errors) -> Option<u64> {
    if !lit.suffix().is_empty() {
        errors.spanned(lit, format!("write `{key}` without a type suffix"));
        return None;
    }
    match lit.base10_parse::<u64>() {
        Ok(0) => {
            errors.spanned(lit, format!("`{key}` must be positive, not 0"));
            None
        }
        Ok(n) => Some(n),
        Err(_) => {
            errors.spanned(lit, format!("`{key}` is too large (at most {})", u64::MAX));
            None
        }
    }
}

fn protocol(lit: &LitStr, errors: &mut Errors) -> Option<Protocol> {
    match lit.value().as_str() {
        "v1" => Some(Protocol::V1),
        "v2" => Some(Protocol::V2),
        other => {
            errors.spanned(
                lit,
                format!(
                    "`protocol` is \"v1\" or \"v2\" (leave it out to accept both, the default), not {other:?}"
                ),
            );
            None
        }
    }
}

/// `paywall = false` opts the route out; `true` would only restate the default, and reads as if
/// it turned a paywall on that the server does not have, so it is refused.
fn no_paywall(lit: &LitBool, errors: &mut Errors) -> bool {
    if lit.value {
        errors.spanned(
            lit,
            "`paywall = true` is the default: browsers get the paywall on this route when the server enables it (X402Builder::paywall); leave the key out, or write `paywall = false` to answer browsers with the JSON 402 here",
        );
    }
    !lit.value
}

fn settle(lit: &LitStr, errors: &mut Errors) -> Option<Settle> {
    match lit.value().as_str() {
        "after" => Some(Settle::After),
        "before" => Some(Settle::Before),
        other => {
            errors.spanned(
                lit,
                format!(
                    "`settle` is \"after\" (the default: settle once the handler has succeeded) or \"before\" (settle before the handler runs), not {other:?}"
                ),
            );
            None
        }
    }
}

/// `access`, `uses`, `scope`: `None` when none is given (or on error).
fn access(args: &PaidArgs, errors: &mut Errors) -> Option<Access> {
    let duration_seconds = args.access.as_ref().and_then(|a| {
        duration::parse_seconds(&a.value.value())
            .map_err(|message| errors.spanned(&a.value, format!("invalid `{ACCESS}`: {message}")))
            .ok()
    });
    let uses = args
        .uses
        .as_ref()
        .and_then(|u| positive(&u.value, USES, errors));
    let scope = args.scope.as_ref().and_then(|scope| {
        if !args.has(ACCESS) && !args.has(USES) {
            errors.spanned(
                scope.entry(),
                "`scope` names a group of routes sharing the access one payment buys; it needs `access = \"1h\"` and/or `uses = 100` to mean anything",
            );
            return None;
        }
        let name = scope.value.value();
        let ok = (1..=64).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !ok {
            errors.spanned(
                &scope.value,
                format!("scope {name:?} is not a group name: use 1 to 64 ASCII letters, digits, '-', '_' or '.'"),
            );
            return None;
        }
        Some(name)
    });
    (duration_seconds.is_some() || uses.is_some()).then_some(Access {
        duration_seconds,
        uses,
        scope,
    })
}

/// The handler, with the position of its `Payment` parameter.
pub(crate) struct Handler {
    pub(crate) func: ItemFn,
    /// Index in `func.sig.inputs` of the one `Payment` parameter to rewrite; `None` if there
    /// is none that can be rewritten (an error was recorded).
    pub(crate) payment: Option<usize>,
}

pub(crate) const NOT_A_FUNCTION: &str = "#[paid] goes on a handler function. With actix-web or Rocket, put #[paid] above the route attribute (#[get], #[post], …) so that it sees the handler function";

const MISSING_PAYMENT: &str = "a #[paid] handler needs a `Payment` parameter to receive the payment: add `payment: Payment` (axum_x402::Payment, actix_web_x402::Payment or rocket_x402::Payment)";

/// Parses the item as a function and finds its `Payment` parameter.
pub(crate) fn handler(item: TokenStream, errors: &mut Errors) -> Option<Handler> {
    let Ok(mut func) = syn::parse2::<ItemFn>(item) else {
        errors.push(syn::Error::new(Span::call_site(), NOT_A_FUNCTION));
        return None;
    };
    // A second #[paid] would find `Payment<Tag>` and fail confusingly; report it here and
    // drop it, so only this message shows.
    func.attrs.retain(|attr| {
        let paid = attr
            .path()
            .segments
            .last()
            .is_some_and(|s| s.ident == "paid");
        if paid {
            errors.spanned(attr, "#[paid] is applied twice to this handler; keep one");
        }
        !paid
    });

    let mut payments = Vec::new();
    let mut wrapped: Option<&Type> = None;
    let mut method = false;
    for (index, input) in func.sig.inputs.iter().enumerate() {
        match input {
            FnArg::Receiver(receiver) => {
                errors.spanned(
                    receiver,
                    "a #[paid] handler is a free function; it cannot take `self`",
                );
                method = true;
            }
            FnArg::Typed(typed) => match payment_path(&typed.ty) {
                Some(path) => {
                    let segment = path.path.segments.last();
                    let arguments = segment.map(|s| &s.arguments);
                    if let Some(
                        args @ (syn::PathArguments::AngleBracketed(_)
                        | syn::PathArguments::Parenthesized(_)),
                    ) = arguments
                    {
                        errors.spanned(
                            args,
                            "#[paid] supplies `Payment`'s type argument; write `Payment` without `<…>`",
                        );
                        payments.push((index, false));
                    } else {
                        payments.push((index, true));
                    }
                }
                None if wrapped.is_none() && mentions_payment(&typed.ty) => {
                    wrapped = Some(&typed.ty)
                }
                None => {}
            },
        }
    }
    for (index, _) in payments.iter().skip(1) {
        if let Some(input) = func.sig.inputs.iter().nth(*index) {
            errors.spanned(
                input,
                "a #[paid] handler takes exactly one `Payment` parameter; remove this one",
            );
        }
    }
    if payments.is_empty() {
        match wrapped {
            Some(ty) => errors.spanned(
                ty,
                format!(
                    "#[paid] needs the `Payment` parameter itself, by value: write `payment: Payment` instead of `{}`",
                    ty.to_token_stream().to_string().replace(" < ", "<").replace(" >", ">").replace("& ", "&")
                ),
            ),
            None => {
                let sig = &func.sig;
                let mut head = TokenStream::new();
                sig.fn_token.to_tokens(&mut head);
                sig.ident.to_tokens(&mut head);
                sig.paren_token
                    .surround(&mut head, |tokens| sig.inputs.to_tokens(tokens));
                errors.spanned(head, MISSING_PAYMENT);
            }
        }
    }
    let payment = match payments.first() {
        // In an `impl` block, the tag type could not be declared next to the method.
        Some(&(index, true)) if !method => Some(index),
        _ => None,
    };
    Some(Handler { func, payment })
}

/// The path of a parameter type whose last segment is `Payment` (looking through the
/// invisible groups `macro_rules!` adds, and parentheses).
pub(crate) fn payment_path(ty: &Type) -> Option<&syn::TypePath> {
    match ty {
        Type::Group(group) => payment_path(&group.elem),
        Type::Paren(paren) => payment_path(&paren.elem),
        Type::Path(path) if path.qself.is_none() && is_payment(&path.path) => Some(path),
        _ => None,
    }
}

/// Like [`payment_path`], mutably.
pub(crate) fn payment_path_mut(ty: &mut Type) -> Option<&mut syn::TypePath> {
    match ty {
        Type::Group(group) => payment_path_mut(&mut group.elem),
        Type::Paren(paren) => payment_path_mut(&mut paren.elem),
        Type::Path(path) if path.qself.is_none() && is_payment(&path.path) => Some(path),
        _ => None,
    }
}

fn is_payment(path: &syn::Path) -> bool {
    path.segments.last().is_some_and(|s| s.ident == "Payment")
}

/// Whether `Payment` appears somewhere inside the type (`&Payment`, `Option<Payment>`, …).
fn mentions_payment(ty: &Type) -> bool {
    match ty {
        Type::Path(path) => path.path.segments.iter().any(|segment| {
            segment.ident == "Payment"
                || match &segment.arguments {
                    syn::PathArguments::AngleBracketed(args) => args.args.iter().any(
                        |arg| matches!(arg, syn::GenericArgument::Type(ty) if mentions_payment(ty)),
                    ),
                    _ => false,
                }
        }),
        Type::Reference(r) => mentions_payment(&r.elem),
        Type::Group(g) => mentions_payment(&g.elem),
        Type::Paren(p) => mentions_payment(&p.elem),
        Type::Tuple(t) => t.elems.iter().any(mentions_payment),
        Type::Slice(s) => mentions_payment(&s.elem),
        Type::Array(a) => mentions_payment(&a.elem),
        Type::Ptr(p) => mentions_payment(&p.elem),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::*;

    fn check(tokens: TokenStream) -> (Option<Route>, Vec<String>) {
        let mut errors = Errors::new();
        let args = PaidArgs::parse(tokens, &mut errors);
        let route = route(&args, &mut errors);
        (route, errors.messages())
    }

    fn error_of(tokens: TokenStream) -> String {
        let (route, errors) = check(tokens.clone());
        assert!(route.is_none(), "{tokens} was accepted");
        assert_eq!(errors.len(), 1, "{tokens}: {errors:?}");
        errors.into_iter().next().unwrap_or_default()
    }

    #[test]
    fn metered_and_permit2_routes_are_carried_through() {
        let (route, errors) = check(quote!(upto = "0.50 USDC", network = "base"));
        assert_eq!(errors, Vec::<String>::new());
        let route = route.expect("valid route");
        assert!(route.upto);
        assert!(matches!(&route.price, RoutePrice::Fixed(p) if p == "0.50 USDC"));

        let (route, errors) = check(quote!(
            price = "0.01 USDC",
            network = "base",
            transfer = ["eip3009", "permit2"]
        ));
        assert_eq!(errors, Vec::<String>::new());
        let route = route.expect("valid route");
        assert!(!route.upto);
        assert_eq!(route.transfers, [Transfer::Eip3009, Transfer::Permit2]);
    }

    #[test]
    fn metered_and_permit2_mistakes_are_explained() {
        let cases = [
            (
                quote!(price = "$1", upto = "$2", network = "base"),
                "either `price`",
            ),
            (
                quote!(upto = "$1", network = "base", settle = "before"),
                "settles after its handler",
            ),
            (
                quote!(upto = "$1", network = "base", access = "1h"),
                "drop `access`",
            ),
            (
                quote!(upto = "$1", network = "base", protocol = "v1"),
                "x402 v2",
            ),
            (quote!(upto = "$1", network = "solana"), "EVM chains"),
            (
                quote!(upto = "$1", network = "base", transfer = "eip3009"),
                "Permit2 only",
            ),
            (
                quote!(price = "$1", network = "base", transfer = "permit3"),
                "\"permit2\"",
            ),
            (
                quote!(
                    price = "$1",
                    network = "base",
                    transfer = ["permit2", "permit2"]
                ),
                "listed twice",
            ),
            (quote!(upto = "two dollars", network = "base"), "upto"),
        ];
        for (tokens, expected) in cases {
            let message = error_of(tokens.clone());
            assert!(message.contains(expected), "{tokens}: {message}");
        }
    }

    #[test]
    fn a_full_route_is_carried_through() {
        let (route, errors) = check(quote! {
            price = "0.01 USDC",
            network = ["base", "eip155:84532", "eip155:31337"],
            pay_to = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
            description = "Current weather",
            mime_type = "application/json; charset=utf-8",
            max_timeout_seconds = 60,
            settle = "before",
            access = "30m",
            uses = 10,
            scope = "reports",
            prepay = "1 USDC",
            paywall = false,
        });
        assert_eq!(errors, Vec::<String>::new());
        let route = route.expect("valid route");
        assert!(matches!(&route.price, RoutePrice::Fixed(p) if p == "0.01 USDC"));
        assert_eq!(route.networks, ["base", "eip155:84532", "eip155:31337"]);
        assert_eq!(
            route.pay_to.as_deref(),
            Some("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC")
        );
        assert_eq!(route.asset, None);
        assert_eq!(route.description.as_deref(), Some("Current weather"));
        assert_eq!(
            route.mime_type.as_deref(),
            Some("application/json; charset=utf-8")
        );
        assert_eq!(route.max_timeout_seconds, Some(60));
        assert_eq!(route.settle, Some(Settle::Before));
        assert_eq!(
            route.access,
            Some(Access {
                duration_seconds: Some(1800),
                uses: Some(10),
                scope: Some("reports".into())
            })
        );
        assert_eq!(route.prepay.as_deref(), Some("1 USDC"));
        assert!(route.no_paywall);
    }

    #[test]
    fn paywall_is_only_ever_turned_off() {
        let (route, errors) = check(quote!(price = "$0.01", network = "base"));
        assert!(errors.is_empty(), "{errors:?}");
        assert!(!route.expect("valid route").no_paywall);
        let message = error_of(quote!(price = "$0.01", network = "base", paywall = true));
        assert!(
            message.starts_with("`paywall = true` is the default"),
            "{message}"
        );
        assert!(message.contains("paywall = false"), "{message}");
    }

    #[test]
    fn missing_keys_are_named() {
        let (route, errors) = check(quote!());
        assert!(route.is_none());
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            errors[0].starts_with("#[paid] needs `price`"),
            "{}",
            errors[0]
        );
        assert!(
            errors[1].starts_with("#[paid] needs `network`"),
            "{}",
            errors[1]
        );
        // Given but unusable: only the value's error, not "missing" as well.
        let message = error_of(quote!(price = 1.5, network = "base"));
        assert!(message.starts_with("a price needs a unit"), "{message}");
    }

    #[test]
    fn prices_are_parsed_and_resolved_on_builtin_networks() {
        let cases: &[(TokenStream, &str)] = &[
            (
                quote!(price = "0.01", network = "base"),
                "price \"0.01\" has no unit",
            ),
            (quote!(price = "$0", network = "base"), "price is zero"),
            (
                quote!(price = "$1", prepay = "1", network = "base"),
                "invalid `prepay`: price \"1\" has no unit",
            ),
            (
                quote!(price = "0.0000001 USDC", network = "base"),
                "cannot charge \"0.0000001 USDC\" on base: 0.0000001 has 7 decimal places but the token has only 6",
            ),
            (
                quote!(price = "1 DAI", network = ["eip155:31337", "base-sepolia"]),
                "cannot charge \"1 DAI\" on base-sepolia: no token \"DAI\" is known on base-sepolia",
            ),
            (
                quote!(prepay = "1 EUR", price = "$1", network = "base"),
                "cannot charge \"1 EUR\" on base",
            ),
        ];
        for (tokens, expected) in cases {
            let message = error_of(tokens.clone());
            assert!(message.starts_with(expected), "{tokens}: {message}");
        }
        let unknown = error_of(quote!(price = "1 DAI", network = "base"));
        assert!(
            unknown.ends_with("also give its address: asset = \"0x…\""),
            "{unknown}"
        );
    }

    #[test]
    fn runtime_tokens_and_networks_are_not_second_guessed() {
        // Only registered networks: nothing to resolve on, so any well-formed price is fine.
        let (route, errors) = check(quote!(price = "1.25 EURC", network = "eip155:31337"));
        assert!(route.is_some() && errors.is_empty(), "{errors:?}");
        // A pinned token that is not the network's default: resolved at run time.
        let (route, errors) = check(quote!(
            price = "1.25 EURC",
            network = "base",
            asset = "0x60a3e35cc302bfa44cb288bc5a4f316fdb1adb42"
        ));
        assert!(route.is_some() && errors.is_empty(), "{errors:?}");
        // Pinned to the default token: resolved now.
        let message = error_of(quote!(
            price = "1 EURC",
            network = "base",
            asset = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"
        ));
        assert!(
            message.starts_with("cannot charge \"1 EURC\" on base"),
            "{message}"
        );
    }

    #[test]
    fn a_dynamic_price_is_a_path() {
        let (route, errors) = check(quote!(price = pricing::by_size, network = "base"));
        assert!(errors.is_empty(), "{errors:?}");
        let route = route.expect("valid");
        assert!(
            matches!(&route.price, RoutePrice::Dynamic(p) if p.to_token_stream().to_string() == "pricing :: by_size")
        );
    }

    #[test]
    fn networks_are_known_or_well_formed_and_listed_once() {
        let cases: &[(TokenStream, &str)] = &[
            (
                quote!(network = "basee"),
                "unknown network \"basee\"; the built-in networks are base, base-sepolia,",
            ),
            (
                quote!(network = "anvil"),
                "A network registered at run time is named by its CAIP-2 id",
            ),
            (
                quote!(network = "Base"),
                "(network names are lowercase: did you mean \"base\"?)",
            ),
            (
                quote!(network = "eip155:0x2105"),
                "\"eip155:0x2105\" is not a network id",
            ),
            (
                quote!(network = "cosmos:cosmoshub-4"),
                "is neither an EVM network",
            ),
            (
                quote!(network = ["solana-devnet", "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1"]),
                "is the same network as \"solana-devnet\"",
            ),
            (
                quote!(network = ["base", "base"]),
                "\"base\" is listed twice",
            ),
            (
                quote!(network = ["base", "eip155:8453"]),
                "\"eip155:8453\" is the same network as \"base\"",
            ),
        ];
        for (tokens, expected) in cases {
            let (_, errors) = check(quote!(price = "$0.01", #tokens));
            assert_eq!(errors.len(), 1, "{tokens}: {errors:?}");
            assert!(errors[0].contains(expected), "{tokens}: {}", errors[0]);
        }
        let (_, errors) = check(quote!(price = "$0.01", network = "basee"));
        assert!(
            errors[0].ends_with("(did you mean \"base\"?)"),
            "{}",
            errors[0]
        );
    }

    #[test]
    fn addresses_are_checked() {
        let base = quote!(price = "$0.01", network = "base",);
        let cases: &[(TokenStream, &str)] = &[
            (
                quote!(pay_to = "3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"),
                "`pay_to` must be an EVM address",
            ),
            (
                quote!(pay_to = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293B"),
                "this one has 39",
            ),
            (
                quote!(pay_to = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BG"),
                "'G' is not a hex digit",
            ),
            (
                quote!(pay_to = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293Bc"),
                "wrong EIP-55 checksum",
            ),
            (
                quote!(pay_to = "0x0000000000000000000000000000000000000000"),
                "the zero address",
            ),
            (quote!(asset = "0xabc"), "`asset` must be an EVM address"),
        ];
        for (tokens, expected) in cases {
            let message = error_of(quote!(#base #tokens));
            assert!(message.contains(expected), "{tokens}: {message}");
        }
        // All-lowercase and all-uppercase skip the checksum, as EIP-55 intends.
        for text in [
            "0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc",
            "0x3C44CDDDB6A900FA2B585DD299E03D12FA4293BC",
        ] {
            let (route, errors) = check(quote!(#base pay_to = #text));
            assert!(errors.is_empty(), "{text}: {errors:?}");
            assert_eq!(route.and_then(|r| r.pay_to).as_deref(), Some(text));
        }
    }

    #[test]
    fn small_values_are_checked() {
        let base = quote!(price = "$0.01", network = "base",);
        let cases: &[(TokenStream, &str)] = &[
            (quote!(settle = "later"), "`settle` is \"after\""),
            (
                quote!(max_timeout_seconds = 0),
                "`max_timeout_seconds` must be positive, not 0",
            ),
            (
                quote!(max_timeout_seconds = 99999999999999999999),
                "too large",
            ),
            (quote!(max_timeout_seconds = 60u8), "without a type suffix"),
            (quote!(uses = 0), "`uses` must be positive"),
            (
                quote!(access = "1 hour"),
                "invalid `access`: \"1 hour\": it is not a duration",
            ),
            (quote!(access = "0s"), "is zero"),
            (
                quote!(scope = "reports"),
                "it needs `access = \"1h\"` and/or `uses = 100`",
            ),
            (quote!(uses = 5, scope = "a b"), "is not a group name"),
            (quote!(mime_type = "json"), "\"json\" is not a MIME type"),
        ];
        for (tokens, expected) in cases {
            let message = error_of(quote!(#base #tokens));
            assert!(message.contains(expected), "{tokens}: {message}");
        }
    }

    #[test]
    fn a_prepaid_balance_buys_more_than_one_request() {
        let message = error_of(quote!(
            price = "0.01 USDC",
            network = "base",
            prepay = "$0.005"
        ));
        assert_eq!(
            message,
            "prepay \"$0.005\" must be more than one request's price \"0.01 USDC\" (on base)"
        );
        let message = error_of(quote!(
            price = "0.01 USDC",
            network = "base",
            prepay = "$0.01"
        ));
        assert!(
            message.starts_with("prepay \"$0.01\" must be more"),
            "{message}"
        );
        let (route, errors) = check(quote!(
            price = "0.01 USDC",
            network = "base",
            prepay = "$0.02"
        ));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(route.and_then(|r| r.prepay).as_deref(), Some("$0.02"));
    }

    #[test]
    fn every_mistake_is_reported() {
        let (route, errors) = check(quote!(
            price = "1 DAI",
            network = ["base", "nowhere"],
            pay_to = "0x12",
            settle = "sometime",
            scope = "x",
        ));
        assert!(route.is_none());
        assert_eq!(errors.len(), 5, "{errors:?}");
    }

    #[test]
    fn the_crate_path_can_be_overridden() {
        let path = |tokens: TokenStream| {
            let mut errors = Errors::new();
            let args = PaidArgs::parse(tokens, &mut errors);
            let path = crate_path(&args, &mut errors);
            (path.to_token_stream().to_string(), errors.messages())
        };
        assert_eq!(path(quote!()), (":: x402_runtime".to_owned(), vec![]));
        assert_eq!(
            path(quote!(crate = "my::x402")),
            ("my :: x402".to_owned(), vec![])
        );
        let (fallback, errors) = path(quote!(crate = "not a path"));
        assert_eq!(fallback, ":: x402_runtime");
        assert!(
            errors[0].contains("\"not a path\" is not a path"),
            "{errors:?}"
        );
    }

    fn handler_errors(item: TokenStream) -> (Option<Handler>, Vec<String>) {
        let mut errors = Errors::new();
        let handler = handler(item, &mut errors);
        (handler, errors.messages())
    }

    #[test]
    fn finds_the_payment_parameter_by_its_last_segment() {
        for ty in [
            quote!(Payment),
            quote!(axum_x402::Payment),
            quote!(::x::y::Payment),
        ] {
            let (handler, errors) =
                handler_errors(quote!(async fn h(q: Query<X>, payment: #ty) -> String { todo!() }));
            assert!(errors.is_empty(), "{ty}: {errors:?}");
            assert_eq!(handler.and_then(|h| h.payment), Some(1), "{ty}");
        }
    }

    #[test]
    fn handler_shape_mistakes() {
        let cases: &[(TokenStream, &str)] = &[
            (
                quote!(
                    struct weather;
                ),
                NOT_A_FUNCTION,
            ),
            (
                quote!(
                    fn h(q: Query) {}
                ),
                MISSING_PAYMENT,
            ),
            (
                quote!(
                    fn h(a: Payment, b: x::Payment) {}
                ),
                "takes exactly one `Payment` parameter",
            ),
            (
                quote!(
                    fn h(p: Payment<Tag>) {}
                ),
                "write `Payment` without `<…>`",
            ),
            (
                quote!(
                    fn h(p: &Payment) {}
                ),
                "instead of `&Payment`",
            ),
            (
                quote!(
                    fn h(p: Option<Payment>) {}
                ),
                "instead of `Option<Payment>`",
            ),
            (
                quote!(
                    fn h(&self, p: Payment) {}
                ),
                "cannot take `self`",
            ),
            (
                quote!(
                    #[paid(price = "$1")]
                    fn h(p: Payment) {}
                ),
                "#[paid] is applied twice",
            ),
        ];
        for (item, expected) in cases {
            let (_, errors) = handler_errors(item.clone());
            assert_eq!(errors.len(), 1, "{item}: {errors:?}");
            assert!(errors[0].contains(expected), "{item}: {}", errors[0]);
        }
    }
}
