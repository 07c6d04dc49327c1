//! Bazaar discovery: a catalogue of paid resources, the two endpoints a facilitator serves
//! from it, and a client for other facilitators' catalogues.
//!
//! - [`DiscoveryCatalog`]: resources registered by servers ([`DiscoveryCatalog::upsert`]) or
//!   learned from payments carrying the `bazaar` extension
//!   ([`DiscoveryCatalog::record_payment`]), keyed by resource URL (and tool name for MCP),
//!   bounded in size (least recently updated entries go first);
//! - [`resources_endpoint`] / [`search_endpoint`]: `GET /discovery/resources` and
//!   `GET /discovery/search` as functions from a query string to [`ResponseParts`], for any
//!   HTTP framework to mount;
//! - [`DiscoveryClient`] (and [`discover`]): lists or searches a facilitator's catalogue over
//!   HTTP.
//!
//! **Search** is plain token matching, documented so results are predictable: the query and
//! each entry's fields are split into lower-case runs of letters and digits; a query token
//! matches a field when one of the field's words starts with it. Fields weigh: service name,
//! tags and MCP tool name 3; description (and MCP tool description) 2; resource URL 1. An
//! entry is a result when at least one token matches; results are ranked by the number of
//! distinct tokens matched, then by total weight, then most recently updated first.
//!
//! ```
//! use x402_protocol::bazaar::{self, HttpDeclaration};
//! use x402_runtime::discovery::{self, DiscoveryCatalog};
//!
//! let catalog = DiscoveryCatalog::new();
//! // A facilitator sees a payment whose 402 declared the bazaar extension.
//! let ext = bazaar::declare_http(&HttpDeclaration::default()).for_request("GET", None, "/weather");
//! let payment = serde_json::json!({
//!     "x402Version": 2,
//!     "resource": {"url": "https://api.example.com/weather", "description": "Weather now"},
//!     "accepted": {"scheme": "exact", "network": "eip155:8453", "amount": "10000",
//!                  "asset": "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
//!                  "payTo": "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC", "maxTimeoutSeconds": 300},
//!     "extensions": {"bazaar": ext.to_value()},
//! });
//! catalog.record_payment(&payment, &payment["accepted"])?;
//!
//! let page = discovery::resources_endpoint(&catalog, "type=http&network=base");
//! assert_eq!(page.status, 200);
//! let body: serde_json::Value = serde_json::from_slice(&page.body)?;
//! assert_eq!(body["items"][0]["resource"], "https://api.example.com/weather");
//! let found = discovery::search_endpoint(&catalog, "query=weather");
//! let body: serde_json::Value = serde_json::from_slice(&found.body)?;
//! assert_eq!(body["resources"].as_array().unwrap().len(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use x402_protocol::bazaar::{self, DiscoveredResource, ExtractError, LastUpdated};

use crate::clock::{Clock, SystemClock};

mod client;
mod endpoints;
mod query;

pub use client::{DiscoveryClient, DiscoveryError, discover};
pub use endpoints::{resources_endpoint, search_endpoint};
pub use query::{
    DEFAULT_LIMIT, Filters, ListQuery, MAX_LIMIT, MAX_QUERY_LEN, QueryError, SearchQuery,
};

/// How many resources a catalogue holds unless told otherwise.
pub const DEFAULT_CAPACITY: usize = 10_000;

/// Most `accepts` entries kept per resource.
const MAX_ACCEPTS: usize = 16;

/// Most query tokens considered in a search.
const MAX_TOKENS: usize = 16;

/// `GET /discovery/resources` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListResponse {
    /// Always 2.
    pub x402_version: u64,
    /// This page.
    pub items: Vec<DiscoveredResource>,
    /// Where the page is.
    pub pagination: Pagination,
}

/// Paging of a list answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pagination {
    /// Page size.
    pub limit: u64,
    /// Entries skipped.
    pub offset: u64,
    /// Entries matching the filters.
    pub total: u64,
}

