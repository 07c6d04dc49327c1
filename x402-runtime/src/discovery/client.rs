//! Reading another facilitator's catalogue over HTTP.

use std::time::Duration;

use super::{ListQuery, ListResponse, SearchQuery, SearchResponse};

/// Why a discovery call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// The facilitator could not be reached or did not answer in time.
    #[error("facilitator unreachable: {0}")]
    Unreachable(String),
    /// An HTTP error status.
    #[error("facilitator answered HTTP {status}: {body}")]
    Status {
        /// The status.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// A body that is not a discovery answer.
    #[error("facilitator answered with an invalid discovery body: {0}")]
    InvalidResponse(String),
    /// The facilitator URL is not usable.
    #[error("invalid facilitator URL {0:?}")]
    Url(String),
}

/// A client for a facilitator's `/discovery/*` endpoints.
#[derive(Debug, Clone)]
pub struct DiscoveryClient {
    http: reqwest::Client,
    base: String,
}

/// Largest discovery answer read, in bytes.
const MAX_BODY: usize = 8 * 1024 * 1024;

impl DiscoveryClient {
    /// A client for the facilitator at `base_url` (`https://facilitator.example/`), with a
    /// 10 s timeout.
    pub fn new(base_url: &str) -> Result<Self, DiscoveryError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| DiscoveryError::Unreachable(e.to_string()))?;
        Self::with_client(http, base_url)
    }

    /// A client using an existing `reqwest::Client`.
    pub fn with_client(http: reqwest::Client, base_url: &str) -> Result<Self, DiscoveryError> {
        let base = base_url.trim().trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(DiscoveryError::Url(base_url.to_owned()));
        }
        Ok(DiscoveryClient { http, base })
    }

    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        query: String,
    ) -> Result<T, DiscoveryError> {
        let url = format!("{}{path}?{query}", self.base);
        let response = self
            .http
            .get(&url)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| DiscoveryError::Unreachable(e.to_string()))?;
        let status = response.status().as_u16();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| DiscoveryError::Unreachable(e.to_string()))?;
        if bytes.len() > MAX_BODY {
            return Err(DiscoveryError::InvalidResponse(format!(
                "{} bytes is more than the {MAX_BODY}-byte limit",
                bytes.len()
            )));
        }
        if !(200..300).contains(&status) {
            let body = String::from_utf8_lossy(&bytes[..bytes.len().min(512)]).into_owned();
            return Err(DiscoveryError::Status { status, body });
        }
        serde_json::from_slice(&bytes).map_err(|e| DiscoveryError::InvalidResponse(e.to_string()))
    }

    /// `GET /discovery/resources`.
    pub async fn list(&self, query: &ListQuery) -> Result<ListResponse, DiscoveryError> {
        self.get("/discovery/resources", query.to_query_string())
            .await
    }

    /// `GET /discovery/search`.
    pub async fn search(&self, query: &SearchQuery) -> Result<SearchResponse, DiscoveryError> {
        self.get("/discovery/search", query.to_query_string()).await
    }
}

/// Lists one page of the catalogue of the facilitator at `facilitator_url`.
pub async fn discover(
    facilitator_url: &str,
    query: &ListQuery,
) -> Result<ListResponse, DiscoveryError> {
    DiscoveryClient::new(facilitator_url)?.list(query).await
}
