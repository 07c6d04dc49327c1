//! Resolving what a crash, a timeout or a shutdown left open in the journal.
//!
//! | record | what reconciliation does |
//! | --- | --- |
//! | `verified`, older than the grace period | nothing was submitted (settlement records `settling` first): `released`, and its replay reservation given back |
//! | `settling` or `unknown` | asks for a verdict: the embedded facilitator's settler reads the chain (receipt, authorization state); a remote facilitator is sent the same `/settle` again |
//!
//! A verdict moves the record to `settled` or `failed` (flagged `reconciled`). A remote
//! facilitator's failure on a repeated `/settle` proves nothing (the first attempt may be why
//! it fails), so only its success resolves a record; the rest stays `unknown` for the
//! operator (`x402ctl payments --state unknown`) and for the client's next retry.
//!
//! A gate built inside a tokio runtime reconciles at start-up and then periodically
//! ([`X402Builder::reconcile_every`](crate::X402Builder::reconcile_every));
//! [`Gate::reconcile`] does one pass on demand.

use std::sync::Arc;
use std::time::Duration;

use x402_protocol::Reason;
use x402_protocol::facilitator::FacilitatorRequest;
use x402_protocol::verify::{PaymentKey, VerifiedPayment, same_address};

use super::Gate;
use crate::facilitator::{EmbeddedFacilitator, Facilitator, SettleOutcome};
use crate::journal::{Journal, PaymentRecord, PaymentState, Transition, now_ms};
use crate::scheme::Schemes;
use crate::store::ReplayStore;

/// What one reconciliation pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReconcileReport {
    /// Open records looked at.
    pub examined: usize,
    /// Found settled.
    pub settled: usize,
    /// Found provably not executed.
    pub failed: usize,
    /// Verified but never submitted: released, their authorization given back.
    pub released: usize,
    /// Still without a verdict.
    pub unknown: usize,
}

/// Everything reconciliation needs, shared (it also runs in a background task).
#[derive(Clone)]
pub(crate) struct Reconciler {
    pub(crate) journal: Arc<dyn Journal>,
    pub(crate) replay: Arc<dyn ReplayStore>,
    pub(crate) facilitator: Arc<dyn Facilitator>,
    pub(crate) embedded: Option<Arc<EmbeddedFacilitator>>,
    pub(crate) schemes: Schemes,
    pub(crate) registry: Arc<x402_protocol::NetworkRegistry>,
    pub(crate) timeout: Duration,
    pub(crate) after: Duration,
}

impl std::fmt::Debug for Reconciler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reconciler")
            .field("after", &self.after)
            .finish_non_exhaustive()
    }
}

impl Reconciler {
    /// The payment a record holds, as its scheme reads it (no signature check: the record's
    /// payment was verified when it was admitted, and may have expired since).
    fn payment(&self, record: &PaymentRecord) -> Option<(FacilitatorRequest, VerifiedPayment)> {
        let request: FacilitatorRequest = match serde_json::from_str(&record.facilitator_request) {
            Ok(request) => request,
            Err(error) => {
                tracing::error!(target: "x402::journal", record = %record.id, %error, "a journaled payment cannot be read back");
                return None;
            }
        };
        let scheme = self.schemes.for_payment(
            &request.payment_requirements,
            request.payment_payload.payload(),
        )?;
        match scheme.identify(
            &request.payment_payload,
            &request.payment_requirements,
            &self.registry,
        ) {
            Ok(verified) => Some((request, verified)),
            Err(error) => {
                tracing::error!(target: "x402::journal", record = %record.id, %error, "a journaled payment cannot be identified");
                None
            }
        }
    }

    /// Asks for a verdict on a record in `settling` or `unknown` and writes it; returns the
    /// record as it now is.
    pub(crate) async fn resolve(&self, record: PaymentRecord) -> PaymentRecord {
        let Some((request, verified)) = self.payment(&record) else {
            return record;
        };
        let outcome = match &self.embedded {
            Some(embedded) => tokio::time::timeout(
                self.timeout,
                embedded.resolve_verified(
                    &verified,
                    &request.payment_payload,
                    record.transaction.as_deref(),
                ),
            )
            .await
            .unwrap_or_else(|_| SettleOutcome::Unknown {
                transaction: record.transaction.clone(),
                detail: "the settler gave no verdict in time".to_owned(),
            }),
            None => self.ask_again(&request, &verified, &record).await,
        };
        let now = now_ms();
        let change = match outcome {
            SettleOutcome::Settled {
                transaction,
                amount,
            } => {
                let mut change = Transition::new(
                    &[PaymentState::Settling, PaymentState::Unknown],
                    PaymentState::Settled,
                    now,
                )
                .settled_amount(amount)
                .reconciled();
                if !transaction.is_empty() {
                    change = change.transaction(transaction);
                }
                change
            }
            SettleOutcome::Failed(error) => {
                let (reason, message) = match &error {
                    crate::facilitator::SettlerError::Rejected(invalid) => {
                        (invalid.reason.to_string(), invalid.message.clone())
                    }
                    crate::facilitator::SettlerError::Unavailable(message) => {
                        // The backend is down: no verdict after all.
                        tracing::warn!(target: "x402::journal", record = %record.id, %message, "no verdict: the settlement backend is unavailable");
                        return self.mark_unknown(record, now).await;
                    }
                };
                Transition::new(
                    &[PaymentState::Settling, PaymentState::Unknown],
                    PaymentState::Failed,
                    now,
                )
                .error(reason, message)
                .reconciled()
            }
            SettleOutcome::Unknown { transaction, .. } => {
                let mut record = self.mark_unknown(record, now).await;
                if record.transaction.is_none() {
                    record.transaction = transaction;
                }
                return record;
            }
        };
        let failed = change.to() == PaymentState::Failed;
        match self.journal.transition(&record.id, change).await {
            Ok(updated) => {
                if failed {
                    self.give_back(&verified.key, &updated.id).await;
                }
                tracing::info!(target: "x402::journal", record = %updated.id, state = %updated.state, "payment reconciled");
                updated
            }
            Err(crate::journal::JournalError::Conflict { current, .. }) => *current,
            Err(error) => {
                tracing::error!(target: "x402::journal", record = %record.id, %error, "a reconciled verdict could not be written");
                record
            }
        }
    }

