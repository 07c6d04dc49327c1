//! What the guard leaves for the fairing and the catcher, request by request.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use rocket::Request;
use x402_runtime::{Gate, Pending, ResponseParts};

/// Managed by the fairing when Rocket ignites. The type is private, so its presence proves the
/// fairing is attached: it is what the guard reads and what its sentinel checks.
pub(crate) struct Installed {
    pub(crate) gate: Arc<Gate>,
    pub(crate) parked: ParkedCount,
}

/// How many requests have something parked that nobody has taken yet. When it is zero, the
/// fairing's `on_response` knows without touching request-local state that there is nothing
/// to do.
#[derive(Clone, Default)]
pub(crate) struct ParkedCount(Arc<AtomicUsize>);

impl ParkedCount {
    pub(crate) fn is_zero(&self) -> bool {
        self.0.load(Ordering::Acquire) == 0
    }
}

/// One parked item, counted for as long as it lives (taken, or dropped with its request).
struct Counted(ParkedCount);

impl Counted {
    fn new(count: &ParkedCount) -> Self {
        count.0.fetch_add(1, Ordering::AcqRel);
        Counted(count.clone())
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Identifies the route a request was routed to, so a `Pending` parked by one route is never
/// settled by the response of another (after a forward).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct RouteId(Option<usize>);

impl RouteId {
    pub(crate) fn of(request: &Request<'_>) -> Self {
        // Routes live in the router, unmoved, for as long as the instance: the address is the
        // route's identity.
        RouteId(
            request
                .route()
                .map(|route| std::ptr::from_ref(route).addr()),
        )
    }
}

/// What a `Payment` guard decided for its route.
pub(crate) enum Outcome {
    /// The handler may run; settle (or give back) after it.
    Admitted(Pending),
    /// The runtime's response for a rejected request, to replace Rocket's error response.
    Rejected(ResponseParts),
    /// The runtime's answer in the handler's place (a kept response sent again to a retried
    /// payment), to replace whatever Rocket made of the failed guard, whatever its status.
    Answered(ResponseParts),
}

pub(crate) struct Parked {
    pub(crate) route: RouteId,
    pub(crate) outcome: Outcome,
    _counted: Counted,
}

/// The request-local slot the guard parks its outcome in. Shared (an `Arc`) with the
/// request's `Payment`, which settles a `settle = "before"` payment through it.
#[derive(Default, Clone)]
pub(crate) struct Slot(Arc<Mutex<Option<Parked>>>);

impl Slot {
    /// This request's slot.
    pub(crate) fn of<'a>(request: &'a Request<'_>) -> &'a Slot {
        request.local_cache(Slot::default)
    }

    pub(crate) fn put(&self, count: &ParkedCount, route: RouteId, outcome: Outcome) {
        let parked = Parked {
            route,
            outcome,
            _counted: Counted::new(count),
        };
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(parked);
    }

    pub(crate) fn take(&self) -> Option<Parked> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }

    fn restore(&self, parked: Parked) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(parked);
    }

    /// Takes the parked rejection if it is the one to render for an error response with
    /// `status` on `route`; anything else stays parked.
    pub(crate) fn take_rejection(&self, route: RouteId, status: u16) -> Option<ResponseParts> {
        let mut slot = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match slot.take() {
            Some(Parked {
                route: parked_route,
                outcome: Outcome::Rejected(parts),
                ..
            }) if parked_route == route && parts.status == status => Some(parts),
            Some(Parked {
                route: parked_route,
                outcome: Outcome::Answered(parts),
                ..
            }) if parked_route == route => Some(parts),
            other => {
                *slot = other;
                None
            }
        }
    }
}

/// What a Rocket `Payment` holds to settle a `settle = "before"` payment before its handler.
pub(crate) struct SettleHandle {
    gate: Arc<Gate>,
    slot: Slot,
}

impl SettleHandle {
    pub(crate) fn new(gate: Arc<Gate>, slot: Slot) -> Self {
        SettleHandle { gate, slot }
    }
}

impl x402_runtime::__private::SettleHandle for SettleHandle {
    async fn settle_before(&self) -> Result<Option<String>, x402_runtime::Rejection> {
        let Some(mut parked) = self.slot.take() else {
            return Ok(None);
        };
        let result = match &mut parked.outcome {
            Outcome::Admitted(pending) => self.gate.settle_before(pending).await,
            Outcome::Rejected(_) | Outcome::Answered(_) => Ok(None),
        };
        self.slot.restore(parked);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal() -> Outcome {
        Outcome::Rejected(ResponseParts {
            status: 402,
            headers: Vec::new(),
            body: "{}".into(),
        })
    }

    #[test]
    fn the_count_follows_parked_items_until_taken_or_dropped() {
        let count = ParkedCount::default();
        let slot = Slot::default();
        slot.put(&count, RouteId(Some(1)), refusal());
        assert!(!count.is_zero());
        // The wrong route or status leaves it parked.
        assert!(slot.take_rejection(RouteId(Some(2)), 402).is_none());
        assert!(slot.take_rejection(RouteId(Some(1)), 500).is_none());
        assert!(!count.is_zero());
        assert!(slot.take_rejection(RouteId(Some(1)), 402).is_some());
        assert!(count.is_zero());

        // Replacing an item, or dropping the request with one parked, uncounts it too.
        slot.put(&count, RouteId(None), refusal());
        slot.put(&count, RouteId(None), refusal());
        assert_eq!(count.0.load(Ordering::Acquire), 1);
        drop(slot);
        assert!(count.is_zero());
    }
}
