//! Reads `#[paid(key = value, …)]` into [`PaidArgs`].
//!
//! This phase only checks the *shape* of each entry: a known key, given once, with the kind of
//! token it takes (a string literal, an integer literal, a path, a list). What the values mean
//! is checked in `validate.rs`. Every value keeps its tokens, so later errors point at them.
//! Parsing does not stop at the first mistake: each one is recorded and the next key is read.

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::parse::discouraged::Speculative;
use syn::parse::{ParseStream, Parser};
use syn::{Expr, ExprPath, Lit, LitBool, LitInt, LitStr, Token};

use crate::errors::Errors;

/// Every key `#[paid]` accepts, in the order the documentation lists them.
pub(crate) const KEYS: &[&str] = &[
    PRICE,
    NETWORK,
    PAY_TO,
    ASSET,
    DESCRIPTION,
    MIME_TYPE,
    MAX_TIMEOUT_SECONDS,
    SETTLE,
    PROTOCOL,
    ACCESS,
    USES,
    SCOPE,
    PREPAY,
    UPTO,
    TRANSFER,
    PAYWALL,
    BAZAAR,
    DISCOVERY,
    CRATE,
];

pub(crate) const PRICE: &str = "price";
pub(crate) const NETWORK: &str = "network";
pub(crate) const PAY_TO: &str = "pay_to";
pub(crate) const ASSET: &str = "asset";
pub(crate) const DESCRIPTION: &str = "description";
pub(crate) const MIME_TYPE: &str = "mime_type";
pub(crate) const MAX_TIMEOUT_SECONDS: &str = "max_timeout_seconds";
pub(crate) const SETTLE: &str = "settle";
pub(crate) const PROTOCOL: &str = "protocol";
pub(crate) const ACCESS: &str = "access";
pub(crate) const USES: &str = "uses";
pub(crate) const SCOPE: &str = "scope";
pub(crate) const PREPAY: &str = "prepay";
pub(crate) const UPTO: &str = "upto";
pub(crate) const TRANSFER: &str = "transfer";
pub(crate) const PAYWALL: &str = "paywall";
pub(crate) const BAZAAR: &str = "bazaar";
pub(crate) const DISCOVERY: &str = "discovery";
pub(crate) const CRATE: &str = "crate";

/// Every key `bazaar(…)` accepts, in the order the documentation lists them.
pub(crate) const BAZAAR_KEYS: &[&str] = &[
    METHOD,
    BODY,
    INPUT,
    INPUT_SCHEMA,
    OUTPUT,
    OUTPUT_SCHEMA,
    SERVICE,
    TAGS,
    ICON,
];

pub(crate) const METHOD: &str = "method";
pub(crate) const BODY: &str = "body";
pub(crate) const INPUT: &str = "input";
pub(crate) const INPUT_SCHEMA: &str = "input_schema";
pub(crate) const OUTPUT: &str = "output";
pub(crate) const OUTPUT_SCHEMA: &str = "output_schema";
pub(crate) const SERVICE: &str = "service";
pub(crate) const TAGS: &str = "tags";
pub(crate) const ICON: &str = "icon";

/// The keys of `bazaar(…)` that describe the call (the rest describe the service).
pub(crate) const DECLARATION_KEYS: &[&str] =
    &[METHOD, BODY, INPUT, INPUT_SCHEMA, OUTPUT, OUTPUT_SCHEMA];

/// A value together with the key it was written under (both keep their spans).
pub(crate) struct Keyed<T> {
    pub(crate) key: syn::Path,
    pub(crate) value: T,
}

impl<T: ToTokens> Keyed<T> {
    /// `key = value` as tokens, to point an error at the whole entry.
    pub(crate) fn entry(&self) -> TokenStream {
        let Keyed { key, value } = self;
        quote::quote!(#key = #value)
    }
}

/// `price = "0.01 USDC"` or `price = pricing::by_size`.
pub(crate) enum PriceArg {
    Literal(LitStr),
    Function(ExprPath),
}

impl ToTokens for PriceArg {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        match self {
            PriceArg::Literal(lit) => lit.to_tokens(tokens),
            PriceArg::Function(path) => path.to_tokens(tokens),
        }
    }
}

/// `network = "base"` or `network = ["base", "base-sepolia"]`.
pub(crate) struct NetworkArg {
    /// The value as written (a literal or the bracketed list), for errors about the whole list.
    pub(crate) written: Expr,
    /// Each network literal.
    pub(crate) names: Vec<LitStr>,
}

impl ToTokens for NetworkArg {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        self.written.to_tokens(tokens);
    }
}

/// `tags = "weather"` or `tags = ["weather", "forecast"]`.
pub(crate) struct TagsArg {
    /// The value as written, for errors about the whole list.
    pub(crate) written: Expr,
    /// Each tag literal.
    pub(crate) tags: Vec<LitStr>,
}

impl ToTokens for TagsArg {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        self.written.to_tokens(tokens);
    }
}

