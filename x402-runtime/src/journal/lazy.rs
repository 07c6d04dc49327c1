//! A journal named by URL and opened on first use, for configurations built synchronously
//! ([`X402Builder::build`](crate::X402Builder::build)): the connection and its migrations are
//! asynchronous.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::OnceCell;

use super::{
    Filter, GroupBy, Inserted, Journal, JournalError, NewPayment, Page, PaymentRecord, Records,
    StoredResponse, Total, Transition, connect,
};

/// A journal opened from its URL the first time it is used (or as soon as
/// [`open`](Self::open) is called). Until it is open every operation waits for it; an opening
/// that fails is reported as [`JournalError::Unavailable`] (so paid routes fail closed) and
/// tried again on the next operation.
pub struct LazyJournal {
    url: String,
    journal: OnceCell<Arc<dyn Journal>>,
}

impl std::fmt::Debug for LazyJournal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyJournal")
            .field("url", &super::redact(&self.url))
            .field("open", &self.journal.initialized())
            .finish()
    }
}

impl LazyJournal {
    /// A journal to open from `url` (see [`connect`]).
    pub fn new(url: impl Into<String>) -> Self {
        LazyJournal {
            url: url.into(),
            journal: OnceCell::new(),
        }
    }

    /// Opens the journal now (connects, creates and migrates it), if it is not open yet.
    pub async fn open(&self) -> Result<&Arc<dyn Journal>, JournalError> {
        self.journal
            .get_or_try_init(|| async {
                let journal = connect(&self.url).await.map_err(|error| {
                    tracing::error!(target: "x402::journal", url = %super::redact(&self.url), %error, "the payment journal could not be opened");
                    match error {
                        JournalError::Invalid(_) => error,
                        other => JournalError::Unavailable(other.to_string()),
                    }
                })?;
                tracing::info!(target: "x402::journal", url = %super::redact(&self.url), "payment journal open");
                Ok(journal)
            })
            .await
    }
}

#[async_trait]
impl Journal for LazyJournal {
    async fn insert(&self, payment: NewPayment) -> Result<Inserted, JournalError> {
        self.open().await?.insert(payment).await
    }
    async fn get(&self, id: &str) -> Result<Option<PaymentRecord>, JournalError> {
        self.open().await?.get(id).await
    }
    async fn find_by_payment_key(&self, key: &str) -> Result<Option<PaymentRecord>, JournalError> {
        self.open().await?.find_by_payment_key(key).await
    }
    async fn find_by_payment_id(
        &self,
        payment_id: &str,
    ) -> Result<Option<PaymentRecord>, JournalError> {
        self.open().await?.find_by_payment_id(payment_id).await
    }
    async fn transition(
        &self,
        id: &str,
        change: Transition,
    ) -> Result<PaymentRecord, JournalError> {
        self.open().await?.transition(id, change).await
    }
    async fn advance(&self, id: &str, change: Transition) -> Result<(), JournalError> {
        self.open().await?.advance(id, change).await
    }
    async fn store_response(
        &self,
        id: &str,
        response: StoredResponse,
    ) -> Result<PaymentRecord, JournalError> {
        self.open().await?.store_response(id, response).await
    }
    async fn needing_reconciliation(
        &self,
        before: u64,
        limit: u32,
    ) -> Result<Vec<PaymentRecord>, JournalError> {
        self.open()
            .await?
            .needing_reconciliation(before, limit)
            .await
    }
    async fn query(&self, filter: &Filter, page: &Page) -> Result<Records, JournalError> {
        self.open().await?.query(filter, page).await
    }
    async fn totals(&self, group: GroupBy, filter: &Filter) -> Result<Vec<Total>, JournalError> {
        self.open().await?.totals(group, filter).await
    }
}
