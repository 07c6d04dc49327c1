use std::time::{Duration, Instant};

use async_trait::async_trait;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::de::DeserializeOwned;
use x402_protocol::facilitator::{
    FacilitatorRequest, SettleResponse, SupportedResponse, VerifyResponse,
};

use super::{Facilitator, FacilitatorError};

/// Answers larger than this are not x402 responses; stop reading.
const MAX_BODY_BYTES: usize = 256 * 1024;

/// A remote facilitator, over the x402 HTTP API (`POST /verify`, `POST /settle`,
/// `GET /supported`), with rustls, connect and request timeouts, optional auth headers and a
/// cached `/supported`.
///
/// ```no_run
/// use std::time::Duration;
/// use x402_runtime::facilitator::HttpFacilitator;
///
/// let facilitator = HttpFacilitator::builder("https://x402.org/facilitator")
///     .request_timeout(Duration::from_secs(5))
///     .header("authorization", "Bearer secret")?
///     .build()?;
/// # Ok::<(), x402_runtime::facilitator::FacilitatorError>(())
/// ```
#[derive(Debug)]
pub struct HttpFacilitator {
    base: String,
    client: reqwest::Client,
    headers: HeaderMap,
    supported_ttl: Duration,
    supported: tokio::sync::Mutex<Option<(Instant, SupportedResponse)>>,
}

/// Configures an [`HttpFacilitator`].
#[derive(Debug)]
pub struct HttpFacilitatorBuilder {
    base: String,
    connect_timeout: Duration,
    request_timeout: Duration,
    headers: HeaderMap,
    supported_ttl: Duration,
}

impl HttpFacilitatorBuilder {
    /// Time allowed to open a connection (default 3 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Time allowed for a whole call (default 10 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Sends a header with every call, such as `Authorization`.
    pub fn header(mut self, name: &str, value: &str) -> Result<Self, FacilitatorError> {
        let name = HeaderName::try_from(name)
            .map_err(|e| FacilitatorError::Internal(format!("header name {name:?}: {e}")))?;
        let mut value = HeaderValue::try_from(value)
            .map_err(|e| FacilitatorError::Internal(format!("header value for {name}: {e}")))?;
        value.set_sensitive(true);
        self.headers.insert(name, value);
        Ok(self)
    }

    /// How long a `/supported` answer is reused (default 5 minutes).
    pub fn supported_ttl(mut self, ttl: Duration) -> Self {
        self.supported_ttl = ttl;
        self
    }

    /// Builds the client.
    pub fn build(self) -> Result<HttpFacilitator, FacilitatorError> {
        let client = reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .timeout(self.request_timeout)
            .build()
            .map_err(|e| FacilitatorError::Internal(format!("building the HTTP client: {e}")))?;
        Ok(HttpFacilitator {
            base: self.base,
            client,
            headers: self.headers,
            supported_ttl: self.supported_ttl,
            supported: tokio::sync::Mutex::new(None),
        })
    }
}

impl HttpFacilitator {
    /// Starts configuring a client for the facilitator at `base_url`
    /// (e.g. `https://x402.org/facilitator`).
    pub fn builder(base_url: impl Into<String>) -> HttpFacilitatorBuilder {
        HttpFacilitatorBuilder {
            base: base_url.into().trim_end_matches('/').to_owned(),
            connect_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(10),
            headers: HeaderMap::new(),
            supported_ttl: Duration::from_secs(300),
        }
    }

    /// A client with default settings.
    pub fn new(base_url: impl Into<String>) -> Result<Self, FacilitatorError> {
        Self::builder(base_url).build()
    }

