//! Single-use nonces (sign-in-with-x challenges): the [`NonceStore`] trait and its in-memory
//! backend.
//!
//! This is a separate trait from [`ReplayStore`](super::ReplayStore) on purpose: a replay key
//! is a typed EVM authorization (chain, asset, payer, nonce), while a sign-in nonce is a
//! string chosen by a server for any chain family. The contract is the same atomic
//! check-and-record, so the backends are built the same way (Redis `SET NX PX`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{MAX_TTL, StoreError};

/// Records which nonces were used, so each is accepted once.
///
/// `claim` must be atomic across every process sharing the store: of any number of concurrent
/// calls with the same key, exactly one returns `true`. A claim lasts at least its TTL.
#[async_trait]
pub trait NonceStore: Send + Sync + 'static {
    /// Marks `key` used for `ttl` unless it already is. Returns whether this call marked it.
    async fn claim(&self, key: &str, ttl: Duration) -> Result<bool, StoreError>;
}

#[async_trait]
impl<S: NonceStore + ?Sized> NonceStore for std::sync::Arc<S> {
    async fn claim(&self, key: &str, ttl: Duration) -> Result<bool, StoreError> {
        (**self).claim(key, ttl).await
    }
}

/// A [`NonceStore`] in process memory: right for one server process, not shared between
/// replicas (use `RedisNonceStore` for that). Expired entries are swept as new ones arrive.
#[derive(Debug, Default)]
pub struct MemoryNonceStore {
    entries: Mutex<Entries>,
}

#[derive(Debug, Default)]
struct Entries {
    map: HashMap<String, Instant>,
    next_sweep_len: usize,
}

impl MemoryNonceStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of nonces still remembered.
    pub fn len(&self) -> usize {
        let now = Instant::now();
        self.lock().map.values().filter(|e| **e > now).count()
    }

    /// Whether no nonce is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // Every update is a single insert or a sweep: a poisoned lock is still consistent.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl NonceStore for MemoryNonceStore {
    async fn claim(&self, key: &str, ttl: Duration) -> Result<bool, StoreError> {
        let now = Instant::now();
        let expiry = now.checked_add(ttl.min(MAX_TTL)).ok_or_else(|| {
            StoreError::Unavailable(format!("a TTL of {ttl:?} is beyond this clock's range"))
        })?;
        let mut entries = self.lock();
        if entries.map.len() >= entries.next_sweep_len {
            entries.map.retain(|_, e| *e > now);
            entries.next_sweep_len = (entries.map.len() * 2).max(1024);
        }
        match entries.map.get(key) {
            Some(existing) if *existing > now => Ok(false),
            _ => {
                entries.map.insert(key.to_owned(), expiry);
                Ok(true)
            }
        }
    }
}
