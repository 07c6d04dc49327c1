//! The `bazaar` extension: what a paid resource takes and returns, so that facilitators can
//! catalogue it and agents can find it (`GET /discovery/resources`, `/discovery/search`).
//!
//! A server declares `PaymentRequired.extensions.bazaar` = [`BazaarExtension`]:
//! `{info: {input, output?}, schema, routeTemplate?}`, where `info.input` is one of
//!
//! - an HTTP query call (`GET`/`HEAD`/`DELETE`, `queryParams`, `pathParams`, `headers`),
//! - an HTTP body call (`POST`/`PUT`/`PATCH`, `bodyType` `json`/`form-data`/`text`, `body`),
//! - an MCP tool (`toolName`, `inputSchema`, `description`, `transport`, `example`),
//!
//! and `schema` is the JSON Schema of `info`. [`declare_http`] and [`declare_mcp`] build both
//! the way the reference server does; [`BazaarExtension::for_request`] then narrows the method
//! to the request's and fills `routeTemplate`/`pathParams` for dynamic routes.
//!
//! Facilitators read it back from a payment with [`extract`], which applies the spec's
//! validation: an unsafe `routeTemplate` is ignored ([`is_valid_route_template`]), service
//! metadata on `resource` (`serviceName`, `tags`, `iconUrl`) is kept only where valid
//! ([`ServiceMetadata::sanitize`]), and the declaration must obey the spec's rules
//! ([`validate_spec`]). The catalogue entry type is [`DiscoveredResource`].
//!
//! Not done here: validating `info` against an arbitrary `schema` (the reference facilitator
//! runs a JSON Schema engine); the typed parse and [`validate_spec`] stand in for it.
//!
//! ```
//! use serde_json::json;
//! use x402_protocol::bazaar::{self, BodyType, HttpDeclaration};
//!
//! let declared = bazaar::declare_http(&HttpDeclaration {
//!     body_type: Some(BodyType::Json),
//!     input: Some(json!({"city": "Oslo"})),
//!     output_example: Some(json!({"temperature": 21})),
//!     ..Default::default()
//! });
//! // At 402 time: the request's method and, for `/weather/:city`, the route template.
//! let ext = declared.for_request("POST", Some("/weather/:city"), "/weather/oslo");
//! assert_eq!(ext.route_template.as_deref(), Some("/weather/:city"));
//! let json = serde_json::to_value(&ext)?;
//! assert_eq!(json["info"]["input"]["method"], "POST");
//! assert_eq!(json["info"]["input"]["pathParams"]["city"], "oslo");
//! # Ok::<(), serde_json::Error>(())
//! ```

use std::collections::BTreeMap;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value, json};

use crate::siwx::Origin;

/// The extension's key in `extensions`.
pub const EXTENSION_KEY: &str = "bazaar";

const SCHEMA_DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";

/// HTTP methods that carry their input in the query string.
pub const QUERY_METHODS: [&str; 3] = ["GET", "HEAD", "DELETE"];

/// HTTP methods that carry their input in a body.
pub const BODY_METHODS: [&str; 3] = ["POST", "PUT", "PATCH"];

/// How an HTTP body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BodyType {
    /// `application/json`.
    #[serde(rename = "json")]
    Json,
    /// `multipart/form-data`.
    #[serde(rename = "form-data")]
    FormData,
    /// Plain text.
    #[serde(rename = "text")]
    Text,
}

/// How an MCP server is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum McpTransport {
    /// Streamable HTTP (the default).
    #[serde(rename = "streamable-http")]
    StreamableHttp,
    /// Server-sent events.
    #[serde(rename = "sse")]
    Sse,
}

/// `info.input`: how to call the resource.
#[derive(Debug, Clone, PartialEq)]
pub enum DiscoveryInput {
    /// An HTTP call with its input in the query string.
    Query {
        /// `GET`, `HEAD` or `DELETE` normally (any method is read); absent in a declaration
        /// until a request narrows it.
        method: Option<String>,
        /// Example or description of the query parameters.
        query_params: Option<Value>,
        /// Values of the route's path parameters (dynamic routes).
        path_params: Option<Value>,
        /// Headers the call needs.
        headers: Option<BTreeMap<String, String>>,
    },
    /// An HTTP call with a body.
    Body {
        /// `POST`, `PUT` or `PATCH`; absent in a declaration until a request narrows it.
        method: Option<String>,
        /// How the body is encoded.
        body_type: BodyType,
        /// Example or description of the body.
        body: Value,
        /// Query parameters, if any.
        query_params: Option<Value>,
        /// Values of the route's path parameters (dynamic routes).
        path_params: Option<Value>,
        /// Headers the call needs.
        headers: Option<BTreeMap<String, String>>,
    },
    /// An MCP tool.
    Mcp {
        /// The tool's name (with the resource URL, the catalogue key).
        tool_name: String,
        /// The tool's input JSON Schema.
        input_schema: Value,
        /// What the tool does.
        description: Option<String>,
        /// How the MCP server is reached (default streamable HTTP).
        transport: Option<McpTransport>,
        /// Example arguments.
        example: Option<Value>,
    },
}

