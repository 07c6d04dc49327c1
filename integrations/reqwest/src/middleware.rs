//! The middleware: send, meet a 402, choose, sign, retry once, report.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use alloy_primitives::Address;
use bytes::Bytes;
use http::{Extensions, HeaderMap, HeaderName, HeaderValue, StatusCode};
use reqwest::{Request, Response, ResponseBuilderExt, Url};
use reqwest_middleware::{ClientWithMiddleware, Middleware, Next};
use serde_json::Value;
use x402_client::challenge::MAX_CHALLENGE_HEADER_BYTES;
use x402_client::{
    ApprovePayment, Challenge, ChallengeError, ConfigError, LimitUnit, Payer, PayerBuilder,
    PaymentKey, PaymentRecord, PaymentSigner, PaymentStatus, RequestId, ReuseCache, SignedPayment,
    SolanaPaymentSigner, X402Error, unix_now,
};
use x402_protocol::facilitator::SettleResponse;
use x402_protocol::{AssetInfo, NetworkInfo, NetworkRegistry, ProtocolVersion, codec, headers};

use crate::entitlement::{ENTITLEMENT_HEADER, ENTITLEMENT_REASON_PREFIX, Entitlements, Presented};
use crate::hooks::{AfterPayment, Hooks, OnPaymentFailure, PaymentFailure};

/// The most of a 401/402 body read to find a challenge or a reason.
const MAX_ERROR_BODY_BYTES: usize = 1024 * 1024;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The identity of a logical request for payment reuse: the caller's [`PaymentKey`], else its
/// method, URL and body.
fn request_id(request: &Request, key: Option<&PaymentKey>) -> RequestId {
    if let Some(key) = key {
        return RequestId::from_key(key);
    }
    let method = request.method().as_str().as_bytes();
    let url = request.url().as_str().as_bytes();
    match request.body().map(|b| b.as_bytes()) {
        Some(Some(body)) => RequestId::from_parts([method, url, body]),
        // A streamed body cannot be resent, so it can never be retried with a payment anyway;
        // any key will do.
        Some(None) => RequestId::from_parts([method, url, b"\0stream".as_slice()]),
        None => RequestId::from_parts([method, url]),
    }
}

/// The header carrying a signed payment, marked sensitive (never logged).
fn payment_header(
    signed: &SignedPayment,
    url: &Url,
) -> Result<(HeaderName, HeaderValue), X402Error> {
    let mut value =
        HeaderValue::from_str(signed.header_value()).map_err(|e| X402Error::Prepare {
            url: url.to_string(),
            message: format!("the payment header is not a valid header value: {e}"),
        })?;
    value.set_sensitive(true);
    Ok((HeaderName::from_static(signed.header_name()), value))
}

/// Pays x402 `402 Payment Required` responses for a
/// [`reqwest_middleware`] client.
///
/// On a 402 it reads the v2 `PAYMENT-REQUIRED` header (or, without one, a v1 JSON body),
/// picks the best offer it is allowed to pay, asks the approval hook, signs an EIP-3009
/// authorization and sends the request once more with `PAYMENT-SIGNATURE` (v2) or `X-PAYMENT`
/// (v1). The response comes back with a [`PaymentRecord`] in its extensions
/// ([`PaymentResponseExt::payment`]).
///
/// It is cheap to clone; clones share caps, budget, history, kept authorizations and
/// entitlement tokens.
///
/// ```no_run
/// use reqwest_x402::{PaymentResponseExt, X402Middleware};
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let x402 = X402Middleware::builder(reqwest_x402::key_from_env("X402_PRIVATE_KEY")?)
///     .max_per_request("$0.05")
///     .budget("$2")
///     .prefer_networks(["base"])
///     .build()?;
/// let client = x402.client()?;
///
/// let response = client.get("https://api.example.com/weather").send().await?;
/// if let Some(payment) = response.payment() {
///     eprintln!("paid {}", payment.summary());
/// }
/// println!("{}", response.text().await?);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct X402Middleware {
    inner: Arc<Inner>,
}

