//! The payment journal: a durable record of every admitted payment and each change of its
//! state, so that no payment is lost between "verified" and "settled", even across crashes.
//!
//! A gate records a payment *before* its handler runs ([`Journal::insert`]), then moves it
//! along the state machine of [`PaymentState`] with compare-and-set
//! [`transitions`](Journal::transition): of two replicas racing to settle or reconcile one
//! record, exactly one wins; the other gets [`JournalError::Conflict`] with the record as it
//! now is. On start, a gate lists what a crash left behind
//! ([`Journal::needing_reconciliation`]) and resolves it. The kept response
//! ([`Journal::store_response`]) answers idempotent retries (payment-identifier extension) and
//! resends of a settled authorization. Operators read it with [`Journal::query`] and
//! [`Journal::totals`] (`x402ctl payments`).
//!
//! Backends, all passing one conformance suite (`x402-runtime/tests/support/journal.rs`):
//!
//! - [`MemoryJournal`]: in process memory, for tests and development; lost on exit;
//! - `SqliteJournal` (feature `sqlite`): a SQLite file (WAL, `synchronous = FULL`), the
//!   default for a single server;
//! - `PostgresJournal` (feature `postgres`): Postgres, shared by every replica.
//!
//! [`connect`] opens one from a URL (`X402_JOURNAL_URL`): `sqlite://path/to/journal.db`,
//! `sqlite::memory:`, `postgres://user:password@host/db`, or `memory:`.
//!
//! Amounts are exact: [`U256`](crate::U256), stored as base-10 text (SQLite) or
//! `NUMERIC(78, 0)` (Postgres), and summed without loss.
//!
//! # Example
//!
//! ```
//! use x402_runtime::journal::{
//!     Filter, GroupBy, Journal, MemoryJournal, NewPayment, PaymentState, Transition, now_ms,
//! };
//! use x402_runtime::U256;
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let journal = MemoryJournal::new();
//! let admitted = journal
//!     .insert(NewPayment {
//!         id: None,
//!         payment_key: "eip155:8453:0xusdc:0xpayer:0x01".into(),
//!         payment_id: None,
//!         fingerprint: None,
//!         route: "/weather".into(),
//!         resource: "https://api.example.com/weather".into(),
//!         method: "GET".into(),
//!         payer: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8".into(),
//!         pay_to: "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC".into(),
//!         amount: U256::from(10_000u64),
//!         asset: "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913".into(),
//!         network: "eip155:8453".into(),
//!         scheme: "exact".into(),
//!         x402_version: 2,
//!         nonce: "0x01".into(),
//!         valid_before: None,
//!         facilitator_request: "{}".into(),
//!         at: now_ms(),
//!     })
//!     .await?;
//! assert!(admitted.is_created());
//! let id = admitted.record().id.clone();
//!
//! // The handler succeeded: settle.
//! use PaymentState::*;
//! journal.transition(&id, Transition::new(&[Verified], Settling, now_ms())).await?;
//! let settled = journal
//!     .transition(&id, Transition::new(&[Settling], Settled, now_ms()).transaction("0xabc"))
//!     .await?;
//! assert_eq!(settled.settled_amount, Some(U256::from(10_000u64)));
//! assert_eq!(settled.attempts, 1);
//!
//! // Settled stays settled.
//! assert!(journal.transition(&id, Transition::new(&[Settled], Failed, now_ms())).await.is_err());
//!
//! let totals = journal.totals(GroupBy::Route, &Filter::default()).await?;
//! assert_eq!(totals[0].group, "/weather");
//! assert_eq!(totals[0].settled, U256::from(10_000u64));
//! # Ok::<(), x402_runtime::journal::JournalError>(())
//! # }).unwrap();
//! ```

use std::sync::Arc;

use async_trait::async_trait;

mod error;
mod keys;
mod lazy;
mod memory;
#[cfg(feature = "postgres")]
mod postgres;
mod query;
mod record;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
#[cfg(feature = "sqlite")]
mod sqlite;

pub use error::JournalError;
pub use keys::{canonical_address, evm_payment_key, fingerprint, new_record_id, now_ms, utc_day};
pub use lazy::LazyJournal;
pub use memory::MemoryJournal;
#[cfg(feature = "postgres")]
pub use postgres::PostgresJournal;
pub use query::{Cursor, Filter, GroupBy, MAX_PAGE, Page, Records, Total};
pub use record::{Inserted, NewPayment, PaymentRecord, PaymentState, StoredResponse, Transition};
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteJournal;

/// The environment variable naming the journal's URL.
pub const JOURNAL_URL_ENV: &str = "X402_JOURNAL_URL";

