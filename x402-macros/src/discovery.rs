//! `bazaar(…)` and `discovery = …`: Bazaar discovery metadata, checked while compiling.
//!
//! JSON literals are parsed here with `serde_json`, and the declaration they make is built and
//! checked with `x402-protocol`'s own `declare_http` and `validate_spec`; service names, tags
//! and icon URLs go through the validators facilitators apply. Each mistake points at its
//! literal.

use quote::ToTokens;
use serde_json::Value;
use syn::{ExprPath, LitStr};
use x402_protocol::bazaar::{
    self, BODY_METHODS, BodyType, HttpDeclaration, MAX_SERVICE_TAGS, QUERY_METHODS,
};

use crate::args::{
    self, BODY, BazaarArgs, DECLARATION_KEYS, DISCOVERY, INPUT, INPUT_SCHEMA, Keyed, METHOD,
    OUTPUT, OUTPUT_SCHEMA, PaidArgs,
};
use crate::errors::Errors;

/// A route's checked discovery metadata.
pub(crate) struct Discovery {
    /// How the `bazaar` extension is built: `None` when the route only names its service.
    pub(crate) declaration: Option<Declaration>,
    /// `service = "…"`.
    pub(crate) service: Option<String>,
    /// `tags = […]`.
    pub(crate) tags: Vec<String>,
    /// `icon = "…"`.
    pub(crate) icon: Option<String>,
}

/// Where the route's `bazaar` extension comes from.
pub(crate) enum Declaration {
    /// `bazaar(input = …, output = …)`: literals, each already checked.
    Literal(LiteralDeclaration),
    /// `discovery = path`: a `fn() -> BazaarExtension`, type-checked by the compiler.
    Function(ExprPath),
}

/// The literal keys of `bazaar(…)`, as written (JSON texts are known to parse).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LiteralDeclaration {
    pub(crate) method: Option<String>,
    pub(crate) body: Option<String>,
    pub(crate) input: Option<String>,
    pub(crate) input_schema: Option<String>,
    pub(crate) output: Option<String>,
    pub(crate) output_schema: Option<String>,
}

/// Checks `bazaar(…)` and `discovery = …`; `None` when neither is given or something is wrong
/// (the mistakes are in `errors`). `v1_only` is set for `protocol = "v1"` routes, whose 402s
/// carry no extensions.
pub(crate) fn discovery(args: &PaidArgs, v1_only: bool, errors: &mut Errors) -> Option<Discovery> {
    let before = errors.count();
    let bazaar = args.bazaar.as_ref();
    let function = args.discovery.as_ref();
    if bazaar.is_none() && function.is_none() {
        return None;
    }
    if v1_only {
        let at = bazaar
            .map(|b| b.key.to_token_stream())
            .or_else(|| function.map(Keyed::entry))
            .unwrap_or_default();
        errors.spanned(
            at,
            "Bazaar metadata travels in the v2 402 (`extensions.bazaar`), but this route speaks only v1 (`protocol = \"v1\"`)",
        );
    }
    let declaration = match (bazaar, function) {
        (Some(bazaar), Some(function)) => {
            // The call is declared by the function; `bazaar(…)` may still name the service.
            for key in DECLARATION_KEYS {
                if let Some(written) = bazaar.value.written(key) {
                    errors.spanned(
                        written,
                        format!(
                            "`{key}` cannot be given with `{DISCOVERY} = {}`, which builds the whole declaration; keep one of them (`service`, `tags` and `icon` may stay in `bazaar(…)`)",
                            function.value.to_token_stream().to_string().replace(' ', "")
                        ),
                    );
                }
            }
            Some(Declaration::Function(function.value.clone()))
        }
        (None, Some(function)) => Some(Declaration::Function(function.value.clone())),
        (Some(bazaar), None) => {
            literal(&bazaar.value, &bazaar.key, errors).map(Declaration::Literal)
        }
        (None, None) => None,
    };
    let service = bazaar.and_then(|b| service(&b.value, errors));
    let tags = bazaar.map(|b| tags(&b.value, errors)).unwrap_or_default();
    let icon = bazaar.and_then(|b| icon(&b.value, errors));
    if errors.count() > before {
        return None;
    }
    Some(Discovery {
        declaration,
        service,
        tags,
        icon,
    })
}