struct Inner {
    payer: Payer,
    reuse: Mutex<ReuseCache>,
    entitlements: Option<Mutex<Entitlements>>,
    pending: PendingRetries,
    hooks: Hooks,
}

/// How a payment whose settlement is pending (504 `settlement_pending`) is sent again: the
/// same authorization, after `first`, doubling up to `max_delay`, at most `attempts` times.
#[derive(Debug, Clone, Copy)]
struct PendingRetries {
    attempts: u32,
    first: Duration,
    max_delay: Duration,
}

impl Default for PendingRetries {
    fn default() -> Self {
        PendingRetries {
            attempts: 5,
            first: Duration::from_secs(1),
            max_delay: Duration::from_secs(8),
        }
    }
}

impl PendingRetries {
    fn delay(&self, retry: u32) -> Duration {
        self.first
            .saturating_mul(1u32 << retry.min(16))
            .min(self.max_delay)
    }
}

/// Whether a receipt says the settlement is pending (submitted, outcome not known yet).
fn is_pending(receipt: Option<&SettleResponse>) -> bool {
    receipt.is_some_and(|r| !r.success && r.error_reason.as_deref() == Some(SETTLEMENT_PENDING))
}

const SETTLEMENT_PENDING: &str = "settlement_pending";

impl std::fmt::Debug for X402Middleware {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("X402Middleware")
            .field("payer", &self.inner.payer)
            .field("entitlements", &self.inner.entitlements.is_some())
            .field("hooks", &self.inner.hooks)
            .finish_non_exhaustive()
    }
}

/// Configures an [`X402Middleware`]. The payment settings are those of
/// [`x402_client::PayerBuilder`]; this builder adds the HTTP-only ones.
#[must_use]
pub struct X402MiddlewareBuilder {
    payer: PayerBuilder,
    entitlements: bool,
    pending: PendingRetries,
    hooks: Hooks,
}

impl X402MiddlewareBuilder {
    /// Pays Solana offers too, with `signer` (feature `svm`: `x402_svm::SolanaWallet`). See
    /// [`PayerBuilder::solana`].
    pub fn solana(mut self, signer: impl SolanaPaymentSigner) -> Self {
        self.payer = self.payer.solana(signer);
        self
    }

    /// Replaces the networks and tokens the client knows (default:
    /// [`NetworkRegistry::builtin`]). Only offers on known networks, in known tokens, are paid.
    pub fn registry(mut self, registry: NetworkRegistry) -> Self {
        self.payer = self.payer.registry(registry);
        self
    }

    /// Adds a network, such as a local dev chain.
    pub fn network(mut self, network: NetworkInfo) -> Self {
        self.payer = self.payer.network(network);
        self
    }

    /// Adds a token on a known network (by v1 name or CAIP-2 id).
    pub fn asset(mut self, network: &str, asset: AssetInfo) -> Self {
        self.payer = self.payer.asset(network, asset);
        self
    }

    /// Pays only on these networks (v1 names or CAIP-2 ids).
    pub fn networks<I, S>(mut self, networks: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.payer = self.payer.networks(networks);
        self
    }

    /// Prefers these networks, in this order, over cheaper offers elsewhere.
    pub fn prefer_networks<I, S>(mut self, networks: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.payer = self.payer.prefer_networks(networks);
        self
    }

    /// Prefers these tokens (symbols such as `USDC`, or contract addresses), in this order,
    /// over cheaper offers in other tokens.
    pub fn prefer_assets<I, S>(mut self, assets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.payer = self.payer.prefer_assets(assets);
        self
    }

    /// Caps what one request may cost: `"$0.10"` (every USD stablecoin), `"0.10"` (dollars
    /// too) or `"5 EURC"` (that token). Call again to cap other units. The first call replaces
    /// the default cap of [`DEFAULT_MAX_PER_REQUEST`](crate::DEFAULT_MAX_PER_REQUEST); tokens no
    /// cap covers are not paid. See [`policy`](crate::policy) for units.
    pub fn max_per_request(mut self, limit: &str) -> Self {
        self.payer = self.payer.max_per_request(limit);
        self
    }