/// The wire form of `info.input`, before it is sorted into a [`DiscoveryInput`] variant.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawInput {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    body_type: Option<BodyType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    body: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    query_params: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    path_params: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    headers: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tool_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    transport: Option<McpTransport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    input_schema: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    example: Option<Value>,
}

impl Serialize for DiscoveryInput {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let empty = || RawInput {
            kind: String::new(),
            method: None,
            body_type: None,
            body: None,
            query_params: None,
            path_params: None,
            headers: None,
            tool_name: None,
            description: None,
            transport: None,
            input_schema: None,
            example: None,
        };
        let raw = match self.clone() {
            DiscoveryInput::Query {
                method,
                query_params,
                path_params,
                headers,
            } => RawInput {
                kind: "http".into(),
                method,
                query_params,
                path_params,
                headers,
                ..empty()
            },
            DiscoveryInput::Body {
                method,
                body_type,
                body,
                query_params,
                path_params,
                headers,
            } => RawInput {
                kind: "http".into(),
                method,
                body_type: Some(body_type),
                body: Some(body),
                query_params,
                path_params,
                headers,
                ..empty()
            },
            DiscoveryInput::Mcp {
                tool_name,
                input_schema,
                description,
                transport,
                example,
            } => RawInput {
                kind: "mcp".into(),
                tool_name: Some(tool_name),
                description,
                transport,
                input_schema: Some(input_schema),
                example,
                ..empty()
            },
        };
        raw.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for DiscoveryInput {
    /// Accepts what the spec allows and nothing else: `type` `http` or `mcp`; an HTTP method,
    /// when present, among the six (and a body method when `bodyType` makes it a body
    /// call); an MCP tool with a non-empty `toolName` and an object `inputSchema`.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = RawInput::deserialize(deserializer)?;
        let check_method = |allowed: &[&str; 3]| match &raw.method {
            Some(m) if !allowed.contains(&m.as_str()) => Err(D::Error::custom(format!(
                "info.input.method {m:?} must be one of {}",
                allowed.join(", ")
            ))),
            _ => Ok(()),
        };
        match raw.kind.as_str() {
            "http" => match raw.body_type {
                Some(body_type) => {
                    check_method(&BODY_METHODS)?;
                    Ok(DiscoveryInput::Body {
                        method: raw.method,
                        body_type,
                        body: raw.body.unwrap_or_else(|| json!({})),
                        query_params: raw.query_params,
                        path_params: raw.path_params,
                        headers: raw.headers,
                    })
                }
                None => {
                    // Any HTTP method: the reference accepts a query-style declaration on a
                    // route it narrowed to, say, POST.
                    if let Some(m) = &raw.method
                        && !QUERY_METHODS.contains(&m.as_str())
                        && !BODY_METHODS.contains(&m.as_str())
                    {
                        return Err(D::Error::custom(format!(
                            "info.input.method {m:?} is not an HTTP method"
                        )));
                    }
                    Ok(DiscoveryInput::Query {
                        method: raw.method,
                        query_params: raw.query_params,
                        path_params: raw.path_params,
                        headers: raw.headers,
                    })
                }
            },
            "mcp" => {
                let tool_name = raw
                    .tool_name
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| D::Error::custom("info.input.toolName is required for MCP"))?;
                let input_schema = raw.input_schema.filter(Value::is_object).ok_or_else(|| {
                    D::Error::custom("info.input.inputSchema must be an object for MCP")
                })?;
                Ok(DiscoveryInput::Mcp {
                    tool_name,
                    input_schema,
                    description: raw.description,
                    transport: raw.transport,
                    example: raw.example,
                })
            }
            other => Err(D::Error::custom(format!(
                "info.input.type must be \"http\" or \"mcp\", not {other:?}"
            ))),
        }
    }
}

impl DiscoveryInput {
    /// `http` or `mcp`: the catalogue's `type`.
    pub fn kind(&self) -> &'static str {
        match self {
            DiscoveryInput::Mcp { .. } => "mcp",
            _ => "http",
        }
    }

    /// The HTTP method, when known.
    pub fn method(&self) -> Option<&str> {
        match self {
            DiscoveryInput::Query { method, .. } | DiscoveryInput::Body { method, .. } => {
                method.as_deref()
            }
            DiscoveryInput::Mcp { .. } => None,
        }
    }

    /// The MCP tool name.
    pub fn tool_name(&self) -> Option<&str> {
        match self {
            DiscoveryInput::Mcp { tool_name, .. } => Some(tool_name),
            _ => None,
        }
    }
}

