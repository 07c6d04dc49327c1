//! Step 5: after the handler, a successful response is paid for.
//!
//! A settlement ends in one of three ways, and only a settler can prove the second:
//! - **settled**: the funds moved; the response goes out with the receipt;
//! - **failed**: definitely not executed (refused, reverted, never delivered); the response is
//!   replaced by a 402 (or 502) and the payment is released, so the client may retry it;
//! - **unknown**: submitted without a verdict in time; the response is replaced by a 504
//!   `settlement_pending` whose receipt says so, and the payment stays reserved: the client
//!   retries with the *same* payment, never a new one.
//!
//! Settlement runs in a task of its own, so a client that disconnects cannot cancel it half
//! way; [`Gate::shutdown`] waits for the ones in flight.

use std::sync::Arc;
use std::time::Duration;

use x402_protocol::facilitator::{FacilitatorRequest, SettleResponse};
use x402_protocol::verify::{InvalidPayment, VerifiedPayment, same_address};
use x402_protocol::{ProtocolVersion, Reason, U256};

use super::admit::facilitator_rejection;
use super::telemetry;
use super::{Completion, Gate, PaymentPending};
use crate::facilitator::{
    EmbeddedFacilitator, Facilitator, FacilitatorError, SettleOutcome, SettlerError,
    bounded_message, bounded_reason, settle_response,
};
use crate::hooks::{HookContext, HookRunner, Settlement};
use crate::journal::{Journal, PaymentState, StoredResponse, Transition, now_ms};
use crate::rejection::Rejection;
use crate::response::{self, HandlerResponse};
use crate::store::ReplayStore;

/// How one settlement ended, for the response.
enum Outcome {
    Settled(SettleResponse),
    /// Definitely not executed; the payment was released.
    Failed(Rejection),
    /// No verdict; the payment stays reserved.
    Unknown(SettleResponse),
}

/// Everything a settlement needs, owned, so it can run in its own task.
struct Job {
    facilitator: Arc<dyn Facilitator>,
    embedded: Option<Arc<EmbeddedFacilitator>>,
    replay: Arc<dyn ReplayStore>,
    journal: Arc<dyn Journal>,
    timeout: Duration,
    request: FacilitatorRequest,
    verified: VerifiedPayment,
    /// The journal record (also the owner of the replay reservation).
    record: String,
    route: &'static str,
    /// The handler's response, kept with the move to `settling`.
    kept: Option<StoredResponse>,
    /// What to settle: the payment's amount, or a metered payment's charge.
    amount: U256,
    /// Whether the payment is metered (`upto`): a zero charge then settles nothing.
    metered: bool,
}

impl Job {
    /// Settles, in a `x402.settlement` span, counted in `x402_payments_total` and timed in
    /// `x402_payment_settle_seconds`.
    async fn run(self) -> Outcome {
        use tracing::Instrument as _;
        let route = self.route;
        let network = self.verified.network.caip2.to_string();
        let span = tracing::info_span!(
            target: "x402::settlement",
            "x402.settlement",
            route,
            network = %network,
            payer = %self.verified.payer,
            outcome = tracing::field::Empty,
            latency_ms = tracing::field::Empty,
        );
        let started = std::time::Instant::now();
        let outcome = self.settle().instrument(span.clone()).await;
        let took = started.elapsed();
        let label = match &outcome {
            Outcome::Settled(_) => "settled",
            Outcome::Failed(_) => "failed",
            Outcome::Unknown(_) => "unknown",
        };
        span.record("outcome", label);
        span.record("latency_ms", took.as_millis() as u64);
        telemetry::payment(route, &network, label);
        telemetry::settle_latency(&network, label, took);
        outcome
    }

