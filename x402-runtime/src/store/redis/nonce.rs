//! [`RedisNonceStore`]: single-use nonces shared by every replica.

use std::time::Duration;

use async_trait::async_trait;
use redis::Value;
use redis::aio::ConnectionManager;

use super::{Connection, DEFAULT_TIMEOUT, RedisStoreError, connect, ttl_millis, unexpected};
use crate::store::{NonceStore, StoreError};

/// A [`NonceStore`] in Redis: `claim` is `SET <prefix><key> 1 NX PX <ttl ms>`, atomic across
/// every replica using the same Redis and prefix (default `x402:nonce:`), each operation
/// bounded by a timeout (default 2 s). Failures are [`StoreError`]s, on which sign-ins are
/// refused.
///
/// ```no_run
/// use x402_runtime::store::RedisNonceStore;
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let nonces = RedisNonceStore::connect("redis://127.0.0.1:6379/").await?.with_prefix("shop:siwx:");
/// # let _ = nonces;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct RedisNonceStore {
    connection: Connection,
}

impl RedisNonceStore {
    /// The key prefix unless [`with_prefix`](Self::with_prefix) sets another.
    pub const DEFAULT_PREFIX: &'static str = "x402:nonce:";

    /// The per-operation timeout unless [`with_timeout`](Self::with_timeout) sets another.
    pub const DEFAULT_TIMEOUT: Duration = DEFAULT_TIMEOUT;

    /// Connects to Redis at `url` and waits for the first connection (see
    /// `RedisReplayStore::connect` for the retry policy).
    pub async fn connect(url: impl redis::IntoConnectionInfo) -> Result<Self, RedisStoreError> {
        Ok(Self::from_manager(connect(url).await?))
    }

    /// Uses an existing connection manager (it can be shared with the other Redis stores).
    pub fn from_manager(manager: ConnectionManager) -> Self {
        RedisNonceStore {
            connection: Connection::new(manager, Self::DEFAULT_PREFIX),
        }
    }

    /// Stores keys under `prefix` instead of `x402:nonce:`.
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.connection.prefix = prefix.into();
        self
    }

    /// Bounds each operation by `timeout` instead of 2 s.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.connection.timeout = timeout;
        self
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.connection.prefix
    }
}

#[async_trait]
impl NonceStore for RedisNonceStore {
    async fn claim(&self, key: &str, ttl: Duration) -> Result<bool, StoreError> {
        let mut set = redis::cmd("SET");
        set.arg(self.connection.key(key))
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(ttl_millis(ttl));
        match self.connection.run(&set).await? {
            Value::Okay => Ok(true),
            Value::Nil => Ok(false),
            reply => Err(unexpected("SET NX", &reply)),
        }
    }
}
