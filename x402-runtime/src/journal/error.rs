//! Why a journal operation failed.

use super::{PaymentRecord, PaymentState};

/// Why the journal could not do what was asked.
///
/// [`Unavailable`](Self::Unavailable) and [`Corrupt`](Self::Corrupt) are infrastructure
/// failures: a gate that cannot journal a payment must not serve the paid route (fail closed,
/// 503). The others describe the request: an illegal or lost transition, an unknown record, bad
/// input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// The backend could not be reached, timed out, or refused the operation.
    #[error("payment journal unavailable: {0}")]
    Unavailable(String),
    /// The backend returned data this version cannot read.
    #[error("payment journal returned unreadable data: {0}")]
    Corrupt(String),
    /// No record has this id.
    #[error("no payment record with id {0:?}")]
    NotFound(String),
    /// The state machine does not allow this change (a terminal state never changes).
    #[error("a payment cannot go from {from} to {to}")]
    IllegalTransition {
        /// The expected current state the change was asked from.
        from: PaymentState,
        /// The state asked for.
        to: PaymentState,
    },
    /// The record is not in any of the expected states (another process changed it first):
    /// nothing was written. Here is the record as it is now.
    #[error("payment {} is {}, not {}", .current.id, .current.state, states(.expected))]
    Conflict {
        /// The states the change expected.
        expected: Vec<PaymentState>,
        /// The record as it is.
        current: Box<PaymentRecord>,
    },
    /// The input cannot be recorded (empty key, time out of range, settled amount above the
    /// authorized amount, unknown URL scheme, …).
    #[error("invalid journal input: {0}")]
    Invalid(String),
    /// A sum does not fit in 256 bits.
    #[error("amount overflow: {0}")]
    Overflow(String),
    /// The journal's schema could not be created or upgraded.
    #[error("payment journal migration failed: {0}")]
    Migration(String),
}

impl JournalError {
    /// Whether this is an infrastructure failure (the gate answers 503 and serves nothing),
    /// as opposed to an answer about the request.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            JournalError::Unavailable(_) | JournalError::Corrupt(_) | JournalError::Migration(_)
        )
    }
}

fn states(states: &[PaymentState]) -> String {
    states
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(" or ")
}