    /// Removes every per-request cap, including the default one. Only the budget (if any) and
    /// the approval hook then stand between a server and your funds.
    pub fn no_per_request_cap(mut self) -> Self {
        self.payer = self.payer.no_per_request_cap();
        self
    }

    /// Caps the total of all payments this client signs: `"$5"` or `"20 EURC"`; call again for
    /// other units. Without a budget the total is unlimited; with one, tokens no budget covers
    /// are not paid.
    pub fn budget(mut self, limit: &str) -> Self {
        self.payer = self.payer.budget(limit);
        self
    }

    /// Asks `hook` before every payment; it can refuse. See [`ApprovePayment`].
    pub fn approve(mut self, hook: impl ApprovePayment) -> Self {
        self.payer = self.payer.approve(hook);
        self
    }

    /// Runs `hook` once a paid request got its answer and the payment went through (settled,
    /// or a success without a receipt), with the payment's record and its settlement receipt.
    /// See [`hooks`](crate::hooks).
    pub fn after_payment(mut self, hook: impl AfterPayment) -> Self {
        self.hooks.after_payment = Some(Arc::new(hook));
        self
    }

    /// Runs `hook` when a server answers a Permit2 payment with 412
    /// `permit2_allowance_required`: it gives Permit2 the allowance (an ERC-20 approval by the
    /// payer), and on `Ok` the same payment is sent once more. Without it the 412 is the
    /// answer. See [`ApprovePermit2`](crate::hooks::ApprovePermit2).
    pub fn approve_permit2(mut self, hook: impl crate::hooks::ApprovePermit2) -> Self {
        self.hooks.permit2 = Some(Arc::new(hook));
        self
    }

    /// Runs `hook` when a 402 is not paid (no acceptable offer, the approval hook refused, the
    /// signer failed) or a payment sent is not taken (refused, settlement failed or still
    /// pending, handler failed, no answer). See [`hooks`](crate::hooks).
    pub fn on_payment_failure(mut self, hook: impl OnPaymentFailure) -> Self {
        self.hooks.on_failure = Some(Arc::new(hook));
        self
    }

    /// Keeps entitlement tokens servers return and sends them back (default: on). See
    /// [`entitlement`](crate::entitlement).
    pub fn entitlements(mut self, enabled: bool) -> Self {
        self.entitlements = enabled;
        self
    }

    /// How a payment whose settlement the server reports pending (504 `settlement_pending`:
    /// submitted, outcome not known yet) is retried: with the same authorization (never a new
    /// signature), first after `first_delay`, doubling up to 8 s, at most `attempts` times
    /// (default 5 attempts from 1 s). `attempts = 0` hands the 504 to the caller at once; the
    /// authorization is then kept, so sending the same request again reuses it.
    pub fn settlement_retries(mut self, attempts: u32, first_delay: Duration) -> Self {
        self.pending.attempts = attempts;
        self.pending.first = first_delay;
        self.pending.max_delay = self.pending.max_delay.max(first_delay);
        self
    }

    /// How many payments the history keeps (default 1000; the oldest go first).
    pub fn history_limit(mut self, limit: usize) -> Self {
        self.payer = self.payer.history_limit(limit);
        self
    }

    /// Builds the middleware, reporting the first configuration mistake.
    pub fn build(self) -> Result<X402Middleware, ConfigError> {
        let mut middleware = X402Middleware::with_payer(self.payer.build()?, self.entitlements);
        if let Some(inner) = Arc::get_mut(&mut middleware.inner) {
            inner.pending = self.pending;
            inner.hooks = self.hooks;
        }
        Ok(middleware)
    }
}

impl X402Middleware {
    /// Starts configuring a middleware that pays from `signer`'s address on EVM chains (add a
    /// Solana signer with [`X402MiddlewareBuilder::solana`]).
    pub fn builder(signer: impl PaymentSigner) -> X402MiddlewareBuilder {
        Self::from_payer_builder(Payer::builder(signer))
    }

