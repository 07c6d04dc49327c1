//! The middleware: send, meet a 402, choose, sign, retry once, report.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use alloy_primitives::Address;
use bytes::Bytes;
use http::{Extensions, HeaderMap, HeaderValue, StatusCode};
use reqwest::{Request, Response, ResponseBuilderExt, Url};
use reqwest_middleware::{ClientWithMiddleware, Middleware, Next};
use serde_json::{Map, Value, json};
use x402_protocol::client::prepare_payment;
use x402_protocol::eip3009::RecoveryBackend;
use x402_protocol::facilitator::{PaymentRequirements, SettleResponse};
use x402_protocol::{AssetInfo, NetworkInfo, NetworkRegistry, ProtocolVersion, codec, headers, v1};

use crate::approve::{Approval, ApprovePayment, PaymentProposal};
use crate::cache::{PaymentKey, RequestId, ReuseCache, SignedHeader};
use crate::challenge::{Challenge, ChallengeError, MAX_CHALLENGE_HEADER_BYTES};
use crate::entitlement::{ENTITLEMENT_HEADER, ENTITLEMENT_REASON_PREFIX, Entitlements, Presented};
use crate::error::{ConfigError, X402Error};
use crate::policy::{Candidate, Ledger, LimitUnit, Policy, PolicySettings, Refusal, parse_limit};
use crate::record::{PaymentRecord, PaymentStatus};
use crate::signer::PaymentSigner;

/// A freshly signed payment header.
struct Signed {
    value: HeaderValue,
    nonce: alloy_primitives::B256,
    valid_before: u64,
}

/// The most of a 401/402 body read to find a challenge or a reason.
const MAX_ERROR_BODY_BYTES: usize = 1024 * 1024;

/// Payments kept in the history by default.
const DEFAULT_HISTORY_LIMIT: usize = 1000;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
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
    signer: Arc<dyn PaymentSigner>,
    payer: Address,
    policy: Policy,
    ledger: Mutex<Ledger>,
    approver: Option<Arc<dyn ApprovePayment>>,
    history: Mutex<Vec<PaymentRecord>>,
    history_limit: usize,
    reuse: Mutex<ReuseCache>,
    entitlements: Option<Mutex<Entitlements>>,
}

impl std::fmt::Debug for X402Middleware {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("X402Middleware")
            .field("payer", &self.inner.payer)
            .field("policy", &self.inner.policy)
            .field("approval_hook", &self.inner.approver.is_some())
            .field("entitlements", &self.inner.entitlements.is_some())
            .finish_non_exhaustive()
    }
}

/// Configures an [`X402Middleware`].
#[must_use]
pub struct X402MiddlewareBuilder {
    signer: Arc<dyn PaymentSigner>,
    registry: NetworkRegistry,
    settings: PolicySettings,
    approver: Option<Arc<dyn ApprovePayment>>,
    entitlements: bool,
    history_limit: usize,
    error: Option<ConfigError>,
}

impl X402MiddlewareBuilder {
    fn fail(mut self, error: ConfigError) -> Self {
        self.error.get_or_insert(error);
        self
    }

    /// Replaces the networks and tokens the client knows (default:
    /// [`NetworkRegistry::builtin`]). Only offers on known networks, in known tokens, are paid.
    pub fn registry(mut self, registry: NetworkRegistry) -> Self {
        self.registry = registry;
        self
    }

    /// Adds a network, such as a local dev chain.
    pub fn network(mut self, network: NetworkInfo) -> Self {
        match self.registry.register_network(network) {
            Ok(_) => self,
            Err(e) => self.fail(e.into()),
        }
    }

    /// Adds a token on a known network (by v1 name or CAIP-2 id).
    pub fn asset(mut self, network: &str, asset: AssetInfo) -> Self {
        match self.registry.register_asset(network, asset) {
            Ok(_) => self,
            Err(e) => self.fail(e.into()),
        }
    }

    /// Pays only on these networks (v1 names or CAIP-2 ids).
    pub fn networks<I, S>(mut self, networks: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.settings.allowed = Some(networks.into_iter().map(Into::into).collect());
        self
    }

    /// Prefers these networks, in this order, over cheaper offers elsewhere.
    pub fn prefer_networks<I, S>(mut self, networks: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.settings.preferred_networks = networks.into_iter().map(Into::into).collect();
        self
    }

