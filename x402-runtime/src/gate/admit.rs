//! Step 4: a decoded payment is matched to one of the route's options, checked by its scheme,
//! reserved against replays, and verified by the facilitator. Only then may the handler run.
//!
//! The order matters:
//! - the scheme's checks (amount, recipient, window, signature) run here first, with an
//!   embedded facilitator because they *are* its checks (run once, not twice) and with a remote
//!   one as defense in depth: a remote `isValid: true` cannot override them;
//! - the replay reservation comes after the signature check, so a forged header can never burn
//!   someone else's nonce, and before the remote `/verify`, so a replayed payment costs no
//!   facilitator call. (With local checks switched off, the remote verdict comes first.)

use std::sync::Arc;
use std::time::Duration;

use x402_protocol::facilitator::{
    FacilitatorRequest, PaymentPayload, PaymentRequirements, VerifyResponse,
};
use x402_protocol::payment_identifier::{PaymentIdError, extract_id};
use x402_protocol::verify::{InvalidPayment, SignatureCheck, VerifiedPayment, select_requirement};
use x402_protocol::{ChainAddress, ProtocolVersion, Reason};

use super::redeem::Scope;
use super::retry::journal_rejection;
use super::telemetry;
use super::{Admission, Gate, PaymentIds, PaymentPending, Pending, PendingKind};
use crate::challenge::{AcceptOption, Challenge};
use crate::facilitator::{FacilitatorError, SettlerError, bounded_message, bounded_reason};
use crate::hooks::{Abort, HookContext, HookPayment, RequestSummary};
use crate::journal::{Inserted, NewPayment, fingerprint, new_record_id, now_ms};
use crate::payment::{Access, Meter, PaymentInfo};
use crate::rejection::Rejection;
use crate::route::SettleMode;

/// Extra time a replay record outlives its authorization's expiry.
const REPLAY_MARGIN: Duration = Duration::from_secs(60);

/// How long a payment whose expiry depends on the chain (a Solana blockhash, about 150 slots)
/// stays reserved.
const CHAIN_BOUND_LIFETIME: Duration = Duration::from_secs(5 * 60);

/// A facilitator call that failed, as the client sees it.
pub(crate) fn facilitator_rejection(error: FacilitatorError, timeout: Duration) -> Rejection {
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
        FacilitatorError::Status { status, body } => Rejection::new(
            Reason::FACILITATOR_UNAVAILABLE,
            format!(
                "the payment facilitator answered HTTP {status}: {}",
                bounded_message(&body)
            ),
        ),
        FacilitatorError::Unreachable(_)
        | FacilitatorError::Interrupted(_)
        | FacilitatorError::Internal(_) => Rejection::new(
            Reason::FACILITATOR_UNAVAILABLE,
            "the payment facilitator is unavailable",
        ),
    }
}

/// The refusal a lifecycle hook chose (or `hook_failed`), as the client sees it.
fn hook_rejection(
    abort: Abort,
    payer: Option<ChainAddress>,
    version: ProtocolVersion,
    challenge: &Arc<Challenge>,
) -> Rejection {
    tracing::info!(target: "x402::rejection", status = abort.status, reason = %abort.reason, "a lifecycle hook refused the payment");
    Rejection::from_abort(abort)
        .with_payer(payer)
        .with_version(version)
        .with_challenge(challenge.clone())
}

/// The `payment-identifier` id of a payment, checked against the server's policy.
fn payment_id(payload: &PaymentPayload, policy: PaymentIds) -> Result<Option<String>, Rejection> {
    let PaymentPayload::V2(p) = payload else {
        // v1 payments cannot carry extensions.
        return Ok(None);
    };
    extract_id(p.extensions.as_ref(), policy == PaymentIds::Required).map_err(|error| {
        let reason = match error {
            PaymentIdError::Missing => Reason::PAYMENT_ID_REQUIRED,
            _ => Reason::PAYMENT_ID_INVALID,
        };
        Rejection::new(reason, error.to_string()).with_version(ProtocolVersion::V2)
    })
}

