//! Small storage traits, each with an atomic primitive a shared backend (Redis) can implement
//! without races.
//!
//! Backends of [`ReplayStore`]:
//!
//! - [`MemoryReplayStore`] (always available, the default): one process only;
//! - `RedisReplayStore` (feature `redis`): shared by every replica using the same Redis.
//!
//! Every backend passes the same conformance suite (`x402-runtime/tests/support/`).

use std::time::Duration;

use async_trait::async_trait;
use x402_protocol::verify::PaymentKey;

mod entitlement;
mod memory;
mod nonce;
#[cfg(feature = "redis")]
mod redis;

#[cfg(feature = "redis")]
pub use self::redis::{RedisEntitlementStore, RedisNonceStore, RedisReplayStore, RedisStoreError};
pub use entitlement::{EntitlementStore, MAX_COUNTER, MemoryEntitlementStore, Take};
pub use memory::MemoryReplayStore;
pub use nonce::{MemoryNonceStore, NonceStore};

/// The longest time a backend keeps a record; longer TTLs are shortened to it. A century is far
/// beyond any sensible authorization lifetime (the gate accepts a day by default), and short
/// enough for `Instant` arithmetic and Redis' `PX` never to overflow.
pub(crate) const MAX_TTL: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// Why a store could not answer. Paid routes fail closed on it (503, `store_unavailable`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend could not be reached or refused the operation.
    #[error("store backend unavailable: {0}")]
    Unavailable(String),
    /// The backend returned data this version cannot read.
    #[error("store returned unreadable data: {0}")]
    Corrupt(String),
}

/// What identifies one payment in a [`ReplayStore`]: its [`PaymentKey`] (an EIP-3009
/// authorization's chain, token, payer and nonce; a Solana transaction's payer signature…).
pub type ReplayKey = PaymentKey;

/// Remembers which payment authorizations were used.
///
/// `insert_if_absent` must be atomic across every process sharing the store: of any number of
/// concurrent calls with the same key, exactly one returns `true`. A record lasts at least its
/// TTL, rounded up to the backend's resolution; a zero TTL is not an error, and TTLs beyond a
/// century are shortened to a century.
///
/// Each record carries its owner, a random token of the admission that made it; only that
/// owner can remove it, so a slow request giving back its hold can never free a record another
/// request made meanwhile.
#[async_trait]
pub trait ReplayStore: Send + Sync + 'static {
    /// Records `key` for `ttl`, owned by `owner`, unless it is already recorded. Returns
    /// whether this call recorded it.
    async fn insert_if_absent(
        &self,
        key: &ReplayKey,
        owner: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError>;

    /// Forgets `key` if `owner` holds it (otherwise does nothing). Called when a verified
    /// payment was not used (the handler failed, settlement provably failed), so the client may
    /// retry with the same authorization.
    async fn remove(&self, key: &ReplayKey, owner: &str) -> Result<(), StoreError>;
}

#[async_trait]
impl<S: ReplayStore + ?Sized> ReplayStore for std::sync::Arc<S> {
    async fn insert_if_absent(
        &self,
        key: &ReplayKey,
        owner: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        (**self).insert_if_absent(key, owner, ttl).await
    }

    async fn remove(&self, key: &ReplayKey, owner: &str) -> Result<(), StoreError> {
        (**self).remove(key, owner).await
    }
}
