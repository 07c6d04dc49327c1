//! Small storage traits, each with an atomic primitive a shared backend (Redis) can implement
//! without races.
//!
//! Backends of [`ReplayStore`]:
//!
//! - [`MemoryReplayStore`] (always available, the default): one process only;
//! - `RedisReplayStore` (feature `redis`): shared by every replica using the same Redis.
//!
//! Every backend passes the same conformance suite (`x402-runtime/tests/support/`).

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use x402_protocol::{Address, B256};

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

/// One payment authorization: at most one request may be served with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReplayKey {
    /// Chain the authorization is for.
    pub chain_id: u64,
    /// Token contract.
    pub asset: Address,
    /// Payer (`authorization.from`).
    pub payer: Address,
    /// `authorization.nonce`.
    pub nonce: B256,
}

impl fmt::Display for ReplayKey {
    /// `chain:asset:payer:nonce`, lower-case hex; the key backends store.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{:x}:{:x}:{:x}",
            self.chain_id, self.asset, self.payer, self.nonce
        )
    }
}

/// Remembers which payment authorizations were used.
///
/// `insert_if_absent` must be atomic across every process sharing the store: of any number of
/// concurrent calls with the same key, exactly one returns `true`. A record lasts at least its
/// TTL, rounded up to the backend's resolution; a zero TTL is not an error, and TTLs beyond a
/// century are shortened to a century.
#[async_trait]
pub trait ReplayStore: Send + Sync + 'static {
    /// Records `key` for `ttl` unless it is already recorded. Returns whether this call
    /// recorded it.
    async fn insert_if_absent(&self, key: &ReplayKey, ttl: Duration) -> Result<bool, StoreError>;

    /// Forgets `key`. Called when a verified payment was not used (the handler failed and
    /// nothing was settled), so the client may retry with the same authorization.
    async fn remove(&self, key: &ReplayKey) -> Result<(), StoreError>;
}

#[async_trait]
impl<S: ReplayStore + ?Sized> ReplayStore for std::sync::Arc<S> {
    async fn insert_if_absent(&self, key: &ReplayKey, ttl: Duration) -> Result<bool, StoreError> {
        (**self).insert_if_absent(key, ttl).await
    }

    async fn remove(&self, key: &ReplayKey) -> Result<(), StoreError> {
        (**self).remove(key).await
    }
}