    async fn settle(mut self) -> Outcome {
        let version = self.request.payment_payload.version();
        let network = self.request.payment_requirements.network().to_owned();
        let payer = self.verified.payer;
        // Recorded before anything is submitted: a record still `verified` later proves nothing
        // was, one `settling` that something may have been. The response is kept in the same
        // write, so a client whose answer is lost after the settlement finds it.
        let mut settling =
            Transition::new(&[PaymentState::Verified], PaymentState::Settling, now_ms());
        if let Some(kept) = self.kept.take() {
            settling = settling.keep_response(kept);
        }
        if let Err(error) = self.journal.advance(&self.record, settling).await {
            tracing::error!(target: "x402::journal", record = %self.record, %error, "could not record the start of a settlement; not settling");
            if let Err(error) = self.replay.remove(&self.verified.key, &self.record).await {
                tracing::warn!(target: "x402::store", %error, "could not release an unsettled payment");
            }
            return Outcome::Failed(Rejection::new(
                Reason::STORE_UNAVAILABLE,
                "the payment journal is unavailable; nothing was charged",
            ));
        }
        let outcome = match &self.embedded {
            _ if self.metered && self.amount.is_zero() => {
                // Nothing to move: no transaction, and the authorization stays unused.
                Outcome::Settled(SettleResponse {
                    success: true,
                    error_reason: None,
                    error_message: None,
                    payer: Some(payer.to_string()),
                    transaction: String::new(),
                    network: network.clone(),
                    amount: Some("0".to_owned()),
                    extensions: None,
                })
            }
            Some(embedded) => {
                let amount = self.amount;
                match tokio::time::timeout(
                    self.timeout,
                    embedded.settle_verified(&self.verified, &self.request.payment_payload, amount),
                )
                .await
                {
                    Ok(outcome) => self.judge_settler(outcome, &network, version),
                    Err(_) => Outcome::Unknown(pending_receipt(
                        &network,
                        &self.verified,
                        None,
                        format!(
                            "no settlement verdict within {} ms",
                            self.timeout.as_millis()
                        ),
                    )),
                }
            }
            None => {
                let answer =
                    tokio::time::timeout(self.timeout, self.facilitator.settle(&self.request))
                        .await
                        .unwrap_or(Err(FacilitatorError::Timeout(self.timeout)));
                if let Err(error) = &answer {
                    telemetry::facilitator_error("settle", error);
                    tracing::warn!(target: "x402::facilitator", %error, "facilitator settle call failed");
                }
                self.judge_remote(answer, &network)
            }
        };
        match &outcome {
            Outcome::Settled(receipt) => tracing::info!(
                target: "x402::settlement",
                %payer,
                transaction = %receipt.transaction,
                network = %receipt.network,
                key = %self.verified.key,
                "payment settled"
            ),
            Outcome::Failed(rejection) => {
                tracing::warn!(target: "x402::settlement", %payer, reason = %rejection.reason(), message = rejection.message(), "settlement failed; the payment is released");
                if let Err(error) = self.replay.remove(&self.verified.key, &self.record).await {
                    tracing::warn!(target: "x402::store", %error, key = %self.verified.key, "could not release a payment whose settlement failed");
                }
            }
            Outcome::Unknown(receipt) => tracing::warn!(
                target: "x402::settlement",
                %payer,
                transaction = %receipt.transaction,
                key = %self.verified.key,
                "settlement outcome unknown; the payment stays reserved"
            ),
        }
        self.record_outcome(&outcome).await;
        outcome
    }

    /// Writes the outcome to the journal. A failure to write leaves the record `settling`,
    /// which reconciliation resolves from the chain; the outcome stands either way.
    async fn record_outcome(&self, outcome: &Outcome) {
        let now = now_ms();
        let change = match outcome {
            Outcome::Settled(receipt) => {
                let mut change =
                    Transition::new(&[PaymentState::Settling], PaymentState::Settled, now)
                        .transaction(receipt.transaction.clone());
                if let Some(amount) = receipt.amount.as_deref().and_then(|a| a.parse().ok()) {
                    change = change.settled_amount(amount);
                }
                change
            }
            Outcome::Failed(rejection) => {
                Transition::new(&[PaymentState::Settling], PaymentState::Failed, now)
                    .error(rejection.reason().to_string(), rejection.message())
            }
            Outcome::Unknown(receipt) => {
                let mut change =
                    Transition::new(&[PaymentState::Settling], PaymentState::Unknown, now);
                if !receipt.transaction.is_empty() {
                    change = change.transaction(receipt.transaction.clone());
                }
                change
            }
        };
        if let Err(error) = self.journal.advance(&self.record, change).await {
            tracing::error!(target: "x402::journal", record = %self.record, %error, "could not record a settlement's outcome; reconciliation will resolve it");
        }
    }

