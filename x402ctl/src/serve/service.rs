//! What the facilitator does with a call, apart from HTTP: verify, settle exactly once,
//! journal every settlement, and reconcile what a crash or a slow chain left open.
//!
//! Settling is idempotent per payment (its key: network, token, payer and authorization
//! nonce):
//!
//! - a settlement runs in a task of its own, registered under the payment's key, so a caller
//!   that gives up (or a retry of the same call) never starts a second one: a retry waits for
//!   the same task and gets its outcome, or `success: false`, `errorReason:
//!   "settlement_pending"` with the transaction while it is not mined;
//! - every settlement is journaled before anything is sent (`verified` → `settling` →
//!   `settled` / `failed` / `unknown`), so after a crash the next start finds it and resolves
//!   it from the chain (the authorization's state and its `AuthorizationUsed` log), sending it
//!   again only if the chain shows it was never executed and it is still valid;
//! - an unknown outcome (submitted, not mined in time) stays in the task, which asks the chain
//!   again every `reconcile_every` until the transfer is mined or the authorization expires.
//!
//! A call for the same key with a different payload (another authorization reusing the
//! nonce) is refused.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use x402_protocol::facilitator::{
    FacilitatorRequest, PaymentPayload, SettleResponse, SupportedResponse, VerifyResponse,
};
use x402_protocol::verify::{InvalidPayment, VerifiedPayment};
use x402_protocol::{Reason, SchemePayload};
use x402_runtime::facilitator::{
    EmbeddedFacilitator, Facilitator, FacilitatorError, SettleObserver, SettleOutcome,
    SettlerError, settle_response,
};
use x402_runtime::journal::{
    Inserted, Journal, JournalError, NewPayment, PaymentRecord, PaymentState, Transition, now_ms,
};

use super::catalog::Catalog;
use super::routes::Routes;
use super::telemetry;

/// How a settlement is going, for everyone waiting on it.
#[derive(Debug, Clone)]
enum Progress {
    Running { transaction: Option<String> },
    Done(Result<SettleResponse, String>),
}

/// One settlement in this process.
struct Flight {
    /// The payment payload, to tell a retry from another payment reusing the key.
    payload: Value,
    progress: watch::Sender<Progress>,
}

impl SettleObserver for Flight {
    fn submitted(&self, transaction: &str) {
        let transaction = transaction.to_owned();
        self.progress.send_modify(|p| {
            if let Progress::Running { transaction: t } = p {
                *t = Some(transaction);
            }
        });
    }
}

/// Settings of the service.
pub(crate) struct Settings {
    /// How long `/settle` waits for a verdict before answering `settlement_pending`.
    pub(crate) settle_wait: Duration,
    /// How often open settlements are looked up on chain.
    pub(crate) reconcile_every: Duration,
}

/// The facilitator's work, shared by every request.
pub(crate) struct Service {
    pub(crate) facilitator: EmbeddedFacilitator,
    routes: Option<Arc<Routes>>,
    pub(crate) journal: Arc<dyn Journal>,
    pub(crate) catalog: Arc<dyn Catalog>,
    flights: Mutex<HashMap<String, Arc<Flight>>>,
    pub(crate) tasks: TaskTracker,
    pub(crate) stopping: CancellationToken,
    settings: Settings,
}

/// A payment's identity: its key, read without checking times or signatures.
struct Identified {
    verified: VerifiedPayment,
    payload: Value,
}

impl Service {
    pub(crate) fn new(
        facilitator: EmbeddedFacilitator,
        routes: Option<Arc<Routes>>,
        journal: Arc<dyn Journal>,
        catalog: Arc<dyn Catalog>,
        settings: Settings,
    ) -> Service {
        Service {
            facilitator,
            routes,
            journal,
            catalog,
            flights: Mutex::new(HashMap::new()),
            tasks: TaskTracker::new(),
            stopping: CancellationToken::new(),
            settings,
        }
    }