    /// Starts configuring a middleware that pays only on Solana, from `signer`'s address
    /// (feature `svm`: `x402_svm::SolanaWallet`); EVM offers are refused.
    pub fn solana_builder(signer: impl SolanaPaymentSigner) -> X402MiddlewareBuilder {
        Self::from_payer_builder(Payer::solana_builder(signer))
    }

    fn from_payer_builder(payer: PayerBuilder) -> X402MiddlewareBuilder {
        X402MiddlewareBuilder {
            payer,
            entitlements: true,
            pending: PendingRetries::default(),
            hooks: Hooks::default(),
        }
    }

    /// A middleware that pays with an existing [`Payer`], sharing its caps, budget, approval
    /// hook and history with every other user of that payer (an `rmcp-x402` MCP client, say).
    /// Entitlement tokens are kept.
    ///
    /// ```
    /// use reqwest_x402::{LocalSigner, Payer, X402Middleware};
    ///
    /// let payer = Payer::builder(LocalSigner::random()).budget("$1").build()?;
    /// let x402 = X402Middleware::from_payer(payer.clone());
    /// assert_eq!(x402.address(), payer.address());
    /// # Ok::<(), reqwest_x402::ConfigError>(())
    /// ```
    pub fn from_payer(payer: Payer) -> Self {
        Self::with_payer(payer, true)
    }

    fn with_payer(payer: Payer, entitlements: bool) -> Self {
        X402Middleware {
            inner: Arc::new(Inner {
                payer,
                reuse: Mutex::new(ReuseCache::default()),
                entitlements: entitlements.then(|| Mutex::new(Entitlements::default())),
                pending: PendingRetries::default(),
                hooks: Hooks::default(),
            }),
        }
    }

    /// A reqwest client with a cookie store (so cookies servers set are kept), a redirect
    /// policy that never carries a payment to another origin ([`same_origin_redirects`]), and
    /// this middleware.
    pub fn client(&self) -> Result<ClientWithMiddleware, reqwest::Error> {
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(same_origin_redirects())
            .build()?;
        Ok(self.wrap(client))
    }

    /// Wraps an existing reqwest client with this middleware.
    ///
    /// reqwest follows redirects inside the client, below this middleware, and keeps custom
    /// headers across hosts: a paid request that is redirected elsewhere would hand the signed
    /// payment to that other host, which could spend it on the original server. Build the
    /// client with [`same_origin_redirects`] (as [`client`](Self::client) does) or with
    /// `reqwest::redirect::Policy::none()`.
    pub fn wrap(&self, client: reqwest::Client) -> ClientWithMiddleware {
        reqwest_middleware::ClientBuilder::new(client)
            .with(self.clone())
            .build()
    }

    /// The payer: caps, budget, approval hook and history (shareable with other transports).
    pub fn payer(&self) -> &Payer {
        &self.inner.payer
    }

    /// The EVM paying address (the zero address for a Solana-only client; see
    /// [`Payer::address`]).
    pub fn address(&self) -> Address {
        self.inner.payer.address()
    }

    /// The networks and tokens the client knows.
    pub fn registry(&self) -> &NetworkRegistry {
        self.inner.payer.registry()
    }

    /// Every payment signed so far (up to the history limit), oldest first.
    pub fn history(&self) -> Vec<PaymentRecord> {
        self.inner.payer.history()
    }

    /// What has been committed per unit (`USD`, `EURC`…), for people.
    pub fn spent(&self) -> Vec<(LimitUnit, String)> {
        self.inner.payer.spent()
    }

    /// What is left of each budget, for people; empty without a budget.
    pub fn remaining_budget(&self) -> Vec<(LimitUnit, String)> {
        self.inner.payer.remaining_budget()
    }

    /// The origins and path scopes for which an entitlement token is held (never the tokens).
    pub fn entitlement_scopes(&self) -> Vec<(String, String)> {
        self.inner
            .entitlements
            .as_ref()
            .map(|e| lock(e).scopes())
            .unwrap_or_default()
    }
}