impl Gate {
    /// Admits a payment for `challenge`'s route, or says why not; in a `x402.payment` span
    /// (route, network, scheme, payer, outcome, latency), counted in `x402_payments_total` and
    /// timed in `x402_payment_verify_seconds`.
    pub(crate) async fn admit(
        &self,
        version: ProtocolVersion,
        value: &str,
        challenge: Arc<Challenge>,
        scope: Option<Scope>,
        method: &str,
        summary: Option<RequestSummary>,
    ) -> Result<Admission, Rejection> {
        use tracing::Instrument as _;
        let route = telemetry::route_label(challenge.route().spec);
        let span = tracing::info_span!(
            target: "x402::payment",
            "x402.payment",
            route,
            network = tracing::field::Empty,
            scheme = tracing::field::Empty,
            payer = tracing::field::Empty,
            outcome = tracing::field::Empty,
            latency_ms = tracing::field::Empty,
        );
        let started = std::time::Instant::now();
        let admitted = self
            .admit_checked(version, value, challenge, scope, method, summary)
            .instrument(span.clone())
            .await;
        let took = started.elapsed();
        span.record("latency_ms", took.as_millis() as u64);
        match &admitted {
            Ok(admission) => {
                let network = admission.payment.network.caip2.as_ref();
                span.record("network", network);
                span.record("scheme", admission.payment.scheme);
                span.record("payer", admission.payment.payer.to_string());
                span.record("outcome", "verified");
                telemetry::payment(route, network, "verified");
                telemetry::verify_latency(network, took);
            }
            Err(rejection) => {
                span.record("outcome", rejection.reason().as_str());
                if let Some(payer) = rejection.payer() {
                    span.record("payer", payer.to_string());
                }
                telemetry::payment(route, "-", "rejected");
            }
        }
        admitted
    }