/// `info.output`: what the resource returns.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct DiscoveryOutput {
    /// The output's kind, e.g. `json`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// A format hint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// An example response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub example: Option<Value>,
}

/// `info` of the extension.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiscoveryInfo {
    /// How to call it.
    pub input: DiscoveryInput,
    /// What it returns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<DiscoveryOutput>,
}

/// `extensions.bazaar`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BazaarExtension {
    /// What the resource takes and returns.
    pub info: DiscoveryInfo,
    /// The JSON Schema of `info`.
    pub schema: Value,
    /// The route with `:param` placeholders, for dynamic routes (`/weather/:city`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_template: Option<String>,
}

/// A server's description of an HTTP route, for [`declare_http`] (the reference
/// `declareDiscoveryExtension` configuration).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HttpDeclaration {
    /// The method, when fixed; otherwise [`BazaarExtension::for_request`] fills it.
    pub method: Option<String>,
    /// A body call when set; a query call otherwise.
    pub body_type: Option<BodyType>,
    /// Example query parameters (query call) or body (body call).
    pub input: Option<Value>,
    /// JSON Schema keywords for the input (`properties`, `required`, …).
    pub input_schema: Option<Value>,
    /// Example path parameters.
    pub path_params: Option<Value>,
    /// JSON Schema keywords for the path parameters.
    pub path_params_schema: Option<Value>,
    /// An example response; the declaration gets `output` only with one.
    pub output_example: Option<Value>,
    /// JSON Schema keywords for the example response.
    pub output_schema: Option<Value>,
}

/// A server's description of an MCP tool, for [`declare_mcp`].
#[derive(Debug, Clone, PartialEq)]
pub struct McpDeclaration {
    /// The tool's name.
    pub tool_name: String,
    /// The tool's input JSON Schema.
    pub input_schema: Value,
    /// What the tool does.
    pub description: Option<String>,
    /// How the MCP server is reached.
    pub transport: Option<McpTransport>,
    /// Example arguments.
    pub example: Option<Value>,
    /// An example result.
    pub output_example: Option<Value>,
    /// JSON Schema keywords for the example result.
    pub output_schema: Option<Value>,
}

fn merge_object(base: Value, extra: Option<&Value>) -> Value {
    let (Value::Object(mut base), Some(Value::Object(extra))) = (base.clone(), extra) else {
        return base;
    };
    for (k, v) in extra {
        base.insert(k.clone(), v.clone());
    }
    Value::Object(base)
}

fn output_parts(
    example: Option<&Value>,
    schema: Option<&Value>,
) -> (Option<DiscoveryOutput>, Option<Value>) {
    let Some(example) = example.filter(|e| !e.is_null()) else {
        return (None, None);
    };
    let output = DiscoveryOutput {
        kind: Some("json".into()),
        format: None,
        example: Some(example.clone()),
    };
    let schema = json!({
        "type": "object",
        "properties": {
            "type": {"type": "string"},
            "example": merge_object(json!({"type": "object"}), schema),
        },
        "required": ["type"],
    });
    (Some(output), Some(schema))
}

fn wrap_schema(input: Value, output: Option<Value>) -> Value {
    let mut properties = Map::new();
    properties.insert("input".into(), input);
    if let Some(output) = output {
        properties.insert("output".into(), output);
    }
    json!({
        "$schema": SCHEMA_DIALECT,
        "type": "object",
        "properties": properties,
        "required": ["input"],
    })
}

/// The declaration of an HTTP route, with the schema the reference server would give it.
pub fn declare_http(d: &HttpDeclaration) -> BazaarExtension {
    let input_example = d.input.clone().unwrap_or_else(|| json!({}));
    let input_schema = d
        .input_schema
        .clone()
        .unwrap_or_else(|| json!({"properties": {}}));
    let (output, output_schema) = output_parts(d.output_example.as_ref(), d.output_schema.as_ref());
    let mut props = Map::new();
    props.insert("type".into(), json!({"type": "string", "const": "http"}));
    let (input, required) = match d.body_type {
        Some(body_type) => {
            props.insert(
                "method".into(),
                json!({"type": "string", "enum": BODY_METHODS}),
            );
            props.insert(
                "bodyType".into(),
                json!({"type": "string", "enum": ["json", "form-data", "text"]}),
            );
            props.insert("body".into(), input_schema);
            (
                DiscoveryInput::Body {
                    method: d.method.clone(),
                    body_type,
                    body: input_example,
                    query_params: None,
                    path_params: d.path_params.clone(),
                    headers: None,
                },
                json!(["type", "method", "bodyType", "body"]),
            )
        }
        None => {
            props.insert(
                "method".into(),
                json!({"type": "string", "enum": QUERY_METHODS}),
            );
            props.insert(
                "queryParams".into(),
                merge_object(json!({"type": "object"}), Some(&input_schema)),
            );
            (
                DiscoveryInput::Query {
                    method: d.method.clone(),
                    query_params: Some(input_example),
                    path_params: d.path_params.clone(),
                    headers: None,
                },
                json!(["type", "method"]),
            )
        }
    };
    if let Some(schema) = &d.path_params_schema {
        props.insert(
            "pathParams".into(),
            merge_object(json!({"type": "object"}), Some(schema)),
        );
    }
    let input_schema = json!({
        "type": "object",
        "properties": props,
        "required": required,
        "additionalProperties": false,
    });
    BazaarExtension {
        info: DiscoveryInfo { input, output },
        schema: wrap_schema(input_schema, output_schema),
        route_template: None,
    }
}