/// Reading the payment back from a response the middleware returned.
pub trait PaymentResponseExt {
    /// The payment made for this response, if one was.
    fn payment(&self) -> Option<&PaymentRecord>;
    /// The decoded settlement receipt (`PAYMENT-RESPONSE` / `X-PAYMENT-RESPONSE`), if any.
    fn settlement(&self) -> Option<&SettleResponse>;
}

impl PaymentResponseExt for Response {
    fn payment(&self) -> Option<&PaymentRecord> {
        self.extensions().get::<PaymentRecord>()
    }

    fn settlement(&self) -> Option<&SettleResponse> {
        self.payment().and_then(|p| p.receipt.as_ref())
    }
}

#[async_trait::async_trait]
impl Middleware for X402Middleware {
    async fn handle(
        &self,
        request: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        self.inner.handle(request, extensions, next).await
    }
}

/// Reads a response body (up to a limit) and rebuilds an identical response around it.
async fn buffer(mut response: Response) -> reqwest_middleware::Result<(Response, Bytes)> {
    let url = response.url().clone();
    let status = response.status();
    let version = response.version();
    let headers = std::mem::take(response.headers_mut());
    let extensions = std::mem::take(response.extensions_mut());
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > MAX_ERROR_BODY_BYTES {
            return Err(reqwest_middleware::Error::middleware(
                X402Error::Challenge {
                    url: url.to_string(),
                    error: ChallengeError::Malformed(format!(
                        "the {status} body is larger than {MAX_ERROR_BODY_BYTES} bytes"
                    )),
                },
            ));
        }
        body.extend_from_slice(&chunk);
    }
    let body = Bytes::from(body);
    let mut rebuilt = http::Response::builder()
        .url(url.clone())
        .body(body.clone())
        .map_err(|e| {
            reqwest_middleware::Error::middleware(X402Error::Prepare {
                url: url.to_string(),
                message: format!("could not rebuild the response: {e}"),
            })
        })?;
    *rebuilt.status_mut() = status;
    *rebuilt.version_mut() = version;
    *rebuilt.headers_mut() = headers;
    rebuilt.extensions_mut().extend(extensions);
    Ok((Response::from(rebuilt), body))
}

/// A string field of a JSON body.
fn body_text(body: &[u8], key: &str) -> Option<String> {
    serde_json::from_slice::<Value>(body)
        .ok()?
        .get(key)?
        .as_str()
        .map(str::to_owned)
}

/// The `error` a 401/402 gives: the v2 header's, else the JSON body's.
fn refusal_reason(headers: &HeaderMap, body: &[u8]) -> Option<String> {
    headers
        .get(headers::PAYMENT_REQUIRED)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| codec::decode::<Value>(v, MAX_CHALLENGE_HEADER_BYTES).ok())
        .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned))
        .or_else(|| body_text(body, "error"))
}

/// The settlement receipt a response carries, in either generation's header.
fn receipt_of(response: &Response) -> Option<SettleResponse> {
    [ProtocolVersion::V2, ProtocolVersion::V1]
        .iter()
        .find_map(|v| response.headers().get(v.settlement_header()))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| codec::decode::<SettleResponse>(v, MAX_CHALLENGE_HEADER_BYTES).ok())
}

fn is_payment_header(name: &str) -> bool {
    name.eq_ignore_ascii_case(headers::X_PAYMENT)
        || name.eq_ignore_ascii_case(headers::PAYMENT_SIGNATURE)
}