    async fn admit_checked(
        &self,
        version: ProtocolVersion,
        value: &str,
        challenge: Arc<Challenge>,
        scope: Option<Scope>,
        method: &str,
        summary: Option<RequestSummary>,
    ) -> Result<Admission, Rejection> {
        let payload = self.decode(version, value, &challenge)?;
        let payment_id = payment_id(&payload, self.payment_ids)?;
        let claimed = payload.payload().claimed_payer();
        let reject = |invalid: InvalidPayment| {
            Rejection::new(invalid.reason, invalid.message)
                .with_payer(invalid.payer.or(claimed))
                .with_version(version)
                .with_challenge(challenge.clone())
        };
        let route = challenge.route().clone();
        let matched = select_requirement(&payload, &route.accepts).map_err(reject)?;
        let option = route.option_of(matched).clone();
        let mut requirements = matched.clone();
        if let PaymentRequirements::V1(r) = &mut requirements {
            r.resource = challenge.resource().to_owned();
        }
        let request = FacilitatorRequest::new(payload, requirements);
        let now = self.clock.now_unix();
        // What the payment id is bound to: the operation paid for, not the signature (a client
        // may sign its retry afresh under the same id).
        let fingerprint = payment_id.as_ref().map(|_| {
            let amount = option.amount.to_string();
            let pay_to = option.pay_to.to_string();
            let asset = option.asset.address.to_string();
            fingerprint(&[
                method,
                challenge.resource(),
                request.payment_requirements.scheme(),
                &option.network.caip2,
                &asset,
                &amount,
                &pay_to,
            ])
        });
        if let Some(id) = &payment_id {
            let earlier = self
                .journal
                .find_by_payment_id(id)
                .await
                .map_err(journal_rejection)?;
            if let Some(earlier) = earlier.filter(|r| r.state.holds_keys()) {
                if earlier.fingerprint != fingerprint {
                    return Err(Rejection::new(
                        Reason::PAYMENT_ID_CONFLICT,
                        format!(
                            "payment id {id} was already used for another request ({} {}); use a new id for a new request",
                            earlier.method, earlier.resource
                        ),
                    )
                    .with_version(version));
                }
                if let Some(answer) = self.answer_from_record(earlier).await {
                    return Err(answer);
                }
            }
        }

        // The lifecycle hooks' view of the payment (only built when there are hooks).
        let mut hook_context = summary.map(|summary| {
            HookContext::new(
                summary,
                HookPayment::new(
                    Arc::new(request.payment_payload.clone()),
                    Arc::new(request.payment_requirements.clone()),
                ),
            )
        });
        if let Some(context) = &hook_context {
            self.hooks
                .before_verify(context)
                .await
                .map_err(|abort| hook_rejection(abort, None, version, &challenge))?;
        }

        let checked_here = self.embedded.is_some() || self.local_checks;
        let verified = if checked_here {
            option
                .scheme
                .verify(
                    &request.payment_payload,
                    &request.payment_requirements,
                    &self.registry,
                    now,
                )
                .and_then(|verified| match &verified.signature {
                    // Without the embedded facilitator or a chain to ask, this gate cannot
                    // judge a contract wallet: a 65-byte signature by another key stays
                    // refused here, as a forgery; a longer one (only a contract wallet's can be
                    // valid) is left to the facilitator.
                    SignatureCheck::OnChain { without_chain, .. }
                        if self.embedded.is_none()
                            && self.chain_check(&verified.network).is_none()
                            && without_chain.reason != Reason::SMART_WALLET_NEEDS_RPC =>
                    {
                        Err((**without_chain).clone())
                    }
                    _ => Ok(verified),
                })
                .map_err(|mut invalid| {
                    if self.embedded.is_none() {
                        invalid.message = format!(
                            "checked by this server before asking the facilitator: {}",
                            invalid.message
                        );
                    }
                    reject(invalid)
                })?
        } else {
            option
                .scheme
                .identify(
                    &request.payment_payload,
                    &request.payment_requirements,
                    &self.registry,
                )
                .map_err(reject)?
        };
        if self.embedded.is_none()
            && matches!(verified.signature, SignatureCheck::OnChain { .. })
            && let Some(chain) = self.chain_check(&verified.network)
        {
            self.check_on_chain(chain, &verified, &request.payment_payload, &reject)
                .await?;
        }
        if let Some(expires_at) = verified.expires_at {
            let lifetime = expires_at.saturating_sub(now);
            if lifetime > self.max_authorization_lifetime.as_secs() {
                return Err(reject(InvalidPayment::new(
                    Reason::VALID_BEFORE,
                    format!(
                        "the payment stays valid for {lifetime} s; this server accepts at most {} s",
                        self.max_authorization_lifetime.as_secs()
                    ),
                )));
            }
        }
        let ttl = match verified.expires_at {
            Some(expires_at) => Duration::from_secs(expires_at.saturating_sub(now)) + REPLAY_MARGIN,
            None => CHAIN_BOUND_LIFETIME + REPLAY_MARGIN,
        };
        // The journal record's id, chosen now: it is also the owner of the replay reservation,
        // so reconciliation can give the reservation back.
        let record = new_record_id(now_ms()).map_err(journal_rejection)?;
        let owner = record.clone();

        if checked_here {
            self.reserve(
                &verified,
                &owner,
                ttl,
                (method, challenge.resource()),
                &reject,
            )
            .await?;
            if let Err(rejection) = self.confirm(&request, &verified, &reject).await {
                self.release(&verified, &owner).await;
                return Err(rejection);
            }
        } else {
            if let Err(rejection) = self.confirm(&request, &verified, &reject).await {
                // The facilitator knows it as spent: if this gate served it, its journal says
                // how (a lost answer gets its kept response).
                if rejection.reason() == &Reason::NONCE_ALREADY_USED
                    && let Some(answer) = self
                        .answer_known(&verified, (method, challenge.resource()))
                        .await?
                {
                    return Err(answer);
                }
                return Err(rejection);
            }
            self.reserve(
                &verified,
                &owner,
                ttl,
                (method, challenge.resource()),
                &reject,
            )
            .await?;
        }

        // The server's last word before the handler: an abort leaves the payment unused.
        if let Some(context) = &mut hook_context {
            context.payment = context
                .payment
                .clone()
                .with_payer(verified.payer.to_string());
            if let Err(abort) = self.hooks.after_verify(context).await {
                self.release(&verified, &owner).await;
                return Err(hook_rejection(
                    abort,
                    Some(verified.payer),
                    version,
                    &challenge,
                ));
            }
        }

        // Recorded before the handler runs. A record already holding this payment (another
        // replica admitted it, or an earlier process) answers instead.
        let new = NewPayment {
            id: Some(record.clone()),
            payment_key: verified.key.to_string(),
            payment_id,
            fingerprint,
            route: challenge.route().spec.name(),
            resource: challenge.resource().to_owned(),
            method: method.to_owned(),
            payer: verified.payer.to_string(),
            pay_to: option.pay_to.to_string(),
            amount: option.amount,
            asset: option.asset.address.to_string(),
            network: request.payment_requirements.network().to_owned(),
            scheme: request.payment_requirements.scheme().to_owned(),
            x402_version: version.number(),
            nonce: verified
                .key
                .as_str()
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_owned(),
            valid_before: verified.expires_at,
            // The JSON the facilitator was (or will be) sent, written once for both.
            facilitator_request: request
                .json()
                .ok()
                .and_then(|json| String::from_utf8(json.to_vec()).ok())
                .unwrap_or_default(),
            at: now_ms(),
        };
        match self.journal.insert(new).await {
            Ok(Inserted::Created(_)) => {}
            Ok(Inserted::Existing(earlier)) => {
                self.release(&verified, &owner).await;
                return Err(self.answer_from_record(earlier).await.unwrap_or_else(|| {
                    reject(InvalidPayment::new(
                        Reason::NONCE_ALREADY_USED,
                        "this payment was already used; sign a new one",
                    ))
                }));
            }
            Err(error) => {
                self.release(&verified, &owner).await;
                return Err(journal_rejection(error));
            }
        }

        let grant = scope
            .as_ref()
            .and_then(|scope| self.plan_grant(&route, &option, scope, &verified, version, method));
        let mut payment = payment_info(&option, &verified, version, challenge.resource());
        if option.scheme.name() == x402_protocol::permit2::UPTO {
            payment.meter = Some(Meter::new(verified.amount));
        }
        let meter = payment.meter.clone();
        let pending = PaymentPending {
            version,
            request,
            verified,
            challenge: challenge.clone(),
            record,
            settle_before: route.settle == SettleMode::Before,
            settled: None,
            released: false,
            unresolved: false,
            grant,
            hook_context,
            kept: None,
            meter,
        };
        Ok(Admission {
            payment,
            pending: Pending(PendingKind::Payment(Box::new(pending))),
        })
    }