/// A durable record of payments. See the [module docs](self).
///
/// Every method is atomic with respect to every other process using the same backend.
/// Errors that [`is_unavailable`](JournalError::is_unavailable) mean the journal cannot be
/// trusted right now; paid routes must then fail closed.
#[async_trait]
pub trait Journal: Send + Sync + 'static {
    /// Records an admitted payment as `verified` under a fresh id, unless a record already
    /// holds its `payment_key` or its `payment_id` (records that are neither `released` nor `failed` hold both):
    /// then that record is returned unchanged as [`Inserted::Existing`]. Of concurrent inserts
    /// of one key, exactly one creates the record.
    ///
    /// EVM `payer` and `pay_to` addresses are stored checksummed ([`canonical_address`]).
    async fn insert(&self, payment: NewPayment) -> Result<Inserted, JournalError>;

    /// The record with this id.
    async fn get(&self, id: &str) -> Result<Option<PaymentRecord>, JournalError>;

    /// The record holding this payment key; when none does (every record of the key was
    /// released or failed), the most recent record of the key.
    async fn find_by_payment_key(&self, key: &str) -> Result<Option<PaymentRecord>, JournalError>;

    /// The record holding this payment id; when none does, the most recent one with it.
    async fn find_by_payment_id(
        &self,
        payment_id: &str,
    ) -> Result<Option<PaymentRecord>, JournalError>;

    /// Applies `change` if the record is in one of its expected states, atomically, and
    /// returns the updated record.
    ///
    /// - [`JournalError::IllegalTransition`]: the state machine forbids it (checked first;
    ///   nothing is read or written);
    /// - [`JournalError::Conflict`]: the record is in another state (someone else changed it),
    ///   with the record as it is;
    /// - [`JournalError::NotFound`]: no such record;
    /// - [`JournalError::Invalid`]: the settled amount is above the authorized amount.
    ///
    /// Entering `settling` counts an attempt; entering `settled` without a settled amount
    /// records the authorized amount. Fields the change does not set keep their values.
    async fn transition(&self, id: &str, change: Transition)
    -> Result<PaymentRecord, JournalError>;

    /// [`transition`](Self::transition) for a caller that does not need the record back: the
    /// same change, atomically, with the same errors, but a backend may skip reading the
    /// updated record (the SQLite journal does: the gate's writes on the paid path use this).
    async fn advance(&self, id: &str, change: Transition) -> Result<(), JournalError> {
        self.transition(id, change).await.map(drop)
    }

    /// Keeps the response sent for this payment and returns the record. The first response
    /// stored stays: a later call changes nothing and returns the record with the first one.
    async fn store_response(
        &self,
        id: &str,
        response: StoredResponse,
    ) -> Result<PaymentRecord, JournalError>;

    /// Records a crash or outage may have left unresolved: `verified`, `settling` or
    /// `unknown`, last changed before `before` (unix milliseconds), oldest change first, at
    /// most `limit`.
    async fn needing_reconciliation(
        &self,
        before: u64,
        limit: u32,
    ) -> Result<Vec<PaymentRecord>, JournalError>;

    /// Records matching `filter`, newest first (by `created_at`, then `id`), one page at a time.
    async fn query(&self, filter: &Filter, page: &Page) -> Result<Records, JournalError>;

    /// Counts and sums of the records matching `filter`, per group, network and asset,
    /// ordered by those.
    async fn totals(&self, group: GroupBy, filter: &Filter) -> Result<Vec<Total>, JournalError>;
}

#[async_trait]
impl<J: Journal + ?Sized> Journal for Arc<J> {
    async fn insert(&self, payment: NewPayment) -> Result<Inserted, JournalError> {
        (**self).insert(payment).await
    }
    async fn get(&self, id: &str) -> Result<Option<PaymentRecord>, JournalError> {
        (**self).get(id).await
    }
    async fn find_by_payment_key(&self, key: &str) -> Result<Option<PaymentRecord>, JournalError> {
        (**self).find_by_payment_key(key).await
    }
    async fn find_by_payment_id(
        &self,
        payment_id: &str,
    ) -> Result<Option<PaymentRecord>, JournalError> {
        (**self).find_by_payment_id(payment_id).await
    }
    async fn transition(
        &self,
        id: &str,
        change: Transition,
    ) -> Result<PaymentRecord, JournalError> {
        (**self).transition(id, change).await
    }
    async fn advance(&self, id: &str, change: Transition) -> Result<(), JournalError> {
        (**self).advance(id, change).await
    }
    async fn store_response(
        &self,
        id: &str,
        response: StoredResponse,
    ) -> Result<PaymentRecord, JournalError> {
        (**self).store_response(id, response).await
    }
    async fn needing_reconciliation(
        &self,
        before: u64,
        limit: u32,
    ) -> Result<Vec<PaymentRecord>, JournalError> {
        (**self).needing_reconciliation(before, limit).await
    }
    async fn query(&self, filter: &Filter, page: &Page) -> Result<Records, JournalError> {
        (**self).query(filter, page).await
    }
    async fn totals(&self, group: GroupBy, filter: &Filter) -> Result<Vec<Total>, JournalError> {
        (**self).totals(group, filter).await
    }
}

