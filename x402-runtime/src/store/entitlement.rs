use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{MAX_TTL, StoreError};

/// The largest counter value a store must hold: `i64::MAX`, so that backends which count in
/// signed 64-bit integers (Redis) hold every value exactly.
pub const MAX_COUNTER: u64 = i64::MAX as u64;

/// The outcome of [`EntitlementStore::take`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    /// The amount was taken; this much is left.
    Taken {
        /// What is left after taking.
        remaining: u64,
    },
    /// The counter holds less than the amount; nothing was taken.
    Insufficient {
        /// What the counter holds.
        remaining: u64,
    },
    /// No such counter (never created, or expired).
    Missing,
}

/// Counters behind entitlements: uses left, or a prepaid balance in atomic units.
///
/// `take` must be atomic across every process sharing the store: concurrent takes never drive a
/// counter below zero, and each successful take is counted exactly once.
#[async_trait]
pub trait EntitlementStore: Send + Sync + 'static {
    /// Sets counter `id` to `value` (at most [`MAX_COUNTER`]) for `ttl` (TTLs beyond a century
    /// are shortened to a century, as for replay records).
    async fn create(&self, id: &str, value: u64, ttl: Duration) -> Result<(), StoreError>;

    /// Takes `amount` from counter `id` if it holds at least that much.
    async fn take(&self, id: &str, amount: u64) -> Result<Take, StoreError>;

    /// Gives `amount` back to counter `id` (a request that drew from it was not served). A
    /// missing counter stays missing.
    async fn give_back(&self, id: &str, amount: u64) -> Result<(), StoreError>;

    /// Remembers `token`, the grant `payer` bought for `scope`, for `ttl`: a payer who lost
    /// its token gets it back by signing in with its wallet (sign-in-with-x, see
    /// [`X402Builder::sign_in_with_x`](crate::X402Builder::sign_in_with_x)). A later grant for
    /// the same payer and scope replaces it.
    ///
    /// The default keeps nothing and says so; stores that serve sign-ins implement it.
    async fn remember_grant(
        &self,
        scope: &str,
        payer: &str,
        token: &str,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let _ = (scope, payer, token, ttl);
        Err(keeps_no_grants())
    }

    /// The grant token `payer` bought for `scope` most recently, if it is still kept.
    async fn recall_grant(&self, scope: &str, payer: &str) -> Result<Option<String>, StoreError> {
        let _ = (scope, payer);
        Err(keeps_no_grants())
    }
}

/// What a store without grant keeping answers.
fn keeps_no_grants() -> StoreError {
    StoreError::Unavailable(
        "this entitlement store does not keep grants for sign-in-with-x".to_owned(),
    )
}

/// The key a payer's grant for a scope is kept under: EVM addresses in any letter case are one
/// payer; other addresses (Solana base58) are case-sensitive and kept as written.
pub(crate) fn grant_holder_key(scope: &str, payer: &str) -> String {
    if payer.starts_with("0x") || payer.starts_with("0X") {
        format!("{}:{scope}", payer.to_ascii_lowercase())
    } else {
        format!("{payer}:{scope}")
    }
}

#[async_trait]
impl<S: EntitlementStore + ?Sized> EntitlementStore for std::sync::Arc<S> {
    async fn create(&self, id: &str, value: u64, ttl: Duration) -> Result<(), StoreError> {
        (**self).create(id, value, ttl).await
    }

    async fn take(&self, id: &str, amount: u64) -> Result<Take, StoreError> {
        (**self).take(id, amount).await
    }

    async fn give_back(&self, id: &str, amount: u64) -> Result<(), StoreError> {
        (**self).give_back(id, amount).await
    }

    async fn remember_grant(
        &self,
        scope: &str,
        payer: &str,
        token: &str,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        (**self).remember_grant(scope, payer, token, ttl).await
    }

    async fn recall_grant(&self, scope: &str, payer: &str) -> Result<Option<String>, StoreError> {
        (**self).recall_grant(scope, payer).await
    }
}

/// An [`EntitlementStore`] in process memory: correct for one process, not shared between
/// replicas (use the Redis store for that).
#[derive(Debug, Default)]
pub struct MemoryEntitlementStore {
    counters: Mutex<HashMap<String, (u64, Instant)>>,
    /// Grant tokens by payer and scope, for sign-in-with-x.
    grants: Mutex<HashMap<String, (String, Instant)>>,
}