/// Parses a JSON literal, pointing a syntax error at it.
fn json(arg: &Option<Keyed<LitStr>>, key: &str, errors: &mut Errors) -> Option<(String, Value)> {
    let lit = &arg.as_ref()?.value;
    let text = lit.value();
    match serde_json::from_str::<Value>(&text) {
        Ok(value) => Some((text, value)),
        Err(error) => {
            errors.spanned(
                lit,
                format!(
                    "`{key}` is not valid JSON: {error}; write it as a raw string, e.g. {key} = {}",
                    args::example(key)
                ),
            );
            None
        }
    }
}

/// `input_schema` / `output_schema`: JSON Schema keywords, so an object.
fn schema(arg: &Option<Keyed<LitStr>>, key: &str, errors: &mut Errors) -> Option<String> {
    let (text, value) = json(arg, key, errors)?;
    if !value.is_object() {
        errors.spanned(
            arg.as_ref().map(|a| &a.value),
            format!(
                "`{key}` is JSON Schema keywords, so a JSON object, e.g. {key} = {}",
                args::example(key)
            ),
        );
        return None;
    }
    Some(text)
}

fn literal(bazaar: &BazaarArgs, at: &syn::Path, errors: &mut Errors) -> Option<LiteralDeclaration> {
    let before = errors.count();
    let body = bazaar
        .body
        .as_ref()
        .and_then(|b| body_type(&b.value, errors));
    let method = bazaar
        .method
        .as_ref()
        .and_then(|m| method(&m.value, body.is_some(), errors));
    let input = json(&bazaar.input, INPUT, errors);
    if let Some((_, value)) = &input {
        let lit = bazaar.input.as_ref().map(|i| &i.value);
        match body {
            None if !value.is_object() => errors.spanned(
                lit,
                "without `body`, `input` is the example query parameters, so a JSON object, e.g. input = r#\"{\"city\": \"Oslo\"}\"#; for a call with a body, add body = \"json\"",
            ),
            Some(BodyType::FormData) if !value.is_object() => errors.spanned(
                lit,
                "a `form-data` body is a JSON object of its fields, e.g. input = r#\"{\"name\": \"Oslo\"}\"#",
            ),
            Some(BodyType::Text) if !value.is_string() => errors.spanned(
                lit,
                "a `text` body is a JSON string, e.g. input = r#\"\"Oslo\"\"#",
            ),
            _ => {}
        }
    }
    let input_schema = schema(&bazaar.input_schema, INPUT_SCHEMA, errors);
    let output = json(&bazaar.output, OUTPUT, errors);
    if let (Some((_, Value::Null)), Some(lit)) = (&output, &bazaar.output) {
        errors.spanned(
            &lit.value,
            "`output = \"null\"` declares no output; give an example response, or leave `output` out",
        );
    }
    let output_schema = schema(&bazaar.output_schema, OUTPUT_SCHEMA, errors);
    if let (Some(written), None) = (bazaar.written(OUTPUT_SCHEMA), &bazaar.output) {
        errors.spanned(
            written,
            "`output_schema` describes the example response, so it needs `output = …` as well",
        );
    }
    if errors.count() > before {
        return None;
    }
    let declared = LiteralDeclaration {
        method: method.map(str::to_owned),
        body: body.map(|b| body_name(b).to_owned()),
        input: input.map(|(text, _)| text),
        input_schema,
        output: output.map(|(text, _)| text),
        output_schema,
    };
    // The declaration the runtime will build from these, checked by the spec's rules.
    let extension = bazaar::declare_http(&HttpDeclaration {
        method: declared.method.clone(),
        body_type: body,
        input: parsed(&declared.input),
        input_schema: parsed(&declared.input_schema),
        output_example: parsed(&declared.output),
        output_schema: parsed(&declared.output_schema),
        ..HttpDeclaration::default()
    });
    if let Err(problems) = bazaar::validate_spec(&extension.to_value()) {
        errors.spanned(
            at,
            format!(
                "this Bazaar declaration breaks the spec: {}",
                problems.join("; ")
            ),
        );
        return None;
    }
    Some(declared)
}

