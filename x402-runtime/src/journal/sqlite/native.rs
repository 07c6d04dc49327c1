//! The writer thread of a journal that opened its file itself: its own SQLite connection,
//! statements run synchronously (no hop to an async driver's worker thread per statement),
//! prepared once and cached.

use std::path::Path;
use std::time::Duration;

use rusqlite::types::ToSqlOutput;
use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use tokio::sync::mpsc;

use super::ops::{Write, Written};
use super::writer::{Job, MAX_BATCH};
use crate::journal::JournalError;
use crate::journal::sql::{Param, RawRecord};

/// Prepared statements kept per connection (a transition's text varies with its shape).
const STATEMENT_CACHE: usize = 64;

/// Pages the write-ahead log grows to before a commit checkpoints it into the database file
/// (SQLite's default is 1000, about 4 MiB).
const CHECKPOINT_PAGES: i64 = 8_000;

impl rusqlite::ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        match self {
            Param::Text(value) => value.to_sql(),
            Param::Owned(value) => value.to_sql(),
            Param::Int(value) => value.to_sql(),
            Param::Bool(value) => value.to_sql(),
            Param::Bytes(value) => value.to_sql(),
        }
    }
}

/// Sorts a SQLite error into the journal's kinds, as `sql::error` does for sqlx's.
fn error(error: rusqlite::Error) -> JournalError {
    use rusqlite::ffi;
    match &error {
        rusqlite::Error::SqliteFailure(failure, _)
            if failure.extended_code == ffi::SQLITE_CONSTRAINT_CHECK
                || failure.extended_code == ffi::SQLITE_CONSTRAINT_NOTNULL =>
        {
            JournalError::Invalid(format!("refused by the journal's schema: {error}"))
        }
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::IntegralValueOutOfRange(..) => {
            JournalError::Corrupt(format!("a journal row does not decode: {error}"))
        }
        _ => JournalError::Unavailable(format!("database error: {error}")),
    }
}

/// Opens the writer's connection to the journal file at `path`, with `synchronous` (SQLite's
/// number, as the journal's other connections have it) and `busy_timeout`.
pub(super) fn open(
    path: &Path,
    synchronous: i64,
    busy_timeout: Duration,
) -> Result<Connection, JournalError> {
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| {
        JournalError::Unavailable(format!("cannot open {} for writing: {e}", path.display()))
    })?;
    connection.busy_timeout(busy_timeout).map_err(error)?;
    connection
        .pragma_update(None, "synchronous", synchronous)
        .map_err(error)?;
    // Does not change durability (every commit still waits for its fsync, as `synchronous`
    // says): fewer checkpoints (each one writes pages into the database file and fsyncs it on
    // the committing write's time). The page cache stays SQLite's 2 MiB: a 64 MiB one cost
    // more than it saved, as SQLite walks the cache's hash table at the end of every write
    // transaction (`pcache1TruncateUnsafe`, 7 % of this thread's time), while the pages it
    // would have kept are a `pread` from the kernel's page cache away.
    connection
        .pragma_update(None, "wal_autocheckpoint", CHECKPOINT_PAGES)
        .map_err(error)?;
    connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(connection)
}

impl Write {
    /// Runs the write on `connection` (inside a transaction the caller holds); `None` when
    /// nothing matched.
    fn run_native(&self, connection: &Connection) -> rusqlite::Result<Option<Written>> {
        let first = self.first();
        let changed = connection
            .prepare_cached(&first.text)?
            .execute(rusqlite::params_from_iter(first.values.iter()))?;
        if changed == 0 {
            return Ok(None);
        }
        let (steps, read) = self.rest();
        for step in &steps {
            connection
                .prepare_cached(&step.text)?
                .execute(rusqlite::params_from_iter(step.values.iter()))?;
        }
        Ok(Some(match read {
            None => Written::Applied,
            Some(read) => Written::Row(Box::new(
                connection
                    .prepare_cached(&read.text)?
                    .query_row(rusqlite::params_from_iter(read.values.iter()), raw_record)?,
            )),
        }))
    }

    /// [`run_native`](Self::run_native) in a transaction of its own.
    fn run_alone(&self, connection: &mut Connection) -> rusqlite::Result<Option<Written>> {
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let written = self.run_native(&transaction)?;
        transaction.commit()?;
        Ok(written)
    }
}

/// A row in the journal's column order (`COLUMNS`).
fn raw_record(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawRecord> {
    Ok(RawRecord {
        id: row.get(0)?,
        payment_key: row.get(1)?,
        payment_id: row.get(2)?,
        fingerprint: row.get(3)?,
        route: row.get(4)?,
        resource: row.get(5)?,
        method: row.get(6)?,
        payer: row.get(7)?,
        pay_to: row.get(8)?,
        amount: row.get(9)?,
        settled_amount: row.get(10)?,
        asset: row.get(11)?,
        network: row.get(12)?,
        scheme: row.get(13)?,
        x402_version: row.get(14)?,
        nonce: row.get(15)?,
        valid_before: row.get(16)?,
        state: row.get(17)?,
        reconciled: row.get(18)?,
        attempts: row.get(19)?,
        tx: row.get(20)?,
        error_reason: row.get(21)?,
        error_message: row.get(22)?,
        response_status: row.get(23)?,
        response_headers: row.get(24)?,
        response_body: row.get(25)?,
        facilitator_request: row.get(26)?,
        created_at: row.get(27)?,
        updated_at: row.get(28)?,
    })
}

/// How long the writer waits for more writes when the last batch had several and this one
/// has fewer: under load a commit then carries more writes (fewer pages written to the log per
/// payment); an idle server never waits.
const LINGER: Duration = Duration::from_micros(250);

fn drain(queue: &mut mpsc::UnboundedReceiver<Job>, batch: &mut Vec<Job>) {
    while batch.len() < MAX_BATCH {
        match queue.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
}

/// The thread's loop: every write waiting when it looks goes into one transaction.
pub(super) fn run(mut connection: Connection, mut queue: mpsc::UnboundedReceiver<Job>) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    let mut last = 0;
    while let Some(job) = queue.blocking_recv() {
        batch.push(job);
        drain(&mut queue, &mut batch);
        if last > 1 && batch.len() < last {
            std::thread::sleep(LINGER);
            drain(&mut queue, &mut batch);
        }
        last = batch.len();
        batch.retain(|job| !job.reply.is_closed());
        if batch.len() > 1
            && let Some(rows) = together(&mut connection, &batch)
        {
            for (job, row) in batch.drain(..).zip(rows) {
                job.answer(Ok(row));
            }
            continue;
        }
        for job in batch.drain(..) {
            if job.reply.is_closed() {
                continue;
            }
            let answer = job.write.run_alone(&mut connection).map_err(error);
            job.answer(answer);
        }
    }
}

/// Runs every write of `batch` in one transaction; `None` when one of them or the commit
/// failed, in which case nothing of the batch was applied.
fn together(connection: &mut Connection, batch: &[Job]) -> Option<Vec<Option<Written>>> {
    let transaction = connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .ok()?;
    let mut rows = Vec::with_capacity(batch.len());
    for job in batch {
        match job.write.run_native(&transaction) {
            Ok(row) => rows.push(row),
            Err(error) => {
                tracing::debug!(target: "x402::journal", %error, "a write failed inside a batch; retrying the batch one write at a time");
                // Dropping the transaction rolls it back.
                return None;
            }
        }
    }
    transaction.commit().ok()?;
    Some(rows)
}