/// `bazaar(input = "…", output = "…", …)`: Bazaar discovery metadata, each value with the key
/// it was written under.
#[derive(Default)]
pub(crate) struct BazaarArgs {
    pub(crate) method: Option<Keyed<LitStr>>,
    pub(crate) body: Option<Keyed<LitStr>>,
    pub(crate) input: Option<Keyed<LitStr>>,
    pub(crate) input_schema: Option<Keyed<LitStr>>,
    pub(crate) output: Option<Keyed<LitStr>>,
    pub(crate) output_schema: Option<Keyed<LitStr>>,
    pub(crate) service: Option<Keyed<LitStr>>,
    pub(crate) tags: Option<Keyed<TagsArg>>,
    pub(crate) icon: Option<Keyed<LitStr>>,
    /// Which sub-keys were written at all, with their tokens.
    pub(crate) seen: Vec<(&'static str, syn::Path)>,
}

impl BazaarArgs {
    /// The tokens of sub-key `key`, if it was written.
    pub(crate) fn written(&self, key: &str) -> Option<&syn::Path> {
        self.seen.iter().find(|(k, _)| *k == key).map(|(_, p)| p)
    }

    fn entry(
        &mut self,
        meta: &syn::meta::ParseNestedMeta<'_>,
        errors: &mut Errors,
    ) -> syn::Result<()> {
        let key = meta.path.clone();
        let Some(name) = key
            .get_ident()
            .map(ToString::to_string)
            .and_then(|ident| BAZAAR_KEYS.iter().copied().find(|k| *k == ident))
        else {
            let written = key.to_token_stream().to_string().replace(' ', "");
            let mut message = format!(
                "unknown `bazaar` key `{written}`; the keys are: {}",
                BAZAAR_KEYS.join(", ")
            );
            if let Some(close) = closest(&written, BAZAAR_KEYS.iter().copied()) {
                message.push_str(&format!(" (did you mean `{close}`?)"));
            }
            errors.spanned(&key, message);
            skip_to_comma(meta.input)?;
            return Ok(());
        };
        if self.written(name).is_some() {
            errors.spanned(
                &key,
                format!("`{name}` is given twice in `bazaar(…)`; keep only one `{name} = …`"),
            );
            skip_to_comma(meta.input)?;
            return Ok(());
        }
        self.seen.push((name, key.clone()));
        let input = meta.input;
        if !input.peek(Token![=]) {
            errors.spanned(
                &key,
                format!("`{name}` needs a value: {name} = {}", example(name)),
            );
            skip_to_comma(input)?;
            return Ok(());
        }
        input.parse::<Token![=]>()?;
        let value: Expr = input.parse()?;
        let k = &key;
        match name {
            METHOD => self.method = keyed(k, string(&value, name, errors)),
            BODY => self.body = keyed(k, string(&value, name, errors)),
            INPUT => self.input = keyed(k, string(&value, name, errors)),
            INPUT_SCHEMA => self.input_schema = keyed(k, string(&value, name, errors)),
            OUTPUT => self.output = keyed(k, string(&value, name, errors)),
            OUTPUT_SCHEMA => self.output_schema = keyed(k, string(&value, name, errors)),
            SERVICE => self.service = keyed(k, string(&value, name, errors)),
            TAGS => self.tags = keyed(k, tags(value, errors)),
            _ /* ICON */ => self.icon = keyed(k, string(&value, name, errors)),
        }
        Ok(())
    }
}

/// The attribute's arguments, each value with its tokens; `None` when not given (or unusable,
/// in which case an error was recorded).
#[derive(Default)]
pub(crate) struct PaidArgs {
    pub(crate) price: Option<Keyed<PriceArg>>,
    pub(crate) network: Option<Keyed<NetworkArg>>,
    pub(crate) pay_to: Option<Keyed<LitStr>>,
    pub(crate) asset: Option<Keyed<LitStr>>,
    pub(crate) description: Option<Keyed<LitStr>>,
    pub(crate) mime_type: Option<Keyed<LitStr>>,
    pub(crate) max_timeout_seconds: Option<Keyed<LitInt>>,
    pub(crate) settle: Option<Keyed<LitStr>>,
    pub(crate) protocol: Option<Keyed<LitStr>>,
    pub(crate) access: Option<Keyed<LitStr>>,
    pub(crate) uses: Option<Keyed<LitInt>>,
    pub(crate) scope: Option<Keyed<LitStr>>,
    pub(crate) prepay: Option<Keyed<LitStr>>,
    pub(crate) upto: Option<Keyed<LitStr>>,
    pub(crate) transfer: Option<Keyed<Vec<LitStr>>>,
    pub(crate) paywall: Option<Keyed<LitBool>>,
    pub(crate) bazaar: Option<Keyed<BazaarArgs>>,
    pub(crate) discovery: Option<Keyed<ExprPath>>,
    pub(crate) krate: Option<Keyed<LitStr>>,
    /// Which keys were written at all, even with an unusable value: a key given with a bad
    /// value is not also reported as missing.
    pub(crate) seen: Vec<&'static str>,
    /// Set when tokens had to be skipped to recover from a syntax error; keys may be hidden in
    /// them, so missing keys are not reported.
    pub(crate) garbled: bool,
}

impl PaidArgs {
    /// Parses the attribute's tokens, recording every mistake in `errors`.
    pub(crate) fn parse(tokens: TokenStream, errors: &mut Errors) -> PaidArgs {
        let mut args = PaidArgs::default();
        let parser = syn::meta::parser(|meta| args.entry(&meta, errors));
        if let Err(error) = parser.parse2(tokens) {
            // A syntax error between entries (e.g. `#[paid("0.01 USDC")]`); the rest is lost.
            errors.push(error);
            args.garbled = true;
        }
        args
    }