    fn flights(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Flight>>> {
        self.flights.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Settlements running in this process.
    pub(crate) fn in_flight(&self) -> usize {
        self.flights().len()
    }

    /// The `network` label: the CAIP-2 id when the network is known, else `unknown` (callers
    /// must not be able to create label values at will).
    pub(crate) fn network_label(&self, id: &str) -> String {
        self.facilitator
            .registry()
            .network(id)
            .map_or_else(|_| "unknown".to_owned(), |n| n.caip2.to_string())
    }

    /// `/supported`, with the `extra` each settler's scheme needs.
    pub(crate) async fn supported(&self) -> Result<SupportedResponse, FacilitatorError> {
        let mut supported = self.facilitator.supported().await?;
        if let Some(routes) = &self.routes {
            for kind in &mut supported.kinds {
                let caip2 = self.network_label(&kind.network);
                if let Some(extra) = routes.extra(&caip2, &kind.scheme) {
                    kind.extra = Some(extra);
                }
            }
        }
        Ok(supported)
    }

    /// `/verify`.
    pub(crate) async fn verify(
        &self,
        request: &FacilitatorRequest,
    ) -> Result<VerifyResponse, FacilitatorError> {
        let started = Instant::now();
        let network = self.network_label(request.payment_requirements.network());
        let scheme = telemetry::scheme_label(request.payment_requirements.scheme());
        let answer = self.facilitator.verify(request).await;
        let result = match &answer {
            Ok(a) if a.is_valid => "valid",
            Ok(_) => "invalid",
            Err(_) => "error",
        };
        telemetry::verified(&network, scheme, result, started.elapsed());
        tracing::info!(
            target: "x402::facilitator",
            call = "verify",
            %network,
            scheme,
            payer = answer.as_ref().ok().and_then(|a| a.payer.as_deref()).unwrap_or("-"),
            outcome = result,
            reason = answer.as_ref().ok().and_then(|a| a.invalid_reason.as_deref()).unwrap_or("-"),
            latency_ms = started.elapsed().as_millis() as u64,
            "verify"
        );
        answer
    }

    fn identify(&self, request: &FacilitatorRequest) -> Result<Identified, InvalidPayment> {
        let payload = &request.payment_payload;
        let requirements = &request.payment_requirements;
        let scheme = self
            .facilitator
            .schemes()
            .for_payment(requirements, payload.payload())
            .ok_or_else(|| {
                InvalidPayment::new(
                    Reason::UNSUPPORTED_SCHEME,
                    format!(
                        "no configured scheme settles {:?} payments made with a {} payload",
                        requirements.scheme(),
                        payload.payload().kind()
                    ),
                )
            })?;
        let verified = scheme.identify(payload, requirements, self.facilitator.registry())?;
        Ok(Identified {
            verified,
            payload: serde_json::to_value(payload).unwrap_or(Value::Null),
        })
    }

    fn refusal(request: &FacilitatorRequest, invalid: InvalidPayment) -> SettleResponse {
        let version = request.payment_payload.version();
        let claimed = request.payment_payload.payload().claimed_payer();
        SettleResponse::failure(
            invalid.reason.for_version(version),
            invalid.message,
            request.payment_payload.network(),
            invalid.payer.or(claimed).map(|p| p.to_string()),
        )
    }

    fn duplicate(request: &FacilitatorRequest) -> SettleResponse {
        Self::refusal(
            request,
            InvalidPayment::new(
                Reason::NONCE_ALREADY_USED,
                "another payment with this authorization (payer and nonce) is being settled or was settled",
            ),
        )
    }

    fn pending_response(
        request: &FacilitatorRequest,
        transaction: Option<String>,
    ) -> SettleResponse {
        let claimed = request.payment_payload.payload().claimed_payer();
        SettleResponse {
            transaction: transaction.unwrap_or_default(),
            ..SettleResponse::failure(
                Reason::SETTLEMENT_PENDING.as_str(),
                "the transfer was submitted but is not confirmed yet; retry with the same payment (never a new one) to get its outcome",
                request.payment_payload.network(),
                claimed.map(|p| p.to_string()),
            )
        }
    }

    /// `/settle`: settles once per payment, whoever asks how often.
    pub(crate) async fn settle(
        self: &Arc<Self>,
        request: FacilitatorRequest,
        caller: &str,
    ) -> Result<SettleResponse, FacilitatorError> {
        let started = Instant::now();
        let network = self.network_label(request.payment_requirements.network());
        let scheme = telemetry::scheme_label(request.payment_requirements.scheme());
        let answer = self.settle_inner(request, caller).await;
        let outcome = match &answer {
            Ok(a) if a.success => "settled",
            Ok(a) if a.error_reason.as_deref() == Some(Reason::SETTLEMENT_PENDING.as_str()) => {
                "pending"
            }
            Ok(_) => "failed",
            Err(_) => "error",
        };
        telemetry::settle_answered(&network, scheme, outcome, started.elapsed());
        tracing::info!(
            target: "x402::facilitator",
            call = "settle",
            caller,
            %network,
            scheme,
            payer = answer.as_ref().ok().and_then(|a| a.payer.as_deref()).unwrap_or("-"),
            outcome,
            reason = answer.as_ref().ok().and_then(|a| a.error_reason.as_deref()).unwrap_or("-"),
            transaction = answer.as_ref().map_or("-", |a| a.transaction.as_str()),
            latency_ms = started.elapsed().as_millis() as u64,
            "settle"
        );
        answer
    }

    async fn settle_inner(
        self: &Arc<Self>,
        request: FacilitatorRequest,
        caller: &str,
    ) -> Result<SettleResponse, FacilitatorError> {
        let identified = match self.identify(&request) {
            Ok(identified) => identified,
            Err(invalid) => return Ok(Self::refusal(&request, invalid)),
        };
        let key = identified.verified.key.as_str().to_owned();

        // Settling in this process already: wait for it.
        let existing = self.flights().get(&key).cloned();
        if let Some(flight) = existing {
            if flight.payload != identified.payload {
                return Ok(Self::duplicate(&request));
            }
            return self.await_flight(&flight, &request).await;
        }

        // Journaled before (an earlier process, another replica, or settled earlier).
        match self.journal.find_by_payment_key(&key).await {
            Ok(Some(record)) if record.state.holds_keys() => {
                if !same_payload(&record, &identified.payload) {
                    return Ok(Self::duplicate(&request));
                }
                if record.state == PaymentState::Settled {
                    return Ok(settled_response(&record, &request));
                }
                let flight = match self.register(&key, &identified.payload) {
                    Ok(flight) => flight,
                    Err(other) => return self.await_flight(&other, &request).await,
                };
                self.spawn_resume(record, flight.clone());
                return self.await_flight(&flight, &request).await;
            }
            Ok(_) => {}
            Err(error) => return Err(journal_down(error)),
        }

        // A new payment: every check, then journal it, then settle it.
        let verified = match self.facilitator.verify_offline(&request) {
            Ok(verified) => verified,
            Err(invalid) => return Ok(Self::refusal(&request, invalid)),
        };
        let flight = match self.register(&key, &identified.payload) {
            Ok(flight) => flight,
            Err(other) => {
                if other.payload != identified.payload {
                    return Ok(Self::duplicate(&request));
                }
                return self.await_flight(&other, &request).await;
            }
        };
        let new = new_payment(&key, &verified, &request, caller);
        match self.journal.insert(new).await {
            Ok(Inserted::Created(record)) => {
                self.spawn_fresh(record.id, verified, request.clone(), flight.clone());
            }
            Ok(Inserted::Existing(record)) => {
                // Admitted elsewhere meanwhile (another replica).
                if !same_payload(&record, &identified.payload) {
                    self.land(&key, &flight, Ok(Self::duplicate(&request)));
                    return Ok(Self::duplicate(&request));
                }
                self.spawn_resume(record, flight.clone());
            }
            Err(error) => {
                let failure = journal_down(error);
                self.land(&key, &flight, Err(failure.to_string()));
                return Err(failure);
            }
        }
        self.await_flight(&flight, &request).await
    }

    /// Registers a flight for `key`, or returns the one already there.
    fn register(&self, key: &str, payload: &Value) -> Result<Arc<Flight>, Arc<Flight>> {
        let mut flights = self.flights();
        if let Some(existing) = flights.get(key) {
            return Err(existing.clone());
        }
        let (progress, _) = watch::channel(Progress::Running { transaction: None });
        let flight = Arc::new(Flight {
            payload: payload.clone(),
            progress,
        });
        flights.insert(key.to_owned(), flight.clone());
        telemetry::in_flight(flights.len());
        Ok(flight)
    }

    /// Ends a flight with its answer and forgets it.
    fn land(&self, key: &str, flight: &Arc<Flight>, answer: Result<SettleResponse, String>) {
        flight.progress.send_replace(Progress::Done(answer));
        let mut flights = self.flights();
        if flights.get(key).is_some_and(|f| Arc::ptr_eq(f, flight)) {
            flights.remove(key);
        }
        telemetry::in_flight(flights.len());
    }

    async fn await_flight(
        &self,
        flight: &Flight,
        request: &FacilitatorRequest,
    ) -> Result<SettleResponse, FacilitatorError> {
        let mut progress = flight.progress.subscribe();
        let _ = tokio::time::timeout(
            self.settings.settle_wait,
            progress.wait_for(|p| matches!(p, Progress::Done(_))),
        )
        .await;
        let current = progress.borrow().clone();
        match current {
            Progress::Done(Ok(mut answer)) => {
                // The answer speaks the caller's protocol generation.
                answer.network = request.payment_payload.network().to_owned();
                Ok(answer)
            }
            Progress::Done(Err(message)) => Err(FacilitatorError::Unreachable(message)),
            Progress::Running { transaction } => Ok(Self::pending_response(request, transaction)),
        }
    }

    fn spawn_fresh(
        self: &Arc<Self>,
        id: String,
        verified: VerifiedPayment,
        request: FacilitatorRequest,
        flight: Arc<Flight>,
    ) {
        let service = self.clone();
        self.tasks.spawn(async move {
            service.run_fresh(id, verified, request, flight).await;
        });
    }

    async fn run_fresh(
        self: Arc<Self>,
        id: String,
        verified: VerifiedPayment,
        request: FacilitatorRequest,
        flight: Arc<Flight>,
    ) {
        let payload = &request.payment_payload;
        if let Err(error) = self
            .journal
            .transition(
                &id,
                Transition::new(&[PaymentState::Verified], PaymentState::Settling, now_ms()),
            )
            .await
        {
            // Nothing was sent: refuse rather than settle without a record.
            tracing::error!(target: "x402::facilitator", %error, %id, "cannot journal the settlement's start; not settling");
            telemetry::error("journal");
            self.land(
                verified.key.as_str(),
                &flight,
                Err("the settlement journal is unavailable".into()),
            );
            return;
        }
        let outcome = match self.facilitator.check_verified(&verified, payload).await {
            Ok(()) => {
                let amount = request.payment_requirements.amount().min(verified.amount);
                self.facilitator
                    .settle_verified_observed(&verified, payload, amount, flight.as_ref())
                    .await
            }
            Err(error) => SettleOutcome::Failed(error),
        };
        self.follow(
            id,
            PaymentState::Settling,
            outcome,
            verified,
            request,
            flight,
            false,
        )
        .await;
    }

    fn spawn_resume(self: &Arc<Self>, record: PaymentRecord, flight: Arc<Flight>) {
        let service = self.clone();
        self.tasks.spawn(async move {
            service.resume(record, flight).await;
        });
    }

    /// Picks up a journaled settlement this process did not start: asks the chain how it
    /// ended, and sends it again only if the chain shows it never executed.
    async fn resume(self: Arc<Self>, record: PaymentRecord, flight: Arc<Flight>) {
        let key = record.payment_key.clone();
        let request: FacilitatorRequest = match serde_json::from_str(&record.facilitator_request) {
            Ok(request) => request,
            Err(error) => {
                tracing::error!(target: "x402::facilitator", %error, id = %record.id, "a journaled settlement cannot be read back");
                self.land(
                    &key,
                    &flight,
                    Err("a journaled settlement cannot be read back".into()),
                );
                return;
            }
        };
        let verified = match self.identify(&request) {
            Ok(identified) => identified.verified,
            Err(invalid) => {
                tracing::error!(target: "x402::facilitator", %invalid, id = %record.id, "a journaled settlement no longer identifies");
                self.land(&key, &flight, Ok(Self::refusal(&request, invalid)));
                return;
            }
        };
        tracing::info!(target: "x402::facilitator", id = %record.id, state = %record.state, key = %key, "resuming a journaled settlement");
        let payload = &request.payment_payload;
        let (from, outcome) = match record.state {
            // Journaled, never started: start it now.
            PaymentState::Verified => {
                if let Err(error) = self
                    .journal
                    .transition(
                        &record.id,
                        Transition::new(
                            &[PaymentState::Verified],
                            PaymentState::Settling,
                            now_ms(),
                        ),
                    )
                    .await
                {
                    self.lost_race(&key, &flight, &request, error);
                    return;
                }
                (PaymentState::Settling, None)
            }
            state => {
                let resolved = self
                    .facilitator
                    .resolve_verified(&verified, payload, record.transaction.as_deref())
                    .await;
                (state, Some(resolved))
            }
        };
        let outcome = match outcome {
            None => {
                let amount = request.payment_requirements.amount().min(verified.amount);
                let outcome = self
                    .facilitator
                    .settle_verified_observed(&verified, payload, amount, flight.as_ref())
                    .await;
                self.recheck(&verified, payload, outcome).await
            }
            Some(SettleOutcome::Unknown {
                transaction,
                detail,
            }) => {
                // Not executed yet, and still valid. Send it again: the token executes one
                // authorization at most once, whichever copy is mined first.
                tracing::warn!(target: "x402::facilitator", id = %record.id, ?transaction, %detail, "settlement not found on chain; sending it again");
                let mut at = from;
                if at == PaymentState::Settling {
                    match self
                        .journal
                        .transition(
                            &record.id,
                            Transition::new(
                                &[PaymentState::Settling],
                                PaymentState::Unknown,
                                now_ms(),
                            )
                            .error(Reason::SETTLEMENT_PENDING.as_str(), detail.clone()),
                        )
                        .await
                    {
                        Ok(_) => at = PaymentState::Unknown,
                        Err(error) => {
                            self.lost_race(&key, &flight, &request, error);
                            return;
                        }
                    }
                }
                if let Err(error) = self
                    .journal
                    .transition(
                        &record.id,
                        Transition::new(&[at], PaymentState::Settling, now_ms()),
                    )
                    .await
                {
                    self.lost_race(&key, &flight, &request, error);
                    return;
                }
                let amount = request.payment_requirements.amount().min(verified.amount);
                let outcome = self
                    .facilitator
                    .settle_verified_observed(&verified, payload, amount, flight.as_ref())
                    .await;
                self.recheck(&verified, payload, outcome).await
            }
            Some(resolved) => {
                self.follow(record.id, from, resolved, verified, request, flight, true)
                    .await;
                return;
            }
        };
        self.follow(
            record.id,
            PaymentState::Settling,
            outcome,
            verified,
            request,
            flight,
            true,
        )
        .await;
    }

    /// A resumed settlement sent again may find its authorization already used: by the
    /// transaction the previous process sent (still queued when it died) or by anyone else.
    /// Either way the transfer it authorizes happened; ask the chain which transaction did it.
    async fn recheck(
        &self,
        verified: &VerifiedPayment,
        payload: &PaymentPayload,
        outcome: SettleOutcome,
    ) -> SettleOutcome {
        let refused_as_used = matches!(
            &outcome,
            SettleOutcome::Failed(SettlerError::Rejected(invalid))
                if invalid.reason == Reason::SIMULATION_FAILED
                    || invalid.reason == Reason::NONCE_ALREADY_USED
                    || invalid.reason == Reason::INVALID_TRANSACTION_STATE
        );
        if !refused_as_used {
            return outcome;
        }
        match self
            .facilitator
            .resolve_verified(verified, payload, None)
            .await
        {
            settled @ SettleOutcome::Settled { .. } => {
                tracing::info!(target: "x402::facilitator", key = %verified.key, "the authorization was used by an earlier transaction: settled");
                settled
            }
            _ => outcome,
        }
    }

    /// Another process moved the record first: it is settling it; report what is known.
    fn lost_race(
        &self,
        key: &str,
        flight: &Arc<Flight>,
        request: &FacilitatorRequest,
        error: JournalError,
    ) {
        match error {
            JournalError::Conflict { current, .. } => {
                tracing::info!(target: "x402::facilitator", id = %current.id, state = %current.state, "another process is settling this payment");
                let answer = if current.state == PaymentState::Settled {
                    settled_response(&current, request)
                } else {
                    Self::pending_response(request, current.transaction.clone())
                };
                self.land(key, flight, Ok(answer));
            }
            other => {
                tracing::error!(target: "x402::facilitator", error = %other, "cannot journal a resumed settlement");
                telemetry::error("journal");
                self.land(
                    key,
                    flight,
                    Err("the settlement journal is unavailable".into()),
                );
            }
        }
    }

    /// Records an outcome; an unknown one is asked about again until it is known.
    #[allow(clippy::too_many_arguments)]
    async fn follow(
        &self,
        id: String,
        mut state: PaymentState,
        mut outcome: SettleOutcome,
        verified: VerifiedPayment,
        request: FacilitatorRequest,
        flight: Arc<Flight>,
        mut reconciled: bool,
    ) {
        let key = verified.key.as_str().to_owned();
        let version = request.payment_payload.version();
        let network = request.payment_payload.network().to_owned();
        let label = self.network_label(request.payment_requirements.network());
        loop {
            let (to, change) = match &outcome {
                SettleOutcome::Settled {
                    transaction,
                    amount,
                } => (
                    PaymentState::Settled,
                    Transition::new(&[state], PaymentState::Settled, now_ms())
                        .transaction(transaction.clone())
                        .settled_amount(*amount),
                ),
                SettleOutcome::Failed(error) => {
                    let (reason, message) = match error {
                        SettlerError::Rejected(invalid) => {
                            (invalid.reason.to_string(), invalid.message.clone())
                        }
                        SettlerError::Unavailable(message) => {
                            (Reason::FACILITATOR_UNAVAILABLE.to_string(), message.clone())
                        }
                        other => (Reason::SETTLEMENT_FAILED.to_string(), other.to_string()),
                    };
                    (
                        PaymentState::Failed,
                        Transition::new(&[state], PaymentState::Failed, now_ms())
                            .error(reason, message),
                    )
                }
                SettleOutcome::Unknown {
                    transaction,
                    detail,
                } => {
                    let mut change = Transition::new(&[state], PaymentState::Unknown, now_ms())
                        .error(Reason::SETTLEMENT_PENDING.as_str(), detail.clone());
                    if let Some(tx) = transaction {
                        change = change.transaction(tx.clone());
                    }
                    (PaymentState::Unknown, change)
                }
                _ => (
                    PaymentState::Unknown,
                    Transition::new(&[state], PaymentState::Unknown, now_ms()),
                ),
            };
            let change = if reconciled {
                change.reconciled()
            } else {
                change
            };
            if state != to
                && let Err(error) = self.journal.transition(&id, change).await
            {
                tracing::error!(target: "x402::facilitator", %error, %id, to = %to, "cannot journal a settlement outcome; the next reconciliation will find it");
                telemetry::error("journal");
            }
            state = to;
            telemetry::settlement(&label, outcome_label(&outcome), reconciled);
            match outcome {
                SettleOutcome::Unknown { transaction, .. } => {
                    flight.progress.send_modify(|p| {
                        if let Progress::Running { transaction: t } = p
                            && transaction.is_some()
                        {
                            t.clone_from(&transaction);
                        }
                    });
                    // Ask the chain again later, until it knows (the authorization expires at
                    // the latest), unless the process is stopping: then the next start does.
                    tokio::select! {
                        () = self.stopping.cancelled() => {
                            self.land(&key, &flight, Ok(Self::pending_response(&request, transaction)));
                            return;
                        }
                        () = tokio::time::sleep(self.settings.reconcile_every) => {}
                    }
                    outcome = self
                        .facilitator
                        .resolve_verified(
                            &verified,
                            &request.payment_payload,
                            transaction.as_deref(),
                        )
                        .await;
                    reconciled = true;
                }
                done => {
                    let answer = settle_response(done, &network, Some(verified.payer), version);
                    if let Ok(answer) = &answer
                        && answer.success
                    {
                        self.catalog.record(&request);
                    }
                    self.land(&key, &flight, answer.map_err(|e| e.to_string()));
                    return;
                }
            }
        }
    }

    /// Resolves what a crash or an outage left open: journaled settlements not running here
    /// and last changed before `before` (unix ms).
    pub(crate) async fn reconcile(self: &Arc<Self>, before: u64) -> usize {
        let records = match self.journal.needing_reconciliation(before, 200).await {
            Ok(records) => records,
            Err(error) => {
                tracing::warn!(target: "x402::facilitator", %error, "cannot list open settlements");
                telemetry::error("journal");
                return 0;
            }
        };
        let mut started = 0;
        for record in records {
            let payload = serde_json::from_str::<Value>(&record.facilitator_request)
                .ok()
                .and_then(|v| v.get("paymentPayload").cloned())
                .unwrap_or(Value::Null);
            let Ok(flight) = self.register(&record.payment_key, &payload) else {
                continue;
            };
            started += 1;
            self.spawn_resume(record, flight);
        }
        if started > 0 {
            tracing::info!(target: "x402::facilitator", started, "reconciling open settlements");
        }
        started
    }
}

fn outcome_label(outcome: &SettleOutcome) -> &'static str {
    match outcome {
        SettleOutcome::Settled { .. } => "settled",
        SettleOutcome::Failed(_) => "failed",
        _ => "unknown",
    }
}

fn journal_down(error: JournalError) -> FacilitatorError {
    tracing::error!(target: "x402::facilitator", %error, "the settlement journal failed; refusing to settle");
    telemetry::error("journal");
    FacilitatorError::Unreachable(
        "the settlement journal is unavailable; nothing was settled".into(),
    )
}

fn same_payload(record: &PaymentRecord, payload: &Value) -> bool {
    serde_json::from_str::<Value>(&record.facilitator_request)
        .ok()
        .and_then(|v| v.get("paymentPayload").cloned())
        .is_some_and(|stored| stored == *payload)
}

fn settled_response(record: &PaymentRecord, request: &FacilitatorRequest) -> SettleResponse {
    SettleResponse {
        success: true,
        error_reason: None,
        error_message: None,
        payer: Some(record.payer.clone()),
        transaction: record.transaction.clone().unwrap_or_default(),
        network: request.payment_payload.network().to_owned(),
        amount: Some(record.settled_amount.unwrap_or(record.amount).to_string()),
        extensions: None,
    }
}

fn new_payment(
    key: &str,
    verified: &VerifiedPayment,
    request: &FacilitatorRequest,
    caller: &str,
) -> NewPayment {
    let payload = &request.payment_payload;
    let (resource, nonce) = match payload {
        PaymentPayload::V2(p) => (
            p.resource.as_ref().map(|r| r.url.clone()),
            nonce_of(payload.payload()),
        ),
        PaymentPayload::V1(_) => (
            serde_json::to_value(&request.payment_requirements)
                .ok()
                .and_then(|v| v["resource"].as_str().map(str::to_owned)),
            nonce_of(payload.payload()),
        ),
    };
    NewPayment {
        id: None,
        payment_key: key.to_owned(),
        payment_id: None,
        fingerprint: None,
        // The journal's `route` holds the caller, so totals per route are totals per caller.
        route: format!("facilitator:{caller}"),
        resource: resource.unwrap_or_default(),
        method: "POST /settle".to_owned(),
        payer: verified.payer.to_string(),
        pay_to: verified.pay_to.to_string(),
        amount: verified.amount,
        asset: verified.asset.to_string(),
        network: verified.network.caip2.to_string(),
        scheme: request.payment_requirements.scheme().to_owned(),
        x402_version: payload.version().number(),
        nonce: nonce.unwrap_or_else(|| key.to_owned()),
        valid_before: verified.expires_at,
        facilitator_request: serde_json::to_string(request).unwrap_or_default(),
        at: now_ms(),
    }
}

fn nonce_of(payload: &SchemePayload) -> Option<String> {
    payload
        .as_eip3009()
        .map(|p| p.authorization.nonce.to_string())
}
