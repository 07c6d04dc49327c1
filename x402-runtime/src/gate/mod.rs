//! The gate: request view + route spec → decision, and settlement after the handler.

use std::collections::HashMap;
use std::future::Future;
use std::str::FromStr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::Deserialize;
use x402_protocol::codec::{self, DecodeError};
use x402_protocol::facilitator::{
    FacilitatorRequest, PaymentPayload, PaymentRequirements, SettleResponse,
};
use x402_protocol::verify::select_requirement;
use x402_protocol::{Address, NetworkRegistry, Price, ProtocolVersion, Reason, U256, v1, v2};

use crate::challenge::{AcceptOption, Challenge, PreparedRoute};
use crate::clock::Clock;
use crate::entitlement::EntitlementKeys;
use crate::facilitator::{DevLedger, Facilitator, FacilitatorError};
use crate::grant::{GrantPlan, Scope};
use crate::payment::{Access, PaymentInfo};
use crate::rejection::Rejection;
use crate::request::{RequestView, ResourcePolicy};
use crate::response::{self, ResponseParts};
use crate::route::{DEFAULT_MAX_TIMEOUT_SECONDS, PriceSpec, RouteSpec, SettleMode};
use crate::store::{EntitlementStore, MAX_COUNTER, ReplayKey, ReplayStore, StoreError};

/// What a 402 without payment says.
const PAYMENT_REQUIRED_MESSAGE: &str =
    "send a payment in the PAYMENT-SIGNATURE (v2) or X-PAYMENT (v1) header";

/// Extra time a replay record outlives its authorization's `validBefore`.
const REPLAY_MARGIN: Duration = Duration::from_secs(60);

/// What to do with a request to a paid route.
#[derive(Debug)]
pub enum Decision {
    /// No payment: answer 402 with the ways to pay.
    Challenge(Rejection),
    /// The payment is verified (and, for `settle = "before"` routes, settled): run the
    /// handler, then call [`Gate::finish`] with its status.
    Verified(Box<Admission>),
    /// The payment, the request or the infrastructure failed: answer with the rejection.
    Rejected(Rejection),
}

impl Decision {
    /// `Ok` when the handler may run, otherwise the rejection to send.
    pub fn into_result(self) -> Result<Admission, Rejection> {
        match self {
            Decision::Verified(admission) => Ok(*admission),
            Decision::Challenge(rejection) | Decision::Rejected(rejection) => Err(rejection),
        }
    }
}

/// A request let through: what the handler may know, and what is left to do after it.
#[derive(Debug)]
pub struct Admission {
    /// The payment, for the handler.
    pub payment: PaymentInfo,
    /// Work left for after the handler; give it to [`Gate::finish`].
    pub pending: Pending,
}

/// Work still owed for an admitted request: settling its payment, or giving a drawn use or
/// balance back if the handler fails.
#[derive(Debug)]
pub struct Pending(pub(crate) PendingKind);

#[derive(Debug)]
pub(crate) enum PendingKind {
    /// A payment sent with this request.
    Payment(Box<PaymentPending>),
    /// A use or some balance drawn from a grant's counter.
    Drawn { id: String, amount: u64 },
    /// An entitlement without a counter: nothing to do.
    Nothing,
}

#[derive(Debug)]
pub(crate) struct PaymentPending {
    pub(crate) version: ProtocolVersion,
    pub(crate) request: FacilitatorRequest,
    pub(crate) replay_key: ReplayKey,
    pub(crate) challenge: Arc<Challenge>,
    pub(crate) settled: Option<SettleResponse>,
    pub(crate) grant: Option<GrantPlan>,
}