    /// The facilitator's word on a payment the scheme accepted: the embedded facilitator's
    /// ledger checks, or a remote `/verify` (whose payer must be the one the scheme found).
    async fn confirm(
        &self,
        request: &FacilitatorRequest,
        verified: &VerifiedPayment,
        reject: &impl Fn(InvalidPayment) -> Rejection,
    ) -> Result<(), Rejection> {
        let payer = Some(verified.payer);
        if let Some(embedded) = &self.embedded {
            let checked = self
                .call(
                    self.facilitator_timeout,
                    embedded.check_verified(verified, &request.payment_payload),
                )
                .await;
            return match checked {
                Ok(()) => Ok(()),
                Err(Checked::Settler(SettlerError::Rejected(invalid))) => Err(reject(invalid)),
                Err(Checked::Settler(SettlerError::Unavailable(message))) => {
                    tracing::error!(target: "x402::facilitator", %message, "settlement backend failed while verifying");
                    Err(Rejection::new(
                        Reason::FACILITATOR_UNAVAILABLE,
                        "the payment facilitator is unavailable",
                    )
                    .with_payer(payer))
                }
                Err(Checked::Timeout) => Err(facilitator_rejection(
                    FacilitatorError::Timeout(self.facilitator_timeout),
                    self.facilitator_timeout,
                )
                .with_payer(payer)),
            };
        }
        let verdict: VerifyResponse =
            tokio::time::timeout(self.facilitator_timeout, self.facilitator.verify(request))
                .await
                .unwrap_or(Err(FacilitatorError::Timeout(self.facilitator_timeout)))
                .map_err(|e| {
                    telemetry::facilitator_error("verify", &e);
                    facilitator_rejection(e, self.facilitator_timeout).with_payer(payer)
                })?;
        if !verdict.is_valid {
            let reason = bounded_reason(
                verdict.invalid_reason.as_deref(),
                Reason::UNEXPECTED_VERIFY_ERROR,
            );
            let message = verdict.invalid_message.as_deref().map_or_else(
                || "the facilitator rejected the payment".to_owned(),
                bounded_message,
            );
            return Err(reject(
                InvalidPayment::new(reason, message).with_payer(payer),
            ));
        }
        if let Some(claimed) = verdict.payer.as_deref()
            && !x402_protocol::verify::same_address(claimed, &verified.payer.to_string())
        {
            tracing::error!(target: "x402::facilitator", claimed = %bounded_message(claimed), payer = %verified.payer, "facilitator verified a different payer");
            return Err(Rejection::new(
                Reason::FACILITATOR_INVALID_RESPONSE,
                "the payment facilitator verified a different payer than the payment names",
            )
            .with_payer(payer));
        }
        Ok(())
    }