fn parsed(text: &Option<String>) -> Option<Value> {
    text.as_deref().and_then(|t| serde_json::from_str(t).ok())
}

fn body_name(body: BodyType) -> &'static str {
    match body {
        BodyType::Json => "json",
        BodyType::FormData => "form-data",
        BodyType::Text => "text",
    }
}

const BODY_TYPES: [&str; 3] = ["json", "form-data", "text"];

fn body_type(lit: &LitStr, errors: &mut Errors) -> Option<BodyType> {
    let text = lit.value();
    match text.as_str() {
        "json" => return Some(BodyType::Json),
        "form-data" => return Some(BodyType::FormData),
        "text" => return Some(BodyType::Text),
        _ => {}
    }
    let mut message = format!("`{BODY}` is \"json\", \"form-data\" or \"text\", not {text:?}");
    if let Some(close) = args::closest(&text.to_ascii_lowercase(), BODY_TYPES) {
        message.push_str(&format!(" (did you mean {close:?}?)"));
    }
    errors.spanned(lit, message);
    None
}

/// `method`: an HTTP method of the kind the call is (a body method with `body`, a query
/// method without).
fn method(lit: &LitStr, with_body: bool, errors: &mut Errors) -> Option<&'static str> {
    let text = lit.value();
    let upper = text.to_ascii_uppercase();
    let Some(known) = QUERY_METHODS
        .iter()
        .chain(&BODY_METHODS)
        .copied()
        .find(|m| *m == upper)
    else {
        errors.spanned(
            lit,
            format!(
                "`{METHOD}` is one of {}, not {text:?}",
                QUERY_METHODS
                    .iter()
                    .chain(&BODY_METHODS)
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
        return None;
    };
    if known != text {
        errors.spanned(
            lit,
            format!("HTTP methods are upper case: did you mean {known:?}?"),
        );
        return None;
    }
    match (with_body, BODY_METHODS.contains(&known)) {
        (true, false) => {
            errors.spanned(
                lit,
                format!(
                    "{known} carries no body, but `body` is given; a call with a body is {}",
                    BODY_METHODS.join(", ")
                ),
            );
            None
        }
        (false, true) => {
            errors.spanned(
                lit,
                format!(
                    "{known} carries its input in a body: add body = \"json\" (or \"form-data\", \"text\")"
                ),
            );
            None
        }
        _ => Some(known),
    }
}

fn service(bazaar: &BazaarArgs, errors: &mut Errors) -> Option<String> {
    let lit = &bazaar.service.as_ref()?.value;
    let text = lit.value();
    if !bazaar::is_valid_service_name(&text) {
        errors.spanned(
            lit,
            format!(
                "`service` must be 1 to 32 printable ASCII characters (facilitators drop other names); {text:?} is not"
            ),
        );
        return None;
    }
    Some(text)
}

fn tags(bazaar: &BazaarArgs, errors: &mut Errors) -> Vec<String> {
    let Some(arg) = &bazaar.tags else {
        return Vec::new();
    };
    let mut tags: Vec<String> = Vec::new();
    for lit in &arg.value.tags {
        let tag = lit.value();
        if !bazaar::is_valid_tag(&tag) {
            errors.spanned(
                lit,
                format!(
                    "a tag must be 1 to 32 printable ASCII characters (facilitators drop other tags); {tag:?} is not"
                ),
            );
        } else if let Some(first) = tags.iter().find(|t| t.eq_ignore_ascii_case(&tag)) {
            errors.spanned(
                lit,
                format!("tag {tag:?} repeats {first:?} (tags are compared without case)"),
            );
        } else {
            tags.push(tag);
        }
    }
    if arg.value.tags.len() > MAX_SERVICE_TAGS {
        errors.spanned(
            &arg.value,
            format!(
                "at most {MAX_SERVICE_TAGS} tags are kept by facilitators; this list has {}",
                arg.value.tags.len()
            ),
        );
    }
    tags
}

fn icon(bazaar: &BazaarArgs, errors: &mut Errors) -> Option<String> {
    let lit = &bazaar.icon.as_ref()?.value;
    let text = lit.value();
    if !bazaar::is_valid_icon_url(&text) {
        errors.spanned(
            lit,
            format!(
                "`icon` must be an absolute http(s) URL of at most 2048 characters whose host is a DNS name (not an IP address or localhost) and without user info; {text:?} is not"
            ),
        );
        return None;
    }
    Some(text)
}

#[cfg(test)]
mod tests {
    use proc_macro2::TokenStream;
    use quote::quote;

    use super::*;

    fn check(tokens: TokenStream) -> (Option<Discovery>, Vec<String>) {
        let mut errors = Errors::new();
        let args = PaidArgs::parse(tokens, &mut errors);
        assert!(errors.is_empty(), "{:?}", errors.messages());
        let v1_only = args
            .protocol
            .as_ref()
            .is_some_and(|p| p.value.value() == "v1");
        let discovery = discovery(&args, v1_only, &mut errors);
        (discovery, errors.messages())
    }

    fn error_of(tokens: TokenStream) -> String {
        let (discovery, errors) = check(tokens.clone());
        assert!(discovery.is_none(), "{tokens}: accepted");
        assert_eq!(errors.len(), 1, "{tokens}: {errors:?}");
        errors.into_iter().next().unwrap_or_default()
    }

    #[test]
    fn literals_are_carried_through_as_written() {
        let (discovery, errors) = check(quote!(bazaar(
            method = "POST",
            body = "json",
            input = r#"{"city": "Oslo"}"#,
            input_schema = r#"{"properties": {"city": {"type": "string"}}}"#,
            output = r#"{"temperature": 21}"#,
            output_schema = r#"{"properties": {"temperature": {"type": "number"}}}"#,
            service = "Weather",
            tags = ["weather", "forecast"],
            icon = "https://example.com/icon.png",
        )));
        assert_eq!(errors, Vec::<String>::new());
        let discovery = discovery.expect("valid");
        let Some(Declaration::Literal(declared)) = &discovery.declaration else {
            panic!("not a literal declaration");
        };
        assert_eq!(
            *declared,
            LiteralDeclaration {
                method: Some("POST".into()),
                body: Some("json".into()),
                input: Some(r#"{"city": "Oslo"}"#.into()),
                input_schema: Some(r#"{"properties": {"city": {"type": "string"}}}"#.into()),
                output: Some(r#"{"temperature": 21}"#.into()),
                output_schema: Some(
                    r#"{"properties": {"temperature": {"type": "number"}}}"#.into()
                ),
            }
        );
        assert_eq!(discovery.service.as_deref(), Some("Weather"));
        assert_eq!(discovery.tags, ["weather", "forecast"]);
        assert_eq!(
            discovery.icon.as_deref(),
            Some("https://example.com/icon.png")
        );
    }

    #[test]
    fn nothing_declared_is_none_and_a_bare_bazaar_is_a_get_declaration() {
        let (discovery, errors) = check(quote!(price = "$1"));
        assert!(discovery.is_none() && errors.is_empty());
        let (discovery, errors) = check(quote!(bazaar(tags = "weather")));
        assert!(errors.is_empty(), "{errors:?}");
        let discovery = discovery.expect("valid");
        assert!(matches!(
            discovery.declaration,
            Some(Declaration::Literal(LiteralDeclaration { input: None, .. }))
        ));
    }

    #[test]
    fn a_function_declares_the_call_and_bazaar_may_name_the_service() {
        let (discovery, errors) = check(quote!(
            discovery = declarations::weather,
            bazaar(service = "Weather", tags = ["weather"])
        ));
        assert!(errors.is_empty(), "{errors:?}");
        let discovery = discovery.expect("valid");
        let Some(Declaration::Function(path)) = &discovery.declaration else {
            panic!("not a function");
        };
        assert_eq!(
            path.to_token_stream().to_string(),
            "declarations :: weather"
        );
        assert_eq!(discovery.service.as_deref(), Some("Weather"));
        let message = error_of(quote!(discovery = d::weather, bazaar(input = "{}")));
        assert!(
            message.starts_with(
                "`input` cannot be given with `discovery = d::weather`, which builds the whole declaration"
            ),
            "{message}"
        );
    }

    #[test]
    fn json_literals_are_parsed() {
        let message = error_of(quote!(bazaar(input = r#"{"city": Oslo}"#)));
        assert!(
            message.starts_with("`input` is not valid JSON: expected value at line 1 column 10"),
            "{message}"
        );
        let message = error_of(quote!(bazaar(output = "{")));
        assert!(
            message.starts_with("`output` is not valid JSON: EOF while parsing an object"),
            "{message}"
        );
        let message = error_of(quote!(bazaar(output = "null")));
        assert!(message.contains("declares no output"), "{message}");
    }

    #[test]
    fn shapes_follow_the_call() {
        let cases: &[(TokenStream, &str)] = &[
            (
                quote!(bazaar(input = "[1]")),
                "without `body`, `input` is the example query parameters, so a JSON object",
            ),
            (
                quote!(bazaar(body = "form-data", input = "\"x\"")),
                "a `form-data` body is a JSON object",
            ),
            (
                quote!(bazaar(body = "text", input = "{}")),
                "a `text` body is a JSON string",
            ),
            (
                quote!(bazaar(input_schema = "[]")),
                "`input_schema` is JSON Schema keywords, so a JSON object",
            ),
            (
                quote!(bazaar(output_schema = "{}")),
                "`output_schema` describes the example response, so it needs `output = …`",
            ),
            (
                quote!(bazaar(body = "jsn")),
                "`body` is \"json\", \"form-data\" or \"text\", not \"jsn\" (did you mean \"json\"?)",
            ),
            (
                quote!(bazaar(method = "FETCH")),
                "`method` is one of GET, HEAD, DELETE, POST, PUT, PATCH, not \"FETCH\"",
            ),
            (
                quote!(bazaar(method = "get")),
                "HTTP methods are upper case: did you mean \"GET\"?",
            ),
            (
                quote!(bazaar(method = "POST")),
                "POST carries its input in a body: add body = \"json\"",
            ),
            (
                quote!(bazaar(method = "GET", body = "json")),
                "GET carries no body, but `body` is given",
            ),
        ];
        for (tokens, expected) in cases {
            let message = error_of(tokens.clone());
            assert!(message.starts_with(expected), "{tokens}: {message}");
        }
    }

    #[test]
    fn service_metadata_uses_the_facilitators_validators() {
        let cases: &[(TokenStream, &str)] = &[
            (
                quote!(bazaar(service = "")),
                "`service` must be 1 to 32 printable ASCII characters",
            ),
            (
                quote!(bazaar(service = "Wetterdienst für alle")),
                "`service` must be 1 to 32 printable ASCII characters",
            ),
            (
                quote!(bazaar(tags = ["weather", "x\ty"])),
                "a tag must be 1 to 32 printable ASCII characters",
            ),
            (
                quote!(bazaar(tags = ["Weather", "weather"])),
                "tag \"weather\" repeats \"Weather\"",
            ),
            (
                quote!(bazaar(tags = ["a", "b", "c", "d", "e", "f"])),
                "at most 5 tags are kept by facilitators; this list has 6",
            ),
            (
                quote!(bazaar(icon = "http://127.0.0.1/icon.png")),
                "`icon` must be an absolute http(s) URL",
            ),
        ];
        for (tokens, expected) in cases {
            let message = error_of(tokens.clone());
            assert!(message.starts_with(expected), "{tokens}: {message}");
        }
        let longest = "x".repeat(32);
        let (discovery, errors) = check(quote!(bazaar(service = #longest)));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(discovery.and_then(|d| d.service), Some(longest));
    }

    #[test]
    fn v1_only_routes_cannot_be_discoverable() {
        let message = error_of(quote!(protocol = "v1", bazaar(tags = "weather")));
        assert!(
            message.starts_with("Bazaar metadata travels in the v2 402"),
            "{message}"
        );
    }
}