/// The declaration of an MCP tool, with the schema the reference server would give it.
pub fn declare_mcp(d: &McpDeclaration) -> BazaarExtension {
    let (output, output_schema) = output_parts(d.output_example.as_ref(), d.output_schema.as_ref());
    let mut props = Map::new();
    props.insert("type".into(), json!({"type": "string", "const": "mcp"}));
    props.insert("toolName".into(), json!({"type": "string"}));
    if d.description.is_some() {
        props.insert("description".into(), json!({"type": "string"}));
    }
    if let Some(transport) = d.transport {
        props.insert(
            "transport".into(),
            json!({"type": "string", "enum": [transport]}),
        );
    }
    props.insert("inputSchema".into(), json!({"type": "object"}));
    if d.example.is_some() {
        props.insert("example".into(), json!({"type": "object"}));
    }
    let input_schema = json!({
        "type": "object",
        "properties": props,
        "required": ["type", "toolName", "inputSchema"],
        "additionalProperties": false,
    });
    BazaarExtension {
        info: DiscoveryInfo {
            input: DiscoveryInput::Mcp {
                tool_name: d.tool_name.clone(),
                input_schema: d.input_schema.clone(),
                description: d.description.clone(),
                transport: d.transport,
                example: d.example.clone(),
            },
            output,
        },
        schema: wrap_schema(input_schema, output_schema),
        route_template: None,
    }
}

impl BazaarExtension {
    /// The declaration as sent in one 402: the HTTP method narrowed to the request's (in
    /// `info` and in the schema), and for a dynamic route (`route_pattern` with `:name`
    /// segments, `*` wildcards becoming `:var1`, `:var2`, …) the `routeTemplate` and the
    /// request's `pathParams`. MCP declarations are returned unchanged.
    pub fn for_request(&self, method: &str, route_pattern: Option<&str>, path: &str) -> Self {
        let mut ext = self.clone();
        let method = method.to_ascii_uppercase();
        match &mut ext.info.input {
            DiscoveryInput::Query { method: m, .. } | DiscoveryInput::Body { method: m, .. } => {
                *m = Some(method.clone());
            }
            DiscoveryInput::Mcp { .. } => return ext,
        }
        if let Some(input) = ext.schema.pointer_mut("/properties/input") {
            if let Some(props) = input.get_mut("properties").and_then(Value::as_object_mut) {
                props.insert("method".into(), json!({"type": "string", "enum": [method]}));
            }
            if let Some(required) = input.get_mut("required").and_then(Value::as_array_mut)
                && !required.iter().any(|r| r == "method")
            {
                required.push(json!("method"));
            }
        }
        let Some(pattern) = route_pattern else {
            return ext;
        };
        let segments: Vec<&str> = pattern.split('/').filter(|s| !s.is_empty()).collect();
        if !segments.is_empty() && segments.iter().all(|s| *s == "*") {
            return ext;
        }
        let mut wildcard = 0;
        let template: Vec<String> = pattern
            .split('/')
            .map(|segment| {
                if segment == "*" {
                    wildcard += 1;
                    format!(":var{wildcard}")
                } else if let Some(name) =
                    segment.strip_prefix('{').and_then(|s| s.strip_suffix('}'))
                {
                    // axum / actix `{name}` segments.
                    format!(":{name}")
                } else if let Some(name) =
                    segment.strip_prefix('<').and_then(|s| s.strip_suffix('>'))
                {
                    // Rocket `<name>` segments.
                    format!(":{}", name.trim_end_matches(".."))
                } else {
                    segment.to_owned()
                }
            })
            .collect();
        let template = template.join("/");
        if !template.split('/').any(|s| s.starts_with(':')) {
            return ext;
        }
        let mut params = Map::new();
        let path = path.split(['?', '#']).next().unwrap_or("");
        let (template_parts, path_parts): (Vec<&str>, Vec<&str>) =
            (template.split('/').collect(), path.split('/').collect());
        if template_parts.len() == path_parts.len() {
            for (t, p) in template_parts.iter().zip(&path_parts) {
                if let Some(name) = t.strip_prefix(':') {
                    params.insert(name.to_owned(), Value::String((*p).to_owned()));
                } else if t != p {
                    params.clear();
                    break;
                }
            }
        }
        ext.route_template = Some(template);
        match &mut ext.info.input {
            DiscoveryInput::Query { path_params, .. }
            | DiscoveryInput::Body { path_params, .. } => {
                *path_params = Some(Value::Object(params));
            }
            DiscoveryInput::Mcp { .. } => {}
        }
        if let Some(props) = ext
            .schema
            .pointer_mut("/properties/input/properties")
            .and_then(Value::as_object_mut)
        {
            props
                .entry("pathParams")
                .or_insert_with(|| json!({"type": "object"}));
        }
        ext
    }