impl MemoryEntitlementStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, (u64, Instant)>> {
        // Each update is a single map operation, so a poisoned lock still guards sound data.
        self.counters.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The value of counter `id`, if it exists and has not expired.
    pub fn get(&self, id: &str) -> Option<u64> {
        let now = Instant::now();
        self.lock()
            .get(id)
            .filter(|(_, expiry)| *expiry > now)
            .map(|(value, _)| *value)
    }
}

#[async_trait]
impl EntitlementStore for MemoryEntitlementStore {
    async fn create(&self, id: &str, value: u64, ttl: Duration) -> Result<(), StoreError> {
        if value > MAX_COUNTER {
            return Err(StoreError::Corrupt(format!(
                "counter value {value} exceeds {MAX_COUNTER}"
            )));
        }
        let now = Instant::now();
        let expiry = now.checked_add(ttl.min(MAX_TTL)).ok_or_else(|| {
            StoreError::Unavailable(format!("a TTL of {ttl:?} is beyond this clock's range"))
        })?;
        let mut counters = self.lock();
        if counters.len() >= 1024 && counters.len().is_power_of_two() {
            counters.retain(|_, (_, expiry)| *expiry > now);
        }
        counters.insert(id.to_owned(), (value, expiry));
        Ok(())
    }

    async fn take(&self, id: &str, amount: u64) -> Result<Take, StoreError> {
        let now = Instant::now();
        let mut counters = self.lock();
        Ok(match counters.get_mut(id) {
            Some((value, expiry)) if *expiry > now => {
                if *value >= amount {
                    *value -= amount;
                    Take::Taken { remaining: *value }
                } else {
                    Take::Insufficient { remaining: *value }
                }
            }
            _ => Take::Missing,
        })
    }

    async fn give_back(&self, id: &str, amount: u64) -> Result<(), StoreError> {
        let now = Instant::now();
        if let Some((value, expiry)) = self.lock().get_mut(id)
            && *expiry > now
        {
            *value = value.saturating_add(amount).min(MAX_COUNTER);
        }
        Ok(())
    }

    async fn remember_grant(
        &self,
        scope: &str,
        payer: &str,
        token: &str,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let now = Instant::now();
        let expiry = now.checked_add(ttl.min(MAX_TTL)).ok_or_else(|| {
            StoreError::Unavailable(format!("a TTL of {ttl:?} is beyond this clock's range"))
        })?;
        let mut grants = self.grants.lock().unwrap_or_else(PoisonError::into_inner);
        if grants.len() >= 1024 && grants.len().is_power_of_two() {
            grants.retain(|_, (_, expiry)| *expiry > now);
        }
        grants.insert(grant_holder_key(scope, payer), (token.to_owned(), expiry));
        Ok(())
    }

    async fn recall_grant(&self, scope: &str, payer: &str) -> Result<Option<String>, StoreError> {
        let now = Instant::now();
        Ok(self
            .grants
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&grant_holder_key(scope, payer))
            .filter(|(_, expiry)| *expiry > now)
            .map(|(token, _)| token.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn grants_are_recalled_by_payer_and_scope_until_they_expire() {
        let store = MemoryEntitlementStore::new();
        let payer = "0xAbCdEf0000000000000000000000000000000001";
        store
            .remember_grant("path:/a", payer, "token-1", Duration::from_secs(60))
            .await
            .unwrap();
        let lower = payer.to_ascii_lowercase();
        assert_eq!(
            store
                .recall_grant("path:/a", &lower)
                .await
                .unwrap()
                .as_deref(),
            Some("token-1")
        );
        assert_eq!(store.recall_grant("path:/b", payer).await.unwrap(), None);
        store
            .remember_grant("path:/a", payer, "token-2", Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(
            store
                .recall_grant("path:/a", payer)
                .await
                .unwrap()
                .as_deref(),
            Some("token-2")
        );
        // Solana addresses are case-sensitive.
        store
            .remember_grant("path:/a", "AbC", "sol", Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(store.recall_grant("path:/a", "abc").await.unwrap(), None);
        store
            .remember_grant("path:/a", "gone", "t", Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(store.recall_grant("path:/a", "gone").await.unwrap(), None);
    }

    #[tokio::test]
    async fn huge_ttls_are_capped_not_a_panic() {
        let store = MemoryEntitlementStore::new();
        store.create("forever", 5, Duration::MAX).await.unwrap();
        assert_eq!(
            store.take("forever", 2).await.unwrap(),
            Take::Taken { remaining: 3 }
        );
        assert!(
            store
                .create("too-big", MAX_COUNTER + 1, Duration::from_secs(1))
                .await
                .is_err()
        );
    }
}
