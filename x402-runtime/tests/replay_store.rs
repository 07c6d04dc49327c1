//! The replay store conformance suite (`support/replay_store.rs`) against every backend, plus
//! what is particular to each backend.

/// The in-process store. It cannot be shared between processes, so its "replicas" are handles
/// on one store, as several gates in one process would hold.
mod memory_store {
    use std::sync::Arc;
    use std::time::Duration;

    use async_trait::async_trait;
    use x402_runtime::store::{MemoryReplayStore, ReplayKey, ReplayStore, StoreError};

    use crate::support;

    struct Shared(Arc<MemoryReplayStore>);

    #[async_trait]
    impl ReplayStore for Shared {
        async fn insert_if_absent(
            &self,
            key: &ReplayKey,
            owner: &str,
            ttl: Duration,
        ) -> Result<bool, StoreError> {
            self.0.insert_if_absent(key, owner, ttl).await
        }
        async fn remove(&self, key: &ReplayKey, owner: &str) -> Result<(), StoreError> {
            self.0.remove(key, owner).await
        }
    }

    async fn open(replicas: usize) -> Option<Vec<Shared>> {
        let store = Arc::new(MemoryReplayStore::new());
        Some((0..replicas).map(|_| Shared(store.clone())).collect())
    }

    support::replay_store::replay_store_conformance!(open);
}

/// Redis from `X402_REDIS_URL`; each replica has its own connection manager, as separate
/// server processes would.
#[cfg(feature = "redis")]
mod redis_store {
    use std::time::{Duration, Instant};

    use x402_runtime::redis;
    use x402_runtime::redis::aio::ConnectionManager;
    use x402_runtime::store::{RedisReplayStore, ReplayStore};

    use crate::support;
    use crate::support::backends::{free_port, redis_url, unique_prefix};

    async fn open(replicas: usize) -> Option<Vec<RedisReplayStore>> {
        let url = redis_url()?;
        let prefix = unique_prefix("replay");
        let mut stores = Vec::with_capacity(replicas);
        for _ in 0..replicas {
            let store = RedisReplayStore::connect(url.as_str())
                .await
                .unwrap_or_else(|e| panic!("connect to {url}: {e}"));
            stores.push(store.with_prefix(prefix.clone()));
        }
        Some(stores)
    }

    support::replay_store::replay_store_conformance!(open);

    async fn raw(url: &str) -> ConnectionManager {
        let client = redis::Client::open(url).unwrap();
        ConnectionManager::new(client).await.unwrap()
    }

    #[tokio::test]
    async fn records_are_prefix_plus_key_with_a_px_expiry_on_a_given_manager() {
        let Some(url) = redis_url() else { return };
        let store = RedisReplayStore::from_manager(raw(&url).await);
        assert_eq!(store.prefix(), "x402:replay:");
        assert_eq!(store.timeout(), Duration::from_secs(2));
        let prefix = unique_prefix("layout");
        let store = store.with_prefix(prefix.clone());
        assert_eq!(store.prefix(), prefix);

        let key = support::replay_store::key();
        assert!(
            store
                .insert_if_absent(&key, "owner-1", Duration::from_millis(90_500))
                .await
                .unwrap()
        );
        let mut redis = raw(&url).await;
        let name = format!("{prefix}{key}");
        let value: Option<String> = redis::cmd("GET")
            .arg(&name)
            .query_async(&mut redis)
            .await
            .unwrap();
        assert_eq!(value.as_deref(), Some("owner-1"), "{name}");
        let pttl: i64 = redis::cmd("PTTL")
            .arg(&name)
            .query_async(&mut redis)
            .await
            .unwrap();
        assert!((89_000..=90_500).contains(&pttl), "PTTL {pttl}");

        store.remove(&key, "owner-2").await.unwrap();
        let exists: i64 = redis::cmd("EXISTS")
            .arg(&name)
            .query_async(&mut redis)
            .await
            .unwrap();
        assert_eq!(exists, 1, "another owner's remove leaves the key");
        store.remove(&key, "owner-1").await.unwrap();
        let exists: i64 = redis::cmd("EXISTS")
            .arg(&name)
            .query_async(&mut redis)
            .await
            .unwrap();
        assert_eq!(exists, 0, "remove deletes the key");
    }

    #[tokio::test]
    async fn a_record_made_by_another_redis_client_is_honoured() {
        let Some(url) = redis_url() else { return };
        let prefix = unique_prefix("foreign");
        let store = RedisReplayStore::connect(url.as_str())
            .await
            .unwrap()
            .with_prefix(prefix.clone());
        let key = support::replay_store::key();
        let mut redis = raw(&url).await;
        let () = redis::cmd("SET")
            .arg(format!("{prefix}{key}"))
            .arg("anything")
            .arg("PX")
            .arg(60_000)
            .query_async(&mut redis)
            .await
            .unwrap();
        assert!(
            !store
                .insert_if_absent(&key, "ours", Duration::from_secs(60))
                .await
                .unwrap()
        );
        store.remove(&key, "ours").await.unwrap();
        let () = redis::cmd("DEL")
            .arg(format!("{prefix}{key}"))
            .query_async(&mut redis)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn connect_reports_an_unreachable_server_or_a_bad_url() {
        assert!(RedisReplayStore::connect("not a redis url").await.is_err());

        let url = format!("redis://127.0.0.1:{}/", free_port());
        let started = Instant::now();
        let error = RedisReplayStore::connect(url.as_str())
            .await
            .expect_err("nothing listens there");
        assert!(
            error.to_string().contains("refused"),
            "{error} ({:?} after {:?})",
            error,
            started.elapsed()
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "gave up after {:?}",
            started.elapsed()
        );
    }
}

/// Without the feature there is no Redis backend to test: say so (or fail when backends are
/// required) rather than pass silently.
#[cfg(not(feature = "redis"))]
#[test]
fn redis_store() {
    crate::support::backends::skip(
        "the redis feature is off (run with --features redis or --all-features, as scripts/test does)",
    );
}