    async fn mark_unknown(&self, record: PaymentRecord, now: u64) -> PaymentRecord {
        if record.state != PaymentState::Settling {
            return record;
        }
        let change = Transition::new(&[PaymentState::Settling], PaymentState::Unknown, now);
        match self.journal.transition(&record.id, change).await {
            Ok(updated) => updated,
            Err(crate::journal::JournalError::Conflict { current, .. }) => *current,
            Err(_) => record,
        }
    }

    /// A remote facilitator's verdict: the same `/settle` again. Only a plausible success
    /// settles the record; anything else leaves it unknown.
    async fn ask_again(
        &self,
        request: &FacilitatorRequest,
        verified: &VerifiedPayment,
        record: &PaymentRecord,
    ) -> SettleOutcome {
        let still = |detail: String| SettleOutcome::Unknown {
            transaction: record.transaction.clone(),
            detail,
        };
        match tokio::time::timeout(self.timeout, self.facilitator.settle(request)).await {
            Ok(Ok(answer))
                if answer.success
                    && !answer.transaction.is_empty()
                    && answer
                        .payer
                        .as_deref()
                        .is_none_or(|p| same_address(p, &verified.payer.to_string())) =>
            {
                SettleOutcome::Settled {
                    transaction: answer.transaction,
                    amount: answer
                        .amount
                        .and_then(|a| a.parse().ok())
                        .unwrap_or(verified.amount),
                }
            }
            Ok(Ok(answer)) => still(format!(
                "the facilitator answered {} again",
                answer
                    .error_reason
                    .unwrap_or_else(|| Reason::SETTLEMENT_FAILED.to_string())
            )),
            Ok(Err(error)) => still(error.to_string()),
            Err(_) => still("the facilitator gave no verdict in time".to_owned()),
        }
    }

    /// Gives a payment's replay reservation back (its record id is the reservation's owner).
    async fn give_back(&self, key: &PaymentKey, owner: &str) {
        if let Err(error) = self.replay.remove(key, owner).await {
            tracing::warn!(target: "x402::store", %error, %key, "could not give back a reconciled payment's reservation");
        }
    }

    /// One pass over the open records older than the grace period.
    pub(crate) async fn run(&self) -> Result<ReconcileReport, crate::journal::JournalError> {
        let before =
            now_ms().saturating_sub(u64::try_from(self.after.as_millis()).unwrap_or(u64::MAX));
        let records = self.journal.needing_reconciliation(before, 200).await?;
        let mut report = ReconcileReport {
            examined: records.len(),
            ..ReconcileReport::default()
        };
        for record in records {
            let after = match record.state {
                PaymentState::Verified => self.release(record).await,
                PaymentState::Settling | PaymentState::Unknown => self.resolve(record).await,
                _ => record,
            };
            match after.state {
                PaymentState::Settled => report.settled += 1,
                PaymentState::Failed => report.failed += 1,
                PaymentState::Released => report.released += 1,
                _ => report.unknown += 1,
            }
        }
        if report.examined > 0 {
            tracing::info!(target: "x402::journal", ?report, "reconciliation pass");
        }
        Ok(report)
    }

    /// A verified record nobody settled: settlement records `settling` before anything is
    /// submitted, so nothing was; release it.
    async fn release(&self, record: PaymentRecord) -> PaymentRecord {
        let change = Transition::new(&[PaymentState::Verified], PaymentState::Released, now_ms())
            .error(
                "not_settled",
                "released by reconciliation: the request ended before settlement",
            )
            .reconciled();
        match self.journal.transition(&record.id, change).await {
            Ok(updated) => {
                if let Some((_, verified)) = self.payment(&updated) {
                    self.give_back(&verified.key, &updated.id).await;
                }
                updated
            }
            Err(crate::journal::JournalError::Conflict { current, .. }) => *current,
            Err(error) => {
                tracing::error!(target: "x402::journal", record = %record.id, %error, "could not release an abandoned payment");
                record
            }
        }
    }
}

impl Gate {
    /// One reconciliation pass now: resolves the journal's open records older than the grace
    /// period ([`X402Builder::reconcile_after`](crate::X402Builder::reconcile_after)); see
    /// the [module docs](self).
    pub async fn reconcile(&self) -> Result<ReconcileReport, crate::journal::JournalError> {
        self.reconciler.run().await
    }

    /// Asks for a verdict on one open record (a client retrying a pending payment).
    pub(crate) async fn resolve_record(&self, record: PaymentRecord) -> PaymentRecord {
        self.reconciler.resolve(record).await
    }
}