/// `GET /discovery/search` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchResponse {
    /// Always 2.
    pub x402_version: u64,
    /// The matches, best first.
    pub resources: Vec<DiscoveredResource>,
    /// Whether matches were left out for other reasons than paging (never, here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial_results: Option<bool>,
    /// Paging, when the facilitator pages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pagination: Option<SearchPagination>,
}

/// Paging of a search answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchPagination {
    /// Page size.
    pub limit: u64,
    /// Cursor of the next page, `null` on the last.
    pub cursor: Option<String>,
}

type Key = (String, Option<String>);

struct Entry {
    resource: DiscoveredResource,
    seq: u64,
    /// The entry's words per searchable field, with the field's weight.
    index: Vec<(Vec<String>, u32)>,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<Key, Entry>,
    /// Update order: sequence number → key (newest last).
    order: BTreeMap<u64, Key>,
    next_seq: u64,
}

/// A catalogue of paid resources, in memory; shared between threads (`&self` everywhere).
pub struct DiscoveryCatalog {
    inner: RwLock<Inner>,
    capacity: usize,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for DiscoveryCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscoveryCatalog")
            .field("len", &self.len())
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl Default for DiscoveryCatalog {
    fn default() -> Self {
        Self::new()
    }
}

/// The MCP tool name declared in an entry's `extensions.bazaar`, if any.
fn tool_name(resource: &DiscoveredResource) -> Option<String> {
    resource
        .extensions
        .as_ref()?
        .pointer("/bazaar/info/input/toolName")?
        .as_str()
        .map(str::to_owned)
}

impl DiscoveryCatalog {
    /// An empty catalogue of [`DEFAULT_CAPACITY`] resources.
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }

    /// An empty catalogue holding at most `capacity` resources (at least one).
    pub fn with_capacity(capacity: usize) -> Self {
        DiscoveryCatalog {
            inner: RwLock::new(Inner::default()),
            capacity: capacity.max(1),
            clock: Arc::new(SystemClock),
        }
    }

