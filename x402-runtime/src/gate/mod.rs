//! The gate: what happens to a request for a paid route, in the order it happens.
//!
//! 1. [`prepare`]: the route's spec is resolved against the server's networks, tokens and
//!    schemes (once, for a fixed price) into the options a 402 offers;
//! 2. [`redeem`]: a valid entitlement token bought earlier lets the request through without a
//!    payment;
//! 3. [`decode`]: the payment header (`PAYMENT-SIGNATURE` or `X-PAYMENT`) is decoded;
//! 4. [`admit`]: the payment is matched to one of the route's options, checked by its scheme,
//!    reserved against replays, and verified by the facilitator; the handler may run;
//! 5. [`settle`]: after the handler, a successful response is paid for: the payment is settled
//!    (or was, before the handler, on `settle = "before"` routes) and the receipt added.
//!
//! Every admitted payment is recorded in the [journal](crate::journal) before its handler runs,
//! and every change of its state after. [`retry`] answers a client that sends a payment again
//! (its answer was lost, or its settlement was pending) from that record, and [`reconcile`]
//! resolves what a crash or a timeout left open.
//!
//! Every refusal is a [`Rejection`]; the one mapping to HTTP lives in [`crate::response`].

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use x402_protocol::facilitator::{FacilitatorRequest, SettleResponse};
use x402_protocol::verify::VerifiedPayment;
use x402_protocol::{ChainAddress, Family, NetworkRegistry, ProtocolVersion, Reason};

use crate::challenge::{Challenge, PreparedRoute};
use crate::clock::Clock;
use crate::entitlement::EntitlementKeys;
use crate::facilitator::{DevLedger, EmbeddedFacilitator, Facilitator};
use crate::hooks::{HookContext, HookRunner, RequestSummary};
use crate::journal::Journal;
use crate::payment::PaymentInfo;
use crate::rejection::Rejection;
use crate::request::{RequestView, ResourcePolicy};
use crate::response::{HandlerResponse, ResponseParts};
use crate::route::RouteSpec;
use crate::scheme::Schemes;
use crate::store::{EntitlementStore, ReplayStore, StoreError};

pub(crate) mod admit;
pub(crate) mod decode;
pub(crate) mod prepare;
pub(crate) mod reconcile;
pub(crate) mod redeem;
mod reserve;
pub(crate) mod retry;
pub(crate) mod settle;
pub(crate) mod shutdown;
mod signin;
mod telemetry;

pub use reconcile::ReconcileReport;
pub use shutdown::ShutdownReport;

use redeem::{GrantPlan, Scope};
pub(crate) use signin::route_chains as signin_chains;

/// What a 402 without payment says.
const PAYMENT_REQUIRED_MESSAGE: &str =
    "send a payment in the PAYMENT-SIGNATURE (v2) or X-PAYMENT (v1) header";

/// What a HEAD request is told: it never spends a payment or an entitlement.
const HEAD_MESSAGE: &str = "HEAD requests are answered with the challenge and never spend a payment or an entitlement; send the payment with the request that fetches the resource";

/// What to do with a request to a paid route.
#[derive(Debug)]
pub enum Decision {
    /// No payment: answer 402 with the ways to pay.
    Challenge(Rejection),
    /// A verified payment (for `settle = "before"` routes, settled too) or a valid entitlement:
    /// run the handler, then call [`Gate::finish`] with its status.
    Admitted(Box<Admission>),
    /// The payment, the request or the infrastructure failed: answer with the rejection.
    Rejected(Rejection),
}

