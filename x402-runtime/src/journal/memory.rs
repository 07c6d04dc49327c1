//! The journal in process memory.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;

use super::keys::new_id;
use super::query::Totals;
use super::{
    Filter, GroupBy, Inserted, Journal, JournalError, NewPayment, Page, PaymentRecord,
    PaymentState, Records, StoredResponse, Total, Transition,
};

/// A [`Journal`] in process memory: for tests and development. Everything is lost when the
/// process exits, so a crash loses the record of payments in flight; use the SQLite or
/// Postgres journal in production.
#[derive(Debug, Default)]
pub struct MemoryJournal {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    records: HashMap<String, PaymentRecord>,
    /// `payment_key` → id of the record holding it (not released).
    by_key: HashMap<String, String>,
    /// `payment_id` → id of the record holding it (not released).
    by_payment_id: HashMap<String, String>,
}

impl MemoryJournal {
    /// An empty journal.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.lock().records.len()
    }

    /// Whether there are no records.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every change below is checked before anything is modified, so a panic cannot leave
        // the maps half-updated; a poisoned lock is still consistent.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies `change` to record `id` ([`Journal::transition`]'s rules) and gives what `read`
    /// takes from the changed record.
    fn apply<R>(
        &self,
        id: &str,
        change: Transition,
        read: impl FnOnce(&PaymentRecord) -> R,
    ) -> Result<R, JournalError> {
        change.validate()?;
        let mut inner = self.lock();
        let Some(record) = inner.records.get_mut(id) else {
            return Err(JournalError::NotFound(id.to_owned()));
        };
        if !change.from.contains(&record.state) {
            return Err(JournalError::Conflict {
                expected: change.from,
                current: Box::new(record.clone()),
            });
        }
        if let Some(settled) = change.settled_amount
            && settled > record.amount
        {
            return Err(settled_above_authorized(settled, record));
        }
        record.state = change.to;
        record.updated_at = change.at;
        if change.starts_attempt() {
            record.attempts = record.attempts.saturating_add(1);
        }
        record.reconciled |= change.reconciled;
        if change.transaction.is_some() {
            record.transaction = change.transaction;
        }
        if change.to == PaymentState::Settled {
            record.settled_amount = Some(change.settled_amount.unwrap_or(record.amount));
        }
        if change.error_reason.is_some() {
            record.error_reason = change.error_reason;
            record.error_message = change.error_message;
        }
        if let Some(kept) = change.response
            && record.response.is_none()
        {
            record.response_status = Some(kept.status);
            record.response = Some(kept);
        }
        if change.response_status.is_some() {
            record.response_status = change.response_status;
        }
        let read = read(record);
        if !record.state.holds_keys() {
            let (key, payment_id) = (record.payment_key.clone(), record.payment_id.clone());
            inner.by_key.remove(&key);
            if let Some(payment_id) = payment_id {
                inner.by_payment_id.remove(&payment_id);
            }
        }
        Ok(read)
    }
}

impl Inner {
    /// The most recent record whose `field` equals `value`.
    fn latest(
        &self,
        field: impl Fn(&PaymentRecord) -> Option<&str>,
        value: &str,
    ) -> Option<&PaymentRecord> {
        self.records
            .values()
            .filter(|r| field(r) == Some(value))
            .max_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)))
    }
}

#[async_trait]
impl Journal for MemoryJournal {
    async fn insert(&self, payment: NewPayment) -> Result<Inserted, JournalError> {
        let payment = payment.prepared()?;
        let id = match &payment.id {
            Some(id) => id.clone(),
            None => new_id(payment.at)?,
        };
        let mut inner = self.lock();
        let holder = inner.by_key.get(&payment.payment_key).or_else(|| {
            payment
                .payment_id
                .as_ref()
                .and_then(|payment_id| inner.by_payment_id.get(payment_id))
        });
        if let Some(holder) = holder {
            return inner
                .records
                .get(holder)
                .cloned()
                .map(Inserted::Existing)
                .ok_or_else(|| {
                    JournalError::Corrupt(format!("index names a missing record {holder}"))
                });
        }
        let record = PaymentRecord::admitted(id.clone(), payment);
        inner.by_key.insert(record.payment_key.clone(), id.clone());
        if let Some(payment_id) = &record.payment_id {
            inner.by_payment_id.insert(payment_id.clone(), id.clone());
        }
        inner.records.insert(id, record.clone());
        Ok(Inserted::Created(record))
    }

