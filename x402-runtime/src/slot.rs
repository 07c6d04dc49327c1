//! The hand-off between a framework's `Payment` extractor and its post-handler step.

use std::sync::{Arc, Mutex, PoisonError};

use crate::gate::{Completion, Gate, Pending};
use crate::rejection::Rejection;
use crate::response::HandlerResponse;

/// A request-local place where the `Payment` extractor leaves the work owed after the handler
/// (settling a payment, or giving back a drawn use), for the integration's post-handler step
/// (a tower layer, an actix middleware…) to finish.
///
/// The post-handler step creates one per request with its gate and puts it in the request's
/// extensions; the extractor finds the gate there, evaluates, and [parks](Self::park) what is
/// owed together with the gate that produced it (a scope may use its own gate); after the
/// handler, [`finish`](Self::finish) completes it with the handler's status.
///
/// ```
/// use std::sync::Arc;
/// use x402_runtime::{Gate, SettlementSlot};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let gate = Arc::new(Gate::builder().embedded_facilitator().pay_to("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC").build()?);
/// let slot = SettlementSlot::new(gate);
/// // … the extractor ran, but the route was free: nothing was parked.
/// assert!(slot.finish(200).await.is_none());
/// # Ok::<(), x402_runtime::ConfigError>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct SettlementSlot(Arc<Inner>);

struct Inner {
    gate: Arc<Gate>,
    parked: Mutex<Option<(Arc<Gate>, Pending)>>,
}

impl std::fmt::Debug for SettlementSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SettlementSlot")
            .field("parked", &self.lock().is_some())
            .finish_non_exhaustive()
    }
}

impl SettlementSlot {
    /// An empty slot for one request, carrying the gate of the post-handler step.
    pub fn new(gate: Arc<Gate>) -> Self {
        SettlementSlot(Arc::new(Inner {
            gate,
            parked: Mutex::new(None),
        }))
    }

    /// The gate the post-handler step was configured with.
    pub fn gate(&self) -> &Arc<Gate> {
        &self.0.gate
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(Arc<Gate>, Pending)>> {
        // Each update replaces the whole value, so a poisoned lock still holds sound data.
        self.0.parked.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Leaves what an admitted request owes, with the gate that must finish it.
    pub fn park(&self, gate: Arc<Gate>, pending: Pending) {
        *self.lock() = Some((gate, pending));
    }

    /// Settles a parked `settle = "before"` payment now: every extractor of the request has
    /// accepted and the handler is about to run (`#[paid]` calls this first thing in the
    /// handler). `Ok(Some(transaction))` once settled, `Ok(None)` when nothing settles before
    /// the handler; on `Err` the handler must not run and the rejection is the answer.
    pub async fn settle_before(&self) -> Result<Option<String>, Rejection> {
        let Some((gate, mut pending)) = self.lock().take() else {
            return Ok(None);
        };
        let result = gate.settle_before(&mut pending).await;
        *self.lock() = Some((gate, pending));
        result
    }

    /// Whether an extractor parked work for this request: `false` for an unpaid route, or a
    /// request the extractor refused, so the post-handler step has nothing to do.
    pub fn is_parked(&self) -> bool {
        self.lock().is_some()
    }

    /// Whether the parked work is a payment whose response should be captured for
    /// [`finish_with`](Self::finish_with) (see [`Pending::keeps_response`]).
    pub fn keeps_response(&self) -> bool {
        self.lock()
            .as_ref()
            .is_some_and(|(_, pending)| pending.keeps_response())
    }

    /// [`finish`](Self::finish) with the handler's whole response, kept for retries (see
    /// [`Gate::finish_with`]).
    pub async fn finish_with(&self, response: HandlerResponse) -> Option<Completion> {
        let (gate, pending) = self.lock().take()?;
        Some(gate.finish_with(pending, response).await)
    }

    /// After the handler: finishes what was parked (see [`Gate::finish`]) with the status of
    /// the response about to be sent; `None` when nothing was parked (an unpaid route, or a
    /// request the extractor refused).
    pub async fn finish(&self, status: u16) -> Option<Completion> {
        let (gate, pending) = self.lock().take()?;
        Some(gate.finish(pending, status).await)
    }
}