    /// The settler that checks contract-wallet signatures on `network` for this gate, if any.
    fn chain_check(
        &self,
        network: &x402_protocol::NetworkInfo,
    ) -> Option<&Arc<dyn crate::facilitator::Settler>> {
        self.chain_checks
            .iter()
            .find(|c| c.settles(network) && c.checks_contract_signatures(network))
    }

    /// Asks `chain` about a payment whose signature only a chain can judge.
    async fn check_on_chain(
        &self,
        chain: &Arc<dyn crate::facilitator::Settler>,
        verified: &VerifiedPayment,
        payload: &PaymentPayload,
        reject: &impl Fn(InvalidPayment) -> Rejection,
    ) -> Result<(), Rejection> {
        match self
            .call(self.facilitator_timeout, chain.check(verified, payload))
            .await
        {
            Ok(()) => Ok(()),
            Err(Checked::Settler(SettlerError::Rejected(mut invalid))) => {
                invalid.message = format!(
                    "checked on chain by this server before asking the facilitator: {}",
                    invalid.message
                );
                Err(reject(invalid.with_payer(Some(verified.payer))))
            }
            Err(Checked::Settler(SettlerError::Unavailable(message))) => {
                tracing::error!(target: "x402::facilitator", %message, "the chain could not check a contract wallet's signature");
                Err(Rejection::new(
                    Reason::FACILITATOR_UNAVAILABLE,
                    "the chain this server checks contract-wallet signatures on is unavailable",
                )
                .with_payer(Some(verified.payer)))
            }
            Err(Checked::Timeout) => Err(facilitator_rejection(
                FacilitatorError::Timeout(self.facilitator_timeout),
                self.facilitator_timeout,
            )
            .with_payer(Some(verified.payer))),
        }
    }

    /// Forgets a reserved payment that was not used, so it can be retried. Only the admission
    /// that reserved it can release it.
    pub(crate) async fn release(&self, verified: &VerifiedPayment, owner: &str) {
        if let Err(error) = self.replay.remove(&verified.key, owner).await {
            tracing::warn!(target: "x402::store", %error, key = %verified.key, "could not release an unused payment");
        }
    }

    async fn call<T>(
        &self,
        limit: Duration,
        call: impl std::future::Future<Output = Result<T, SettlerError>>,
    ) -> Result<T, Checked> {
        match tokio::time::timeout(limit, call).await {
            Ok(result) => result.map_err(Checked::Settler),
            Err(_) => Err(Checked::Timeout),
        }
    }
}

/// How an embedded ledger check failed.
enum Checked {
    Settler(SettlerError),
    Timeout,
}

fn payment_info(
    option: &AcceptOption,
    verified: &VerifiedPayment,
    version: ProtocolVersion,
    resource: &str,
) -> PaymentInfo {
    PaymentInfo {
        payer: verified.payer,
        amount: option.amount,
        asset: option.asset.clone(),
        network: option.network.clone(),
        pay_to: option.pay_to,
        scheme: option.scheme.name(),
        version,
        access: Access::Paid,
        transaction: None,
        resource: resource.to_owned(),
        meter: None,
    }
}