    /// Prefers these tokens (symbols such as `USDC`, or contract addresses), in this order,
    /// over cheaper offers in other tokens.
    pub fn prefer_assets<I, S>(mut self, assets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.settings.preferred_assets = assets.into_iter().map(Into::into).collect();
        self
    }

    /// Caps what one request may cost: `"$0.10"` (every USD stablecoin), `"0.10"` (dollars
    /// too) or `"5 EURC"` (that token). Call again to cap other units. The first call replaces
    /// the default cap of [`DEFAULT_MAX_PER_REQUEST`](crate::DEFAULT_MAX_PER_REQUEST); tokens no
    /// cap covers are not paid. See [`policy`](crate::policy) for units.
    pub fn max_per_request(mut self, limit: &str) -> Self {
        match parse_limit(limit) {
            Ok(limit) => {
                self.settings
                    .per_request
                    .get_or_insert_with(Vec::new)
                    .push(limit);
                self
            }
            Err(e) => self.fail(e.into()),
        }
    }

    /// Removes every per-request cap, including the default one. Only the budget (if any) and
    /// the approval hook then stand between a server and your funds.
    pub fn no_per_request_cap(mut self) -> Self {
        self.settings.per_request = Some(Vec::new());
        self
    }

    /// Caps the total of all payments this client signs: `"$5"` or `"20 EURC"`; call again for
    /// other units. Without a budget the total is unlimited; with one, tokens no budget covers
    /// are not paid.
    pub fn budget(mut self, limit: &str) -> Self {
        match parse_limit(limit) {
            Ok(limit) => {
                self.settings
                    .budget
                    .get_or_insert_with(Vec::new)
                    .push(limit);
                self
            }
            Err(e) => self.fail(e.into()),
        }
    }

    /// Asks `hook` before every payment; it can refuse. See [`ApprovePayment`].
    pub fn approve(mut self, hook: impl ApprovePayment) -> Self {
        self.approver = Some(Arc::new(hook));
        self
    }

    /// Keeps entitlement tokens servers return and sends them back (default: on). See
    /// [`entitlement`](crate::entitlement).
    pub fn entitlements(mut self, enabled: bool) -> Self {
        self.entitlements = enabled;
        self
    }

    /// How many payments the history keeps (default 1000; the oldest go first).
    pub fn history_limit(mut self, limit: usize) -> Self {
        self.history_limit = limit;
        self
    }

    /// Builds the middleware, reporting the first configuration mistake.
    pub fn build(self) -> Result<X402Middleware, ConfigError> {
        if let Some(error) = self.error {
            return Err(error);
        }
        let policy = Policy::new(self.registry, self.settings)?;
        Ok(X402Middleware {
            inner: Arc::new(Inner {
                payer: self.signer.address(),
                signer: self.signer,
                policy,
                ledger: Mutex::new(Ledger::default()),
                approver: self.approver,
                history: Mutex::new(Vec::new()),
                history_limit: self.history_limit,
                reuse: Mutex::new(ReuseCache::default()),
                entitlements: self
                    .entitlements
                    .then(|| Mutex::new(Entitlements::default())),
            }),
        })
    }
}

