//! The discovery endpoints as framework-free functions: query string in, response out.

use bytes::Bytes;
use serde::Serialize;
use serde_json::json;

use super::{DiscoveryCatalog, ListQuery, QueryError, SearchQuery};
use crate::response::{CONTENT_TYPE_JSON, ResponseParts};

fn json_response<T: Serialize>(status: u16, body: &T) -> ResponseParts {
    ResponseParts {
        status,
        headers: vec![("content-type".into(), CONTENT_TYPE_JSON.to_owned())],
        body: Bytes::from(serde_json::to_vec(body).unwrap_or_default()),
    }
}

fn invalid(error: &QueryError) -> ResponseParts {
    json_response(
        400,
        &json!({"error": "invalid_request", "message": error.to_string()}),
    )
}

/// `GET /discovery/resources?type=&payTo=&scheme=&network=&extensions=&limit=&offset=`:
/// 200 with `{x402Version, items, pagination: {limit, offset, total}}`; 400
/// `{"error": "invalid_request", "message"}` for an unreadable parameter. `limit` is
/// clamped to 1–100 (default 20).
pub fn resources_endpoint(catalog: &DiscoveryCatalog, query_string: &str) -> ResponseParts {
    match ListQuery::from_query_string(query_string) {
        Ok(query) => json_response(200, &catalog.list(&query)),
        Err(error) => invalid(&error),
    }
}

/// `GET /discovery/search?query=…` (plus the list filters, `limit`, `cursor`): 200 with
/// `{x402Version, resources, partialResults, pagination: {limit, cursor}}`; 400 when `query`
/// is missing or blank, or a parameter is unreadable.
pub fn search_endpoint(catalog: &DiscoveryCatalog, query_string: &str) -> ResponseParts {
    match SearchQuery::from_query_string(query_string) {
        Ok(query) => json_response(200, &catalog.search(&query)),
        Err(error) => invalid(&error),
    }
}