impl Inner {
    async fn handle(
        &self,
        mut request: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        // The caller is paying by hand: stay out of the way, and never pay a second time.
        if request
            .headers()
            .keys()
            .any(|n| is_payment_header(n.as_str()))
        {
            let response = next.run(request, extensions).await?;
            self.capture_entitlement(response.url().clone(), response.headers());
            return Ok(response);
        }
        let key = extensions.get::<PaymentKey>().cloned();
        let method = request.method().to_string();
        let url = request.url().clone();
        let presented = self.present_entitlement(&mut request);

        // An authorization already signed for this request and not consumed: send it again
        // rather than sign a second one. (Identifying a request hashes its body; skip that
        // while nothing is kept.)
        let kept = {
            let mut reuse = lock(&self.reuse);
            if reuse.is_empty() {
                None
            } else {
                let id = request_id(&request, key.as_ref());
                reuse.take(&id, unix_now()).map(|signed| (id, signed))
            }
        };
        if let Some((id, signed)) = kept {
            tracing::info!(target: "x402::client", %url, nonce = %signed.record.nonce, "reusing the authorization signed for this request");
            let (name, value) =
                payment_header(&signed, &url).map_err(reqwest_middleware::Error::middleware)?;
            request.headers_mut().insert(name, value);
            return self.send_paid(request, signed, id, extensions, next).await;
        }

        let mut template = request.try_clone();
        let mut response = next.clone().run(request, extensions).await?;
        self.capture_entitlement(url.clone(), response.headers());

        if let Some(presented) = &presented
            && matches!(response.status().as_u16(), 401 | 402)
        {
            let (buffered, body) = buffer(response).await?;
            response = buffered;
            let reason = refusal_reason(response.headers(), &body);
            if reason.is_some_and(|r| r.starts_with(ENTITLEMENT_REASON_PREFIX)) {
                tracing::info!(target: "x402::client", %url, "the server refused an entitlement token; dropping it");
                if let Some(store) = &self.entitlements {
                    lock(store).drop_presented(presented);
                }
                if let Some(t) = template.as_mut() {
                    t.headers_mut().remove(ENTITLEMENT_HEADER);
                }
                if response.status() == StatusCode::UNAUTHORIZED {
                    // Ask again without the token; a 402 to that is paid below.
                    let Some(again) = template.as_ref().and_then(Request::try_clone) else {
                        return Ok(response);
                    };
                    response = next.clone().run(again, extensions).await?;
                    self.capture_entitlement(url.clone(), response.headers());
                }
            }
        }

        if response.status() != StatusCode::PAYMENT_REQUIRED {
            return Ok(response);
        }
        let (response, challenge) = self.read_challenge(response, &url).await?;
        let Some(challenge) = challenge else {
            return Ok(response); // A 402 of some other payment scheme: not ours to answer.
        };
        let Some(mut paid) = template else {
            let error = X402Error::BodyNotReplayable {
                url: url.to_string(),
            };
            self.hooks
                .on_failure(PaymentFailure::not_signed(&method, url.as_str(), &error))
                .await;
            return Err(reqwest_middleware::Error::middleware(error));
        };
        let signed = self
            .payer
            .pay(&method, url.as_str(), &challenge)
            .await
            .and_then(|signed| payment_header(&signed, &url).map(|header| (signed, header)));
        let (signed, (name, value)) = match signed {
            Ok(signed) => signed,
            Err(error) => {
                self.hooks
                    .on_failure(PaymentFailure::not_signed(&method, url.as_str(), &error))
                    .await;
                return Err(reqwest_middleware::Error::middleware(error));
            }
        };
        // The copy has the original's method, URL and body: the same identity.
        let id = request_id(&paid, key.as_ref());
        paid.headers_mut().insert(name, value);
        self.send_paid(paid, signed, id, extensions, next).await
    }

    /// Reads the challenge of a 402; `None` when it is not an x402 challenge.
    async fn read_challenge(
        &self,
        response: Response,
        url: &Url,
    ) -> reqwest_middleware::Result<(Response, Option<Challenge>)> {
        let header = response
            .headers()
            .get(headers::PAYMENT_REQUIRED)
            .map(|v| v.to_str().map(str::to_owned));
        if let Some(Ok(value)) = &header
            && let Ok(challenge) = Challenge::from_header(value)
        {
            return Ok((response, Some(challenge)));
        }
        let (response, body) = buffer(response).await?;
        let header = match &header {
            Some(Ok(value)) => Some(value.as_str()),
            // A header that is not even text is as unreadable as a malformed one.
            Some(Err(_)) => Some(""),
            None => None,
        };
        match Challenge::parse(header, &body) {
            Ok(challenge) => Ok((response, Some(challenge))),
            Err(ChallengeError::NotX402) => Ok((response, None)),
            Err(error) => Err(reqwest_middleware::Error::middleware(
                X402Error::Challenge {
                    url: url.to_string(),
                    error,
                },
            )),
        }
    }

