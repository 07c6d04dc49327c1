//! Reserving a payment against replays, and what a payment used before is answered.

use std::time::Duration;

use x402_protocol::Reason;
use x402_protocol::verify::{InvalidPayment, VerifiedPayment};

use super::retry::journal_rejection;
use super::{Gate, store_rejection};
use crate::journal::now_ms;
use crate::rejection::Rejection;

impl Gate {
    /// Reserves a payment against replays: of concurrent copies, exactly one gets past.
    pub(super) async fn reserve(
        &self,
        verified: &VerifiedPayment,
        owner: &str,
        ttl: Duration,
        (method, resource): (&str, &str),
        reject: &impl Fn(InvalidPayment) -> Rejection,
    ) -> Result<(), Rejection> {
        let reserved = self
            .replay
            .insert_if_absent(&verified.key, owner, ttl)
            .await
            .map_err(store_rejection)?;
        if reserved {
            return Ok(());
        }
        if let Some(answer) = self.answer_known(verified, (method, resource)).await? {
            return Err(answer);
        }
        if self.reclaim_orphan(verified, owner, ttl).await? {
            return Ok(());
        }
        Err(reject(
            InvalidPayment::new(
                Reason::NONCE_ALREADY_USED,
                "this payment was already used; sign a new one",
            )
            .with_payer(Some(verified.payer)),
        ))
    }

    /// A reservation whose admission died before writing its journal record (a crash between
    /// the two writes): nothing was or can be settled under it, since settlement needs the
    /// record. Once older than the reconciliation grace period and still without a record, it
    /// is given back and taken for this request. Returns whether this request now holds it.
    async fn reclaim_orphan(
        &self,
        verified: &VerifiedPayment,
        owner: &str,
        ttl: Duration,
    ) -> Result<bool, Rejection> {
        let Some(holder) = self
            .replay
            .owner(&verified.key)
            .await
            .map_err(store_rejection)?
        else {
            return Ok(false);
        };
        // Record ids (and so reservation owners) start with their creation time in
        // milliseconds, as 12 hex digits.
        let Some(made) = holder
            .get(..12)
            .and_then(|t| u64::from_str_radix(t, 16).ok())
        else {
            return Ok(false);
        };
        let grace = u64::try_from(self.reconciler.after.as_millis()).unwrap_or(u64::MAX);
        if now_ms().saturating_sub(made) < grace {
            return Ok(false);
        }
        if self
            .journal
            .get(&holder)
            .await
            .map_err(journal_rejection)?
            .is_some()
        {
            return Ok(false);
        }
        tracing::warn!(target: "x402::journal", key = %verified.key, %holder, "a reservation without a journal record (its admission died before journaling): giving it back");
        self.replay
            .remove(&verified.key, &holder)
            .await
            .map_err(store_rejection)?;
        self.replay
            .insert_if_absent(&verified.key, owner, ttl)
            .await
            .map_err(store_rejection)
    }

    /// A payment used before: the journal may know how that ended (a lost answer, a pending
    /// settlement) and answer it, when this is the request it paid for (a copy sent to another
    /// route is a replay like any other).
    pub(super) async fn answer_known(
        &self,
        verified: &VerifiedPayment,
        (method, resource): (&str, &str),
    ) -> Result<Option<Rejection>, Rejection> {
        let earlier = self
            .journal
            .find_by_payment_key(verified.key.as_str())
            .await
            .map_err(journal_rejection)?;
        Ok(
            match earlier.filter(|r| r.method == method && r.resource == resource) {
                Some(earlier) => self.answer_from_record(earlier).await,
                None => None,
            },
        )
    }
}