/// What to do with the handler's response once [`Gate::finish`] is done.
#[derive(Debug)]
pub enum Completion {
    /// Send the handler's response with these headers added.
    Deliver(Vec<(&'static str, String)>),
    /// Discard the handler's response and send this instead (settlement failed).
    Replace(ResponseParts),
}

/// Decides whether requests to paid routes may proceed, and settles their payments.
///
/// Build one with [`X402Builder`](crate::X402Builder); integrations share it behind an `Arc`.
pub struct Gate {
    pub(crate) facilitator: Arc<dyn Facilitator>,
    pub(crate) replay: Arc<dyn ReplayStore>,
    pub(crate) registry: Arc<NetworkRegistry>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) pay_to: Option<Address>,
    pub(crate) default_networks: Vec<String>,
    pub(crate) resource_policy: ResourcePolicy,
    pub(crate) facilitator_timeout: Duration,
    pub(crate) settlement_timeout: Duration,
    pub(crate) max_header_bytes: usize,
    pub(crate) max_authorization_lifetime: Duration,
    pub(crate) dev_ledger: Option<Arc<DevLedger>>,
    pub(crate) routes: RwLock<HashMap<usize, Arc<PreparedRoute>>>,
    pub(crate) entitlement_keys: EntitlementKeys,
    pub(crate) entitlements: Arc<dyn EntitlementStore>,
    pub(crate) ephemeral_keys: bool,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("pay_to", &self.pay_to)
            .field("default_networks", &self.default_networks)
            .field("resource_policy", &self.resource_policy)
            .field("facilitator_timeout", &self.facilitator_timeout)
            .field("dev_ledger", &self.dev_ledger.is_some())
            .finish_non_exhaustive()
    }
}

pub(crate) fn store_rejection(error: StoreError) -> Rejection {
    tracing::error!(target: "x402::store", %error, "payment store failed; refusing paid request");
    Rejection::new(
        Reason::STORE_UNAVAILABLE,
        "the payment store is unavailable; try again shortly",
    )
}

fn facilitator_rejection(error: FacilitatorError, timeout: Duration) -> Rejection {
    tracing::warn!(target: "x402::facilitator", %error, "facilitator call failed");
    match error {
        FacilitatorError::Timeout(_) => Rejection::new(
            Reason::FACILITATOR_TIMEOUT,
            format!(
                "the payment facilitator did not answer within {} ms",
                timeout.as_millis()
            ),
        ),
        FacilitatorError::InvalidResponse(_) => Rejection::new(
            Reason::FACILITATOR_INVALID_RESPONSE,
            "the payment facilitator sent an answer that is not a valid x402 response",
        ),
        FacilitatorError::Unreachable(_)
        | FacilitatorError::Status { .. }
        | FacilitatorError::Internal(_) => Rejection::new(
            Reason::FACILITATOR_UNAVAILABLE,
            "the payment facilitator is unavailable",
        ),
    }
}

/// The payment header of a request, if any: v2 `PAYMENT-SIGNATURE` first, then v1 `X-PAYMENT`.
fn payment_header(view: &dyn RequestView) -> Option<(ProtocolVersion, String)> {
    [ProtocolVersion::V2, ProtocolVersion::V1]
        .into_iter()
        .find_map(|version| {
            view.header(version.payment_header())
                .map(|v| (version, v.to_owned()))
        })
}

impl Gate {
    /// The networks and tokens this server knows.
    pub fn registry(&self) -> &NetworkRegistry {
        &self.registry
    }

    /// The facilitator in use.
    pub fn facilitator(&self) -> &Arc<dyn Facilitator> {
        &self.facilitator
    }

    /// The dev ledger, when the embedded facilitator settles into one.
    pub fn dev_ledger(&self) -> Option<&Arc<DevLedger>> {
        self.dev_ledger.as_ref()
    }

