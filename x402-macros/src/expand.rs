//! Writes the output: a hidden tag type carrying the route's `RouteSpec`, and the handler with
//! its `Payment` parameter pointed at that tag.
//!
//! The output is deliberately thin: `const` builder calls with already-checked literals. No
//! HTTP, no header names, no amounts: the runtime does all of that.

use proc_macro2::{Literal, TokenStream};
use quote::{ToTokens, format_ident, quote};
use syn::{FnArg, PathArguments};

use crate::args::PaidArgs;
use crate::discovery::Declaration;
use crate::errors::Errors;
use crate::paths::Paths;
use crate::validate::{self, Handler, Protocol, Route, RoutePrice, Settle, Transfer};

/// The environment variable that makes the macro print its output while compiling.
const DEBUG_VAR: &str = "X402_MACROS_DEBUG";

/// `#[paid(attr)] item` → tag type + rewritten handler, plus a `compile_error!` per mistake.
///
/// Fails soft: whatever is wrong, the handler is still emitted (with a placeholder spec when
/// the arguments are wrong), so the compiler reports only the real mistakes and not the
/// "missing generics" or "trait not implemented" errors a missing handler or tag would cause.
pub(crate) fn paid(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::new();
    let args = PaidArgs::parse(attr, &mut errors);
    let krate = validate::crate_path(&args, &mut errors);
    let route = validate::route(&args, &mut errors);
    let (name, output) = match validate::handler(item.clone(), &mut errors) {
        Some(handler) => {
            let name = handler.func.sig.ident.to_string();
            let route = route.filter(|_| errors.is_empty());
            (name, with_tag(handler, route.as_ref(), &Paths::new(&krate)))
        }
        None => ("(not a function)".to_owned(), item),
    };
    let errors = errors.into_compile_errors();
    let expanded = quote!(#output #errors);
    if wants_debug(std::env::var_os(DEBUG_VAR).as_deref()) {
        eprintln!("#[paid] expansion for `{name}`:\n{expanded}\n");
    }
    expanded
}

/// `X402_MACROS_DEBUG` is on when set to anything but empty or `0`.
fn wants_debug(value: Option<&std::ffi::OsStr>) -> bool {
    value.is_some_and(|v| !v.is_empty() && v != "0")
}

/// The handler, preceded by its tag type when it has a `Payment` parameter to point at it.
/// `route` is `None` when something is wrong: the tag then gets a placeholder spec, never used
/// since the build fails, so that only the real mistakes are reported.
fn with_tag(mut handler: Handler, route: Option<&Route>, paths: &Paths) -> TokenStream {
    let Some(index) = handler.payment else {
        return handler.func.into_token_stream();
    };
    let func = &mut handler.func;
    // The fn name's span: an error about the tag points at the handler.
    let tag = format_ident!("__X402Tag_{}", func.sig.ident);
    if let Some(FnArg::Typed(typed)) = func.sig.inputs.iter_mut().nth(index)
        && let Some(path) = validate::payment_path_mut(&mut typed.ty)
        && let Some(segment) = path.path.segments.last_mut()
    {
        segment.arguments = PathArguments::AngleBracketed(syn::parse_quote!(<#tag>));
    }
    if route.is_some_and(|r| r.settle == Some(Settle::Before)) {
        settle_first(func, index, paths);
    }
    let vis = func.vis.clone();
    // A handler compiled only under some `cfg` takes its tag along.
    let cfgs: Vec<_> = func
        .attrs
        .iter()
        .filter(|attr| attr.path().is_ident("cfg"))
        .cloned()
        .collect();
    let name = func.sig.ident.to_string();
    let spec = match route {
        Some(route) => {
            let mut spec = spec(route, paths);
            spec.extend(quote!(.handler(::core::concat!(::core::module_path!(), "::", #name))));
            spec
        }
        None => {
            let route_spec = paths.route_spec();
            quote!(#route_spec::fixed(""))
        }
    };
    let paid_route = paths.paid_route();
    let route_spec = paths.route_spec();
    let derives = paths.tag_derives();
    let bazaar_fn = route.and_then(|route| bazaar_fn(route, paths));
    // Registered only when the arguments are right: a placeholder spec would fail start-up.
    let register = route.map(|_| {
        let inventory = paths.inventory();
        let registered = paths.registered_route();
        quote! {
            #(#cfgs)*
            #inventory::submit! {
                #registered::new(<#tag as #paid_route>::spec)
            }
        }
    });
    quote! {
        #(#cfgs)*
        #[doc(hidden)]
        #[allow(non_camel_case_types, dead_code, unreachable_pub)]
        #[derive(#(#derives),*)]
        #vis struct #tag {}

        #(#cfgs)*
        impl #paid_route for #tag {
            fn spec() -> &'static #route_spec {
                #bazaar_fn
                static SPEC: #route_spec = #spec;
                &SPEC
            }
        }

        #register

        #func
    }
}

/// For `settle = "before"`: the payment is settled first thing in the handler, once every
/// extractor has accepted the request (settling inside the `Payment` extractor would charge a
/// client whose request a later extractor, such as a body parser, then refuses). The handler
/// becomes `async` and returns `Result<its output, the integration's PaymentRejection>`; its
/// own body runs unchanged inside an async block, so its `return`s and `?`s keep their types.
fn settle_first(func: &mut syn::ItemFn, index: usize, paths: &Paths) {
    let settle_first = paths.settle_first();
    let result = paths.result();
    let Some(FnArg::Typed(typed)) = func.sig.inputs.iter_mut().nth(index) else {
        return;
    };
    let payment_ty = (*typed.ty).clone();
    // The payment needs a name to be settled through: keep the user's, or give `_` one.
    let binding = match &mut *typed.pat {
        syn::Pat::Ident(ident) => {
            ident.mutability = Some(Default::default());
            ident.ident.clone()
        }
        other => {
            let hidden = format_ident!("__x402_payment");
            let user_pattern = other.clone();
            *typed.pat = syn::parse_quote!(mut #hidden);
            // Bind the user's pattern after settlement, in the body.
            let body = &func.block;
            func.block = syn::parse_quote!({
                let #user_pattern = #hidden;
                #body
            });
            hidden
        }
    };
    let output = match &func.sig.output {
        syn::ReturnType::Default => quote!(()),
        syn::ReturnType::Type(_, ty) => quote!(#ty),
    };
    func.sig.output = syn::parse_quote!(
        -> #result<#output, <#payment_ty as #settle_first>::Rejection>
    );
    let body = &func.block;
    let run = if func.sig.asyncness.is_some() {
        quote!((async move #body).await)
    } else {
        func.sig.asyncness = Some(Default::default());
        quote!((move || #body)())
    };
    func.block = syn::parse_quote!({
        #settle_first::settle_first(&mut #binding).await?;
        #result::Ok(#run)
    });
}

/// `RouteSpec::fixed("…").networks(&[…])…`: one builder call per key that was given.
fn spec(route: &Route, paths: &Paths) -> TokenStream {
    let route_spec = paths.route_spec();
    let some = paths.some();
    let none = paths.none();
    let option = |value: Option<TokenStream>| match value {
        Some(value) => quote!(#some(#value)),
        None => none.clone(),
    };

    let mut spec = match &route.price {
        RoutePrice::Fixed(text) if route.upto => quote!(#route_spec::upto(#text)),
        RoutePrice::Fixed(text) => quote!(#route_spec::fixed(#text)),
        RoutePrice::Dynamic(path) => quote!(#route_spec::dynamic(#path)),
    };
    let networks = &route.networks;
    spec.extend(quote!(.networks(&[#(#networks),*])));
    if let Some(pay_to) = &route.pay_to {
        spec.extend(quote!(.pay_to(#pay_to)));
    }
    if let Some(asset) = &route.asset {
        spec.extend(quote!(.asset(#asset)));
    }
    if let Some(description) = &route.description {
        spec.extend(quote!(.description(#description)));
    }
    if let Some(mime_type) = &route.mime_type {
        spec.extend(quote!(.mime_type(#mime_type)));
    }
    if let Some(seconds) = route.max_timeout_seconds {
        let seconds = Literal::u64_unsuffixed(seconds);
        spec.extend(quote!(.max_timeout_seconds(#seconds)));
    }
    if let Some(settle) = route.settle {
        let settle_mode = paths.settle_mode();
        let variant = match settle {
            Settle::After => quote!(After),
            Settle::Before => quote!(Before),
        };
        spec.extend(quote!(.settle(#settle_mode::#variant)));
    }
    if let Some(protocol) = route.protocol {
        let version = paths.protocol_version();
        let variant = match protocol {
            Protocol::V1 => quote!(V1),
            Protocol::V2 => quote!(V2),
        };
        spec.extend(quote!(.only(#version::#variant)));
    }
    if let Some(access) = &route.access {
        let access_spec = paths.access_spec();
        let duration = paths.duration();
        let duration = option(access.duration_seconds.map(|seconds| {
            let seconds = Literal::u64_unsuffixed(seconds);
            quote!(#duration::from_secs(#seconds))
        }));
        let uses = option(access.uses.map(|uses| {
            let uses = Literal::u64_unsuffixed(uses);
            quote!(#uses)
        }));
        let scope = option(access.scope.as_ref().map(|scope| quote!(#scope)));
        spec.extend(quote! {
            .access(#access_spec { duration: #duration, uses: #uses, scope: #scope })
        });
    }
    if let Some(prepay) = &route.prepay {
        spec.extend(quote!(.prepay(#prepay)));
    }
    if !route.transfers.is_empty() {
        let method = paths.transfer_method();
        let methods = route.transfers.iter().map(|t| match t {
            Transfer::Eip3009 => quote!(#method::Eip3009),
            Transfer::Permit2 => quote!(#method::Permit2),
        });
        spec.extend(quote!(.transfers(&[#(#methods),*])));
    }
    if route.no_paywall {
        spec.extend(quote!(.no_paywall()));
    }
    if let Some(discovery) = &route.discovery {
        match &discovery.declaration {
            Some(Declaration::Literal(_)) => {
                let name = bazaar_fn_name();
                spec.extend(quote!(.discoverable(#name)));
            }
            Some(Declaration::Function(path)) => spec.extend(quote!(.discoverable(#path))),
            None => {}
        }
        if let Some(service) = &discovery.service {
            spec.extend(quote!(.service_name(#service)));
        }
        if !discovery.tags.is_empty() {
            let tags = &discovery.tags;
            spec.extend(quote!(.tags(&[#(#tags),*])));
        }
        if let Some(icon) = &discovery.icon {
            spec.extend(quote!(.icon_url(#icon)));
        }
    }
    spec
}

/// The name of the function a literal `bazaar(…)` declaration becomes, local to `spec()`.
fn bazaar_fn_name() -> syn::Ident {
    format_ident!("__x402_bazaar")
}

/// For `bazaar(input = …, …)`: `fn __x402_bazaar() -> BazaarExtension`, which hands the
/// checked literals to the runtime's `BazaarLiteral`.
fn bazaar_fn(route: &Route, paths: &Paths) -> Option<TokenStream> {
    let Some(Declaration::Literal(declared)) = route
        .discovery
        .as_ref()
        .and_then(|d| d.declaration.as_ref())
    else {
        return None;
    };
    let some = paths.some();
    let none = paths.none();
    let text = |value: &Option<String>| match value {
        Some(text) => quote!(#some(#text)),
        None => none.clone(),
    };
    let method = text(&declared.method);
    let body = text(&declared.body);
    let input = text(&declared.input);
    let input_schema = text(&declared.input_schema);
    let output = text(&declared.output);
    let output_schema = text(&declared.output_schema);
    let literal = paths.bazaar_literal();
    let extension = paths.bazaar_extension();
    let name = bazaar_fn_name();
    Some(quote! {
        fn #name() -> #extension {
            #literal {
                method: #method,
                body: #body,
                input: #input,
                input_schema: #input_schema,
                output: #output,
                output_schema: #output_schema,
            }
            .declare()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Token text without spaces, for comparing against expected output.
    fn squash(tokens: &TokenStream) -> String {
        tokens.to_string().replace(' ', "")
    }

    #[test]
    fn emits_the_tag_then_the_rewritten_handler() {
        let output = paid(
            quote!(
                price = "0.01 USDC",
                network = "base",
                description = "Current weather"
            ),
            quote! {
                #[get("/weather")]
                pub async fn weather(q: Query<X>, payment: axum_x402::Payment) -> String { todo!() }
            },
        );
        let text = squash(&output);
        let expected_spec = "static SPEC: ::x402_runtime::__private::RouteSpec = ::x402_runtime::__private::RouteSpec::fixed(\"0.01 USDC\").networks(&[\"base\"]).description(\"Current weather\").handler(::core::concat!(::core::module_path!(), \"::\", \"weather\"));";
        assert!(text.contains(&expected_spec.replace(' ', "")), "{text}");
        // The route is registered for the start-up checks.
        assert!(
            text.contains("::x402_runtime::__private::inventory::submit!{::x402_runtime::__private::RegisteredRoute::new(<__X402Tag_weatheras::x402_runtime::__private::PaidRoute>::spec)}"),
            "{text}"
        );
        assert!(text.contains("pubstruct__X402Tag_weather{}"), "{text}");
        assert!(
            text.contains("#[derive(::x402_runtime::__private::Clone,::x402_runtime::__private::Copy,::x402_runtime::__private::Debug)]"),
            "{text}"
        );
        assert!(
            text.contains("impl::x402_runtime::__private::PaidRoutefor__X402Tag_weather"),
            "{text}"
        );
        assert!(
            text.contains("#[get(\"/weather\")]pubasyncfnweather(q:Query<X>,payment:axum_x402::Payment<__X402Tag_weather>)->String"),
            "{text}"
        );
        // The tag comes first and there is no error.
        assert!(
            text.find("struct__X402Tag").unwrap_or(usize::MAX) < text.find("asyncfn").unwrap_or(0)
        );
        assert!(!text.contains("compile_error"), "{text}");
        // Nothing but the runtime's hidden module (and `core`'s macros) is named.
        for path in text.split("::x402_runtime").skip(1) {
            assert!(path.starts_with("::__private::"), "{path}");
        }
    }

    #[test]
    fn bazaar_literals_become_a_local_declaration_function() {
        let text = squash(&paid(
            quote!(
                price = "$0.01",
                network = "base",
                bazaar(
                    input = r#"{"city":"Oslo"}"#,
                    output = "21",
                    service = "Weather",
                    tags = ["weather", "oslo"],
                    icon = "https://example.com/i.png"
                )
            ),
            quote!(
                async fn weather(payment: Payment) {}
            ),
        ));
        assert!(!text.contains("compile_error"), "{text}");
        // The function comes first in `spec()`, then the spec names it.
        assert!(text.contains("fnspec()->&'static::x402_runtime::__private::RouteSpec{fn__x402_bazaar()->::x402_runtime::__private::BazaarExtension{::x402_runtime::__private::BazaarLiteral{method:::x402_runtime::__private::None,body:::x402_runtime::__private::None,input:::x402_runtime::__private::Some(\"{\\\"city\\\":\\\"Oslo\\\"}\"),input_schema:::x402_runtime::__private::None,output:::x402_runtime::__private::Some(\"21\"),output_schema:::x402_runtime::__private::None,}.declare()}staticSPEC"), "{text}");
        assert!(
            text.contains(".discoverable(__x402_bazaar).service_name(\"Weather\").tags(&[\"weather\",\"oslo\"]).icon_url(\"https://example.com/i.png\")"),
            "{text}"
        );

        // A function declares the call itself; no local function.
        let text = squash(&paid(
            quote!(
                price = "$0.01",
                network = "base",
                discovery = declarations::weather
            ),
            quote!(
                async fn weather(payment: Payment) {}
            ),
        ));
        assert!(
            text.contains(".discoverable(declarations::weather).handler("),
            "{text}"
        );
        assert!(!text.contains("__x402_bazaar"), "{text}");

        // A bad literal: the error, and no declaration.
        let text = squash(&paid(
            quote!(price = "$0.01", network = "base", bazaar(input = "{")),
            quote!(
                async fn weather(payment: Payment) {}
            ),
        ));
        assert!(text.contains("compile_error"), "{text}");
        assert!(!text.contains("discoverable"), "{text}");
    }

    #[test]
    fn settle_before_settles_first_thing_in_the_handler() {
        let text = squash(&paid(
            quote!(price = "$0.01", network = "base", settle = "before"),
            quote!(
                async fn report(payment: Payment, body: Json<Order>) -> String {
                    if body.0.empty {
                        return "nothing".into();
                    }
                    payment.transaction().unwrap().to_owned()
                }
            ),
        ));
        // The payment is bound mutably, the output wrapped, and the body runs unchanged in an
        // async block after the settlement.
        assert!(text.contains("asyncfnreport(mutpayment:Payment<__X402Tag_report>,body:Json<Order>)->::x402_runtime::__private::Result<String,<Payment<__X402Tag_report>as::x402_runtime::__private::SettleFirst>::Rejection>"), "{text}");
        assert!(text.contains("{::x402_runtime::__private::SettleFirst::settle_first(&mutpayment).await?;::x402_runtime::__private::Result::Ok((asyncmove{ifbody.0.empty{return\"nothing\".into();}payment.transaction().unwrap().to_owned()}).await)}"), "{text}");

        // A synchronous handler (Rocket allows them) becomes async; `_` gets a name.
        let text = squash(&paid(
            quote!(price = "$0.01", network = "base", settle = "before"),
            quote!(
                fn sync(_: Payment) -> &'static str {
                    "ok"
                }
            ),
        ));
        assert!(
            text.contains("asyncfnsync(mut__x402_payment:Payment<__X402Tag_sync>)"),
            "{text}"
        );
        assert!(text.contains("settle_first(&mut__x402_payment).await?;::x402_runtime::__private::Result::Ok((move||{let_=__x402_payment;{\"ok\"}})())"), "{text}");

        // Routes that settle after the handler keep their signature.
        let text = squash(&paid(
            quote!(price = "$0.01", network = "base"),
            quote!(
                async fn after(payment: Payment) -> String {
                    String::new()
                }
            ),
        ));
        assert!(
            text.contains("asyncfnafter(payment:Payment<__X402Tag_after>)->String"),
            "{text}"
        );
        assert!(!text.contains("settle_first"), "{text}");
        // Without `paywall = false` the route follows the server.
        assert!(!text.contains("no_paywall"), "{text}");
    }

    #[test]
    fn every_key_becomes_a_builder_call() {
        let output = paid(
            quote! {
                price = "$0.01", network = ["base", "eip155:31337"],
                pay_to = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
                asset = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
                mime_type = "application/json", max_timeout_seconds = 60, settle = "before",
                access = "1h", uses = 3, scope = "reports", prepay = "1 USDC",
                paywall = false, crate = "my::rt",
            },
            quote!(
                fn h(p: Payment) {}
            ),
        );
        let text = squash(&output);
        let expected = "my::rt::__private::RouteSpec::fixed(\"$0.01\")\
            .networks(&[\"base\",\"eip155:31337\"])\
            .pay_to(\"0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC\")\
            .asset(\"0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913\")\
            .mime_type(\"application/json\")\
            .max_timeout_seconds(60)\
            .settle(my::rt::__private::SettleMode::Before)\
            .access(my::rt::__private::AccessSpec{duration:my::rt::__private::Some(my::rt::__private::Duration::from_secs(3600)),uses:my::rt::__private::Some(3),scope:my::rt::__private::Some(\"reports\")})\
            .prepay(\"1 USDC\")\
            .no_paywall()\
            .handler(::core::concat!(::core::module_path!(),\"::\",\"h\"));";
        assert!(text.contains(&expected.replace(' ', "")), "{text}");
        assert!(!text.contains("x402_runtime"), "{text}");
    }

    #[test]
    fn uses_without_access_leaves_the_duration_out() {
        let text = squash(&paid(
            quote!(price = "$0.01", network = "base", uses = 5),
            quote!(
                fn h(p: Payment) {}
            ),
        ));
        assert!(
            text.contains(".access(::x402_runtime::__private::AccessSpec{duration:::x402_runtime::__private::None,uses:::x402_runtime::__private::Some(5),scope:::x402_runtime::__private::None})"),
            "{text}"
        );
    }

    #[test]
    fn a_dynamic_price_names_the_function() {
        let text = squash(&paid(
            quote!(price = pricing::by_size, network = "base"),
            quote!(
                fn h(p: Payment) {}
            ),
        ));
        assert!(
            text.contains("::x402_runtime::__private::RouteSpec::dynamic(pricing::by_size).networks(&[\"base\"]).handler("),
            "{text}"
        );
    }

    #[test]
    fn cfg_attributes_go_with_the_tag() {
        let text = squash(&paid(
            quote!(price = "$0.01", network = "base"),
            quote!(
                #[cfg(feature = "paid")]
                fn h(p: Payment) {}
            ),
        ));
        // The tag, its impl, its registration, and the handler.
        assert_eq!(
            text.matches("#[cfg(feature=\"paid\")]").count(),
            4,
            "{text}"
        );
    }

    #[test]
    fn fails_soft_with_a_placeholder_spec() {
        let output = paid(
            quote!(price = "0.01", network = "basee"),
            quote!(
                async fn weather(payment: Payment) {}
            ),
        );
        let text = squash(&output);
        assert_eq!(text.matches("compile_error!").count(), 2, "{text}");
        assert!(text.contains("RouteSpec::fixed(\"\");"), "{text}");
        assert!(
            text.contains("payment:Payment<__X402Tag_weather>"),
            "{text}"
        );
    }

    #[test]
    fn debug_output_is_opt_in() {
        use std::ffi::OsStr;
        assert!(wants_debug(Some(OsStr::new("1"))));
        assert!(wants_debug(Some(OsStr::new("true"))));
        assert!(!wants_debug(Some(OsStr::new("0"))));
        assert!(!wants_debug(Some(OsStr::new(""))));
        assert!(!wants_debug(None));
    }

    /// Odd inputs give errors (or output), never a panic.
    #[test]
    fn never_panics_on_odd_input() {
        let attrs = [
            quote!(),
            quote!(,),
            quote!(= "x"),
            quote!("0.01 USDC"),
            quote!(price),
            quote!(price =),
            quote!(price = = "x"),
            quote!(price = "x",, network = "base"),
            quote!(price::x = "y"),
            quote!(::price = "y"),
            quote!(price(x)),
            quote!(price = [1, 2]),
            quote!(price = "", network = ""),
            quote!(price = "$", network = "eip155:"),
            quote!(price = "1é USDC", network = "é"),
            quote!(
                price = "99999999999999999999999999999999999999999999999999999999999999999999999999999999 USDC",
                network = "base"
            ),
            quote!(
                price = "1 atomic",
                network = "eip155:99999999999999999999999"
            ),
            quote!(network = [[["base"]]]),
            quote!(
                access = "é",
                uses = 99999999999999999999999,
                max_timeout_seconds = 0x10
            ),
            quote!(pay_to = "0xé123456789012345678901234567890123456789"),
            quote!(pay_to = "0x", asset = "0x0x"),
            quote!(crate = "", price = "$1", network = "base"),
            quote!(crate = "a::<b>", price = "$1", network = "base"),
            quote!(scope = "", uses = 1),
            quote!(mime_type = ";", price = "$1", network = "base"),
        ];
        let items = [
            quote!(),
            quote!(fn),
            quote!(
                fn h(payment: Payment) {}
            ),
            quote!(
                fn r#type(payment: Payment) {}
            ),
            quote!(
                fn h(payment: Payment) {}
            ),
            quote!(
                fn h(payment: Payment<X>) {}
            ),
            quote!(
                fn h(payment: <X as Y>::Payment) {}
            ),
            quote!(
                fn h(payment: Payment(u8)) {}
            ),
            quote!(
                fn h(payment: impl Payment) {}
            ),
            quote!(
                fn h(Payment(p): Payment) {}
            ),
            quote!(
                fn h(self: Box<Self>, payment: Payment) {}
            ),
            quote!(
                fn h(...) {}
            ),
            quote!(
                struct S;
                struct T;
            ),
            quote!(
                trait T {
                    fn h(p: Payment);
                }
            ),
        ];
        for attr in &attrs {
            for item in &items {
                let output = paid(attr.clone(), item.clone());
                assert!(!output.is_empty() || item.is_empty(), "{attr} / {item}");
            }
        }
    }

    #[test]
    fn fails_soft_on_handler_mistakes() {
        // No Payment parameter: the function as written, and the error.
        let text = squash(&paid(
            quote!(price = "$0.01", network = "base"),
            quote!(
                async fn weather() {}
            ),
        ));
        assert!(text.starts_with("asyncfnweather(){}"), "{text}");
        assert_eq!(text.matches("compile_error!").count(), 1, "{text}");
        // Not a function: the item as written, and the error.
        let text = squash(&paid(
            quote!(price = "$0.01", network = "base"),
            quote!(
                struct weather {}
            ),
        ));
        assert!(text.starts_with("structweather{}"), "{text}");
        assert!(text.contains("abovetherouteattribute"), "{text}");
    }
}