    /// The extension as the JSON value to put under `extensions.bazaar`.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// Whether a client-supplied `routeTemplate` is safe to catalogue under: non-empty, starts with
/// `/`, only `[A-Za-z0-9_/:.\-~%]`, and — after percent-decoding until stable (at most five
/// passes) — no `..` and no `://`. Anything else is ignored (the concrete path is used).
pub fn is_valid_route_template(value: &str) -> bool {
    let safe = |b: u8| b.is_ascii_alphanumeric() || b"_/:.-~%".contains(&b);
    if value.len() < 2 || !value.starts_with('/') || !value.bytes().all(safe) {
        return false;
    }
    let mut decoded = value.to_owned();
    for _ in 0..5 {
        let Some(next) = percent_decode(&decoded) else {
            return false;
        };
        if next == decoded {
            return !decoded.contains("..") && !decoded.contains("://");
        }
        decoded = next;
    }
    false
}

/// `decodeURIComponent`: `None` for a malformed escape or bytes that are not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

const MAX_SERVICE_NAME: usize = 32;
const MAX_TAG: usize = 32;
const MAX_TAGS: usize = 5;
const MAX_ICON_URL: usize = 2048;

fn printable_ascii(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| (0x20..=0x7e).contains(&b))
}

/// Whether `resource.serviceName` is valid: 1–32 printable ASCII characters.
pub fn is_valid_service_name(value: &str) -> bool {
    value.len() <= MAX_SERVICE_NAME && printable_ascii(value)
}

/// Whether one entry of `resource.tags` is valid: 1–32 printable ASCII characters.
pub fn is_valid_tag(value: &str) -> bool {
    value.len() <= MAX_TAG && printable_ascii(value)
}

/// At most this many `resource.tags` are kept.
pub const MAX_SERVICE_TAGS: usize = MAX_TAGS;

/// `resource.tags` with invalid entries dropped (not 1–32 printable ASCII characters, or a
/// case-insensitive duplicate), cut to the first five; `None` when none survive.
pub fn sanitize_tags(value: &Value) -> Option<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for tag in value.as_array()?.iter().filter_map(Value::as_str) {
        if !is_valid_tag(tag) {
            continue;
        }
        if out.iter().any(|t| t.eq_ignore_ascii_case(tag)) {
            continue;
        }
        out.push(tag.to_owned());
        if out.len() == MAX_TAGS {
            break;
        }
    }
    (!out.is_empty()).then_some(out)
}

/// Whether `resource.iconUrl` is safe to show: at most 2048 characters without control
/// characters, an absolute `http(s)` URL without user-info whose host is a DNS name — not an
/// IP literal (bracketed IPv6, or any host whose last label is a number: `127.0.0.1`,
/// `127.1`, `2130706433`, `0x7f000001`) and not a loopback name.
///
/// Stricter than the reference in one way: hosts that are not plain ASCII (IDNs) are refused
/// rather than normalised.
pub fn is_valid_icon_url(value: &str) -> bool {
    if value.is_empty() || value.len() > MAX_ICON_URL || value.chars().any(char::is_control) {
        return false;
    }
    let Some(origin) = Origin::parse(value) else {
        return false;
    };
    let host = origin.host();
    let Some(host) = percent_decode(host) else {
        return false;
    };
    let host = host.to_ascii_lowercase();
    // A host whose last label is a number is an IPv4 address to URL parsers ("127.1",
    // "2130706433", "0x7f000001") or invalid.
    let last = host.trim_end_matches('.').rsplit('.').next().unwrap_or("");
    let numeric = !last.is_empty()
        && (last.bytes().all(|b| b.is_ascii_digit())
            || last
                .strip_prefix("0x")
                .is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit())));
    let loopback = matches!(
        host.as_str(),
        "localhost" | "localhost.localdomain" | "ip6-localhost" | "ip6-loopback"
    );
    !(host.is_empty() || host.starts_with('[') || numeric || loopback)
}