    /// The clock in use.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    fn resolve(&self, spec: &RouteSpec, price: &Price) -> Result<PreparedRoute, Rejection> {
        let misconfigured = |message: String| {
            tracing::error!(target: "x402::config", %message, "paid route is misconfigured");
            Rejection::new(Reason::NOT_CONFIGURED, message)
        };
        let pay_to = match spec.pay_to {
            Some(text) => Address::from_str(text)
                .map_err(|_| misconfigured(format!("pay_to {text:?} is not an EVM address")))?,
            None => self.pay_to.ok_or_else(|| {
                misconfigured(
                    "no pay_to: set it on the route or with X402Builder::pay_to".to_owned(),
                )
            })?,
        };
        let asset = match spec.asset {
            Some(text) => Some(
                Address::from_str(text)
                    .map_err(|_| misconfigured(format!("asset {text:?} is not an EVM address")))?,
            ),
            None => None,
        };
        if (spec.access.is_some() || spec.prepay.is_some())
            && self.ephemeral_keys
            && self.dev_ledger.is_none()
        {
            // Tokens signed with a per-process random key die with the process and are refused
            // by other replicas: customers would lose what they paid for.
            return Err(misconfigured(
                "this route sells reusable access (access, uses or prepay), whose tokens must outlive a restart and work on every replica: configure X402Builder::entitlement_keys or X402_ENTITLEMENT_KEYS".to_owned(),
            ));
        }
        let network_ids: Vec<&str> = if spec.networks.is_empty() {
            self.default_networks.iter().map(String::as_str).collect()
        } else {
            spec.networks.to_vec()
        };
        if network_ids.is_empty() {
            return Err(misconfigured(
                "the route names no network and no default network is configured".to_owned(),
            ));
        }
        let mut options = Vec::with_capacity(network_ids.len());
        for id in network_ids {
            let network = self
                .registry
                .network(id)
                .map_err(|e| misconfigured(e.to_string()))?;
            let resolved = self
                .registry
                .resolve_price(price, network, asset)
                .map_err(|e| misconfigured(format!("price {price} on {}: {e}", network.name)))?;
            options.push(AcceptOption {
                network: Arc::new(network.clone()),
                asset: Arc::new(resolved.asset),
                amount: resolved.amount,
                pay_to,
                prepaid: false,
            });
        }
        if let Some(text) = spec.prepay {
            let prepay = Price::from_str(text)
                .map_err(|e| misconfigured(format!("prepay {text:?}: {e}")))?;
            for index in 0..options.len() {
                let single = &options[index];
                let resolved = self
                    .registry
                    .resolve_price(
                        &prepay,
                        &single.network,
                        asset.or(Some(single.asset.address)),
                    )
                    .map_err(|e| {
                        misconfigured(format!(
                            "prepay {prepay} on {} (it must be in the price's token): {e}",
                            single.network.name
                        ))
                    })?;
                if resolved.amount <= single.amount || resolved.amount > U256::from(MAX_COUNTER) {
                    return Err(misconfigured(format!(
                        "prepay {prepay} must be more than the price of one request and at most {MAX_COUNTER} atomic units"
                    )));
                }
                options.push(AcceptOption {
                    amount: resolved.amount,
                    prepaid: true,
                    ..single.clone()
                });
            }
        }
        Ok(PreparedRoute::new(
            options,
            spec.description,
            spec.mime_type,
            spec.max_timeout_seconds
                .unwrap_or(DEFAULT_MAX_TIMEOUT_SECONDS),
            spec.settle,
            spec.access,
            spec.only,
        ))
    }

    /// The route resolved on this server's networks; fixed prices are resolved once.
    fn prepared(
        &self,
        spec: &'static RouteSpec,
        view: &dyn RequestView,
    ) -> Result<Arc<PreparedRoute>, Rejection> {
        match spec.price {
            PriceSpec::Fixed(text) => {
                let key = std::ptr::from_ref(spec) as usize;
                if let Some(route) = self
                    .routes
                    .read()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .get(&key)
                {
                    return Ok(route.clone());
                }
                let price = Price::from_str(text).map_err(|e| {
                    Rejection::new(Reason::NOT_CONFIGURED, format!("route price {text:?}: {e}"))
                })?;
                let route = Arc::new(self.resolve(spec, &price)?);
                self.routes
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(key, route.clone());
                Ok(route)
            }
            PriceSpec::Dynamic(price_of) => {
                let price = price_of(view).map_err(|e| {
                    tracing::error!(target: "x402::config", error = %e, "dynamic price failed");
                    Rejection::new(
                        Reason::PRICE_UNAVAILABLE,
                        format!("the price could not be computed: {e}"),
                    )
                })?;
                self.resolve(spec, &price).map(Arc::new)
            }
        }
    }

    /// The 402 challenge for a request to a route, without looking at any payment.
    pub fn challenge(
        &self,
        view: &dyn RequestView,
        spec: &'static RouteSpec,
    ) -> Result<Challenge, Rejection> {
        let route = self.prepared(spec, view)?;
        let resource = match spec.resource {
            Some(resource) => resource.to_owned(),
            None => self.resource_policy.resource_url(view),
        };
        Ok(Challenge::new(route, resource))
    }

    /// Decides what to do with a request to a paid route.
    ///
    /// The view is read before the returned future first runs, so the future is `Send` even
    /// when the framework's request type is not.
    pub fn evaluate<'a>(
        &'a self,
        view: &dyn RequestView,
        spec: &'static RouteSpec,
    ) -> impl Future<Output = Decision> + Send + 'a {
        let challenge = self.challenge(view, spec).map(Arc::new);
        let header = payment_header(view);
        // Entitlement tokens, for routes that grant them: read now, checked below.
        let tokens = match &challenge {
            Ok(challenge) if challenge.grants() => {
                let scope = Scope::of(spec, view, challenge.resource());
                let tokens = scope.tokens_in(view);
                Some((scope, tokens))
            }
            _ => None,
        };
        async move {
            let challenge = match challenge {
                Ok(challenge) => challenge,
                Err(rejection) => return Decision::Rejected(rejection),
            };
            let scope = tokens.as_ref().map(|(scope, _)| scope.clone());
            let mut token_problem = None;
            if let Some((scope, tokens)) = tokens
                && !tokens.is_empty()
            {
                match self.redeem(&tokens, &scope, &challenge).await {
                    Ok(admission) => return Decision::Verified(Box::new(admission)),
                    // A store failure fails closed, whatever else the request carries.
                    Err(rejection) if rejection.status() != 402 => {
                        return Decision::Rejected(rejection);
                    }
                    Err(rejection) => token_problem = Some(rejection),
                }
            }
            let Some((version, value)) = header else {
                let rejection = token_problem.unwrap_or_else(|| {
                    Rejection::new(Reason::PAYMENT_REQUIRED, PAYMENT_REQUIRED_MESSAGE)
                });
                return Decision::Challenge(rejection.with_challenge(challenge));
            };
            match self.admit(version, &value, challenge, scope).await {
                Ok(admission) => Decision::Verified(Box::new(admission)),
                Err(rejection) => {
                    tracing::info!(
                        target: "x402::rejection",
                        reason = %rejection.reason(),
                        status = rejection.status(),
                        message = rejection.message(),
                        "payment rejected"
                    );
                    Decision::Rejected(rejection)
                }
            }
        }
    }

    fn decode(
        &self,
        version: ProtocolVersion,
        value: &str,
        challenge: &Arc<Challenge>,
    ) -> Result<PaymentPayload, Rejection> {
        let decoded = match version {
            ProtocolVersion::V1 => {
                codec::decode::<v1::PaymentPayload>(value, self.max_header_bytes)
                    .map(PaymentPayload::V1)
            }
            ProtocolVersion::V2 => {
                codec::decode::<v2::PaymentPayload>(value, self.max_header_bytes)
                    .map(PaymentPayload::V2)
            }
        };
        decoded.map_err(|error| {
            let header = version.payment_header().to_ascii_uppercase();
            match error {
                DecodeError::TooLarge { len, max } => Rejection::new(
                    Reason::HEADER_TOO_LARGE,
                    format!("the {header} header is {len} bytes; the limit is {max}"),
                ),
                DecodeError::Json(detail) => {
                    #[derive(Deserialize)]
                    struct VersionOnly {
                        #[serde(rename = "x402Version")]
                        x402_version: u64,
                    }
                    match codec::decode::<VersionOnly>(value, self.max_header_bytes) {
                        Ok(found) if found.x402_version != u64::from(version.number()) => Rejection::new(
                            Reason::INVALID_X402_VERSION,
                            format!(
                                "the {header} header carries x402Version {}; it takes version {}",
                                found.x402_version,
                                version.number()
                            ),
                        )
                        .with_challenge(challenge.clone()),
                        _ => Rejection::new(Reason::INVALID_PAYLOAD, format!("the {header} header is not a valid payment: {detail}")),
                    }
                }
                other => Rejection::new(Reason::INVALID_PAYLOAD, format!("the {header} header: {other}")),
            }
        })
    }

    async fn admit(
        &self,
        version: ProtocolVersion,
        value: &str,
        challenge: Arc<Challenge>,
        scope: Option<Scope>,
    ) -> Result<Admission, Rejection> {
        let payload = self.decode(version, value, &challenge)?;
        let authorization = &payload.exact().authorization;
        let payer = authorization.from;
        let reject = |reason: Reason, message: String| {
            Rejection::new(reason, message)
                .with_payer(Some(payer))
                .with_version(version)
                .with_challenge(challenge.clone())
        };
        let route = challenge.route().clone();
        let matched = select_requirement(&payload, &route.accepts)
            .map_err(|e| reject(e.reason, e.message))?;
        let index = route
            .accepts
            .iter()
            .position(|r| std::ptr::eq(r, matched))
            .map_or(0, |i| route.accept_option[i]);
        let option = route.options[index].clone();
        let mut requirements = matched.clone();
        if let PaymentRequirements::V1(r) = &mut requirements {
            r.resource = challenge.resource().to_owned();
        }

        let now = self.clock.now_unix();
        let lifetime = authorization.valid_before.saturating_sub(U256::from(now));
        if lifetime > U256::from(self.max_authorization_lifetime.as_secs()) {
            return Err(reject(
                Reason::VALID_BEFORE,
                format!(
                    "the authorization stays valid for {lifetime} s; this server accepts at most {} s",
                    self.max_authorization_lifetime.as_secs()
                ),
            ));
        }
        let replay_key = ReplayKey {
            chain_id: option.network.chain_id,
            asset: option.asset.address,
            payer,
            nonce: authorization.nonce,
        };
        let replay_ttl = Duration::from_secs(lifetime.saturating_to::<u64>()) + REPLAY_MARGIN;

        let request = FacilitatorRequest::new(payload, requirements);
        let verdict = self
            .call(self.facilitator_timeout, self.facilitator.verify(&request))
            .await
            .map_err(|e| {
                facilitator_rejection(e, self.facilitator_timeout).with_payer(Some(payer))
            })?;
        if !verdict.is_valid {
            let reason = verdict
                .invalid_reason
                .map_or(Reason::UNEXPECTED_VERIFY_ERROR, Reason::new);
            let message = verdict
                .invalid_message
                .unwrap_or_else(|| "the facilitator rejected the payment".to_owned());
            return Err(reject(reason, message));
        }
        if let Some(claimed) = verdict.payer.as_deref()
            && !claimed.eq_ignore_ascii_case(&payer.to_string())
        {
            tracing::error!(target: "x402::facilitator", %claimed, %payer, "facilitator verified a different payer");
            return Err(Rejection::new(
                Reason::FACILITATOR_INVALID_RESPONSE,
                "the payment facilitator verified a different payer than the payment names",
            ));
        }

        // Only verified payments reach the store, so a forged header cannot burn someone
        // else's nonce; of concurrent copies of one payment, exactly one gets past here.
        if !self
            .replay
            .insert_if_absent(&replay_key, replay_ttl)
            .await
            .map_err(store_rejection)?
        {
            return Err(reject(
                Reason::NONCE_ALREADY_USED,
                "this payment authorization was already used; sign a new one".to_owned(),
            ));
        }

        let grant = scope
            .as_ref()
            .and_then(|scope| self.plan_grant(&route, &option, scope, payer, version));
        let mut pending = PaymentPending {
            version,
            request,
            replay_key,
            challenge: challenge.clone(),
            settled: None,
            grant,
        };
        if route.settle == SettleMode::Before {
            if let Some(plan) = &pending.grant
                && let Err(rejection) = self.open_grant(plan).await
            {
                self.release(&pending.replay_key).await;
                return Err(rejection);
            }
            pending.settled = Some(self.settle(&pending).await?);
        }
        let payment = PaymentInfo {
            payer,
            amount: option.amount,
            asset: option.asset.clone(),
            network: option.network.clone(),
            pay_to: option.pay_to,
            version,
            access: Access::Paid,
            transaction: pending.settled.as_ref().map(|s| s.transaction.clone()),
            resource: challenge.resource().to_owned(),
        };
        Ok(Admission {
            payment,
            pending: Pending(PendingKind::Payment(Box::new(pending))),
        })
    }

    /// Forgets an authorization that was verified but not used, so it can be retried.
    async fn release(&self, key: &ReplayKey) {
        if let Err(error) = self.replay.remove(key).await {
            tracing::warn!(target: "x402::store", %error, "could not release an unused authorization");
        }
    }

    async fn call<T>(
        &self,
        limit: Duration,
        call: impl Future<Output = Result<T, FacilitatorError>>,
    ) -> Result<T, FacilitatorError> {
        tokio::time::timeout(limit, call)
            .await
            .unwrap_or(Err(FacilitatorError::Timeout(limit)))
    }

    async fn settle(&self, pending: &PaymentPending) -> Result<SettleResponse, Rejection> {
        let payer = pending.replay_key.payer;
        let settlement = self
            .call(
                self.settlement_timeout,
                self.facilitator.settle(&pending.request),
            )
            .await
            .map_err(|e| {
                facilitator_rejection(e, self.settlement_timeout).with_payer(Some(payer))
            })?;
        if settlement.success {
            tracing::info!(
                target: "x402::settlement",
                payer = %payer,
                transaction = %settlement.transaction,
                network = %settlement.network,
                "payment settled"
            );
            return Ok(settlement);
        }
        let reason = settlement
            .error_reason
            .clone()
            .map_or(Reason::SETTLEMENT_FAILED, Reason::new);
        let message = settlement
            .error_message
            .clone()
            .unwrap_or_else(|| "the facilitator could not settle the payment".to_owned());
        tracing::warn!(target: "x402::settlement", %payer, %reason, %message, "settlement failed");
        Err(Rejection::new(reason, message)
            .with_payer(Some(payer))
            .with_version(pending.version)
            .with_challenge(pending.challenge.clone())
            .with_settlement(settlement))
    }

    /// Completes an admitted request once the handler has answered with `status`.
    ///
    /// - status ≥ 400: nothing is settled and the authorization is released, so the client is
    ///   not charged and may retry with it;
    /// - otherwise the payment is settled (unless it was settled before the handler) and the
    ///   receipt header is added; if settlement fails the response is replaced by a 402 (or
    ///   502/504 when the facilitator failed) and the handler's output is not delivered.
    pub async fn finish(&self, pending: Pending, status: u16) -> Completion {
        match pending.0 {
            PendingKind::Nothing => Completion::Deliver(Vec::new()),
            PendingKind::Drawn { id, amount } => {
                if status >= 400 {
                    tracing::info!(target: "x402::entitlement", status, %id, "handler failed; giving the draw back");
                    if let Err(error) = self.entitlements.give_back(&id, amount).await {
                        tracing::warn!(target: "x402::store", %error, %id, "could not give a draw back");
                    }
                }
                Completion::Deliver(Vec::new())
            }
            PendingKind::Payment(payment) => self.finish_payment(*payment, status).await,
        }
    }

    async fn finish_payment(&self, pending: PaymentPending, status: u16) -> Completion {
        let deliver = |settlement: &SettleResponse| {
            let mut headers = response::settlement_headers(pending.version, settlement);
            if let Some(plan) = &pending.grant {
                headers.extend(self.grant_headers(plan, &settlement.transaction));
            }
            Completion::Deliver(headers)
        };
        if let Some(settled) = &pending.settled {
            return deliver(settled);
        }
        if status >= 400 {
            tracing::info!(target: "x402::settlement", status, payer = %pending.replay_key.payer, "handler failed; payment not settled");
            self.release(&pending.replay_key).await;
            return Completion::Deliver(Vec::new());
        }
        if let Some(plan) = &pending.grant
            && let Err(rejection) = self.open_grant(plan).await
        {
            self.release(&pending.replay_key).await;
            return Completion::Replace(rejection.to_response());
        }
        match self.settle(&pending).await {
            Ok(settlement) => deliver(&settlement),
            Err(rejection) => Completion::Replace(rejection.to_response()),
        }
    }
}
