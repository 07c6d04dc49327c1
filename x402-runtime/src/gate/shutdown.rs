//! Settlements in flight, and waiting for them at shutdown.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio_util::task::TaskTracker;

use super::Gate;
use crate::journal::{PaymentState, Transition, now_ms};

/// Settlements in flight, for graceful shutdown: the tasks, and the journal records they own.
#[derive(Debug, Clone, Default)]
pub(crate) struct InFlight {
    tasks: TaskTracker,
    records: Arc<Mutex<HashSet<String>>>,
}

impl InFlight {
    pub(super) fn spawn<F>(&self, record: String, work: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let records = self.records.clone();
        lock(&records).insert(record.clone());
        self.tasks.spawn(async move {
            let output = work.await;
            lock(&records).remove(&record);
            output
        })
    }

    /// Whether this process is settling the record right now (its outcome is on its way: asking
    /// the settler meanwhile could find the payment not yet executed).
    pub(crate) fn is_settling(&self, record: &str) -> bool {
        lock(&self.records).contains(record)
    }

    fn unfinished(&self) -> Vec<String> {
        lock(&self.records).iter().cloned().collect()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Each update is a single insert or remove: a poisoned lock still guards sound data.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What [`Gate::shutdown`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Settlements still running when the wait ended (their outcome is unknown to this
    /// process; they keep their reservation and are resolved by reconciliation).
    pub unfinished: usize,
}

impl Gate {
    /// Stops taking part in settlement: waits up to `limit` for the settlements in flight to
    /// finish, and reports how many did not (their payments stay reserved and, with a durable
    /// journal, are resolved by the next start's reconciliation). Call it when the server
    /// shuts down, after it stopped accepting requests.
    pub async fn shutdown(&self, limit: Duration) -> ShutdownReport {
        let tracker = &self.settlements.tasks;
        tracker.close();
        if tokio::time::timeout(limit, tracker.wait()).await.is_ok() {
            return ShutdownReport { unfinished: 0 };
        }
        // Whatever is still running has been submitted or is about to be: its outcome is
        // unknown to this process, and the journal says so, for the next start to resolve.
        let unfinished = self.settlements.unfinished();
        tracing::warn!(target: "x402::settlement", unfinished = unfinished.len(), "shutting down with settlements in flight; marking them unknown");
        for record in &unfinished {
            let change = Transition::new(
                &[PaymentState::Verified, PaymentState::Settling],
                PaymentState::Unknown,
                now_ms(),
            );
            let change = match self.journal.get(record).await {
                Ok(Some(current)) if current.state == PaymentState::Verified => {
                    // Not submitted yet: nothing happened.
                    Transition::new(&[PaymentState::Verified], PaymentState::Released, now_ms())
                        .error("shutdown", "the server shut down before settling")
                }
                _ => change,
            };
            if let Err(error) = self.journal.transition(record, change).await {
                tracing::warn!(target: "x402::journal", %record, %error, "could not record an unfinished settlement");
            }
        }
        ShutdownReport {
            unfinished: unfinished.len(),
        }
    }
}
