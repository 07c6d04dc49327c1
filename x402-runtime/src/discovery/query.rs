//! The query parameters of the discovery endpoints, read from and written to query strings.

use x402_protocol::network::builtin_network;

/// Default page size.
pub const DEFAULT_LIMIT: u32 = 20;

/// Largest page size.
pub const MAX_LIMIT: u32 = 100;

/// Longest accepted search query, in bytes.
pub const MAX_QUERY_LEN: usize = 512;

/// A query parameter that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct QueryError(pub String);

/// Filters common to listing and searching. Filters on payment terms (`payTo`, `scheme`,
/// `network`) must all hold for one and the same `accepts` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    /// `type`: `http` or `mcp`.
    pub kind: Option<String>,
    /// `payTo`: the recipient (EVM addresses compare case-insensitively).
    pub pay_to: Option<String>,
    /// `scheme`, e.g. `exact`.
    pub scheme: Option<String>,
    /// `network`: CAIP-2 id or built-in v1 name (both match either spelling).
    pub network: Option<String>,
    /// `extensions`: extension keys the resource must declare (comma-separated on the wire).
    pub extensions: Vec<String>,
}

/// `GET /discovery/resources` parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    /// Filters.
    pub filters: Filters,
    /// Page size, 1–100 (default 20).
    pub limit: u32,
    /// Entries to skip.
    pub offset: u64,
}

impl Default for ListQuery {
    fn default() -> Self {
        ListQuery {
            filters: Filters::default(),
            limit: DEFAULT_LIMIT,
            offset: 0,
        }
    }
}

/// `GET /discovery/search` parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    /// The words to look for (required, non-blank).
    pub query: String,
    /// Filters.
    pub filters: Filters,
    /// Page size, 1–100 (default 20).
    pub limit: u32,
    /// Where to continue (a previous answer's `pagination.cursor`).
    pub cursor: Option<String>,
}

impl SearchQuery {
    /// A search for `query` with default paging and no filters.
    pub fn new(query: impl Into<String>) -> Self {
        SearchQuery {
            query: query.into(),
            filters: Filters::default(),
            limit: DEFAULT_LIMIT,
            cursor: None,
        }
    }
}

fn limit(value: &str) -> Result<u32, QueryError> {
    value
        .trim()
        .parse::<u64>()
        .map(|l| u32::try_from(l.clamp(1, u64::from(MAX_LIMIT))).unwrap_or(MAX_LIMIT))
        .map_err(|_| QueryError(format!("limit must be a whole number, not {value:?}")))
}

/// Reads the filters among `pairs`; returns the pairs it did not use.
fn filters<'a>(
    pairs: &'a [(String, String)],
    filters: &mut Filters,
) -> Result<Vec<&'a (String, String)>, QueryError> {
    let mut rest = Vec::new();
    for pair in pairs {
        let value = pair.1.trim();
        let set = |slot: &mut Option<String>| {
            *slot = (!value.is_empty()).then(|| value.to_owned());
        };
        match pair.0.as_str() {
            "type" => set(&mut filters.kind),
            "payTo" => set(&mut filters.pay_to),
            "scheme" => set(&mut filters.scheme),
            "network" => set(&mut filters.network),
            "extensions" => filters.extensions.extend(
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|k| !k.is_empty())
                    .map(str::to_owned),
            ),
            _ => rest.push(pair),
        }
    }
    if let Some(kind) = &filters.kind
        && kind != "http"
        && kind != "mcp"
    {
        return Err(QueryError(format!(
            "type must be http or mcp, not {kind:?}"
        )));
    }
    Ok(rest)
}

fn decode(query_string: &str) -> Vec<(String, String)> {
    let query_string = query_string.strip_prefix('?').unwrap_or(query_string);
    form_urlencoded::parse(query_string.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn encode_filters(out: &mut form_urlencoded::Serializer<'_, String>, f: &Filters) {
    for (key, value) in [
        ("type", &f.kind),
        ("payTo", &f.pay_to),
        ("scheme", &f.scheme),
        ("network", &f.network),
    ] {
        if let Some(value) = value {
            out.append_pair(key, value);
        }
    }
    if !f.extensions.is_empty() {
        out.append_pair("extensions", &f.extensions.join(","));
    }
}

impl ListQuery {
    /// From decoded `(name, value)` pairs; unknown names are ignored, bad values refused.
    pub fn from_pairs(pairs: &[(String, String)]) -> Result<Self, QueryError> {
        let mut query = ListQuery::default();
        for (name, value) in filters(pairs, &mut query.filters)? {
            match name.as_str() {
                "limit" => query.limit = limit(value)?,
                "offset" => {
                    query.offset = value.trim().parse().map_err(|_| {
                        QueryError(format!("offset must be a whole number, not {value:?}"))
                    })?;
                }
                _ => {}
            }
        }
        Ok(query)
    }

    /// From a raw query string (`type=http&limit=5`, with or without `?`).
    pub fn from_query_string(query_string: &str) -> Result<Self, QueryError> {
        Self::from_pairs(&decode(query_string))
    }

    /// As a query string (without `?`).
    pub fn to_query_string(&self) -> String {
        let mut out = form_urlencoded::Serializer::new(String::new());
        encode_filters(&mut out, &self.filters);
        out.append_pair("limit", &self.limit.to_string());
        out.append_pair("offset", &self.offset.to_string());
        out.finish()
    }
}

impl SearchQuery {
    /// From decoded pairs; `query` is required and must not be blank.
    pub fn from_pairs(pairs: &[(String, String)]) -> Result<Self, QueryError> {
        let mut query = SearchQuery::new("");
        let mut text = None;
        for (name, value) in filters(pairs, &mut query.filters)? {
            match name.as_str() {
                "query" => text = Some(value.clone()),
                "limit" => query.limit = limit(value)?,
                "cursor" => query.cursor = Some(value.clone()).filter(|c| !c.is_empty()),
                _ => {}
            }
        }
        let text = text
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| QueryError("query is required".into()))?;
        if text.len() > MAX_QUERY_LEN {
            return Err(QueryError(format!(
                "query is longer than {MAX_QUERY_LEN} bytes"
            )));
        }
        query.query = text;
        Ok(query)
    }

    /// From a raw query string.
    pub fn from_query_string(query_string: &str) -> Result<Self, QueryError> {
        Self::from_pairs(&decode(query_string))
    }

    /// As a query string (without `?`).
    pub fn to_query_string(&self) -> String {
        let mut out = form_urlencoded::Serializer::new(String::new());
        out.append_pair("query", &self.query);
        encode_filters(&mut out, &self.filters);
        out.append_pair("limit", &self.limit.to_string());
        if let Some(cursor) = &self.cursor {
            out.append_pair("cursor", cursor);
        }
        out.finish()
    }
}

/// The CAIP-2 spelling of a built-in network name, or the id unchanged.
pub(super) fn caip2(network: &str) -> String {
    builtin_network(network).map_or_else(|| network.to_owned(), |n| n.caip2.to_string())
}

/// Whether two recipients are the same (EVM hex addresses case-insensitively).
pub(super) fn same_recipient(a: &str, b: &str) -> bool {
    if a.starts_with("0x") && b.starts_with("0x") {
        a.eq_ignore_ascii_case(b)
    } else {
        a == b
    }
}