    /// A settler's outcome (embedded facilitator).
    fn judge_settler(
        &self,
        outcome: SettleOutcome,
        network: &str,
        version: ProtocolVersion,
    ) -> Outcome {
        let payer = Some(self.verified.payer);
        match outcome {
            SettleOutcome::Unknown {
                transaction,
                detail,
            } => Outcome::Unknown(pending_receipt(
                network,
                &self.verified,
                transaction,
                detail,
            )),
            SettleOutcome::Failed(SettlerError::Unavailable(message)) => {
                tracing::error!(target: "x402::settlement", %message, "settlement backend failed before submitting");
                Outcome::Failed(
                    Rejection::new(
                        Reason::FACILITATOR_UNAVAILABLE,
                        "the payment facilitator is unavailable; nothing was charged",
                    )
                    .with_payer(payer),
                )
            }
            settled_or_failed => {
                match settle_response(settled_or_failed, network, payer, version) {
                    Ok(receipt) if receipt.success => Outcome::Settled(receipt),
                    Ok(receipt) => Outcome::Failed(failed(receipt, self.verified.payer)),
                    // Only `Unavailable` is an error here, handled above.
                    Err(_) => Outcome::Failed(Rejection::new(
                        Reason::FACILITATOR_UNAVAILABLE,
                        "the payment facilitator is unavailable; nothing was charged",
                    )),
                }
            }
        }
    }

    /// A remote facilitator's answer. Only a clear `success: false` or an undelivered request
    /// proves nothing was executed; a success that does not hold together, a timeout, an error
    /// status or garbage after the request went out are all unknown.
    fn judge_remote(
        &self,
        answer: Result<SettleResponse, FacilitatorError>,
        network: &str,
    ) -> Outcome {
        match answer {
            Ok(receipt) if receipt.success => {
                match implausible(&receipt, network, &self.verified) {
                    None => Outcome::Settled(receipt),
                    Some(why) => {
                        tracing::error!(target: "x402::settlement", why, "the facilitator claimed success implausibly; treating the outcome as unknown");
                        Outcome::Unknown(pending_receipt(
                            network,
                            &self.verified,
                            Some(receipt.transaction).filter(|t| !t.is_empty()),
                            why.to_owned(),
                        ))
                    }
                }
            }
            Ok(receipt)
                if receipt.error_reason.as_deref() == Some(Reason::SETTLEMENT_PENDING.as_str()) =>
            {
                Outcome::Unknown(pending_receipt(
                    network,
                    &self.verified,
                    Some(receipt.transaction).filter(|t| !t.is_empty()),
                    "the facilitator reports the settlement as pending".to_owned(),
                ))
            }
            Ok(receipt) => Outcome::Failed(failed(receipt, self.verified.payer)),
            // The request never left: nothing can have been executed.
            Err(error @ FacilitatorError::Unreachable(_)) => Outcome::Failed(
                facilitator_rejection(error, self.timeout).with_payer(Some(self.verified.payer)),
            ),
            Err(error) => Outcome::Unknown(pending_receipt(
                network,
                &self.verified,
                None,
                error.to_string(),
            )),
        }
    }
}

/// Tells the lifecycle hooks how a settlement ended. Their failures are logged (by the runner
/// and here) and change nothing: the outcome stands.
async fn notify_hooks(hooks: &HookRunner, context: &HookContext, outcome: &Outcome, amount: U256) {
    let result = match outcome {
        Outcome::Settled(receipt) => {
            let settlement = Settlement::Settled {
                transaction: receipt.transaction.clone(),
                amount: receipt
                    .amount
                    .as_deref()
                    .and_then(|a| a.parse().ok())
                    .unwrap_or(amount),
            };
            hooks.after_settle(context, &settlement).await
        }
        Outcome::Failed(rejection) => {
            let settlement = Settlement::Failed {
                reason: rejection.reason().clone(),
                message: rejection.message().to_owned(),
            };
            hooks.on_settle_failure(context, &settlement).await
        }
        Outcome::Unknown(receipt) => {
            let settlement = Settlement::Unknown {
                transaction: Some(receipt.transaction.clone()).filter(|t| !t.is_empty()),
                detail: receipt.error_message.clone().unwrap_or_default(),
            };
            hooks.on_settle_failure(context, &settlement).await
        }
    };
    if let Err(failures) = result {
        tracing::warn!(target: "x402::hooks", %failures, "settlement hooks failed; the settlement's outcome stands");
    }
}