    /// Whether `key` was written (even with an unusable value).
    pub(crate) fn has(&self, key: &str) -> bool {
        self.seen.contains(&key)
    }

    fn entry(
        &mut self,
        meta: &syn::meta::ParseNestedMeta<'_>,
        errors: &mut Errors,
    ) -> syn::Result<()> {
        let key = meta.path.clone();
        let Some(name) = known_key(&key) else {
            errors.spanned(&key, unknown_key_message(&key));
            skip_to_comma(meta.input)?;
            return Ok(());
        };
        let duplicate = self.has(name);
        if duplicate {
            errors.spanned(
                &key,
                format!("`{name}` is given twice; keep only one `{name} = …`"),
            );
        } else {
            self.seen.push(name);
        }
        if name == BAZAAR {
            let bazaar = bazaar(meta, errors)?;
            if !duplicate {
                self.bazaar = keyed(&key, bazaar);
            }
            return Ok(());
        }
        let Some(value) = self.value(meta, name, errors)? else {
            return Ok(());
        };
        if duplicate {
            return Ok(());
        }
        let k = &key;
        match name {
            PRICE => self.price = keyed(k, price(&value, errors)),
            NETWORK => self.network = keyed(k, network(value, errors)),
            PAY_TO => self.pay_to = keyed(k, string(&value, name, errors)),
            ASSET => self.asset = keyed(k, string(&value, name, errors)),
            DESCRIPTION => self.description = keyed(k, string(&value, name, errors)),
            MIME_TYPE => self.mime_type = keyed(k, string(&value, name, errors)),
            MAX_TIMEOUT_SECONDS => {
                self.max_timeout_seconds = keyed(k, integer(&value, name, errors))
            }
            SETTLE => self.settle = keyed(k, string(&value, name, errors)),
            PROTOCOL => self.protocol = keyed(k, string(&value, name, errors)),
            ACCESS => self.access = keyed(k, string(&value, name, errors)),
            USES => self.uses = keyed(k, integer(&value, name, errors)),
            SCOPE => self.scope = keyed(k, string(&value, name, errors)),
            PREPAY => self.prepay = keyed(k, string(&value, name, errors)),
            UPTO => self.upto = keyed(k, string(&value, name, errors)),
            TRANSFER => {
                self.transfer = keyed(
                    k,
                    string_list(value, TRANSFER, "transfer method", "\"permit2\"", errors),
                )
            }
            PAYWALL => self.paywall = keyed(k, boolean(&value, name, errors)),
            DISCOVERY => self.discovery = keyed(k, function(&value, name, errors)),
            _ /* CRATE */ => self.krate = keyed(k, string(&value, name, errors)),
        }
        Ok(())
    }

    /// Reads `= <expression>` after a key. On a syntax error, records it, skips to the next
    /// `,` and returns `None`.
    fn value(
        &mut self,
        meta: &syn::meta::ParseNestedMeta<'_>,
        name: &str,
        errors: &mut Errors,
    ) -> syn::Result<Option<Expr>> {
        let input = meta.input;
        if !input.peek(Token![=]) {
            errors.spanned(
                &meta.path,
                format!("`{name}` needs a value: {name} = {}", example(name)),
            );
            self.garbled |= !input.is_empty() && !input.peek(Token![,]);
            skip_to_comma(input)?;
            return Ok(None);
        }
        let eq: Token![=] = input.parse()?;
        let fork = input.fork();
        if let Ok(expr) = fork.parse::<Expr>() {
            input.advance_to(&fork);
            if input.is_empty() || input.peek(Token![,]) {
                return Ok(Some(expr));
            }
            // `price = "1 USDC" network = "base"`: a comma is missing.
            errors.push(input.error(format!(
                "expected `,` after the value of `{name}` (entries are separated by commas)"
            )));
            self.garbled = true;
            skip_to_comma(input)?;
            return Ok(Some(expr));
        }
        let rest = skip_to_comma(input)?;
        if rest.is_empty() {
            errors.spanned(
                quote::quote!(#eq),
                format!(
                    "`{name}` needs a value after `=`: {name} = {}",
                    example(name)
                ),
            );
        } else {
            errors.spanned(rest, format!("`{name}` takes {}", expected(name)));
            self.garbled = true;
        }
        Ok(None)
    }
}

fn keyed<T>(key: &syn::Path, value: Option<T>) -> Option<Keyed<T>> {
    value.map(|value| Keyed {
        key: key.clone(),
        value,
    })
}

/// The key's name if it is one of [`KEYS`].
fn known_key(key: &syn::Path) -> Option<&'static str> {
    let ident = key.get_ident()?.to_string();
    KEYS.iter().copied().find(|k| *k == ident)
}

fn unknown_key_message(key: &syn::Path) -> String {
    let written = key.to_token_stream().to_string().replace(' ', "");
    let mut message = format!(
        "unknown #[paid] key `{written}`; the keys are: {}",
        KEYS.join(", ")
    );
    if let Some(close) = closest_key(&written) {
        message.push_str(&format!(" (did you mean `{close}`?)"));
    }
    message
}

/// A key within two edits of what was written (`payto` → `pay_to`, `networks` → `network`).
fn closest_key(written: &str) -> Option<&'static str> {
    closest(written, KEYS.iter().copied())
}

