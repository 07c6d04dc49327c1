use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Uri};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use serde::de::DeserializeOwned;
use x402_protocol::facilitator::{
    FacilitatorRequest, SettleResponse, SupportedResponse, VerifyResponse,
};

use super::{Facilitator, FacilitatorError};

/// Answers larger than this are not x402 responses; stop reading.
const MAX_BODY_BYTES: usize = 256 * 1024;

/// Environment variables that name a proxy (reqwest's, and curl's, convention).
const PROXY_VARIABLES: [&str; 6] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// A remote facilitator, over the x402 HTTP API (`POST /verify`, `POST /settle`,
/// `GET /supported`), with rustls, connect and request timeouts, optional auth headers and a
/// cached `/supported`.
///
/// Calls go over a lean HTTP/1.1 client (hyper with rustls and the platform's certificate
/// verifier, kept-alive connections): endpoint URLs are parsed once, the request headers are
/// built once, and a payment's JSON is written once for `/verify` and `/settle` (see
/// [`FacilitatorRequest::json`]). When the environment names a proxy (`HTTPS_PROXY`,
/// `HTTP_PROXY`, `ALL_PROXY`), or once the facilitator has answered with a redirect, calls go
/// through reqwest instead, which follows up to ten redirects and honours proxies and
/// `NO_PROXY`.
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
pub struct HttpFacilitator {
    base: String,
    endpoints: Endpoints,
    /// The lean client; `None` when a proxy is configured.
    direct: Option<DirectClient>,
    /// Set once the facilitator redirected a call: every later call goes through reqwest.
    redirected: AtomicBool,
    reqwest: reqwest::Client,
    /// Headers of every call: the configured ones, then `accept` (and `content-type` for
    /// posts) unless configured.
    get_headers: HeaderMap,
    post_headers: HeaderMap,
    request_timeout: Duration,
    supported_ttl: Duration,
    supported: tokio::sync::Mutex<Option<(Instant, SupportedResponse)>>,
}

impl std::fmt::Debug for HttpFacilitator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpFacilitator")
            .field("base", &self.base)
            .field("direct", &self.direct.is_some())
            .field("redirected", &self.redirected.load(Ordering::Relaxed))
            .field("headers", &self.get_headers)
            .field("request_timeout", &self.request_timeout)
            .field("supported_ttl", &self.supported_ttl)
            .finish_non_exhaustive()
    }
}

/// One endpoint, parsed for both clients.
#[derive(Debug)]
struct Endpoint {
    /// `verify`, `settle` or `supported`, for messages.
    name: &'static str,
    uri: Uri,
    url: reqwest::Url,
}

#[derive(Debug)]
struct Endpoints {
    verify: Endpoint,
    settle: Endpoint,
    supported: Endpoint,
}

impl Endpoints {
    fn new(base: &str) -> Result<Self, FacilitatorError> {
        let endpoint = |name: &'static str| {
            let text = format!("{base}/{name}");
            let invalid = |e: &dyn std::fmt::Display| {
                FacilitatorError::Internal(format!("URL {text:?}: {e}"))
            };
            let url = reqwest::Url::parse(&text).map_err(|e| invalid(&e))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(invalid(&"the facilitator must be an http or https URL"));
            }
            let uri = Uri::try_from(url.as_str()).map_err(|e| invalid(&e))?;
            Ok(Endpoint { name, uri, url })
        };
        Ok(Endpoints {
            verify: endpoint("verify")?,
            settle: endpoint("settle")?,
            supported: endpoint("supported")?,
        })
    }
}

/// Configures an [`HttpFacilitator`].
#[derive(Debug)]
pub struct HttpFacilitatorBuilder {
    base: String,
    connect_timeout: Duration,
    request_timeout: Duration,
    headers: HeaderMap,
    supported_ttl: Duration,
    via_reqwest: bool,
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