impl Decision {
    /// `Ok` when the handler may run, otherwise the rejection to send.
    pub fn into_result(self) -> Result<Admission, Rejection> {
        match self {
            Decision::Admitted(admission) => Ok(*admission),
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

impl Pending {
    /// Whether the payment was already settled (a `settle = "before"` route whose settlement
    /// ran).
    pub fn is_settled(&self) -> bool {
        matches!(&self.0, PendingKind::Payment(p) if p.settled.is_some())
    }

    /// Whether this route settles before its handler and has not yet.
    pub fn settles_before(&self) -> bool {
        matches!(&self.0, PendingKind::Payment(p) if p.settle_before && p.settled.is_none())
    }

    /// Whether the handler's response should be captured and given to
    /// [`Gate::finish_with`]: it answers a payment, which is kept for retries.
    pub fn keeps_response(&self) -> bool {
        matches!(&self.0, PendingKind::Payment(_))
    }
}

#[derive(Debug)]
pub(crate) enum PendingKind {
    /// A payment sent with this request.
    Payment(Box<PaymentPending>),
    /// A use or some balance drawn from a grant's counter; `deliver` hands the grant's token
    /// back to a payer who signed in for it (empty otherwise).
    Drawn {
        id: String,
        amount: u64,
        deliver: Vec<(&'static str, String)>,
    },
    /// An entitlement without a counter: nothing to do but, after a sign-in, `deliver`.
    Nothing {
        deliver: Vec<(&'static str, String)>,
    },
}

/// An admitted payment, until it is settled or released.
#[derive(Debug)]
pub(crate) struct PaymentPending {
    pub(crate) version: ProtocolVersion,
    pub(crate) request: FacilitatorRequest,
    pub(crate) verified: VerifiedPayment,
    pub(crate) challenge: Arc<Challenge>,
    /// The payment's record in the journal.
    pub(crate) record: String,
    pub(crate) settle_before: bool,
    pub(crate) settled: Option<SettleResponse>,
    /// Settlement provably failed and the reservation was given up.
    pub(crate) released: bool,
    /// Settlement was submitted without a verdict: the reservation stays.
    pub(crate) unresolved: bool,
    pub(crate) grant: Option<GrantPlan>,
    /// What the lifecycle hooks were shown at admission, for the settlement hooks (none when
    /// the server has no hooks).
    pub(crate) hook_context: Option<HookContext>,
    /// The handler's response, kept in the journal with the move to `settling` (one write
    /// instead of two).
    pub(crate) kept: Option<crate::journal::StoredResponse>,
    /// The charge the handler sets on a metered (`upto`) payment.
    pub(crate) meter: Option<Arc<crate::payment::Meter>>,
}

/// What to do with the handler's response once [`Gate::finish`] is done.
#[derive(Debug)]
pub enum Completion {
    /// Send the handler's response with these headers added (and its `cache-control` made
    /// private with [`paid_cache_control`](crate::response::paid_cache_control) when
    /// `private` is set).
    Deliver {
        /// Headers to add: the receipt, an entitlement token.
        headers: Vec<(&'static str, String)>,
        /// Whether the response is paid content that shared caches must not keep.
        private: bool,
    },
    /// Discard the handler's response and send this instead (settlement failed or is
    /// pending).
    Replace(ResponseParts),
}

impl Completion {
    fn nothing() -> Self {
        Completion::Deliver {
            headers: Vec::new(),
            private: false,
        }
    }
}

/// Decides whether requests to paid routes may proceed, and settles their payments.
///
/// Build one with [`X402Builder`](crate::X402Builder); integrations share it behind an `Arc`.
pub struct Gate {
    pub(crate) facilitator: Arc<dyn Facilitator>,
    /// The facilitator when it runs in this process: its checks are the gate's own, so they
    /// run once.
    pub(crate) embedded: Option<Arc<EmbeddedFacilitator>>,
    /// Whether payments are checked here before a remote facilitator is asked.
    pub(crate) local_checks: bool,
    pub(crate) schemes: Schemes,
    pub(crate) replay: Arc<dyn ReplayStore>,
    pub(crate) registry: Arc<NetworkRegistry>,
    pub(crate) clock: Arc<dyn Clock>,
    /// Default recipients, one per chain family at most.
    pub(crate) pay_to: Vec<ChainAddress>,
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
    /// The server's browser paywall, if enabled.
    pub(crate) paywall: Option<Arc<crate::paywall::PaywallConfig>>,
    pub(crate) settlements: shutdown::InFlight,
    pub(crate) journal: Arc<dyn Journal>,
    /// The largest response body kept for answering retries.
    pub(crate) keep_response_bytes: usize,
    pub(crate) payment_ids: PaymentIds,
    /// Resolves open journal records (also in a background task).
    pub(crate) reconciler: reconcile::Reconciler,
    /// The server's lifecycle hooks.
    pub(crate) hooks: HookRunner,
    /// Where discoverable routes are listed, if anywhere.
    pub(crate) discovery: Option<Arc<crate::discovery::DiscoveryCatalog>>,
    /// Sign-in-with-x for returning payers of routes that grant access, if enabled.
    pub(crate) siwx: Option<crate::siwx::SiwxVerifier>,
    /// The accounts payers name, configured or learned from a remote facilitator, by CAIP-2
    /// id: the `upto` settling account (EVM), the fee payer (Solana).
    pub(crate) settling_accounts: Arc<RwLock<HashMap<String, ChainAddress>>>,
    /// Settlers asked about contract-wallet signatures when the facilitator is remote.
    pub(crate) chain_checks: Vec<Arc<dyn crate::facilitator::Settler>>,
}

/// How the `payment-identifier` extension is offered and enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PaymentIds {
    /// Not declared in 402s; ids sent anyway are still honoured.
    Off,
    /// Declared, optional (the default).
    Optional,
    /// Declared and required: a v2 payment without an id is refused with 400.
    Required,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("pay_to", &self.pay_to)
            .field("default_networks", &self.default_networks)
            .field("schemes", &self.schemes)
            .field("resource_policy", &self.resource_policy)
            .field("facilitator_timeout", &self.facilitator_timeout)
            .field("embedded", &self.embedded.is_some())
            .field("local_checks", &self.local_checks)
            .field("dev_ledger", &self.dev_ledger.is_some())
            .field("payment_ids", &self.payment_ids)
            .field("keep_response_bytes", &self.keep_response_bytes)
            .field("hooks", &self.hooks)
            .field("sign_in_with_x", &self.siwx.is_some())
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

    /// The schemes payments are checked with.
    pub fn schemes(&self) -> &Schemes {
        &self.schemes
    }

    /// The largest response body kept in the journal to answer a retried payment.
    pub fn keep_response_bytes(&self) -> usize {
        self.keep_response_bytes
    }

    /// The payment journal.
    pub fn journal(&self) -> &Arc<dyn Journal> {
        &self.journal
    }

    /// The default recipient for a chain family, if one is configured.
    pub fn pay_to(&self, family: Family) -> Option<ChainAddress> {
        self.pay_to.iter().find(|a| a.family() == family).copied()
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
        let head = view.method().eq_ignore_ascii_case("HEAD");
        let header = if head {
            None
        } else {
            decode::payment_header(view)
        };
        // Entitlement tokens, for routes that grant them: read now, checked below.
        let tokens = match &challenge {
            Ok(challenge) if challenge.grants() && !head => {
                let scope = Scope::of(spec, view, challenge.resource());
                let tokens = scope.tokens_in(view);
                Some((scope, tokens))
            }
            _ => None,
        };
        // A returning payer's sign-in (sign-in-with-x), for routes that grant access.
        let sign_in = match (&tokens, &self.siwx) {
            (Some(_), Some(_)) => signin::header(view),
            _ => None,
        };
        let method = view.method().to_ascii_uppercase();
        // What lifecycle hooks see of the request, read now like the rest of the view.
        let summary = match &challenge {
            Ok(challenge) if !self.hooks.is_empty() => {
                Some(RequestSummary::from_view(view, challenge.resource()))
            }
            _ => None,
        };
        async move {
            let challenge = match challenge {
                Ok(challenge) => challenge,
                Err(rejection) => return Decision::Rejected(rejection),
            };
            if head {
                let rejection = Rejection::new(Reason::PAYMENT_REQUIRED, HEAD_MESSAGE);
                return Decision::Challenge(rejection.with_challenge(challenge));
            }
            let scope = tokens.as_ref().map(|(scope, _)| scope.clone());
            let mut token_problem = None;
            if let Some((scope, tokens)) = tokens
                && !tokens.is_empty()
            {
                let redeemed =
                    Box::pin(self.redeem(&tokens, &scope, &method, &challenge, summary.as_ref()))
                        .await;
                match redeemed {
                    Ok(admission) => return Decision::Admitted(Box::new(admission)),
                    // A store failure fails closed, whatever else the request carries.
                    Err(rejection) if rejection.status() != 402 => {
                        return Decision::Rejected(rejection);
                    }
                    Err(rejection) => token_problem = Some(rejection),
                }
            }
            if let (Some(sign_in), Some(scope)) = (sign_in, &scope) {
                let signed_in =
                    Box::pin(self.sign_in(&sign_in, scope, &method, &challenge, summary.as_ref()))
                        .await;
                match signed_in {
                    Ok(admission) => return Decision::Admitted(Box::new(admission)),
                    Err(rejection) if rejection.status() != 402 => {
                        return Decision::Rejected(rejection);
                    }
                    // Said rather than a stale token's problem: it is what the client just did.
                    Err(rejection) => token_problem = Some(rejection),
                }
            }
            let Some((version, value)) = header else {
                let rejection = token_problem.unwrap_or_else(|| {
                    Rejection::new(Reason::PAYMENT_REQUIRED, PAYMENT_REQUIRED_MESSAGE)
                });
                return Decision::Challenge(rejection.with_challenge(challenge));
            };
            // Boxed, like redeem and sign_in above: these futures are kilobytes (verification,
            // the facilitator, the journal), and held inline they made every request's future
            // that large, copied each time a framework moves or boxes it, a 402 included.
            let admitted =
                Box::pin(self.admit(version, &value, challenge, scope, &method, summary)).await;
            match admitted {
                Ok(admission) => Decision::Admitted(Box::new(admission)),
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

    /// Completes an admitted request once the handler has answered with `status`.
    ///
    /// - status ≥ 400: nothing is settled and the authorization is released, so the client is
    ///   not charged and may retry with it (a drawn entitlement use is given back);
    /// - otherwise the payment is settled (unless it was settled before the handler) and the
    ///   receipt header is added. Settlement runs to its end even if the returned future is
    ///   dropped (the client went away). If settlement fails, the response is replaced by a
    ///   402 (or 502); if its outcome is not known in time, by a 504 `settlement_pending`, and
    ///   the payment stays the client's to retry.
    pub async fn finish(&self, pending: Pending, status: u16) -> Completion {
        self.finish_with(pending, HandlerResponse::status(status))
            .await
    }

    /// [`finish`](Self::finish) with the handler's whole response: a paid response (status,
    /// headers, and its body up to [`keep_response_bytes`](Self::keep_response_bytes)) is
    /// kept in the journal before settlement, so that a client whose answer is lost, or whose
    /// settlement was pending, gets it when it sends the same payment again, without being
    /// charged again. Integrations call this; [`Pending::keeps_response`] says when the
    /// response is worth capturing.
    pub async fn finish_with(&self, pending: Pending, response: HandlerResponse) -> Completion {
        let status = response.status;
        match pending.0 {
            PendingKind::Nothing { deliver } if deliver.is_empty() || status >= 400 => {
                Completion::nothing()
            }
            PendingKind::Nothing { deliver } => Completion::Deliver {
                headers: deliver,
                private: true,
            },
            PendingKind::Drawn {
                id,
                amount,
                deliver,
            } => {
                if status >= 400 {
                    tracing::info!(target: "x402::entitlement", status, %id, "handler failed; giving the draw back");
                    if let Err(error) = self.entitlements.give_back(&id, amount).await {
                        tracing::warn!(target: "x402::store", %error, %id, "could not give a draw back");
                    }
                }
                Completion::Deliver {
                    headers: if status < 400 { deliver } else { Vec::new() },
                    private: status < 400,
                }
            }
            PendingKind::Payment(payment) => self.finish_payment(*payment, response).await,
        }
    }

    /// Settles a `settle = "before"` payment now, once every extractor of the request has
    /// accepted and just before the handler runs (`#[paid]` calls this through the
    /// integration's `Payment`). On failure the handler must not run; answer with the
    /// rejection. A no-op for payments that settle after the handler.
    pub async fn settle_before(&self, pending: &mut Pending) -> Result<Option<String>, Rejection> {
        let PendingKind::Payment(payment) = &mut pending.0 else {
            return Ok(None);
        };
        if !payment.settle_before {
            return Ok(None);
        }
        if let Some(settled) = &payment.settled {
            return Ok(Some(settled.transaction.clone()));
        }
        self.settle_admitted(payment).await.map(Some)
    }
}