    fn present_entitlement(&self, request: &mut Request) -> Option<Presented> {
        let store = self.entitlements.as_ref()?;
        if request.headers().contains_key(ENTITLEMENT_HEADER) {
            return None; // set by the caller
        }
        let (token, presented) = lock(store).for_url(request.url())?;
        request.headers_mut().insert(ENTITLEMENT_HEADER, token);
        Some(presented)
    }

    fn capture_entitlement(&self, url: Url, headers: &HeaderMap) {
        if let Some(store) = &self.entitlements {
            lock(store).capture(&url, headers);
        }
    }

    /// Sends a request carrying a payment and reports what became of the payment.
    async fn send_paid(
        &self,
        request: Request,
        signed: SignedPayment,
        id: RequestId,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let url = request.url().clone();
        let mut signed = signed;
        let mut request = request;
        let mut retry = 0;
        let mut approved = false;
        let response = loop {
            signed.record.attempts += 1;
            self.payer.update(&signed.record);
            let copy = request.try_clone();
            let response = match next.clone().run(request, extensions).await {
                Ok(response) => response,
                Err(error) => break Err(error),
            };
            let pending = is_pending(receipt_of(&response).as_ref());
            if response.status() == StatusCode::PRECONDITION_FAILED && !approved {
                let (answer, body) = buffer(response).await?;
                let allowance = body_text(&body, "error").as_deref()
                    == Some(
                        x402_client::x402_protocol::Reason::PERMIT2_ALLOWANCE_REQUIRED.as_str(),
                    );
                let needed = crate::hooks::Permit2Allowance {
                    network: signed.record.network.clone(),
                    token: signed.record.asset.address.as_evm().unwrap_or_default(),
                    owner: signed.record.payer.as_evm().unwrap_or_default(),
                    amount: signed.record.amount,
                    spender: x402_client::x402_protocol::permit2::PERMIT2_ADDRESS,
                };
                match copy {
                    Some(copy)
                        if allowance && self.hooks.approve_permit2(&needed, url.as_str()).await =>
                    {
                        // The payment was refused before anything was used: the same one goes
                        // again, now that Permit2 may move the token.
                        tracing::info!(target: "x402::client", %url, "Permit2 allowance made; sending the same payment again");
                        approved = true;
                        request = copy;
                        continue;
                    }
                    _ => break Ok(answer),
                }
            }
            match copy {
                Some(copy) if pending && retry < self.pending.attempts => {
                    // Submitted, outcome unknown: the same authorization, later. Signing a new
                    // one could pay twice.
                    let delay = self.pending.delay(retry);
                    tracing::info!(target: "x402::client", %url, nonce = %signed.record.nonce, ?delay, "settlement pending; sending the same payment again");
                    tokio::time::sleep(delay).await;
                    retry += 1;
                    request = copy;
                }
                _ => break Ok(response),
            }
        };
        let response = match response {
            Ok(response) => response,
            Err(error) => {
                // No answer: the server may or may not hold the payment. Keep it, so the same
                // request sent again carries the same authorization and is paid at most once.
                tracing::warn!(target: "x402::client", %url, %error, "paid request failed without an answer; keeping its authorization for a retry");
                let record = signed.record.clone();
                lock(&self.reuse).put(id, signed);
                self.hooks
                    .on_failure(PaymentFailure::NoAnswer(record))
                    .await;
                return Err(error);
            }
        };
        self.capture_entitlement(url.clone(), response.headers());
        let receipt = receipt_of(&response);
        let status_code = response.status();
        let (mut response, status) = match &receipt {
            Some(r) if r.success => (
                response,
                PaymentStatus::Settled {
                    transaction: r.transaction.clone(),
                },
            ),
            Some(r) => (
                response,
                PaymentStatus::Rejected {
                    reason: r
                        .error_reason
                        .clone()
                        .unwrap_or_else(|| "settlement_failed".to_owned()),
                    message: r.error_message.clone(),
                },
            ),
            None if status_code == StatusCode::PAYMENT_REQUIRED => {
                let (response, body) = buffer(response).await?;
                // A dual server's v2 header has only the reason; its v1 body also explains.
                let status = PaymentStatus::Rejected {
                    reason: refusal_reason(response.headers(), &body)
                        .unwrap_or_else(|| "payment_rejected".to_owned()),
                    message: body_text(&body, "message"),
                };
                (response, status)
            }
            None if status_code.is_client_error() || status_code.is_server_error() => (
                response,
                PaymentStatus::NotSettled {
                    status: status_code.as_u16(),
                },
            ),
            None => (
                response,
                PaymentStatus::Unconfirmed {
                    status: status_code.as_u16(),
                },
            ),
        };
        signed.record.status = status;
        signed.record.receipt = receipt;
        self.payer.update(&signed.record);
        tracing::info!(target: "x402::client", summary = %signed.record.summary(), "payment answered");
        let pending = is_pending(signed.record.receipt.as_ref());
        if matches!(signed.record.status, PaymentStatus::NotSettled { .. }) || pending {
            // Not settled (the handler failed), or settling still: the authorization is good
            // for this request, and is what a retry of it sends.
            lock(&self.reuse).put(id, signed.clone());
        }
        match PaymentFailure::of_record(&signed.record, pending) {
            Some(failure) => self.hooks.on_failure(failure).await,
            None => self.hooks.after_payment(&signed.record).await,
        }
        response.extensions_mut().insert(signed.record);
        Ok(response)
    }
}