    /// Dates entries with `clock` (tests).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        // Updates leave the maps consistent at every step: a poisoned lock is still usable.
        self.inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Number of resources.
    pub fn len(&self) -> usize {
        self.read().entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn now(&self) -> LastUpdated {
        LastUpdated::Text(x402_protocol::siwx::format_timestamp(
            self.clock.now_unix().saturating_mul(1000),
        ))
    }

    /// Registers or replaces a resource (keyed by `resource` and, for MCP, the tool name in
    /// `extensions.bazaar`), dated now. Evicts the least recently updated entry when full.
    pub fn upsert(&self, mut resource: DiscoveredResource) {
        resource.last_updated = self.now();
        let key = (resource.resource.clone(), tool_name(&resource));
        self.store(key, resource);
    }

    fn store(&self, key: Key, resource: DiscoveredResource) {
        let mut inner = self.write();
        let seq = inner.next_seq;
        inner.next_seq += 1;
        if let Some(old) = inner.entries.remove(&key) {
            inner.order.remove(&old.seq);
        } else if inner.entries.len() >= self.capacity
            && let Some((_, oldest)) = inner.order.pop_first()
        {
            inner.entries.remove(&oldest);
        }
        inner.order.insert(seq, key.clone());
        let index = search_index(&resource);
        inner.entries.insert(
            key,
            Entry {
                resource,
                seq,
                index,
            },
        );
    }

    /// Removes a resource; returns whether it was there.
    pub fn remove(&self, resource: &str, tool_name: Option<&str>) -> bool {
        let mut inner = self.write();
        let key = (resource.to_owned(), tool_name.map(str::to_owned));
        match inner.entries.remove(&key) {
            Some(entry) => {
                inner.order.remove(&entry.seq);
                true
            }
            None => false,
        }
    }

    /// Catalogues a v2 payment (a `PaymentPayload` as JSON) whose `extensions.bazaar` the
    /// client echoed from the 402, paid under `requirements` (the requirement JSON): see
    /// [`bazaar::extract`] for what is validated and dropped. The requirement joins the
    /// resource's `accepts` (replacing one with the same scheme and network).
    ///
    /// Call it once the payment verified (or settled), so that only resources someone could
    /// really pay for are listed; the payment's own signature is not looked at here.
    ///
    /// Only the `bazaar` declaration is echoed into the catalogue in full; other extensions
    /// keep their `schema` but lose `info`, which may hold what a client added (a payment
    /// id), so that nothing a payer chose becomes public.
    pub fn record_payment(
        &self,
        payment: &Value,
        requirements: &Value,
    ) -> Result<(), ExtractError> {
        let found = bazaar::extract(payment)?;
        let key = (
            found.resource.clone(),
            found.info.input.tool_name().map(str::to_owned),
        );
        let mut extensions = serde_json::Map::new();
        if let Value::Object(echoed) = &found.extensions {
            for (name, value) in echoed {
                let kept = if name == bazaar::EXTENSION_KEY {
                    value.clone()
                } else {
                    json!({"schema": value.get("schema").cloned().unwrap_or(Value::Null)})
                };
                extensions.insert(name.clone(), kept);
            }
        }
        let mut accepts = self
            .read()
            .entries
            .get(&key)
            .map(|e| e.resource.accepts.clone())
            .unwrap_or_default();
        let same_terms = |a: &Value| {
            a.get("scheme") == requirements.get("scheme")
                && a.get("network") == requirements.get("network")
        };
        accepts.retain(|a| !same_terms(a));
        accepts.insert(0, requirements.clone());
        accepts.truncate(MAX_ACCEPTS);
        let resource = DiscoveredResource {
            resource: found.resource,
            kind: found.kind.to_owned(),
            x402_version: found.x402_version,
            accepts,
            last_updated: self.now(),
            description: found.description.filter(|d| !d.is_empty()),
            mime_type: found.mime_type.filter(|m| !m.is_empty()),
            service_name: found.metadata.service_name,
            tags: found.metadata.tags,
            icon_url: found.metadata.icon_url,
            extensions: Some(Value::Object(extensions)),
        };
        self.store(key, resource);
        Ok(())
    }

    /// Catalogues the payment in a facilitator `/verify` or `/settle` body
    /// (`{paymentPayload, paymentRequirements}`).
    pub fn record_facilitator_request(&self, body: &Value) -> Result<(), ExtractError> {
        let payment = body.get("paymentPayload").cloned().unwrap_or_default();
        let requirements = body
            .get("paymentRequirements")
            .or_else(|| payment.get("accepted"))
            .cloned()
            .unwrap_or_default();
        self.record_payment(&payment, &requirements)
    }

    /// One page of the resources matching the query's filters, newest first.
    pub fn list(&self, query: &ListQuery) -> ListResponse {
        let network = query.filters.network.as_deref().map(query::caip2);
        let inner = self.read();
        let matching = inner
            .order
            .values()
            .rev()
            .filter_map(|key| inner.entries.get(key))
            .filter(|e| matches(&e.resource, &query.filters, network.as_deref()));
        let mut total = 0u64;
        let mut items = Vec::new();
        let skip = query.offset;
        for entry in matching {
            if total >= skip && items.len() < query.limit as usize {
                items.push(entry.resource.clone());
            }
            total += 1;
        }
        ListResponse {
            x402_version: 2,
            items,
            pagination: Pagination {
                limit: u64::from(query.limit),
                offset: query.offset,
                total,
            },
        }
    }

    /// One page of the resources matching the query's words and filters, best first (see the
    /// module docs for the ranking). The cursor is the position of the next page.
    pub fn search(&self, query: &SearchQuery) -> SearchResponse {
        let mut tokens: Vec<String> = Vec::new();
        for token in words(&query.query) {
            if !tokens.contains(&token) && tokens.len() < MAX_TOKENS {
                tokens.push(token);
            }
        }
        let network = query.filters.network.as_deref().map(query::caip2);
        let inner = self.read();
        let mut scored: Vec<(usize, u32, u64, &Entry)> = inner
            .entries
            .values()
            .filter(|e| matches(&e.resource, &query.filters, network.as_deref()))
            .filter_map(|e| {
                let (hits, weight) = score(&e.index, &tokens);
                (hits > 0).then_some((hits, weight, e.seq, e))
            })
            .collect();
        scored.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)).then(b.2.cmp(&a.2)));
        let start: usize = query
            .cursor
            .as_deref()
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let limit = query.limit as usize;
        let next = start.saturating_add(limit);
        let cursor = (next < scored.len()).then(|| next.to_string());
        let resources = scored
            .into_iter()
            .skip(start)
            .take(limit)
            .map(|(_, _, _, e)| e.resource.clone())
            .collect();
        SearchResponse {
            x402_version: 2,
            resources,
            partial_results: Some(false),
            pagination: Some(SearchPagination {
                limit: u64::from(query.limit),
                cursor,
            }),
        }
    }
}

