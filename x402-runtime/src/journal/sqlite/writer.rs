//! Group commit: every write of a SQLite journal goes through one thread that runs the writes
//! waiting at the same moment in one transaction. A journal that opened its file itself runs
//! them on a connection of the thread's own (`native.rs`); one built on a caller's pool, or in
//! memory, through that pool (here).
//!
//! SQLite writes one transaction at a time, and with `synchronous = FULL` each commit waits
//! for the disk (an `fsync` of the write-ahead log). One commit per write caps a journal at
//! a few hundred writes a second on ordinary disks, however many requests wait. Here the writes
//! queued while the previous commit was on its way to the disk share the next one: a caller
//! still gets its answer only after its own write is durable, but a thousand concurrent
//! payments pay for a handful of `fsync`s instead of four thousand.
//!
//! A write whose caller stopped waiting (its timeout passed, its request went away) before the
//! batch starts is skipped, so it cannot land later than its caller was told. When one write
//! of a batch fails, the batch is rolled back and its writes run again one at a time, so each
//! caller gets its own write's outcome and no write is applied twice.

use sqlx::{Acquire as _, SqliteConnection, SqlitePool};
use tokio::sync::{mpsc, oneshot};

use super::ops::{Write, Written};
use crate::journal::JournalError;
use crate::journal::sql;

/// The most writes one transaction takes.
pub(super) const MAX_BATCH: usize = 512;

type Answer = Result<Option<Written>, JournalError>;

pub(super) struct Job {
    pub(super) write: Write,
    pub(super) reply: oneshot::Sender<Answer>,
}

impl Job {
    /// Answers the caller, after dropping the write: what it shares with the caller (an
    /// insert's payment) is then the caller's alone again.
    pub(super) fn answer(self, answer: Answer) {
        let Job { write, reply } = self;
        drop(write);
        let _ = reply.send(answer);
    }
}

/// The handle writes are sent through; the thread stops when the last handle is dropped.
#[derive(Debug, Clone)]
pub(super) struct Writer {
    jobs: mpsc::UnboundedSender<Job>,
}

fn stopped() -> JournalError {
    JournalError::Unavailable("the journal's writer thread has stopped".to_owned())
}

impl Writer {
    /// Starts the writer thread over `pool` (the connection writes go through).
    pub(super) fn start(pool: SqlitePool) -> Result<Self, JournalError> {
        let (jobs, queue) = mpsc::unbounded_channel();
        // A thread with its own runtime rather than a task: the journal outlives whichever
        // runtime opened it (actix-web runs one per worker thread, tests one per test).
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| JournalError::Unavailable(format!("journal writer runtime: {e}")))?;
        std::thread::Builder::new()
            .name("x402-journal-writer".to_owned())
            .spawn(move || runtime.block_on(run(pool, queue)))
            .map_err(|e| JournalError::Unavailable(format!("journal writer thread: {e}")))?;
        Ok(Writer { jobs })
    }

    /// Starts the writer thread over a connection of its own (see `native.rs`): for journals
    /// that opened their file themselves.
    pub(super) fn start_native(connection: rusqlite::Connection) -> Result<Self, JournalError> {
        let (jobs, queue) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("x402-journal-writer".to_owned())
            .spawn(move || super::native::run(connection, queue))
            .map_err(|e| JournalError::Unavailable(format!("journal writer thread: {e}")))?;
        Ok(Writer { jobs })
    }

    /// Runs `write` and answers once it is committed.
    pub(super) async fn write(&self, write: Write) -> Answer {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job { write, reply })
            .map_err(|_| stopped())?;
        answer.await.unwrap_or_else(|_| Err(stopped()))
    }
}

async fn run(pool: SqlitePool, mut queue: mpsc::UnboundedReceiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        batch.retain(|job: &Job| !job.reply.is_closed());
        if !batch.is_empty() {
            commit(&pool, &mut batch).await;
        }
        batch.clear();
    }
}

/// Commits `batch` (in one transaction when it holds several writes) and answers each caller.
async fn commit(pool: &SqlitePool, batch: &mut Vec<Job>) {
    let mut connection = match pool.acquire().await {
        Ok(connection) => connection,
        Err(error) => {
            let error = sql::error(error);
            for job in batch.drain(..) {
                let _ = job.reply.send(Err(error.clone()));
            }
            return;
        }
    };
    if batch.len() > 1
        && let Some(rows) = together(&mut connection, batch).await
    {
        for (job, row) in batch.drain(..).zip(rows) {
            job.answer(Ok(row));
        }
        return;
    }
    for job in batch.drain(..) {
        if job.reply.is_closed() {
            continue;
        }
        let answer = alone(&mut connection, &job.write).await.map_err(sql::error);
        job.answer(answer);
    }
}

/// Runs every write of `batch` in one transaction; `None` when one of them or the commit
/// failed, in which case nothing of the batch was applied.
async fn together(
    connection: &mut SqliteConnection,
    batch: &[Job],
) -> Option<Vec<Option<Written>>> {
    let mut transaction = connection.begin().await.ok()?;
    let mut rows = Vec::with_capacity(batch.len());
    for job in batch {
        match job.write.run(&mut transaction).await {
            Ok(row) => rows.push(row),
            Err(error) => {
                tracing::debug!(target: "x402::journal", %error, "a write failed inside a batch; retrying the batch one write at a time");
                let _ = transaction.rollback().await;
                return None;
            }
        }
    }
    transaction.commit().await.ok()?;
    Some(rows)
}

/// Runs `write` in a transaction of its own.
async fn alone(
    connection: &mut SqliteConnection,
    write: &Write,
) -> Result<Option<Written>, sqlx::Error> {
    let mut transaction = connection.begin().await?;
    let written = write.run(&mut transaction).await?;
    transaction.commit().await?;
    Ok(written)
}