/// The optional service metadata of a `resource` object (June 2026 spec).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceMetadata {
    /// The service's name, ≤ 32 printable ASCII characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    /// Up to five topical tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// An absolute `http(s)` icon URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon_url: Option<String>,
}

impl ServiceMetadata {
    /// The fields of a `resource` object that pass validation; the rest are dropped silently,
    /// as the spec asks.
    pub fn sanitize(resource: &Value) -> Self {
        ServiceMetadata {
            service_name: resource
                .get("serviceName")
                .and_then(Value::as_str)
                .filter(|s| is_valid_service_name(s))
                .map(str::to_owned),
            tags: resource.get("tags").and_then(sanitize_tags),
            icon_url: resource
                .get("iconUrl")
                .and_then(Value::as_str)
                .filter(|s| is_valid_icon_url(s))
                .map(str::to_owned),
        }
    }

    /// Server side: writes the valid fields into a 402's `resource` object.
    pub fn apply_to(&self, resource: &mut Value) {
        let clean = ServiceMetadata::sanitize(&serde_json::to_value(self).unwrap_or(Value::Null));
        if let (Value::Object(resource), Value::Object(fields)) =
            (resource, serde_json::to_value(clean).unwrap_or(Value::Null))
        {
            resource.extend(fields);
        }
    }
}

/// The spec's rules for a declaration, checked on its JSON (what a facilitator receives):
/// an `info.input` object of `type` `http` or `mcp`; HTTP methods among the six, `bodyType`
/// among the three and only with a body method; MCP `toolName` non-empty, `inputSchema` an
/// object, `transport` `streamable-http` or `sse`. Returns every problem found.
pub fn validate_spec(extension: &Value) -> Result<(), Vec<String>> {
    let Some(input) = extension.pointer("/info/input").filter(|i| i.is_object()) else {
        return Err(vec!["info.input is missing or not an object".into()]);
    };
    let mut errors = Vec::new();
    match input.get("type").and_then(Value::as_str) {
        Some("http") => {
            let method = input.get("method");
            if let Some(m) = method
                && !m
                    .as_str()
                    .is_some_and(|m| QUERY_METHODS.contains(&m) || BODY_METHODS.contains(&m))
            {
                errors.push(format!("info.input.method {m} is not an HTTP method"));
            }
            if let Some(body_type) = input.get("bodyType") {
                if serde_json::from_value::<BodyType>(body_type.clone()).is_err() {
                    errors.push(format!(
                        "info.input.bodyType {body_type} is not json, form-data or text"
                    ));
                }
                if let Some(m) = method.and_then(Value::as_str)
                    && !BODY_METHODS.contains(&m)
                {
                    errors.push(format!(
                        "info.input.bodyType is set but {m} is not a body method"
                    ));
                }
            }
        }
        Some("mcp") => {
            if input
                .get("toolName")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                errors.push("info.input.toolName must be a non-empty string".into());
            }
            if !input.get("inputSchema").is_some_and(Value::is_object) {
                errors.push("info.input.inputSchema must be an object".into());
            }
            if let Some(t) = input.get("transport")
                && serde_json::from_value::<McpTransport>(t.clone()).is_err()
            {
                errors.push(format!(
                    "info.input.transport {t} is not streamable-http or sse"
                ));
            }
        }
        other => errors.push(format!(
            "info.input.type must be \"http\" or \"mcp\", not {}",
            other.map_or_else(|| "missing".to_owned(), |t| format!("{t:?}"))
        )),
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// What a facilitator learns about a resource from one payment carrying the extension.
#[derive(Debug, Clone, PartialEq)]
pub struct Discovered {
    /// The catalogue URL: origin + `routeTemplate` when valid, else origin + path (no query).
    pub resource: String,
    /// `http` or `mcp`.
    pub kind: &'static str,
    /// The `x402Version` of the payment.
    pub x402_version: u64,
    /// The declaration's `info`.
    pub info: DiscoveryInfo,
    /// The valid `routeTemplate`, if any.
    pub route_template: Option<String>,
    /// `resource.description`.
    pub description: Option<String>,
    /// `resource.mimeType`.
    pub mime_type: Option<String>,
    /// Valid service metadata from `resource`.
    pub metadata: ServiceMetadata,
    /// The payment's `extensions`, echoed into the catalogue.
    pub extensions: Value,
}

/// Why a payment's declaration was not catalogued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExtractError {
    /// The payment carries no `extensions.bazaar`.
    #[error("the payment has no bazaar extension")]
    Absent,
    /// Not an x402 v2 payment (v1 has no extensions).
    #[error("only x402 v2 payments carry extensions")]
    Version,
    /// `resource.url` is missing or not an absolute URL.
    #[error("the payment's resource URL is missing or not absolute: {0:?}")]
    ResourceUrl(String),
    /// The declaration breaks the spec's rules.
    #[error("invalid bazaar declaration: {}", .0.join("; "))]
    Invalid(Vec<String>),
}