/// Whether an entry passes the filters; `network` is the filter's network in CAIP-2 form.
fn matches(resource: &DiscoveredResource, f: &Filters, network: Option<&str>) -> bool {
    if f.kind.as_ref().is_some_and(|k| *k != resource.kind) {
        return false;
    }
    if !f.extensions.is_empty() {
        let declared = resource.extensions.as_ref().and_then(Value::as_object);
        if !f
            .extensions
            .iter()
            .all(|k| declared.is_some_and(|d| d.contains_key(k)))
        {
            return false;
        }
    }
    if f.pay_to.is_none() && f.scheme.is_none() && network.is_none() {
        return true;
    }
    resource.accepts.iter().any(|a| {
        let field = |name: &str| a.get(name).and_then(Value::as_str);
        f.scheme
            .as_deref()
            .is_none_or(|s| field("scheme") == Some(s))
            && network.is_none_or(|n| {
                field("network")
                    .is_some_and(|own| own == n || (!own.contains(':') && query::caip2(own) == n))
            })
            && f.pay_to
                .as_deref()
                .is_none_or(|p| field("payTo").is_some_and(|t| query::same_recipient(t, p)))
    })
}

/// Lower-case runs of letters and digits.
fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

/// The searchable fields of an entry as words, with their weights.
fn search_index(resource: &DiscoveredResource) -> Vec<(Vec<String>, u32)> {
    let input = resource
        .extensions
        .as_ref()
        .and_then(|e| e.pointer("/bazaar/info/input"));
    let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_owned();
    let fields: [(String, u32); 6] = [
        (resource.service_name.clone().unwrap_or_default(), 3),
        (
            resource
                .tags
                .as_ref()
                .map(|t| t.join(" "))
                .unwrap_or_default(),
            3,
        ),
        (text(input.and_then(|i| i.get("toolName"))), 3),
        (resource.description.clone().unwrap_or_default(), 2),
        (text(input.and_then(|i| i.get("description"))), 2),
        (resource.resource.clone(), 1),
    ];
    fields
        .into_iter()
        .map(|(text, weight)| (words(&text).collect::<Vec<_>>(), weight))
        .filter(|(words, _)| !words.is_empty())
        .collect()
}

/// (distinct tokens matched, total weight) of an entry's index for a query.
fn score(index: &[(Vec<String>, u32)], tokens: &[String]) -> (usize, u32) {
    let mut hits = 0;
    let mut weight = 0;
    for token in tokens {
        let best = index
            .iter()
            .filter(|(words, _)| words.iter().any(|w| w.starts_with(token.as_str())))
            .map(|(_, w)| *w)
            .max();
        if let Some(w) = best {
            hits += 1;
            weight += w;
        }
    }
    (hits, weight)
}