    /// Sends every call through reqwest, as when a proxy is configured (for tests of that
    /// path).
    #[doc(hidden)]
    pub fn via_reqwest(mut self, via_reqwest: bool) -> Self {
        self.via_reqwest = via_reqwest;
        self
    }

    /// Builds the client.
    pub fn build(self) -> Result<HttpFacilitator, FacilitatorError> {
        let endpoints = Endpoints::new(&self.base)?;
        let reqwest = reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .timeout(self.request_timeout)
            .build()
            .map_err(|e| FacilitatorError::Internal(format!("building the HTTP client: {e}")))?;
        let proxied = PROXY_VARIABLES
            .iter()
            .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()));
        let direct = if self.via_reqwest || proxied {
            None
        } else {
            Some(direct_client(self.connect_timeout)?)
        };
        let mut get_headers = self.headers;
        get_headers
            .entry(ACCEPT)
            .or_insert(HeaderValue::from_static("application/json"));
        let mut post_headers = get_headers.clone();
        post_headers
            .entry(CONTENT_TYPE)
            .or_insert(HeaderValue::from_static("application/json"));
        Ok(HttpFacilitator {
            base: self.base,
            endpoints,
            direct,
            redirected: AtomicBool::new(false),
            reqwest,
            get_headers,
            post_headers,
            request_timeout: self.request_timeout,
            supported_ttl: self.supported_ttl,
            supported: tokio::sync::Mutex::new(None),
        })
    }
}

/// The lean client: kept-alive HTTP/1.1 over TCP or TLS, connecting within a time limit.
type DirectClient = Client<Bounded<HttpsConnector<HttpConnector>>, Full<Bytes>>;

/// A connector whose connections (TCP and, for `https`, the TLS handshake) must be made within
/// `limit`; a connection that takes longer fails as a connect error.
#[derive(Clone)]
struct Bounded<C> {
    inner: C,
    limit: Duration,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl<C> tower_service::Service<Uri> for Bounded<C>
where
    C: tower_service::Service<Uri>,
    C::Future: Send + 'static,
    C::Error: Into<BoxError>,
{
    type Response = C::Response;
    type Error = BoxError;
    type Future =
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<C::Response, BoxError>> + Send>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connecting = self.inner.call(uri);
        let limit = self.limit;
        Box::pin(async move {
            match tokio::time::timeout(limit, connecting).await {
                Ok(connected) => connected.map_err(Into::into),
                Err(_) => Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no connection within {} ms", limit.as_millis()),
                )
                .into()),
            }
        })
    }
}