/// The [`X402Error`] inside a middleware error, if that is what it is.
///
/// ```no_run
/// # async fn demo(client: reqwest_middleware::ClientWithMiddleware) {
/// match client.get("https://api.example.com/report").send().await {
///     Ok(response) => println!("{}", response.status()),
///     Err(error) => match reqwest_x402::payment_error(&error) {
///         Some(refused) => eprintln!("not paid: {refused}"),
///         None => eprintln!("request failed: {error}"),
///     },
/// }
/// # }
/// ```
pub fn payment_error(error: &reqwest_middleware::Error) -> Option<&X402Error> {
    match error {
        reqwest_middleware::Error::Middleware(e) => e.downcast_ref::<X402Error>(),
        reqwest_middleware::Error::Reqwest(_) => None,
    }
}

/// A redirect policy that follows at most 10 redirects and only within the origin (scheme,
/// host and port) of the original request, so a payment header is never carried to another
/// server. A cross-origin redirect is returned to the caller as is.
///
/// ```
/// let client = reqwest::Client::builder()
///     .redirect(reqwest_x402::same_origin_redirects())
///     .build()?;
/// # let _ = client; Ok::<(), reqwest::Error>(())
/// ```
pub fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let same_origin = attempt
            .previous()
            .first()
            .is_some_and(|first| first.origin() == attempt.url().origin());
        if !same_origin {
            attempt.stop()
        } else if attempt.previous().len() > 10 {
            attempt.error("too many redirects")
        } else {
            attempt.follow()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: reqwest::Method, url: &str, body: &'static str) -> Request {
        let mut request = Request::new(method, url.parse().unwrap());
        *request.body_mut() = Some(body.into());
        request
    }

    #[test]
    fn requests_are_identified_by_method_url_and_body_or_by_key() {
        let post = |body| request_id(&request(reqwest::Method::POST, "http://a/x", body), None);
        assert_eq!(post("1"), post("1"));
        assert_ne!(post("1"), post("2"));
        let other_url = request_id(&request(reqwest::Method::POST, "http://a/y", "1"), None);
        assert_ne!(post("1"), other_url);
        let get = request_id(&request(reqwest::Method::GET, "http://a/x", "1"), None);
        assert_ne!(post("1"), get);
        let key = PaymentKey::new("order-1");
        assert_eq!(
            request_id(
                &request(reqwest::Method::POST, "http://a/x", "1"),
                Some(&key)
            ),
            request_id(&request(reqwest::Method::GET, "http://b/", ""), Some(&key))
        );
    }
}