/// The candidate within two edits of `written`, if any (the nearest one).
pub(crate) fn closest<'a>(
    written: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (edit_distance(c, written), c))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance over bytes (keys are ASCII).
fn edit_distance(a: &str, b: &str) -> usize {
    let b = b.as_bytes();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.bytes().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// Consumes tokens up to (not including) the next top-level `,`; returns them.
fn skip_to_comma(input: ParseStream<'_>) -> syn::Result<TokenStream> {
    let mut skipped = TokenStream::new();
    while !input.is_empty() && !input.peek(Token![,]) {
        let tree: proc_macro2::TokenTree = input.parse()?;
        skipped.extend([tree]);
    }
    Ok(skipped)
}

/// An example value for each key, used in messages.
pub(crate) fn example(key: &str) -> &'static str {
    match key {
        PRICE => "\"0.01 USDC\"",
        NETWORK => "\"base\"",
        PAY_TO | ASSET => "\"0x…\"",
        DESCRIPTION => "\"Current weather\"",
        MIME_TYPE => "\"application/json\"",
        MAX_TIMEOUT_SECONDS => "60",
        SETTLE => "\"before\"",
        PROTOCOL => "\"v2\"",
        ACCESS => "\"1h\"",
        USES => "100",
        SCOPE => "\"reports\"",
        PREPAY => "\"1 USDC\"",
        UPTO => "\"0.50 USDC\"",
        TRANSFER => "\"permit2\"",
        PAYWALL => "false",
        BAZAAR => "(input = r#\"{\"city\": \"Oslo\"}\"#, output = r#\"{\"temperature\": 21}\"#)",
        DISCOVERY => "discovery::weather",
        METHOD => "\"GET\"",
        BODY => "\"json\"",
        INPUT | OUTPUT => "r#\"{\"city\": \"Oslo\"}\"#",
        INPUT_SCHEMA | OUTPUT_SCHEMA => {
            "r#\"{\"properties\": {\"city\": {\"type\": \"string\"}}}\"#"
        }
        SERVICE => "\"Weather\"",
        TAGS => "[\"weather\", \"forecast\"]",
        ICON => "\"https://example.com/icon.png\"",
        _ /* CRATE */ => "\"my_crate::x402\"",
    }
}

/// What a key's value must be, for messages.
fn expected(key: &str) -> String {
    match key {
        PRICE => "a price literal such as \"0.01 USDC\", or the path of a pricing function such as `pricing::by_size`".to_owned(),
        NETWORK => "a network literal such as \"base\", or a list: [\"base\", \"base-sepolia\"]".to_owned(),
        MAX_TIMEOUT_SECONDS | USES => format!("an integer literal, e.g. {key} = {}", example(key)),
        PAYWALL => format!("a bool literal, e.g. {key} = {}", example(key)),
        DISCOVERY => format!(
            "the path of a `fn() -> BazaarExtension`, e.g. {key} = {}",
            example(key)
        ),
        INPUT | OUTPUT | INPUT_SCHEMA | OUTPUT_SCHEMA => format!(
            "a string literal holding JSON, e.g. {key} = {}",
            example(key)
        ),
        TAGS | TRANSFER => format!(
            "a string literal or a list of them, e.g. {key} = {}",
            example(key)
        ),
        _ => format!("a string literal, e.g. {key} = {}", example(key)),
    }
}

/// Looks through the invisible groups that `macro_rules!` puts around `$x:expr` fragments.
fn ungroup(expr: &Expr) -> &Expr {
    match expr {
        Expr::Group(group) => ungroup(&group.expr),
        other => other,
    }
}

/// Explains why a value that is not of the expected kind was rejected.
fn wrong_kind(expr: &Expr, key: &str, errors: &mut Errors) {
    let why = match ungroup(expr) {
        Expr::Lit(_) => String::new(),
        _ => " (macros see tokens, not values: constants and expressions cannot be used here)"
            .to_owned(),
    };
    errors.spanned(expr, format!("`{key}` takes {}{why}", expected(key)));
}

