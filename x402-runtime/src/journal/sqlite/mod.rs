//! The journal in a SQLite file (feature `sqlite`).

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use futures_util::TryStreamExt as _;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Sqlite};

use super::keys::new_id;
use super::memory::settled_above_authorized;
use super::query::Totals;
use super::sql::{self, DEFAULT_TIMEOUT, REPORT_TIMEOUT, RawRecord};
use super::{
    Filter, GroupBy, JournalError, NewPayment, Page, PaymentRecord, Records, StoredResponse, Total,
    Transition,
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
/// - writes run on one thread of the journal's own, and the writes that wait at the same
///   moment share one transaction (group commit): under load a payment costs a fraction of a
///   disk flush instead of one flush per write;
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
    /// The connection every write goes through when this journal opened the file itself (else
    /// `pool`): one connection keeps its page cache from one write to the next, where each of
    /// a pool's connections finds its cache stale after another one wrote and reads the pages
    /// back.
    writes: SqlitePool,
    timeout: Duration,
    /// The thread every write goes through: SQLite lets one connection write at a time, so
    /// writes queue there, and those waiting together share one transaction and one commit
    /// (see `writer.rs`; with a connection of the thread's own when this journal opened the
    /// file, `native.rs`). Readers still run in parallel (WAL), and other processes still
    /// meet `busy_timeout`.
    writer: Writer,
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
        Self::assemble(pool.clone(), pool)
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
        Self::pools(options, in_memory).await
    }

    /// Opens (creating if needed) the journal with the caller's connection options as they
    /// are, with the pools [`open`](Self::open) uses (reads in parallel, writes through one
    /// connection). For settings `open` does not choose, such as `synchronous = NORMAL` (with
    /// WAL: a process crash loses nothing, a power loss may lose the last commits):
    ///
    /// ```
    /// use x402_runtime::journal::SqliteJournal;
    /// use x402_runtime::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let dir = std::env::temp_dir().join(format!("x402-doc-options-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir).unwrap();
    /// let options = SqliteConnectOptions::new()
    ///     .filename(dir.join("journal.db"))
    ///     .create_if_missing(true)
    ///     .journal_mode(SqliteJournalMode::Wal)
    ///     .synchronous(SqliteSynchronous::Normal);
    /// let journal = SqliteJournal::open_with_options(options).await?;
    /// journal.close().await;
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), x402_runtime::journal::JournalError>(())
    /// # }).unwrap();
    /// ```
    pub async fn open_with_options(options: SqliteConnectOptions) -> Result<Self, JournalError> {
        Self::pools(options, false).await
    }

    async fn pools(options: SqliteConnectOptions, in_memory: bool) -> Result<Self, JournalError> {
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
        .connect_with(options.clone())
        .await
        .map_err(sql::error)?;
        MIGRATOR.run(&pool).await.map_err(sql::migration_error)?;
        if in_memory {
            return Self::assemble(pool.clone(), pool);
        }
        // The writer's own connection, opened after the migrations ran, with the `synchronous`
        // setting the caller's options gave every connection.
        let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&pool)
            .await
            .map_err(sql::error)?;
        let connection = native::open(options.get_filename(), synchronous, BUSY_TIMEOUT)?;
        Ok(SqliteJournal {
            writer: Writer::start_native(connection)?,
            writes: pool.clone(),
            pool,
            timeout: DEFAULT_TIMEOUT,
        })
    }

    fn assemble(pool: SqlitePool, writes: SqlitePool) -> Result<Self, JournalError> {
        Ok(SqliteJournal {
            writer: Writer::start(writes.clone())?,
            writes,
            pool,
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// Uses a pool configured by the caller (WAL and a busy timeout are advised), creating or
    /// upgrading the schema.
    pub async fn from_pool(pool: SqlitePool) -> Result<Self, JournalError> {
        MIGRATOR.run(&pool).await.map_err(sql::migration_error)?;
        Self::assemble(pool.clone(), pool)
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
        self.writes.close().await;
        self.pool.close().await;
    }
}

mod native;
mod ops;
mod writer;

use writer::Writer;
