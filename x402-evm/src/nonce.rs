//! Local nonce allocation for one sending account.
//!
//! Nonces are handed out from memory, so concurrent settlements never wait for each other or
//! for the node, and never take the same nonce. The allocator learns the chain's count once
//! (and again whenever it is told its view went stale), reuses nonces whose transactions
//! provably never reached the node (so no gap stalls the ones after them), and never hands out
//! a nonce the chain has already used.

use std::collections::BTreeSet;

/// Hands out the nonces of one account.
#[derive(Debug, Default)]
pub(crate) struct NonceAllocator {
    /// The next fresh nonce; `None` until synced with the chain.
    next: Option<u64>,
    /// Nonces handed out and given back unused (their transaction never reached the node),
    /// reused lowest first.
    free: BTreeSet<u64>,
    /// Nonces handed out and not yet known to be used on chain or given back.
    outstanding: BTreeSet<u64>,
    /// Set when a node said a nonce was already taken: re-read the chain's count as soon as
    /// nothing is outstanding.
    stale: bool,
}

impl NonceAllocator {
    /// Whether the allocator needs the chain's pending count before it can allocate.
    pub(crate) fn needs_sync(&self) -> bool {
        self.next.is_none() || (self.stale && self.outstanding.is_empty())
    }

    /// Adopts the chain's pending transaction count (`eth_getTransactionCount(…, "pending")`).
    /// Nonces still outstanding are kept; fresh ones start after both.
    pub(crate) fn sync(&mut self, pending: u64) {
        let after_outstanding = self.outstanding.last().map_or(0, |n| n + 1);
        self.next = Some(pending.max(after_outstanding));
        self.free.retain(|n| *n >= pending);
        self.stale = false;
    }

    /// The next nonce to use: the lowest given back, else a fresh one. `None` until synced.
    pub(crate) fn allocate(&mut self) -> Option<u64> {
        let nonce = match self.free.pop_first() {
            Some(nonce) => nonce,
            None => {
                let next = self.next.as_mut()?;
                let nonce = *next;
                *next += 1;
                nonce
            }
        };
        self.outstanding.insert(nonce);
        Some(nonce)
    }

    /// The transaction with `nonce` never reached the node: hand the nonce out again.
    pub(crate) fn release(&mut self, nonce: u64) {
        if !self.outstanding.remove(&nonce) {
            return;
        }
        match self.next {
            // The newest nonce: simply step back.
            Some(next) if next == nonce + 1 && self.free.is_empty() => self.next = Some(nonce),
            _ => {
                self.free.insert(nonce);
            }
        }
    }

    /// The chain used `nonce` (our transaction or another sender's): never hand it out again.
    pub(crate) fn used(&mut self, nonce: u64) {
        self.outstanding.remove(&nonce);
        self.free.remove(&nonce);
        if let Some(next) = self.next.as_mut()
            && *next <= nonce
        {
            *next = nonce + 1;
        }
    }

    /// The node said `nonce` was already taken by a transaction we do not know: our view is
    /// stale (another process sends from this account). Retire it, and re-sync when possible.
    pub(crate) fn taken(&mut self, nonce: u64) {
        self.used(nonce);
        self.stale = true;
    }

    /// Every nonce below the chain's mined count `mined` is used.
    pub(crate) fn mined_below(&mut self, mined: u64) {
        self.outstanding.retain(|n| *n >= mined);
        self.free.retain(|n| *n >= mined);
        if let Some(next) = self.next.as_mut()
            && *next < mined
        {
            *next = mined;
        }
    }

    /// Nonces given back that sit below an outstanding one: gaps that hold later transactions
    /// in the node's queue until something is sent with them.
    pub(crate) fn gaps(&self) -> Vec<u64> {
        let Some(highest) = self.outstanding.last() else {
            return Vec::new();
        };
        self.free.range(..highest).copied().collect()
    }

    /// Takes a given-back nonce to fill a gap (see [`gaps`](Self::gaps)).
    pub(crate) fn take_free(&mut self, nonce: u64) -> bool {
        if self.free.remove(&nonce) {
            self.outstanding.insert(nonce);
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn concurrent_allocations_never_repeat_and_given_back_nonces_are_reused_first() {
        let mut nonces = NonceAllocator::default();
        assert!(nonces.needs_sync());
        assert_eq!(nonces.allocate(), None);
        nonces.sync(7);
        let taken: Vec<u64> = (0..5).map(|_| nonces.allocate().unwrap()).collect();
        assert_eq!(taken, [7, 8, 9, 10, 11]);
        assert_eq!(taken.iter().collect::<HashSet<_>>().len(), 5);

        // 9 never reached the node: it is the next one handed out, so 10 and 11 are not held
        // up behind a gap.
        nonces.release(9);
        assert_eq!(nonces.gaps(), [9]);
        assert_eq!(nonces.allocate(), Some(9));
        assert!(nonces.gaps().is_empty());
        assert_eq!(nonces.allocate(), Some(12));

        // The newest one given back just steps back.
        nonces.release(12);
        assert_eq!(nonces.allocate(), Some(12));
    }

    #[test]
    fn a_taken_nonce_is_never_reused_and_the_view_resyncs_when_idle() {
        let mut nonces = NonceAllocator::default();
        nonces.sync(0);
        let a = nonces.allocate().unwrap();
        let b = nonces.allocate().unwrap();
        nonces.taken(a);
        // Still one outstanding: no resync yet, and fresh nonces continue.
        assert!(!nonces.needs_sync());
        assert_eq!(nonces.allocate(), Some(2));
        nonces.used(b);
        nonces.used(2);
        assert!(nonces.needs_sync());
        // Another sender used 3 and 4 meanwhile.
        nonces.sync(5);
        assert_eq!(nonces.allocate(), Some(5));
    }

    #[test]
    fn syncing_never_goes_below_what_is_outstanding_or_mined() {
        let mut nonces = NonceAllocator::default();
        nonces.sync(10);
        let first = nonces.allocate().unwrap();
        let _second = nonces.allocate().unwrap();
        nonces.stale = true;
        nonces.sync(3);
        assert_eq!(nonces.allocate(), Some(12));
        nonces.release(first);
        nonces.mined_below(11);
        // 10 was mined (by another transaction): it is not handed out again.
        assert_eq!(nonces.allocate(), Some(13));
        assert!(nonces.gaps().is_empty());
    }

    #[test]
    fn gaps_are_filled_from_the_free_list() {
        let mut nonces = NonceAllocator::default();
        nonces.sync(0);
        for _ in 0..4 {
            nonces.allocate();
        }
        nonces.release(1);
        nonces.release(2);
        assert_eq!(nonces.gaps(), [1, 2]);
        assert!(nonces.take_free(1));
        assert!(!nonces.take_free(1));
        assert_eq!(nonces.gaps(), [2]);
    }
}