    async fn get(&self, id: &str) -> Result<Option<PaymentRecord>, JournalError> {
        Ok(self.lock().records.get(id).cloned())
    }

    async fn find_by_payment_key(&self, key: &str) -> Result<Option<PaymentRecord>, JournalError> {
        let inner = self.lock();
        if let Some(id) = inner.by_key.get(key) {
            return Ok(inner.records.get(id).cloned());
        }
        Ok(inner.latest(|r| Some(&r.payment_key), key).cloned())
    }

    async fn find_by_payment_id(
        &self,
        payment_id: &str,
    ) -> Result<Option<PaymentRecord>, JournalError> {
        let inner = self.lock();
        if let Some(id) = inner.by_payment_id.get(payment_id) {
            return Ok(inner.records.get(id).cloned());
        }
        Ok(inner
            .latest(|r| r.payment_id.as_deref(), payment_id)
            .cloned())
    }

    async fn transition(
        &self,
        id: &str,
        change: Transition,
    ) -> Result<PaymentRecord, JournalError> {
        self.apply(id, change, PaymentRecord::clone)
    }

    /// The transition without copying the record out (the gate's paid path).
    async fn advance(&self, id: &str, change: Transition) -> Result<(), JournalError> {
        self.apply(id, change, |_| ())
    }

    async fn store_response(
        &self,
        id: &str,
        response: StoredResponse,
    ) -> Result<PaymentRecord, JournalError> {
        let mut inner = self.lock();
        let Some(record) = inner.records.get_mut(id) else {
            return Err(JournalError::NotFound(id.to_owned()));
        };
        if record.response.is_none() {
            record.response_status = Some(response.status);
            record.response = Some(response);
        }
        Ok(record.clone())
    }

    async fn needing_reconciliation(
        &self,
        before: u64,
        limit: u32,
    ) -> Result<Vec<PaymentRecord>, JournalError> {
        let inner = self.lock();
        let mut stale: Vec<PaymentRecord> = inner
            .records
            .values()
            .filter(|r| needs_reconciliation(r.state) && r.updated_at < before)
            .cloned()
            .collect();
        stale.sort_by(|a, b| (a.updated_at, &a.id).cmp(&(b.updated_at, &b.id)));
        stale.truncate(limit as usize);
        Ok(stale)
    }

    async fn query(&self, filter: &Filter, page: &Page) -> Result<Records, JournalError> {
        let filter = filter.normalized()?;
        let limit = page.effective_limit();
        let inner = self.lock();
        let mut matching: Vec<&PaymentRecord> = inner
            .records
            .values()
            .filter(|r| filter.matches(r))
            .filter(|r| page.after.as_ref().is_none_or(|cursor| cursor.admits(r)))
            .collect();
        matching.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        let records = matching
            .into_iter()
            .take(limit as usize + 1)
            .cloned()
            .collect();
        Ok(Records::from_overfetch(records, limit))
    }

    async fn totals(&self, group: GroupBy, filter: &Filter) -> Result<Vec<Total>, JournalError> {
        let filter = filter.normalized()?;
        let inner = self.lock();
        let mut totals = Totals::default();
        for record in inner.records.values().filter(|r| filter.matches(r)) {
            totals.add(
                group.key(record),
                record.network.clone(),
                record.asset.clone(),
                record.state,
                record.amount,
                record.settled_amount,
            )?;
        }
        Ok(totals.finish())
    }
}

/// The states [`Journal::needing_reconciliation`] looks for.
pub(crate) fn needs_reconciliation(state: PaymentState) -> bool {
    matches!(
        state,
        PaymentState::Verified | PaymentState::Settling | PaymentState::Unknown
    )
}

pub(crate) fn settled_above_authorized(
    settled: x402_protocol::U256,
    record: &PaymentRecord,
) -> JournalError {
    JournalError::Invalid(format!(
        "payment {} cannot settle {settled}: only {} was authorized",
        record.id, record.amount
    ))
}