/// Reads the bazaar declaration of a v2 payment (the JSON of a `PaymentPayload`, whose
/// `extensions` echo the 402's), as the reference facilitator's `extractDiscoveryInfo` does.
pub fn extract(payment_payload: &Value) -> Result<Discovered, ExtractError> {
    let version = payment_payload.get("x402Version").and_then(Value::as_u64);
    if version != Some(2) {
        return Err(ExtractError::Version);
    }
    let extensions = payment_payload
        .get("extensions")
        .cloned()
        .unwrap_or(Value::Null);
    let raw = extensions.get(EXTENSION_KEY).ok_or(ExtractError::Absent)?;
    validate_spec(raw).map_err(ExtractError::Invalid)?;
    let info: DiscoveryInfo = serde_json::from_value(raw.get("info").cloned().unwrap_or_default())
        .map_err(|e| ExtractError::Invalid(vec![e.to_string()]))?;
    let route_template = raw
        .get("routeTemplate")
        .and_then(Value::as_str)
        .filter(|t| is_valid_route_template(t))
        .map(str::to_owned);
    let resource = payment_payload.get("resource").cloned().unwrap_or_default();
    let url = resource.get("url").and_then(Value::as_str).unwrap_or("");
    let canonical = canonical_url(url, route_template.as_deref())
        .ok_or_else(|| ExtractError::ResourceUrl(url.to_owned()))?;
    let text = |key: &str| resource.get(key).and_then(Value::as_str).map(str::to_owned);
    Ok(Discovered {
        resource: canonical,
        kind: info.input.kind(),
        x402_version: 2,
        route_template,
        description: text("description"),
        mime_type: text("mimeType"),
        metadata: ServiceMetadata::sanitize(&resource),
        info,
        extensions,
    })
}

/// The catalogue URL of a resource: `scheme://authority` + `route_template` (if given) or the
/// URL's path, without query or fragment. `None` for a URL without `scheme://authority`.
pub fn canonical_url(url: &str, route_template: Option<&str>) -> Option<String> {
    if let Some((origin, rest)) = Origin::split(url) {
        let path = rest.split(['?', '#']).next().unwrap_or("");
        let path = route_template.unwrap_or(if path.is_empty() { "/" } else { path });
        return Some(format!("{origin}{path}"));
    }
    // Other schemes (`mcp://tool/<name>`): keep scheme and authority as written.
    let (scheme, rest) = url.split_once("://")?;
    if scheme.is_empty()
        || !scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
    {
        return None;
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, remainder) = rest.split_at(end);
    let path = remainder.split(['?', '#']).next().unwrap_or("");
    let path = route_template.unwrap_or(path);
    (!authority.is_empty()).then(|| format!("{scheme}://{authority}{path}"))
}

/// `lastUpdated` of a catalogue entry: an RFC 3339 string (the reference client's type) or
/// a number (the spec's); both are read, this implementation writes strings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LastUpdated {
    /// RFC 3339 time.
    Text(String),
    /// A number (unix time in the spec's examples).
    Number(serde_json::Number),
}

