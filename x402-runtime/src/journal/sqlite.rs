//! The journal in a SQLite file (feature `sqlite`).

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::TryStreamExt as _;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Sqlite};

use super::memory::settled_above_authorized;
use super::query::Totals;
use super::record::new_id;
use super::sql::{self, DEFAULT_TIMEOUT, INSERT_TRIES, REPORT_TIMEOUT, RawRecord, timed};
use super::{
    Filter, GroupBy, Inserted, Journal, JournalError, NewPayment, Page, PaymentRecord, Records,
    StoredResponse, Total, Transition,
};

/// Every column of a record, in [`RawRecord`]'s shape.
const COLUMNS: &str = "id, payment_key, payment_id, fingerprint, route, resource, method, payer, \
    pay_to, amount, settled_amount, asset, network, scheme, x402_version, nonce, valid_before, \
    state, reconciled, attempts, tx, error_reason, error_message, response_status, \
    response_headers, response_body, facilitator_request, created_at, updated_at";

/// How long a connection waits for another one's write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections of a file journal (one writer at a time; readers in parallel under WAL).
const MAX_CONNECTIONS: u32 = 8;

/// The schema, embedded.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

/// A [`Journal`] in a SQLite file: the default for a single server.
///
/// - the file is created if missing, and its schema by embedded migrations;
/// - write-ahead logging (readers never block the writer) with `synchronous = FULL`, so a
///   payment recorded is on disk when the call returns, even if the machine then loses power;
/// - writers wait up to 5 s for each other (`busy_timeout`); an operation on the request path
///   gives up after its timeout (5 s by default, [`with_timeout`](Self::with_timeout)), a
///   listing, totals or reconciliation scan after two minutes, with
///   [`JournalError::Unavailable`].
///
/// Several processes may open one file on one machine (SQLite locks it), but not over a
/// network file system; replicas on several machines share a `PostgresJournal` instead.
///
/// ```
/// use x402_runtime::journal::{Journal, SqliteJournal, Filter, Page};
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let dir = std::env::temp_dir().join(format!("x402-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let journal = SqliteJournal::open(dir.join("journal.db")).await?;
/// assert!(journal.query(&Filter::default(), &Page::first(10)).await?.records.is_empty());
/// journal.close().await;
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), x402_runtime::journal::JournalError>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct SqliteJournal {
    pool: SqlitePool,
    timeout: Duration,
}

impl SqliteJournal {
    /// Opens (creating if needed) the journal in the file at `path`.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, JournalError> {
        let options = SqliteConnectOptions::new().filename(path.as_ref());
        Self::open_with(options, false).await
    }

    /// Opens the journal a URL names: `sqlite://relative/path.db`, `sqlite:///absolute.db`,
    /// `sqlite:path.db` or `sqlite::memory:` (a private database that lives as long as this
    /// journal).
    pub async fn connect(url: &str) -> Result<Self, JournalError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| JournalError::Invalid(format!("bad SQLite journal URL {url:?}: {e}")))?;
        let in_memory = url.trim_start_matches("sqlite:").trim_start_matches("//") == ":memory:"
            || url.contains("mode=memory");
        Self::open_with(options, in_memory).await
    }

    /// Opens an existing journal by URL without creating or upgrading anything: for tools
    /// that only read (`x402ctl payments`). A file that cannot be opened (missing) is
    /// [`JournalError::Unavailable`]; a file without a journal, or with a schema other than
    /// this build's, is [`JournalError::Migration`].
    pub async fn open_existing(url: &str) -> Result<Self, JournalError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| JournalError::Invalid(format!("bad SQLite journal URL {url:?}: {e}")))?
            .create_if_missing(false)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(2)
            .acquire_timeout(DEFAULT_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(|e| match sql::error(e) {
                JournalError::Unavailable(detail) => {
                    JournalError::Unavailable(format!("cannot open the journal at {url}: {detail}"))
                }
                other => other,
            })?;
        let has_journal: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations')",
        )
        .fetch_one(&pool)
        .await
        .map_err(sql::error)?;
        let applied = if has_journal {
            sqlx::query_scalar::<_, Option<i64>>(sql::APPLIED_VERSION)
                .fetch_one(&pool)
                .await
                .map_err(sql::error)?
        } else {
            None
        };
        sql::check_schema(&MIGRATOR, applied, url)?;
        Ok(SqliteJournal {
            pool,
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// A private in-memory database (for tests): gone when the journal is dropped.
    pub async fn in_memory() -> Result<Self, JournalError> {
        Self::connect("sqlite::memory:").await
    }

    async fn open_with(
        options: SqliteConnectOptions,
        in_memory: bool,
    ) -> Result<Self, JournalError> {
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = if in_memory {
            // One connection that never closes: the database lives exactly as long as it.
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            SqlitePoolOptions::new().max_connections(MAX_CONNECTIONS)
        }
        .acquire_timeout(DEFAULT_TIMEOUT)
        .connect_with(options)
        .await
        .map_err(sql::error)?;
        Self::from_pool(pool).await
    }

    /// Uses a pool configured by the caller (WAL and a busy timeout are advised), creating or
    /// upgrading the schema.
    pub async fn from_pool(pool: SqlitePool) -> Result<Self, JournalError> {
        MIGRATOR.run(&pool).await.map_err(sql::migration_error)?;
        Ok(SqliteJournal {
            pool,
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// Sets how long one request-path operation (insert, read, transition, storing a
    /// response) may take before it fails with [`JournalError::Unavailable`].
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The per-operation timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The connection pool.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Closes every connection, waiting for operations in progress.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn by_id(&self, id: &str) -> Result<Option<PaymentRecord>, JournalError> {
        sqlx::query_as::<_, RawRecord>(&format!("SELECT {COLUMNS} FROM payments WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(sql::error)?
            .map(RawRecord::into_record)
            .transpose()
    }

    /// The record holding `key` or `payment_id`, preferring the one holding `key`.
    async fn holder(
        &self,
        key: &str,
        payment_id: Option<&str>,
    ) -> Result<Option<PaymentRecord>, JournalError> {
        sqlx::query_as::<_, RawRecord>(&format!(
            "SELECT {COLUMNS} FROM payments \
             WHERE state NOT IN ('released', 'failed') AND (payment_key = ?1 OR payment_id = ?2) \
             ORDER BY payment_key = ?1 DESC LIMIT 1"
        ))
        .bind(key)
        .bind(payment_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(sql::error)?
        .map(RawRecord::into_record)
        .transpose()
    }

    async fn insert_once(
        &self,
        payment: &NewPayment,
    ) -> Result<Option<PaymentRecord>, JournalError> {
        let id = match &payment.id {
            Some(id) => id.clone(),
            None => new_id(payment.at)?,
        };
        let at = sql::ms(payment.at)?;
        let valid_before = payment.valid_before.map(sql::ms).transpose()?;
        sqlx::query_as::<_, RawRecord>(&format!(
            "INSERT INTO payments (id, payment_key, payment_id, fingerprint, route, resource, \
             method, payer, pay_to, amount, asset, network, scheme, x402_version, nonce, \
             valid_before, state, facilitator_request, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'verified', ?, ?, ?) \
             ON CONFLICT DO NOTHING RETURNING {COLUMNS}"
        ))
        .bind(&id)
        .bind(&payment.payment_key)
        .bind(&payment.payment_id)
        .bind(&payment.fingerprint)
        .bind(&payment.route)
        .bind(&payment.resource)
        .bind(&payment.method)
        .bind(&payment.payer)
        .bind(&payment.pay_to)
        .bind(sql::amount_text(payment.amount))
        .bind(&payment.asset)
        .bind(&payment.network)
        .bind(&payment.scheme)
        .bind(i64::from(payment.x402_version))
        .bind(&payment.nonce)
        .bind(valid_before)
        .bind(&payment.facilitator_request)
        .bind(at)
        .bind(at)
        .fetch_optional(&self.pool)
        .await
        .map_err(sql::error)?
        .map(RawRecord::into_record)
        .transpose()
    }

    async fn do_insert(&self, payment: NewPayment) -> Result<Inserted, JournalError> {
        let payment = payment.prepared()?;
        for _ in 0..INSERT_TRIES {
            if let Some(created) = self.insert_once(&payment).await? {
                return Ok(Inserted::Created(created));
            }
            if let Some(existing) = self
                .holder(&payment.payment_key, payment.payment_id.as_deref())
                .await?
            {
                return Ok(Inserted::Existing(existing));
            }
            // The record in the way was released in between: try again.
        }
        Err(JournalError::Unavailable(format!(
            "insert of {} kept conflicting with records that went away",
            payment.payment_key
        )))
    }

    async fn latest(
        &self,
        column: &str,
        value: &str,
    ) -> Result<Option<PaymentRecord>, JournalError> {
        sqlx::query_as::<_, RawRecord>(&format!(
            "SELECT {COLUMNS} FROM payments WHERE {column} = ? \
             ORDER BY state NOT IN ('released', 'failed') DESC, created_at DESC, id DESC LIMIT 1"
        ))
        .bind(value)
        .fetch_optional(&self.pool)
        .await
        .map_err(sql::error)?
        .map(RawRecord::into_record)
        .transpose()
    }

    async fn do_transition(
        &self,
        id: &str,
        change: Transition,
    ) -> Result<PaymentRecord, JournalError> {
        change.validate()?;
        let settled = change.settled_amount.map(sql::amount_text);
        let mut update = QueryBuilder::<Sqlite>::new("UPDATE payments SET state = ");
        update.push_bind(change.to.as_str());
        update.push(", updated_at = ");
        update.push_bind(sql::ms(change.at)?);
        update.push(", attempts = attempts + ");
        update.push_bind(i64::from(change.starts_attempt()));
        update.push(", reconciled = (reconciled OR ");
        update.push_bind(change.reconciled);
        update.push("), tx = COALESCE(");
        update.push_bind(change.transaction.clone());
        update.push(", tx)");
        if change.to == super::PaymentState::Settled {
            update.push(", settled_amount = COALESCE(");
            update.push_bind(settled.clone());
            update.push(", amount)");
        }
        if change.error_reason.is_some() {
            update.push(", error_reason = ");
            update.push_bind(change.error_reason.clone());
            update.push(", error_message = ");
            update.push_bind(change.error_message.clone());
        }
        update.push(", response_status = COALESCE(");
        update.push_bind(change.response_status.map(i64::from));
        update.push(", response_status) WHERE id = ");
        update.push_bind(id);
        update.push(" AND state IN (");
        let mut states = update.separated(", ");
        for state in sql::state_names(&change.from) {
            states.push_bind(state);
        }
        update.push(")");
        if let Some(settled) = &settled {
            // Base-10 texts without leading zeros compare as numbers by length, then digits.
            update.push(" AND (length(amount) > ");
            update.push_bind(settled.len() as i64);
            update.push(" OR (length(amount) = ");
            update.push_bind(settled.len() as i64);
            update.push(" AND amount >= ");
            update.push_bind(settled.clone());
            update.push("))");
        }
        update.push(format_args!(" RETURNING {COLUMNS}"));
        let updated = update
            .build_query_as::<RawRecord>()
            .fetch_optional(&self.pool)
            .await
            .map_err(sql::error)?;
        if let Some(updated) = updated {
            return updated.into_record();
        }
        let Some(current) = self.by_id(id).await? else {
            return Err(JournalError::NotFound(id.to_owned()));
        };
        if change.from.contains(&current.state)
            && let Some(amount) = change.settled_amount
            && amount > current.amount
        {
            return Err(settled_above_authorized(amount, &current));
        }
        Err(JournalError::Conflict {
            expected: change.from,
            current: Box::new(current),
        })
    }

    async fn do_store_response(
        &self,
        id: &str,
        response: StoredResponse,
    ) -> Result<PaymentRecord, JournalError> {
        let headers = sql::headers_json(&response)?;
        let stored = sqlx::query_as::<_, RawRecord>(&format!(
            "UPDATE payments SET response_status = ?, response_headers = ?, response_body = ? \
             WHERE id = ? AND response_headers IS NULL RETURNING {COLUMNS}"
        ))
        .bind(i64::from(response.status))
        .bind(headers)
        .bind(response.body)
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(sql::error)?;
        match stored {
            Some(stored) => stored.into_record(),
            None => self
                .by_id(id)
                .await?
                .ok_or_else(|| JournalError::NotFound(id.to_owned())),
        }
    }

    async fn do_needing_reconciliation(
        &self,
        before: u64,
        limit: u32,
    ) -> Result<Vec<PaymentRecord>, JournalError> {
        let rows = sqlx::query_as::<_, RawRecord>(&format!(
            "SELECT {COLUMNS} FROM payments \
             WHERE state IN ('verified', 'settling', 'unknown') AND updated_at < ? \
             ORDER BY updated_at, id LIMIT ?"
        ))
        .bind(sql::ms(before)?)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(sql::error)?;
        sql::records(rows)
    }

    async fn do_query(&self, filter: &Filter, page: &Page) -> Result<Records, JournalError> {
        let filter = filter.normalized()?;
        let limit = page.effective_limit();
        let mut query =
            QueryBuilder::<Sqlite>::new(format!("SELECT {COLUMNS} FROM payments WHERE 1 = 1"));
        sql::push_filter(&mut query, &filter);
        if let Some(cursor) = &page.after {
            let created_at = sql::ms(cursor.created_at)?;
            query.push(" AND (created_at < ");
            query.push_bind(created_at);
            query.push(" OR (created_at = ");
            query.push_bind(created_at);
            query.push(" AND id < ");
            query.push_bind(cursor.id.as_str());
            query.push("))");
        }
        query.push(" ORDER BY created_at DESC, id DESC LIMIT ");
        query.push_bind(i64::from(limit) + 1);
        let rows = query
            .build_query_as::<RawRecord>()
            .fetch_all(&self.pool)
            .await
            .map_err(sql::error)?;
        Ok(Records::from_overfetch(sql::records(rows)?, limit))
    }

    async fn do_totals(&self, group: GroupBy, filter: &Filter) -> Result<Vec<Total>, JournalError> {
        let filter = filter.normalized()?;
        let key = match group {
            GroupBy::Route => "route",
            GroupBy::Payer => "payer",
            GroupBy::Network => "network",
            GroupBy::Day => "strftime('%Y-%m-%d', created_at / 1000, 'unixepoch')",
        };
        // SQLite has no exact integer for 256-bit amounts: stream the rows and add in Rust.
        let mut query = QueryBuilder::<Sqlite>::new(format!(
            "SELECT {key} AS grp, network, asset, state, amount, settled_amount \
             FROM payments WHERE 1 = 1"
        ));
        sql::push_filter(&mut query, &filter);
        let mut rows = query
            .build_query_as::<(String, String, String, String, String, Option<String>)>()
            .fetch(&self.pool);
        let mut totals = Totals::default();
        while let Some((group, network, asset, state, amount, settled)) =
            rows.try_next().await.map_err(sql::error)?
        {
            let parse = |text: &str| {
                x402_protocol::amount::parse_decimal_u256(text)
                    .map_err(|e| JournalError::Corrupt(format!("amount {text:?}: {e}")))
            };
            totals.add(
                group,
                network,
                asset,
                state
                    .parse()
                    .map_err(|e: JournalError| JournalError::Corrupt(e.to_string()))?,
                parse(&amount)?,
                settled.as_deref().map(parse).transpose()?,
            )?;
        }
        Ok(totals.finish())
    }
}

#[async_trait]
impl Journal for SqliteJournal {
    async fn insert(&self, payment: NewPayment) -> Result<Inserted, JournalError> {
        timed(self.timeout, "journal insert", self.do_insert(payment)).await
    }

    async fn get(&self, id: &str) -> Result<Option<PaymentRecord>, JournalError> {
        timed(self.timeout, "journal read", self.by_id(id)).await
    }

    async fn find_by_payment_key(&self, key: &str) -> Result<Option<PaymentRecord>, JournalError> {
        timed(
            self.timeout,
            "journal read",
            self.latest("payment_key", key),
        )
        .await
    }

    async fn find_by_payment_id(
        &self,
        payment_id: &str,
    ) -> Result<Option<PaymentRecord>, JournalError> {
        timed(
            self.timeout,
            "journal read",
            self.latest("payment_id", payment_id),
        )
        .await
    }

    async fn transition(
        &self,
        id: &str,
        change: Transition,
    ) -> Result<PaymentRecord, JournalError> {
        timed(
            self.timeout,
            "journal transition",
            self.do_transition(id, change),
        )
        .await
    }

    async fn store_response(
        &self,
        id: &str,
        response: StoredResponse,
    ) -> Result<PaymentRecord, JournalError> {
        timed(
            self.timeout,
            "journal write",
            self.do_store_response(id, response),
        )
        .await
    }

    async fn needing_reconciliation(
        &self,
        before: u64,
        limit: u32,
    ) -> Result<Vec<PaymentRecord>, JournalError> {
        timed(
            REPORT_TIMEOUT,
            "journal reconciliation scan",
            self.do_needing_reconciliation(before, limit),
        )
        .await
    }

    async fn query(&self, filter: &Filter, page: &Page) -> Result<Records, JournalError> {
        timed(REPORT_TIMEOUT, "journal query", self.do_query(filter, page)).await
    }

    async fn totals(&self, group: GroupBy, filter: &Filter) -> Result<Vec<Total>, JournalError> {
        timed(
            REPORT_TIMEOUT,
            "journal totals",
            self.do_totals(group, filter),
        )
        .await
    }
}