fn string(expr: &Expr, key: &str, errors: &mut Errors) -> Option<LitStr> {
    if let Expr::Lit(syn::ExprLit {
        lit: Lit::Str(lit), ..
    }) = ungroup(expr)
    {
        if !lit.suffix().is_empty() {
            errors.spanned(lit, "unexpected suffix after the string literal");
            return None;
        }
        return Some(lit.clone());
    }
    if let Expr::Lit(syn::ExprLit {
        lit: Lit::Int(int), ..
    }) = ungroup(expr)
        && key == ACCESS
    {
        errors.spanned(
            expr,
            format!(
                "`access` takes a duration with a unit, e.g. access = \"{}s\" or access = \"1h\"",
                int.base10_digits()
            ),
        );
        return None;
    }
    wrong_kind(expr, key, errors);
    None
}

fn integer(expr: &Expr, key: &str, errors: &mut Errors) -> Option<LitInt> {
    match ungroup(expr) {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Int(int), ..
        }) => return Some(int.clone()),
        Expr::Unary(syn::ExprUnary {
            op: syn::UnOp::Neg(_),
            expr: inner,
            ..
        }) if matches!(
            ungroup(inner),
            Expr::Lit(syn::ExprLit {
                lit: Lit::Int(_),
                ..
            })
        ) =>
        {
            errors.spanned(expr, format!("`{key}` must be a positive integer"));
            return None;
        }
        Expr::Lit(syn::ExprLit {
            lit: Lit::Str(lit), ..
        }) if lit.value().trim().parse::<u64>().is_ok() => {
            errors.spanned(
                expr,
                format!(
                    "`{key}` takes an integer literal, without quotes: {key} = {}",
                    lit.value().trim()
                ),
            );
            return None;
        }
        _ => {}
    }
    wrong_kind(expr, key, errors);
    None
}

fn boolean(expr: &Expr, key: &str, errors: &mut Errors) -> Option<LitBool> {
    match ungroup(expr) {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Bool(lit),
            ..
        }) => return Some(lit.clone()),
        Expr::Lit(syn::ExprLit {
            lit: Lit::Str(lit), ..
        }) if matches!(lit.value().trim(), "true" | "false") => {
            errors.spanned(
                expr,
                format!(
                    "`{key}` takes a bool literal, without quotes: {key} = {}",
                    lit.value().trim()
                ),
            );
            return None;
        }
        _ => {}
    }
    wrong_kind(expr, key, errors);
    None
}

fn price(expr: &Expr, errors: &mut Errors) -> Option<PriceArg> {
    match ungroup(expr) {
        Expr::Path(path) if path.qself.is_none() => Some(PriceArg::Function(path.clone())),
        Expr::Lit(syn::ExprLit {
            lit: Lit::Float(_) | Lit::Int(_),
            ..
        }) => {
            errors.spanned(
                expr,
                format!(
                    "a price needs a unit and quotes: price = \"${0}\" or price = \"{0} USDC\"",
                    expr.to_token_stream()
                ),
            );
            None
        }
        _ => string(expr, PRICE, errors).map(PriceArg::Literal),
    }
}

fn network(expr: Expr, errors: &mut Errors) -> Option<NetworkArg> {
    let names = match ungroup(&expr) {
        Expr::Array(array) => {
            let mut names = Vec::with_capacity(array.elems.len());
            let mut ok = true;
            for elem in &array.elems {
                match ungroup(elem) {
                    Expr::Lit(syn::ExprLit {
                        lit: Lit::Str(lit), ..
                    }) if lit.suffix().is_empty() => names.push(lit.clone()),
                    _ => {
                        errors.spanned(
                            elem,
                            "each network in the list is a string literal, e.g. \"base\" or \"eip155:8453\"",
                        );
                        ok = false;
                    }
                }
            }
            if array.elems.is_empty() {
                errors.spanned(
                    &expr,
                    "the network list is empty; name at least one network, e.g. network = [\"base\"]",
                );
                return None;
            }
            if !ok {
                return None;
            }
            names
        }
        _ => vec![string(&expr, NETWORK, errors)?],
    };
    Some(NetworkArg {
        written: expr,
        names,
    })
}

/// `bazaar(…)`: the parenthesized list after the key. On a mistake in it, records it and
/// returns what could be read.
fn bazaar(
    meta: &syn::meta::ParseNestedMeta<'_>,
    errors: &mut Errors,
) -> syn::Result<Option<BazaarArgs>> {
    let input = meta.input;
    if !input.peek(syn::token::Paren) {
        let rest = skip_to_comma(input)?;
        let at = if rest.is_empty() {
            meta.path.to_token_stream()
        } else {
            rest
        };
        errors.spanned(
            at,
            format!(
                "`bazaar` takes a list of keys in parentheses: bazaar{}",
                example(BAZAAR)
            ),
        );
        return Ok(None);
    }
    let content;
    syn::parenthesized!(content in input);
    let tokens: TokenStream = content.parse()?;
    let empty = tokens.is_empty();
    let mut args = BazaarArgs::default();
    let parser = syn::meta::parser(|inner| args.entry(&inner, errors));
    if let Err(error) = parser.parse2(tokens) {
        errors.push(error);
    }
    if empty {
        errors.spanned(
            &meta.path,
            format!(
                "`bazaar()` declares nothing; give at least one of {}",
                BAZAAR_KEYS.join(", ")
            ),
        );
    }
    if !input.is_empty() && !input.peek(Token![,]) {
        errors
            .push(input.error("expected `,` after `bazaar(…)` (entries are separated by commas)"));
        skip_to_comma(input)?;
    }
    Ok(Some(args))
}