/// Why a remote success does not hold together, if it does not.
fn implausible(
    receipt: &SettleResponse,
    network: &str,
    verified: &VerifiedPayment,
) -> Option<&'static str> {
    if receipt.transaction.trim().is_empty() {
        return Some("a successful settlement names no transaction");
    }
    if !receipt.network.is_empty() && receipt.network != network {
        return Some("a successful settlement names another network");
    }
    if let Some(payer) = receipt.payer.as_deref()
        && !same_address(payer, &verified.payer.to_string())
    {
        return Some("a successful settlement names another payer");
    }
    None
}

/// The receipt a client gets while the outcome is unknown.
fn pending_receipt(
    network: &str,
    verified: &VerifiedPayment,
    transaction: Option<String>,
    detail: String,
) -> SettleResponse {
    tracing::warn!(target: "x402::settlement", %detail, ?transaction, "settlement pending");
    SettleResponse {
        transaction: transaction.unwrap_or_default(),
        ..SettleResponse::failure(
            Reason::SETTLEMENT_PENDING.as_str(),
            "the payment was submitted but its settlement is not confirmed yet; retry this request with the same payment (do not sign a new one)",
            network,
            Some(verified.payer.to_string()),
        )
    }
}

/// The rejection for a settlement that provably failed.
fn failed(receipt: SettleResponse, payer: x402_protocol::ChainAddress) -> Rejection {
    let reason = bounded_reason(receipt.error_reason.as_deref(), Reason::SETTLEMENT_FAILED);
    let message = receipt.error_message.as_deref().map_or_else(
        || "the facilitator could not settle the payment".to_owned(),
        bounded_message,
    );
    let receipt = SettleResponse {
        error_reason: Some(reason.to_string()),
        error_message: Some(message.clone()),
        ..receipt
    };
    Rejection::new(reason, message)
        .with_payer(Some(payer))
        .with_settlement(receipt)
}

impl Gate {
    /// Settles an admitted payment now, in a task of its own that the caller cannot cancel.
    /// `Ok` with the transaction, or the rejection to answer with (the payment is released when
    /// it provably failed, kept when its outcome is unknown).
    pub(crate) async fn settle_now(
        &self,
        pending: &mut PaymentPending,
    ) -> Result<String, Rejection> {
        let (amount, metered) = match &pending.meter {
            Some(meter) => (meter.settlement(), true),
            None => (pending.verified.amount, false),
        };
        // A remote facilitator settles what the requirement asks for: the charge.
        let request = if metered {
            pending.request.with_amount(amount)
        } else {
            pending.request.clone()
        };
        let job = Job {
            facilitator: self.facilitator.clone(),
            embedded: self.embedded.clone(),
            replay: self.replay.clone(),
            journal: self.journal.clone(),
            timeout: self.settlement_timeout,
            request,
            verified: pending.verified.clone(),
            record: pending.record.clone(),
            route: telemetry::route_label(pending.challenge.route().spec),
            kept: pending.kept.take(),
            amount,
            metered,
        };
        let network = pending.request.payment_requirements.network().to_owned();
        let record = pending.record.clone();
        let hooks = self.hooks.clone();
        let context = pending.hook_context.clone();
        // The settlement hooks run in the same task: a client that goes away cannot skip them.
        let task = self.settlements.spawn(record, async move {
            let outcome = job.run().await;
            if let Some(context) = context {
                notify_hooks(&hooks, &context, &outcome, amount).await;
            }
            outcome
        });
        let outcome = task.await.unwrap_or_else(|error| {
            tracing::error!(target: "x402::settlement", %error, "the settlement task failed");
            Outcome::Unknown(pending_receipt(
                &network,
                &pending.verified,
                None,
                format!("the settlement task failed: {error}"),
            ))
        });
        let with_context = |rejection: Rejection| {
            rejection
                .with_version(pending.version)
                .with_challenge(pending.challenge.clone())
        };
        match outcome {
            Outcome::Settled(receipt) => {
                let transaction = receipt.transaction.clone();
                pending.settled = Some(receipt);
                Ok(transaction)
            }
            Outcome::Failed(rejection) => {
                pending.released = true;
                Err(with_context(rejection))
            }
            Outcome::Unknown(receipt) => {
                pending.unresolved = true;
                Err(with_context(
                    Rejection::new(
                        Reason::SETTLEMENT_PENDING,
                        "the payment was submitted but its settlement is not confirmed yet; retry this request with the same payment (do not sign a new one)",
                    )
                    .with_payer(Some(pending.verified.payer))
                    .with_settlement(receipt),
                ))
            }
        }
    }