/// A kept-alive HTTP/1.1 client for `http` and `https` URLs, verifying certificates the way
/// reqwest does by default (the platform's verifier, the process's default crypto provider or
/// aws-lc-rs).
fn direct_client(connect_timeout: Duration) -> Result<DirectClient, FacilitatorError> {
    let failed = |e: &dyn std::fmt::Display| {
        FacilitatorError::Internal(format!("building the HTTPS client: {e}"))
    };
    let provider = rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
    let verifier =
        rustls_platform_verifier::Verifier::new(provider.clone()).map_err(|e| failed(&e))?;
    // ALPN (`http/1.1`) is set by the connector builder below.
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| failed(&e))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    // The connect timeout covers the TLS handshake too, as reqwest's does: a server that never
    // completes it has not received the request.
    let https = Bounded {
        inner: https,
        limit: connect_timeout,
    };
    // Idle connections are dropped after 90 s, as reqwest does.
    Ok(Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .build(https))
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
            via_reqwest: false,
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
        endpoint: &Endpoint,
        body: Option<&FacilitatorRequest>,
        accept_error_body: fn(&[u8]) -> Option<T>,
    ) -> Result<T, FacilitatorError> {
        let path = endpoint.name;
        let body = match body {
            Some(request) => Some(
                request
                    .json()
                    .map_err(|e| FacilitatorError::Internal(format!("{path}: encoding: {e}")))?
                    .0,
            ),
            None => None,
        };
        let (status, bytes) = match &self.direct {
            Some(direct) if !self.redirected.load(Ordering::Relaxed) => {
                match tokio::time::timeout(
                    self.request_timeout,
                    self.send_direct(direct, endpoint, body.clone()),
                )
                .await
                .unwrap_or(Err(FacilitatorError::Timeout(self.request_timeout)))?
                {
                    Sent::Answered(status, bytes) => (status, bytes),
                    // A redirect is not an answer: nothing was done at this URL. From now on
                    // reqwest, which follows redirects, makes every call.
                    Sent::Redirected(status) => {
                        tracing::info!(target: "x402::facilitator", %status, path, "the facilitator redirects; following with reqwest from now on");
                        self.redirected.store(true, Ordering::Relaxed);
                        self.send_reqwest(endpoint, body).await?
                    }
                }
            }
            _ => self.send_reqwest(endpoint, body).await?,
        };
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

    /// One call over the lean client (the caller bounds its time).
    async fn send_direct(
        &self,
        client: &DirectClient,
        endpoint: &Endpoint,
        body: Option<Bytes>,
    ) -> Result<Sent, FacilitatorError> {
        let path = endpoint.name;
        let (method, headers, body) = match body {
            Some(body) => (Method::POST, &self.post_headers, body),
            None => (Method::GET, &self.get_headers, Bytes::new()),
        };
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = method;
        *request.uri_mut() = endpoint.uri.clone();
        *request.headers_mut() = headers.clone();
        let response = client.request(request).await.map_err(|e| {
            if e.is_connect() {
                // The connection was never made: the request was not delivered.
                FacilitatorError::Unreachable(format!("{path}: {}", error_chain(&e)))
            } else {
                FacilitatorError::Interrupted(format!("{path}: {}", error_chain(&e)))
            }
        })?;
        let status = response.status();
        if status.is_redirection() {
            return Ok(Sent::Redirected(status));
        }
        let bytes = Limited::new(response.into_body(), MAX_BODY_BYTES)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    FacilitatorError::InvalidResponse(format!(
                        "{path}: body larger than {MAX_BODY_BYTES} bytes"
                    ))
                } else {
                    FacilitatorError::InvalidResponse(format!("{path}: reading the body: {e}"))
                }
            })?
            .to_bytes();
        Ok(Sent::Answered(status, bytes))
    }

    /// One call through reqwest (proxies, redirects).
    async fn send_reqwest(
        &self,
        endpoint: &Endpoint,
        body: Option<Bytes>,
    ) -> Result<(http::StatusCode, Bytes), FacilitatorError> {
        let path = endpoint.name;
        let url = endpoint.url.clone();
        let request = match body {
            Some(body) => self
                .reqwest
                .post(url)
                .headers(self.post_headers.clone())
                .body(body),
            None => self.reqwest.get(url).headers(self.get_headers.clone()),
        };
        let mut response = request.send().await.map_err(classify)?;
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
        Ok((status, Bytes::from(bytes)))
    }
}

/// How a call over the lean client ended.
enum Sent {
    /// A status other than a redirect, and the body.
    Answered(http::StatusCode, Bytes),
    /// A 3xx: the facilitator lives elsewhere.
    Redirected(http::StatusCode),
}

/// An error and its sources, on one line (hyper's own messages are terse).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
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
    // A connection that was never made (refused, or not made within the connect timeout)
    // delivered nothing, whatever the clock says.
    if error.is_connect() {
        FacilitatorError::Unreachable(error.to_string())
    } else if error.is_timeout() {
        FacilitatorError::Timeout(Duration::ZERO)
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
        self.call(&self.endpoints.verify, Some(request), |body| {
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
        self.call(&self.endpoints.settle, Some(request), |body| {
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
        let answer: SupportedResponse =
            self.call(&self.endpoints.supported, None, |_| None).await?;
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
