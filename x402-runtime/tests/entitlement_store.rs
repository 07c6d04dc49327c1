//! The entitlement store conformance suite (`support/entitlement_store.rs`) against every
//! backend: the in-process store, and Redis when `X402_REDIS_URL` is set.

mod memory_store {
    use std::sync::Arc;

    use x402_runtime::store::MemoryEntitlementStore;

    use crate::support;

    /// Handles on one store, as several gates in one process would hold.
    async fn open(replicas: usize) -> Option<Vec<Arc<MemoryEntitlementStore>>> {
        let store = Arc::new(MemoryEntitlementStore::new());
        Some(vec![store; replicas])
    }

    support::entitlement_store::entitlement_store_conformance!(open);
}

/// Each replica has its own connection manager, as separate server processes would.
#[cfg(feature = "redis")]
mod redis_store {
    use x402_runtime::store::RedisEntitlementStore;

    use crate::support;
    use crate::support::backends::{redis_url, unique_prefix};

    async fn open(replicas: usize) -> Option<Vec<RedisEntitlementStore>> {
        let url = redis_url()?;
        let prefix = unique_prefix("grant");
        let mut stores = Vec::with_capacity(replicas);
        for _ in 0..replicas {
            let store = RedisEntitlementStore::connect(url.as_str())
                .await
                .unwrap_or_else(|e| panic!("connect to {url}: {e}"));
            stores.push(store.with_prefix(prefix.clone()));
        }
        Some(stores)
    }

    support::entitlement_store::entitlement_store_conformance!(open);
}