/// One entry of `GET /discovery/resources` and `/discovery/search`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DiscoveredResource {
    /// The resource's catalogue URL.
    pub resource: String,
    /// `http` or `mcp`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The protocol version it was paid with.
    pub x402_version: u64,
    /// Ways to pay it (payment requirements, as JSON so that any scheme fits).
    pub accepts: Vec<Value>,
    /// When the entry last changed.
    pub last_updated: LastUpdated,
    /// What it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Its MIME type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    /// The service's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    /// Topical tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// An icon URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon_url: Option<String>,
    /// Extension declarations (the `bazaar` one included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_templates_follow_the_spec() {
        for ok in [
            "/users/:id",
            "/weather/:country/:city",
            "/a/b.json",
            "/%41bc",
            "/~x",
        ] {
            assert!(is_valid_route_template(ok), "{ok}");
        }
        for bad in [
            "",
            "/",
            "users/:id",
            "/a b",
            "/../etc",
            "/%2e%2e/x",
            "/%252e%252e/x",
            "/a?b",
            "/http://x",
            "/%3A%2F%2Fx://",
            "/%zz",
            "/%ff",
            "/a%2F..%2Fb",
        ] {
            assert!(!is_valid_route_template(bad), "{bad}");
        }
    }

    #[test]
    fn service_metadata_drops_what_is_invalid() {
        let resource = json!({
            "url": "https://api.example.test/x",
            "serviceName": "Weather & Co",
            "tags": ["weather", "WEATHER", "", "x".repeat(33), 7, "maps", "a", "b", "c", "d"],
            "iconUrl": "https://cdn.example.test/icon.png",
        });
        let meta = ServiceMetadata::sanitize(&resource);
        assert_eq!(meta.service_name.as_deref(), Some("Weather & Co"));
        assert_eq!(
            meta.tags,
            Some(vec![
                "weather".into(),
                "maps".into(),
                "a".into(),
                "b".into(),
                "c".into()
            ])
        );
        assert!(meta.icon_url.is_some());
        for bad in [
            "http://localhost/x.png",
            "https://127.0.0.1/x.png",
            "https://2130706433/x.png",
            "https://0x7f000001/x.png",
            "https://[::1]/x.png",
            "https://user@cdn.example.test/x.png",
            "ftp://cdn.example.test/x.png",
            "https://cdn.example.test/\u{0007}.png",
            "/relative.png",
        ] {
            assert!(!is_valid_icon_url(bad), "{bad}");
        }
        let meta = ServiceMetadata::sanitize(&json!({"serviceName": "é", "tags": "no"}));
        assert_eq!(meta, ServiceMetadata::default());
        assert!(!is_valid_service_name(&"n".repeat(33)));
    }

    #[test]
    fn declarations_narrow_to_the_request_and_read_back() {
        let ext = declare_http(&HttpDeclaration::default()).for_request(
            "get",
            Some("/weather/{country}/*"),
            "/weather/no/oslo?units=metric",
        );
        assert_eq!(
            ext.route_template.as_deref(),
            Some("/weather/:country/:var1")
        );
        let json = ext.to_value();
        assert_eq!(json["info"]["input"]["method"], "GET");
        assert_eq!(
            json["info"]["input"]["pathParams"],
            json!({"country": "no", "var1": "oslo"})
        );
        assert_eq!(
            json["schema"]["properties"]["input"]["properties"]["method"]["enum"],
            json!(["GET"])
        );
        assert_eq!(validate_spec(&json), Ok(()));
        let back: BazaarExtension = serde_json::from_value(json).unwrap();
        assert_eq!(back, ext);
        // A static route gets no template.
        let plain = declare_http(&HttpDeclaration::default()).for_request(
            "GET",
            Some("/weather"),
            "/weather",
        );
        assert_eq!(plain.route_template, None);
    }

    #[test]
    fn the_spec_rules_are_enforced_on_parse_and_on_json() {
        let bad = [
            json!({"info": {"input": {"type": "rpc"}}}),
            json!({"info": {"input": {"type": "http", "method": "TRACE"}}}),
            json!({"info": {"input": {"type": "http", "method": "GET", "bodyType": "json", "body": {}}}}),
            json!({"info": {"input": {"type": "http", "bodyType": "xml", "body": {}}}}),
            json!({"info": {"input": {"type": "mcp", "toolName": "", "inputSchema": {}}}}),
            json!({"info": {"input": {"type": "mcp", "toolName": "t", "inputSchema": []}}}),
            json!({"info": {"input": {"type": "mcp", "toolName": "t", "inputSchema": {}, "transport": "ws"}}}),
            json!({"info": {}}),
        ];
        // A query-style declaration narrowed to POST is read, as the reference reads it.
        let post = json!({"input": {"type": "http", "method": "POST"}});
        assert!(serde_json::from_value::<DiscoveryInfo>(post.clone()).is_ok());
        assert_eq!(validate_spec(&json!({"info": post})), Ok(()));
        for ext in bad {
            assert!(validate_spec(&ext).is_err(), "{ext}");
            assert!(
                serde_json::from_value::<DiscoveryInfo>(ext["info"].clone()).is_err(),
                "{ext}"
            );
        }
    }

    #[test]
    fn extraction_canonicalises_urls_and_ignores_unsafe_templates() {
        let ext =
            declare_http(&HttpDeclaration::default()).for_request("GET", Some("/u/:id"), "/u/7");
        let mut payment = json!({
            "x402Version": 2,
            "resource": {"url": "https://API.example.test:443/u/7?x=1", "description": "User"},
            "accepted": {},
            "extensions": {"bazaar": ext.to_value()},
        });
        let found = extract(&payment).unwrap();
        assert_eq!(found.resource, "https://api.example.test/u/:id");
        assert_eq!(found.info.input.method(), Some("GET"));
        payment["extensions"]["bazaar"]["routeTemplate"] = json!("/../admin");
        assert_eq!(
            extract(&payment).unwrap().resource,
            "https://api.example.test/u/7"
        );
        payment["x402Version"] = json!(1);
        assert_eq!(extract(&payment), Err(ExtractError::Version));
        assert_eq!(
            canonical_url("mcp://tool/forecast?x", None).as_deref(),
            Some("mcp://tool/forecast")
        );
    }
}