/// Opens the journal a URL names, creating its schema if needed:
///
/// - `sqlite://path/to/journal.db` (relative to the working directory),
///   `sqlite:///absolute/path.db`, or `sqlite::memory:` (feature `sqlite`);
/// - `postgres://…` or `postgresql://…` (feature `postgres`);
/// - `memory:` ([`MemoryJournal`]).
///
/// Any other scheme, or one whose feature is off, is [`JournalError::Invalid`] naming the
/// accepted ones.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let journal = x402_runtime::journal::connect("memory:").await?;
/// let error = x402_runtime::journal::connect("mysql://db/payments").await.err().unwrap();
/// assert!(error.to_string().contains("sqlite://"), "{error}");
/// # Ok::<(), x402_runtime::journal::JournalError>(())
/// # }).unwrap();
/// ```
pub async fn connect(url: &str) -> Result<Arc<dyn Journal>, JournalError> {
    let scheme = url.split(':').next().unwrap_or_default();
    match scheme.to_ascii_lowercase().as_str() {
        "memory" => Ok(Arc::new(MemoryJournal::new())),
        "sqlite" => connect_sqlite(url).await,
        "postgres" | "postgresql" => connect_postgres(url).await,
        _ => Err(JournalError::Invalid(format!(
            "unsupported journal URL {:?}: use sqlite://path, sqlite::memory:, postgres://… or memory:",
            redact(url)
        ))),
    }
}

/// Opens the existing journal a URL names (`sqlite://…` or `postgres://…`, as for
/// [`connect`]) without creating or upgrading anything, for tools that only read it, such as
/// `x402ctl payments`: a missing file or database, or a schema other than this build's, is an
/// error instead of a new empty journal.
pub async fn connect_existing(url: &str) -> Result<Arc<dyn Journal>, JournalError> {
    let scheme = url.split(':').next().unwrap_or_default();
    match scheme.to_ascii_lowercase().as_str() {
        "sqlite" => open_sqlite(url, true).await,
        "postgres" | "postgresql" => open_postgres(url, true).await,
        _ => Err(JournalError::Invalid(format!(
            "unsupported journal URL {:?}: use sqlite://path or postgres://…",
            redact(url)
        ))),
    }
}

async fn connect_sqlite(url: &str) -> Result<Arc<dyn Journal>, JournalError> {
    open_sqlite(url, false).await
}

async fn connect_postgres(url: &str) -> Result<Arc<dyn Journal>, JournalError> {
    open_postgres(url, false).await
}

#[cfg(feature = "sqlite")]
async fn open_sqlite(url: &str, existing: bool) -> Result<Arc<dyn Journal>, JournalError> {
    Ok(Arc::new(if existing {
        SqliteJournal::open_existing(url).await?
    } else {
        SqliteJournal::connect(url).await?
    }))
}

#[cfg(not(feature = "sqlite"))]
async fn open_sqlite(_url: &str, _existing: bool) -> Result<Arc<dyn Journal>, JournalError> {
    Err(JournalError::Invalid(
        "sqlite:// journals need x402-runtime's `sqlite` feature".to_owned(),
    ))
}

#[cfg(feature = "postgres")]
async fn open_postgres(url: &str, existing: bool) -> Result<Arc<dyn Journal>, JournalError> {
    Ok(Arc::new(if existing {
        PostgresJournal::connect_existing(url).await?
    } else {
        PostgresJournal::connect(url).await?
    }))
}

#[cfg(not(feature = "postgres"))]
async fn open_postgres(_url: &str, _existing: bool) -> Result<Arc<dyn Journal>, JournalError> {
    Err(JournalError::Invalid(
        "postgres:// journals need x402-runtime's `postgres` feature".to_owned(),
    ))
}

/// `url` without its password, for messages.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            if userinfo.contains(':') {
                format!("{scheme}://{user}:***@{host}{tail}")
            } else {
                url.to_owned()
            }
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted_from_urls() {
        assert_eq!(
            redact("postgres://app:s3cret@db.example:5432/pay?sslmode=require"),
            "postgres://app:***@db.example:5432/pay?sslmode=require"
        );
        assert_eq!(redact("postgres://app@db/pay"), "postgres://app@db/pay");
        assert_eq!(redact("sqlite://journal.db"), "sqlite://journal.db");
        assert_eq!(redact("sqlite::memory:"), "sqlite::memory:");
    }

    #[tokio::test]
    async fn unknown_schemes_are_refused_with_the_accepted_ones() {
        for url in ["mysql://h/db", "journal.db", "", "redis://x"] {
            let error = connect(url).await.err().expect(url);
            assert!(matches!(error, JournalError::Invalid(_)), "{url}: {error}");
            assert!(error.to_string().contains("postgres://"), "{error}");
        }
        assert!(connect("memory:").await.is_ok());
    }
}