/// `discovery = path::to::function`.
fn function(expr: &Expr, key: &str, errors: &mut Errors) -> Option<ExprPath> {
    match ungroup(expr) {
        Expr::Path(path) if path.qself.is_none() => Some(path.clone()),
        _ => {
            wrong_kind(expr, key, errors);
            None
        }
    }
}

/// `tags = "weather"` or `tags = ["weather", "forecast"]`.
fn tags(expr: Expr, errors: &mut Errors) -> Option<TagsArg> {
    let tags = string_list(expr.clone(), TAGS, "tag", "\"weather\"", errors)?;
    Some(TagsArg {
        written: expr,
        tags,
    })
}

/// A string literal, or a non-empty list of them (`key = "a"`, `key = ["a", "b"]`); `what`
/// names one element in messages, `sample` is one written out.
fn string_list(
    expr: Expr,
    key: &str,
    what: &str,
    sample: &str,
    errors: &mut Errors,
) -> Option<Vec<LitStr>> {
    match ungroup(&expr) {
        Expr::Array(array) => {
            let mut items = Vec::with_capacity(array.elems.len());
            let mut ok = true;
            for elem in &array.elems {
                match ungroup(elem) {
                    Expr::Lit(syn::ExprLit {
                        lit: Lit::Str(lit), ..
                    }) if lit.suffix().is_empty() => items.push(lit.clone()),
                    _ => {
                        errors.spanned(
                            elem,
                            format!("each {what} in the list is a string literal, e.g. {sample}"),
                        );
                        ok = false;
                    }
                }
            }
            if array.elems.is_empty() {
                errors.spanned(
                    &expr,
                    format!(
                        "the {what} list is empty; name at least one, e.g. {key} = [{sample}], or leave `{key}` out"
                    ),
                );
                return None;
            }
            ok.then_some(items)
        }
        _ => Some(vec![string(&expr, key, errors)?]),
    }
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::*;

    fn parse(tokens: TokenStream) -> (PaidArgs, Vec<String>) {
        let mut errors = Errors::new();
        let args = PaidArgs::parse(tokens, &mut errors);
        let messages = errors.messages();
        (args, messages)
    }

    #[test]
    fn reads_every_key() {
        let (args, errors) = parse(quote! {
            price = "0.01 USDC",
            network = ["base", "base-sepolia"],
            pay_to = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
            asset = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
            description = "Current weather",
            mime_type = "application/json",
            max_timeout_seconds = 60,
            settle = "before",
            protocol = "v2",
            access = "1h",
            uses = 100,
            scope = "reports",
            prepay = "1 USDC",
            upto = "0.50 USDC",
            transfer = ["eip3009", "permit2"],
            paywall = false,
            bazaar(input = "{}", tags = ["a", "b"]),
            discovery = discovery::weather,
            crate = "my::x402",
        });
        assert_eq!(errors, Vec::<String>::new());
        let Some(Keyed {
            value: PriceArg::Literal(price),
            ..
        }) = &args.price
        else {
            panic!("price is not a literal");
        };
        assert_eq!(price.value(), "0.01 USDC");
        let networks: Vec<String> = args.network.as_ref().map_or(vec![], |n| {
            n.value.names.iter().map(LitStr::value).collect()
        });
        assert_eq!(networks, ["base", "base-sepolia"]);
        let text = |v: &Option<Keyed<LitStr>>| v.as_ref().map(|k| k.value.value());
        assert_eq!(
            text(&args.pay_to).as_deref(),
            Some("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC")
        );
        assert_eq!(
            text(&args.asset).as_deref(),
            Some("0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913")
        );
        assert_eq!(text(&args.description).as_deref(), Some("Current weather"));
        assert_eq!(text(&args.mime_type).as_deref(), Some("application/json"));
        assert_eq!(text(&args.settle).as_deref(), Some("before"));
        assert_eq!(text(&args.protocol).as_deref(), Some("v2"));
        assert_eq!(text(&args.access).as_deref(), Some("1h"));
        assert_eq!(text(&args.scope).as_deref(), Some("reports"));
        assert_eq!(text(&args.prepay).as_deref(), Some("1 USDC"));
        assert_eq!(text(&args.upto).as_deref(), Some("0.50 USDC"));
        let transfers: Vec<String> = args
            .transfer
            .as_ref()
            .map_or(vec![], |t| t.value.iter().map(LitStr::value).collect());
        assert_eq!(transfers, ["eip3009", "permit2"]);
        assert_eq!(text(&args.krate).as_deref(), Some("my::x402"));
        let int =
            |v: &Option<Keyed<LitInt>>| v.as_ref().map(|k| k.value.base10_digits().to_owned());
        assert_eq!(int(&args.max_timeout_seconds).as_deref(), Some("60"));
        assert_eq!(int(&args.uses).as_deref(), Some("100"));
        assert_eq!(args.paywall.as_ref().map(|k| k.value.value), Some(false));
        assert_eq!(args.seen.len(), KEYS.len());
        assert!(!args.garbled);
        let bazaar = &args.bazaar.as_ref().expect("bazaar(…)").value;
        assert_eq!(text(&bazaar.input).as_deref(), Some("{}"));
        let tags: Vec<String> = bazaar
            .tags
            .iter()
            .flat_map(|t| t.value.tags.iter().map(LitStr::value))
            .collect();
        assert_eq!(tags, ["a", "b"]);
        assert_eq!(
            args.discovery
                .as_ref()
                .map(|d| d.value.to_token_stream().to_string())
                .as_deref(),
            Some("discovery :: weather")
        );
    }

    #[test]
    fn bazaar_reads_every_sub_key() {
        let (args, errors) = parse(quote!(bazaar(
            method = "POST",
            body = "json",
            input = r#"{"city": "Oslo"}"#,
            input_schema = "{}",
            output = "21",
            output_schema = "{}",
            service = "Weather",
            tags = "weather",
            icon = "https://example.com/i.png",
        )));
        assert_eq!(errors, Vec::<String>::new());
        let bazaar = &args.bazaar.as_ref().expect("bazaar(…)").value;
        assert_eq!(bazaar.seen.len(), BAZAAR_KEYS.len());
        let text = |v: &Option<Keyed<LitStr>>| v.as_ref().map(|k| k.value.value());
        assert_eq!(text(&bazaar.method).as_deref(), Some("POST"));
        assert_eq!(text(&bazaar.body).as_deref(), Some("json"));
        assert_eq!(text(&bazaar.input).as_deref(), Some(r#"{"city": "Oslo"}"#));
        assert_eq!(text(&bazaar.output).as_deref(), Some("21"));
        assert_eq!(text(&bazaar.service).as_deref(), Some("Weather"));
        assert_eq!(
            bazaar.tags.as_ref().map(|t| t.value.tags.len()),
            Some(1),
            "a single tag literal is a list of one"
        );
        assert!(bazaar.written(OUTPUT_SCHEMA).is_some());
    }

    #[test]
    fn bazaar_mistakes_are_reported_and_parsing_goes_on() {
        let cases: &[(TokenStream, &str)] = &[
            (
                quote!(bazaar(inptu = "{}")),
                "unknown `bazaar` key `inptu`; the keys are: method, body, input, input_schema, output, output_schema, service, tags, icon (did you mean `input`?)",
            ),
            (
                quote!(bazaar(input = "{}", input = "{}")),
                "`input` is given twice in `bazaar(…)`",
            ),
            (
                quote!(bazaar(tags)),
                "`tags` needs a value: tags = [\"weather\"",
            ),
            (quote!(bazaar(tags = [])), "the tag list is empty"),
            (
                quote!(bazaar(tags = [1])),
                "each tag in the list is a string literal",
            ),
            (
                quote!(bazaar(input = INPUT)),
                "`input` takes a string literal holding JSON",
            ),
            (
                quote!(bazaar = "x"),
                "`bazaar` takes a list of keys in parentheses",
            ),
            (quote!(bazaar()), "`bazaar()` declares nothing"),
            (
                quote!(discovery = "weather"),
                "`discovery` takes the path of a `fn() -> BazaarExtension`",
            ),
        ];
        for (tokens, expected) in cases {
            let (args, errors) = parse(quote!(#tokens, price = "$1"));
            assert_eq!(errors.len(), 1, "{tokens}: {errors:?}");
            assert!(errors[0].contains(expected), "{tokens}: {}", errors[0]);
            assert!(args.price.is_some(), "{tokens}: parsing went on");
        }
    }

    #[test]
    fn a_single_network_and_a_price_function() {
        let (args, errors) = parse(quote!(price = pricing::by_size, network = "eip155:31337"));
        assert!(errors.is_empty(), "{errors:?}");
        let Some(Keyed {
            value: PriceArg::Function(path),
            ..
        }) = &args.price
        else {
            panic!("price is not a function path");
        };
        assert_eq!(path.to_token_stream().to_string(), "pricing :: by_size");
        let names: Vec<String> = args
            .network
            .iter()
            .flat_map(|n| n.value.names.iter().map(LitStr::value))
            .collect();
        assert_eq!(names, ["eip155:31337"]);
    }

    #[test]
    fn unknown_keys_list_the_known_ones_and_suggest() {
        let (args, errors) = parse(quote!(payto = "0x00", price = "$1"));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].starts_with("unknown #[paid] key `payto`"),
            "{}",
            errors[0]
        );
        assert!(errors[0].contains(&KEYS.join(", ")), "{}", errors[0]);
        assert!(
            errors[0].ends_with("(did you mean `pay_to`?)"),
            "{}",
            errors[0]
        );
        // Parsing went on after the unknown key.
        assert!(args.price.is_some());
        let (_, errors) = parse(quote!(zzzzzz = 1));
        assert!(!errors[0].contains("did you mean"), "{}", errors[0]);
        let (_, errors) = parse(quote!(a::price = 1));
        assert!(
            errors[0].starts_with("unknown #[paid] key `a::price`"),
            "{}",
            errors[0]
        );
    }

    #[test]
    fn duplicates_error_and_keep_the_first() {
        let (args, errors) = parse(quote!(price = "$1", price = "$2"));
        assert_eq!(
            errors,
            ["`price` is given twice; keep only one `price = …`"]
        );
        let Some(Keyed {
            value: PriceArg::Literal(lit),
            ..
        }) = &args.price
        else {
            panic!("no price");
        };
        assert_eq!(lit.value(), "$1");
    }

    #[test]
    fn wrong_kinds_say_what_is_expected() {
        let cases: &[(TokenStream, &str)] = &[
            (
                quote!(price = 0.01),
                "a price needs a unit and quotes: price = \"$0.01\"",
            ),
            (
                quote!(price = PRICE_TEXT.trim()),
                "`price` takes a price literal such as \"0.01 USDC\", or the path of a pricing function",
            ),
            (
                quote!(network = base),
                "`network` takes a network literal such as \"base\"",
            ),
            (
                quote!(network = ["base", 1]),
                "each network in the list is a string literal",
            ),
            (quote!(network = []), "the network list is empty"),
            (
                quote!(description = DESCRIPTION),
                "constants and expressions cannot be used here",
            ),
            (
                quote!(settle = 1),
                "`settle` takes a string literal, e.g. settle = \"before\"",
            ),
            (
                quote!(uses = "100"),
                "`uses` takes an integer literal, without quotes: uses = 100",
            ),
            (quote!(uses = -1), "`uses` must be a positive integer"),
            (
                quote!(max_timeout_seconds = 1.5),
                "`max_timeout_seconds` takes an integer literal, e.g. max_timeout_seconds = 60",
            ),
            (
                quote!(access = 3600),
                "`access` takes a duration with a unit, e.g. access = \"3600s\"",
            ),
            (quote!(description = "x"suffix), "unexpected suffix"),
            (
                quote!(paywall = "false"),
                "`paywall` takes a bool literal, without quotes: paywall = false",
            ),
            (
                quote!(paywall = 0),
                "`paywall` takes a bool literal, e.g. paywall = false",
            ),
            (
                quote!(paywall = off),
                "`paywall` takes a bool literal, e.g. paywall = false (macros see tokens",
            ),
        ];
        for (tokens, expected) in cases {
            let (_, errors) = parse(tokens.clone());
            assert_eq!(errors.len(), 1, "{tokens}: {errors:?}");
            assert!(errors[0].contains(expected), "{tokens}: {}", errors[0]);
        }
    }

    #[test]
    fn every_mistake_is_reported_and_parsing_goes_on() {
        let (args, errors) = parse(quote!(
            prise = "$1",
            network = 8453,
            uses = "ten",
            price,
            description = "ok",
        ));
        assert_eq!(errors.len(), 4, "{errors:?}");
        assert!(errors[3].starts_with("`price` needs a value: price = \"0.01 USDC\""));
        assert!(args.description.is_some());
        assert!(args.has(PRICE) && args.has(NETWORK));
        assert!(!args.garbled);
    }

    #[test]
    fn syntax_errors_are_recovered_from() {
        // A missing comma: reported there, and the skipped keys may hide.
        let (args, errors) = parse(quote!(price = "$1" network = "base"));
        assert_eq!(
            errors,
            ["expected `,` after the value of `price` (entries are separated by commas)"]
        );
        assert!(args.garbled);
        // Nothing after `=`.
        let (_, errors) = parse(quote!(price = , network = "base"));
        assert_eq!(
            errors,
            ["`price` needs a value after `=`: price = \"0.01 USDC\""]
        );
        // A literal where a key should be: syn's own message.
        let (args, errors) = parse(quote!("0.01 USDC"));
        assert_eq!(errors.len(), 1);
        assert!(args.garbled);
    }

    #[test]
    fn macro_rules_fragments_are_looked_through() {
        let group = Expr::Group(syn::ExprGroup {
            attrs: vec![],
            group_token: Default::default(),
            expr: Box::new(syn::parse_quote!("0.5 USDC")),
        });
        let mut errors = Errors::new();
        assert!(
            matches!(price(&group, &mut errors), Some(PriceArg::Literal(l)) if l.value() == "0.5 USDC")
        );
        assert!(errors.is_empty());
    }

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("pay_to", "payto"), 1);
        assert_eq!(edit_distance("network", "networks"), 1);
        assert_eq!(edit_distance("price", "price"), 0);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(closest_key("descripton"), Some(DESCRIPTION));
    }
}