    /// The base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    async fn call<T: DeserializeOwned>(
        &self,
        path: &str,
        body: Option<&FacilitatorRequest>,
        accept_error_body: fn(&[u8]) -> Option<T>,
    ) -> Result<T, FacilitatorError> {
        let url = format!("{}/{path}", self.base);
        let request = match body {
            Some(body) => self.client.post(&url).json(body),
            None => self.client.get(&url),
        };
        let mut response = request
            .headers(self.headers.clone())
            .send()
            .await
            .map_err(classify)?;
        let status = response.status();
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(classify)? {
            if bytes.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(FacilitatorError::InvalidResponse(format!(
                    "{path}: body larger than {MAX_BODY_BYTES} bytes"
                )));
            }
            bytes.extend_from_slice(&chunk);
        }
        if status.is_success() {
            return serde_json::from_slice(&bytes)
                .map_err(|e| FacilitatorError::InvalidResponse(format!("{path}: {e}")));
        }
        // Some facilitators answer business failures (`isValid: false`) with 4xx/5xx; the
        // answer is still an answer.
        accept_error_body(&bytes).ok_or_else(|| {
            let body = error_text(&bytes);
            tracing::warn!(target: "x402::facilitator", path, status = status.as_u16(), %body, "the facilitator answered with an error");
            FacilitatorError::Status {
                status: status.as_u16(),
                body,
            }
        })
    }
}

/// What a facilitator's error body says: the text of a JSON `{"error", "message"}` (or
/// `errorMessage`, `invalidMessage`) answer, else the start of the body. Bounded by
/// [`bounded_message`](super::bounded_message) before it reaches a client.
fn error_text(bytes: &[u8]) -> String {
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_slice::<serde_json::Value>(bytes) {
        let field = |name: &str| {
            map.get(name)
                .and_then(|v| v.as_str())
                .filter(|t| !t.is_empty())
        };
        let code = field("error")
            .or_else(|| field("errorReason"))
            .or_else(|| field("invalidReason"));
        let text = field("message")
            .or_else(|| field("errorMessage"))
            .or_else(|| field("invalidMessage"));
        match (code, text) {
            (Some(code), Some(text)) => return format!("{code}: {text}"),
            (Some(one), None) | (None, Some(one)) => return one.to_owned(),
            (None, None) => {}
        }
    }
    String::from_utf8_lossy(&bytes[..bytes.len().min(super::MAX_MESSAGE_CHARS)]).into_owned()
}

fn classify(error: reqwest::Error) -> FacilitatorError {
    if error.is_timeout() {
        FacilitatorError::Timeout(Duration::ZERO)
    } else if error.is_connect() {
        FacilitatorError::Unreachable(error.to_string())
    } else if error.is_decode() || error.is_body() {
        FacilitatorError::InvalidResponse(error.to_string())
    } else {
        FacilitatorError::Interrupted(error.to_string())
    }
}

#[async_trait]
impl Facilitator for HttpFacilitator {
    async fn verify(
        &self,
        request: &FacilitatorRequest,
    ) -> Result<VerifyResponse, FacilitatorError> {
        self.call("verify", Some(request), |body| {
            serde_json::from_slice::<VerifyResponse>(body)
                .ok()
                .filter(|r| !r.is_valid)
        })
        .await
    }

    async fn settle(
        &self,
        request: &FacilitatorRequest,
    ) -> Result<SettleResponse, FacilitatorError> {
        self.call("settle", Some(request), |body| {
            serde_json::from_slice::<SettleResponse>(body)
                .ok()
                .filter(|r| !r.success)
        })
        .await
    }

    /// Cached for the configured TTL; concurrent callers share one refresh.
    async fn supported(&self) -> Result<SupportedResponse, FacilitatorError> {
        let mut cached = self.supported.lock().await;
        if let Some((at, answer)) = cached.as_ref()
            && at.elapsed() < self.supported_ttl
        {
            return Ok(answer.clone());
        }
        let answer: SupportedResponse = self.call("supported", None, |_| None).await?;
        *cached = Some((Instant::now(), answer.clone()));
        Ok(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::error_text;

    #[test]
    fn error_bodies_are_read_for_their_words() {
        assert_eq!(
            error_text(br#"{"error":"unexpected_settle_error","message":"RPC node down"}"#),
            "unexpected_settle_error: RPC node down"
        );
        assert_eq!(error_text(br#"{"errorMessage":"no gas"}"#), "no gas");
        assert_eq!(
            error_text(b"Internal Server Error"),
            "Internal Server Error"
        );
        assert_eq!(
            error_text(&[b'x'; 1000]).len(),
            super::super::MAX_MESSAGE_CHARS
        );
    }
}
