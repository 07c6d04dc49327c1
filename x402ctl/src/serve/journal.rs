//! The settlement journal of the facilitator: the runtime's journal, with pools sized for a
//! burst of settlements (hundreds at once queue for the database instead of timing out).

use std::sync::Arc;
use std::time::Duration;

use x402_runtime::journal::{self, Journal, JournalError};

/// How long a journal operation may wait (for a connection, for the SQLite write lock) before
/// the facilitator refuses the settlement it belongs to.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Opens (creating if needed) the journal `url` names.
pub(crate) async fn open(url: &str) -> Result<Arc<dyn Journal>, JournalError> {
    let scheme = url
        .split(':')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    match scheme.as_str() {
        #[cfg(feature = "sqlite")]
        "sqlite" if !url.contains(":memory:") => sqlite(url).await,
        #[cfg(feature = "postgres")]
        "postgres" | "postgresql" => postgres(url).await,
        _ => journal::connect(url).await,
    }
}

#[cfg(feature = "sqlite")]
async fn sqlite(url: &str) -> Result<Arc<dyn Journal>, JournalError> {
    use std::str::FromStr;

    use x402_runtime::journal::SqliteJournal;
    use x402_runtime::sqlx::sqlite::{
        SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
    };

    let options = SqliteConnectOptions::from_str(url)
        .map_err(|e| JournalError::Invalid(format!("bad SQLite journal URL {url:?}: {e}")))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(TIMEOUT);
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        .acquire_timeout(TIMEOUT)
        .connect_with(options)
        .await
        .map_err(|e| JournalError::Unavailable(format!("opening {url}: {e}")))?;
    Ok(Arc::new(
        SqliteJournal::from_pool(pool).await?.with_timeout(TIMEOUT),
    ))
}

#[cfg(feature = "postgres")]
async fn postgres(url: &str) -> Result<Arc<dyn Journal>, JournalError> {
    use std::str::FromStr;

    use x402_runtime::journal::PostgresJournal;
    use x402_runtime::sqlx::postgres::{PgConnectOptions, PgPoolOptions};

    let options = PgConnectOptions::from_str(url)
        .map_err(|e| JournalError::Invalid(format!("bad Postgres journal URL: {e}")))?;
    let pool = PgPoolOptions::new()
        .max_connections(20)
        .acquire_timeout(TIMEOUT)
        .connect_with(options)
        .await
        .map_err(|e| JournalError::Unavailable(format!("connecting to Postgres: {e}")))?;
    Ok(Arc::new(
        PostgresJournal::from_pool(pool)
            .await?
            .with_timeout(TIMEOUT),
    ))
}