impl X402Middleware {
    /// Starts configuring a middleware that pays from `signer`'s address.
    pub fn builder(signer: impl PaymentSigner) -> X402MiddlewareBuilder {
        X402MiddlewareBuilder {
            signer: Arc::new(signer),
            registry: NetworkRegistry::builtin(),
            settings: PolicySettings::default(),
            approver: None,
            entitlements: true,
            history_limit: DEFAULT_HISTORY_LIMIT,
            error: None,
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

    /// The paying address.
    pub fn address(&self) -> Address {
        self.inner.payer
    }

    /// The networks and tokens the client knows.
    pub fn registry(&self) -> &NetworkRegistry {
        &self.inner.policy.registry
    }

    /// Every payment signed so far (up to the history limit), oldest first.
    pub fn history(&self) -> Vec<PaymentRecord> {
        lock(&self.inner.history).clone()
    }

    /// What has been committed per unit (`USD`, `EURC`…), for people.
    pub fn spent(&self) -> Vec<(LimitUnit, String)> {
        lock(&self.inner.ledger).spent()
    }

    /// What is left of each budget, for people; empty without a budget.
    pub fn remaining_budget(&self) -> Vec<(LimitUnit, String)> {
        lock(&self.inner.ledger).remaining(&self.inner.policy)
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
                let id = RequestId::of(&request, key.as_ref());
                reuse.take(&id, unix_now()).map(|signed| (id, signed))
            }
        };
        if let Some((id, signed)) = kept {
            tracing::info!(target: "x402::client", %url, nonce = %signed.record.nonce, "reusing the authorization signed for this request");
            request
                .headers_mut()
                .insert(signed.name, signed.value.clone());
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
            return Err(reqwest_middleware::Error::middleware(
                X402Error::BodyNotReplayable {
                    url: url.to_string(),
                },
            ));
        };
        let signed = self
            .pay(&method, &url, &challenge)
            .await
            .map_err(reqwest_middleware::Error::middleware)?;
        // The copy has the original's method, URL and body: the same identity.
        let id = RequestId::of(&paid, key.as_ref());
        paid.headers_mut().insert(signed.name, signed.value.clone());
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

    /// Chooses an offer, commits it against the budget, asks the hook, signs, records.
    async fn pay(
        &self,
        method: &str,
        url: &Url,
        challenge: &Challenge,
    ) -> Result<SignedHeader, X402Error> {
        let policy = &self.policy;
        let (candidates, mut refusals) = policy.candidates(challenge);
        let mut chosen = None;
        {
            let mut ledger = lock(&self.ledger);
            for candidate in candidates {
                match ledger.reserve(policy, &candidate) {
                    Ok(reservation) => {
                        chosen = Some((candidate, reservation));
                        break;
                    }
                    Err(reason) => refusals.push(Refusal {
                        offer: challenge.accepts[candidate.index].describe(&policy.registry),
                        reason,
                    }),
                }
            }
        }
        let Some((candidate, reservation)) = chosen else {
            return Err(X402Error::NoPayableOffer {
                url: url.to_string(),
                refusals,
            });
        };
        let resource = challenge
            .resource_url()
            .map_or_else(|| url.to_string(), str::to_owned);
        let proposal = PaymentProposal {
            method: method.to_owned(),
            url: url.to_string(),
            resource: resource.clone(),
            description: description(challenge, &candidate),
            version: challenge.version,
            network: candidate.network.clone(),
            asset: candidate.asset.clone(),
            amount: candidate.amount(),
            pay_to: candidate.pay_to,
            requirements: candidate.requirements.clone(),
        };
        if let Some(approver) = &self.approver
            && let Approval::Refuse(reason) = approver.approve(&proposal).await
        {
            lock(&self.ledger).release(reservation);
            return Err(X402Error::NotApproved {
                proposal: Box::new(proposal),
                reason,
            });
        }
        let signed = match self.sign(url, challenge, &candidate).await {
            Ok(signed) => signed,
            Err(error) => {
                lock(&self.ledger).release(reservation);
                return Err(error);
            }
        };
        tracing::info!(
            target: "x402::client",
            amount = %proposal.amount_display(),
            network = %candidate.network,
            pay_to = %candidate.pay_to,
            %url,
            "paying"
        );
        let record = PaymentRecord {
            signed_at: SystemTime::now(),
            method: method.to_owned(),
            url: url.to_string(),
            resource,
            version: challenge.version,
            network: candidate.network,
            asset: candidate.asset,
            amount: proposal.amount,
            pay_to: candidate.pay_to,
            payer: self.payer,
            nonce: signed.nonce,
            valid_before: signed.valid_before,
            attempts: 0,
            status: PaymentStatus::Sent,
            receipt: None,
        };
        self.record(record.clone());
        Ok(SignedHeader {
            name: challenge.version.payment_header(),
            value: signed.value,
            record,
        })
    }

    /// Builds, signs and checks the payment header for the chosen offer.
    async fn sign(
        &self,
        url: &Url,
        challenge: &Challenge,
        candidate: &Candidate,
    ) -> Result<Signed, X402Error> {
        let resource = challenge.resource_info();
        let prepared = prepare_payment(
            &candidate.requirements,
            resource.as_ref(),
            self.payer,
            &self.policy.registry,
            unix_now(),
        )
        .map_err(|e| X402Error::Prepare {
            url: url.to_string(),
            message: e.to_string(),
        })?;
        let signature = self.signer.sign_digest(prepared.digest()).await?;
        // A signature that does not recover to the payer would be refused anyway; it may also
        // mean the signer is not who it claims to be. Do not send it.
        match RecoveryBackend::default().recover(&prepared.digest(), &signature) {
            Ok(recovered) if recovered == self.payer => {}
            Ok(recovered) => {
                return Err(X402Error::BadSignature {
                    expected: self.payer,
                    detail: format!("it recovers to {recovered}"),
                });
            }
            Err(e) => {
                return Err(X402Error::BadSignature {
                    expected: self.payer,
                    detail: e.to_string(),
                });
            }
        }
        let nonce = prepared.authorization().nonce;
        let valid_before = prepared.authorization().valid_before.saturating_to::<u64>();
        let payload = prepared.exact_payload(signature.to_vec());
        let json = match &candidate.requirements {
            PaymentRequirements::V1(r) => json!(v1::PaymentPayload {
                x402_version: Default::default(),
                scheme: r.scheme.clone(),
                network: r.network.clone(),
                payload: payload.clone().into(),
            }),
            PaymentRequirements::V2(_) => {
                // `accepted` is the entry exactly as offered (unknown fields included): servers
                // compare it with what they offered.
                let mut object = Map::new();
                object.insert("x402Version".into(), json!(2));
                if let Some(resource) = &challenge.resource {
                    object.insert("resource".into(), resource.clone());
                }
                object.insert(
                    "accepted".into(),
                    challenge.accepts[candidate.index].raw.clone(),
                );
                object.insert("payload".into(), json!(payload));
                if let Some(extensions) = &challenge.extensions {
                    object.insert("extensions".into(), extensions.clone());
                }
                Value::Object(object)
            }
        };
        let mut value =
            HeaderValue::from_str(&codec::encode(&json)).map_err(|e| X402Error::Prepare {
                url: url.to_string(),
                message: format!("the payment header is not a valid header value: {e}"),
            })?;
        value.set_sensitive(true);
        Ok(Signed {
            value,
            nonce,
            valid_before,
        })
    }

    /// Sends a request carrying a payment and reports what became of the payment.
    async fn send_paid(
        &self,
        request: Request,
        signed: SignedHeader,
        id: RequestId,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let url = request.url().clone();
        let mut signed = signed;
        signed.record.attempts += 1;
        self.sync(&signed.record);
        let response = match next.run(request, extensions).await {
            Ok(response) => response,
            Err(error) => {
                // No answer: the server may or may not hold the payment. Keep it, so the same
                // request sent again carries the same authorization and is paid at most once.
                tracing::warn!(target: "x402::client", %url, %error, "paid request failed without an answer; keeping its authorization for a retry");
                lock(&self.reuse).put(id, signed);
                return Err(error);
            }
        };
        self.capture_entitlement(url.clone(), response.headers());
        let receipt = [ProtocolVersion::V2, ProtocolVersion::V1]
            .iter()
            .find_map(|v| response.headers().get(v.settlement_header()))
            .and_then(|v| v.to_str().ok())
            .and_then(|v| codec::decode::<SettleResponse>(v, MAX_CHALLENGE_HEADER_BYTES).ok());
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
        self.sync(&signed.record);
        tracing::info!(target: "x402::client", summary = %signed.record.summary(), "payment answered");
        if matches!(signed.record.status, PaymentStatus::NotSettled { .. }) {
            // Not settled (the handler failed): the authorization is still good for this
            // request, and is what a retry of it sends.
            lock(&self.reuse).put(id, signed.clone());
        }
        response.extensions_mut().insert(signed.record);
        Ok(response)
    }

    fn record(&self, record: PaymentRecord) {
        let mut history = lock(&self.history);
        history.push(record);
        let excess = history.len().saturating_sub(self.history_limit.max(1));
        history.drain(..excess);
    }

    /// Copies a payment's new state into the history (if it is still there).
    fn sync(&self, record: &PaymentRecord) {
        let mut history = lock(&self.history);
        if let Some(kept) = history.iter_mut().rev().find(|r| r.nonce == record.nonce) {
            *kept = record.clone();
        }
    }
}

fn description(challenge: &Challenge, candidate: &Candidate) -> Option<String> {
    let from_resource = challenge
        .resource
        .as_ref()
        .and_then(|r| r.get("description"))
        .and_then(Value::as_str);
    let from_entry = match &candidate.requirements {
        PaymentRequirements::V1(r) => Some(r.description.as_str()),
        PaymentRequirements::V2(_) => None,
    };
    from_resource
        .or(from_entry)
        .filter(|d| !d.is_empty())
        .map(str::to_owned)
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