    /// Opens the payment's grant (if it buys one), then settles it. A grant whose counter
    /// cannot be created charges nothing.
    pub(crate) async fn settle_admitted(
        &self,
        pending: &mut PaymentPending,
    ) -> Result<String, Rejection> {
        if let Some(plan) = &pending.grant
            && let Err(rejection) = self.open_grant(plan).await
        {
            self.release_unsettled(pending, 503).await;
            pending.released = true;
            return Err(rejection);
        }
        self.settle_now(pending).await
    }

    /// Gives back an admitted payment that will not be settled (its handler failed, its grant
    /// could not be opened): the reservation is released and the record says so.
    pub(crate) async fn release_unsettled(&self, pending: &PaymentPending, status: u16) {
        self.release(&pending.verified, &pending.record).await;
        let change = Transition::new(&[PaymentState::Verified], PaymentState::Released, now_ms())
            .response_status(status);
        if let Err(error) = self.journal.advance(&pending.record, change).await {
            tracing::warn!(target: "x402::journal", record = %pending.record, %error, "could not record a released payment; reconciliation will");
        }
    }

    /// Keeps the handler's response (status, headers, body up to the limit) in the journal, to
    /// answer the same payment sent again. Kept before settlement, so that a client whose
    /// answer is lost after a settlement finds it.
    fn kept_response(&self, response: HandlerResponse) -> StoredResponse {
        let body = response
            .body
            .filter(|body| body.len() <= self.keep_response_bytes)
            .map(|body| body.to_vec());
        StoredResponse {
            status: response.status,
            headers: response
                .headers
                .into_iter()
                .filter(|(name, _)| !HandlerResponse::is_hop_by_hop(name))
                .collect(),
            body,
        }
    }

    pub(crate) async fn finish_payment(
        &self,
        mut pending: PaymentPending,
        response: HandlerResponse,
    ) -> Completion {
        let status = response.status;
        let settles_now = pending.settled.is_none() && !pending.unresolved && !pending.released;
        if status < 400 {
            let kept = self.kept_response(response);
            if settles_now {
                // Kept with the move to `settling`.
                pending.kept = Some(kept);
            } else if let Err(error) = self.journal.store_response(&pending.record, kept).await {
                let record = &pending.record;
                tracing::warn!(target: "x402::journal", %record, %error, "could not keep a paid response for retries");
            }
        }
        if settles_now {
            if status >= 400 {
                tracing::info!(target: "x402::settlement", status, payer = %pending.verified.payer, "handler failed; payment not settled");
                self.release_unsettled(&pending, status).await;
                return Completion::nothing();
            }
            if let Err(rejection) = self.settle_admitted(&mut pending).await {
                return Completion::Replace(rejection.to_response());
            }
        }
        let Some(settlement) = &pending.settled else {
            // Settled before the handler failed or came out unknown: the handler's answer
            // (the rejection the integration sent) stands.
            return Completion::nothing();
        };
        let mut headers = response::settlement_headers(pending.version, settlement);
        if let Some(plan) = &pending.grant {
            let token = self.grant_token(plan, &settlement.transaction);
            self.remember_grant(plan, &token).await;
            headers.extend(self.token_headers(token, &plan.scope, plan.lifetime));
        }
        Completion::Deliver {
            headers,
            private: true,
        }
    }
}

impl From<InvalidPayment> for Rejection {
    fn from(invalid: InvalidPayment) -> Self {
        Rejection::new(invalid.reason, invalid.message).with_payer(invalid.payer)
    }
}
