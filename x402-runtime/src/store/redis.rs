//! Redis backends (feature `redis`): state shared by every server replica that talks to the
//! same Redis.
//!
//! The module is split in two layers:
//!
//! - [`Connection`], private: one [`ConnectionManager`] (which reconnects by itself), a key
//!   prefix and a per-operation timeout, plus the one place that runs a command under that
//!   timeout and turns Redis failures into [`RedisStoreError`];
//! - one public store per trait on top of it, each with its own default prefix:
//!   [`RedisReplayStore`] (`x402:replay:`) and [`RedisEntitlementStore`] (`x402:grant:`,
//!   counters taken from by a Lua check-and-decrement). Both can share one manager.
//!
//! Every failure (Redis unreachable, too slow, or answering something unexpected) is a
//! [`StoreError`], on which paid routes fail closed with 503 `store_unavailable`.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, Cmd, IntoConnectionInfo, RedisError, Value};

use super::{EntitlementStore, MAX_COUNTER, MAX_TTL, ReplayKey, ReplayStore, StoreError, Take};

mod nonce;
pub use nonce::RedisNonceStore;

/// Why a Redis store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisStoreError {
    /// Redis could not be reached, refused the command or answered with an error.
    #[error("redis: {0}")]
    Redis(#[from] RedisError),
    /// Redis did not answer within the store's per-operation timeout.
    #[error("redis did not answer within {} ms", .0.as_millis())]
    Timeout(Duration),
    /// Redis answered with a reply the command cannot produce.
    #[error("unexpected redis reply to {command}: {reply}")]
    UnexpectedReply {
        /// The command that was sent.
        command: &'static str,
        /// The reply, as Redis' client library prints it.
        reply: String,
    },
}

impl From<RedisStoreError> for StoreError {
    fn from(error: RedisStoreError) -> Self {
        match error {
            RedisStoreError::UnexpectedReply { .. } => StoreError::Corrupt(error.to_string()),
            RedisStoreError::Redis(_) | RedisStoreError::Timeout(_) => {
                StoreError::Unavailable(error.to_string())
            }
        }
    }
}

/// How long a store operation may take by default, reconnecting included.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// The manager configuration [`RedisReplayStore::connect`] uses.
///
/// - no response timeout of its own: the store's per-operation timeout is the one limit, so
///   raising it with `with_timeout` really gives Redis more time;
/// - reconnect attempts at most 500 ms apart (250 ms plus up to as much jitter), so a Redis
///   that comes back is noticed quickly; after 6 failed retries the manager gives up until the
///   next command asks again;
/// - each connection attempt gives up after 1 s.
fn manager_config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_response_timeout(None)
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_max_delay(Duration::from_millis(250))
        .set_number_of_retries(6)
}

/// Opens a connection manager with [`manager_config`], waiting for the first connection.
async fn connect(url: impl IntoConnectionInfo) -> Result<ConnectionManager, RedisStoreError> {
    let client = Client::open(url)?;
    Ok(ConnectionManager::new_with_config(client, manager_config()).await?)
}

/// What every Redis store shares: the connection, the key namespace and the time limit.
#[derive(Clone)]
struct Connection {
    manager: ConnectionManager,
    prefix: String,
    timeout: Duration,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Connection {
    fn new(manager: ConnectionManager, prefix: &str) -> Self {
        Connection {
            manager,
            prefix: prefix.to_owned(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The Redis key under which `key` is stored.
    fn key(&self, key: impl fmt::Display) -> String {
        format!("{}{key}", self.prefix)
    }

    /// Runs one command, within the timeout.
    ///
    /// When the manager answers that the connection was refused, the command was never sent
    /// (Redis was down, and the manager's last reconnect attempt gave up). The manager starts
    /// a new attempt on that error, so the command is tried once more on it: a Redis that came
    /// back is used by the first request after it, instead of failing that request. A command
    /// that may have reached Redis is never sent twice.
    async fn run(&self, cmd: &Cmd) -> Result<Value, RedisStoreError> {
        let mut manager = self.manager.clone();
        let attempt = async {
            match cmd.query_async::<Value>(&mut manager).await {
                Err(error) if error.is_connection_refusal() => {
                    cmd.query_async::<Value>(&mut manager).await
                }
                other => other,
            }
        };
        match tokio::time::timeout(self.timeout, attempt).await {
            Ok(reply) => Ok(reply?),
            Err(_elapsed) => Err(RedisStoreError::Timeout(self.timeout)),
        }
    }
}

/// `PX` argument for a TTL: whole milliseconds rounded up, at least 1 (Redis refuses 0) and
/// at most [`MAX_TTL`].
fn ttl_millis(ttl: Duration) -> u64 {
    let millis = ttl.min(MAX_TTL).as_nanos().div_ceil(1_000_000).max(1);
    // MAX_TTL is far below u64::MAX milliseconds, so this never saturates.
    u64::try_from(millis).unwrap_or(u64::MAX)
}

/// A [`ReplayStore`] in Redis, shared by every server replica that uses the same Redis and
/// prefix.
///
/// - `insert_if_absent` is `SET <prefix><key> <owner> NX PX <ttl ms>`: Redis runs it atomically, so
///   of any number of concurrent requests with one authorization, on any number of replicas,
///   exactly one wins;
/// - `remove` is a short Lua script that deletes the key only if it still holds the owner's
///   token (`GET` + `DEL`, atomic);
/// - the key is [`ReplayKey`]'s `Display` form after the prefix (default `x402:replay:`);
/// - every operation is bounded by a timeout (default 2 s, see
///   [`with_timeout`](Self::with_timeout)); a Redis that is down or hung yields a
///   [`StoreError`], and the gate answers 503 `store_unavailable` without running the handler;
/// - the [`ConnectionManager`] reconnects by itself, so the same store works again once Redis
///   is back, without a restart.
///
/// A request whose `SET` times out after reaching Redis may leave its authorization recorded
/// though the gate refused it; the client then signs a new one. Nothing is settled for it.
///
/// ```no_run
/// use x402_runtime::Gate;
/// use x402_runtime::store::RedisReplayStore;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let replay = RedisReplayStore::connect("redis://127.0.0.1:6379/")
///     .await?
///     .with_prefix("shop:x402:replay:")
///     .with_timeout(std::time::Duration::from_millis(500));
/// let gate = Gate::builder()
///     .facilitator("https://facilitator.example/")
///     .pay_to("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC")
///     .replay_store(replay)
///     .build()?;
/// # let _ = gate;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct RedisReplayStore {
    connection: Connection,
}

impl RedisReplayStore {
    /// The key prefix unless [`with_prefix`](Self::with_prefix) sets another.
    pub const DEFAULT_PREFIX: &'static str = "x402:replay:";

    /// The per-operation timeout unless [`with_timeout`](Self::with_timeout) sets another.
    pub const DEFAULT_TIMEOUT: Duration = DEFAULT_TIMEOUT;

    /// Connects to Redis at `url` (for example `redis://127.0.0.1:6379/`, `rediss://…` needs
    /// a TLS feature of the `redis` crate) and waits for the first connection, so a wrong URL
    /// or an unreachable server is reported at start-up.
    ///
    /// The connection manager retries the first connection 6 times (each attempt limited to
    /// 1 s, at most 500 ms apart) before giving up. Later reconnections happen by themselves,
    /// the same way. To configure the manager yourself, use
    /// [`from_manager`](Self::from_manager).
    pub async fn connect(url: impl IntoConnectionInfo) -> Result<Self, RedisStoreError> {
        Ok(Self::from_manager(connect(url).await?))
    }

    /// Uses an existing connection manager (clones of one manager share its connection).
    ///
    /// Whatever response timeout the manager has, the store's own timeout still bounds each
    /// operation.
    pub fn from_manager(manager: ConnectionManager) -> Self {
        RedisReplayStore {
            connection: Connection::new(manager, Self::DEFAULT_PREFIX),
        }
    }

    /// Stores keys under `prefix` instead of `x402:replay:`. Every replica of one service
    /// must use the same prefix; services that must not share replay records use different
    /// ones.
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.connection.prefix = prefix.into();
        self
    }

    /// How long one operation may take, waiting for a reconnection included, before it fails
    /// with [`RedisStoreError::Timeout`] (default 2 s).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.connection.timeout = timeout;
        self
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.connection.prefix
    }

    /// The per-operation timeout.
    pub fn timeout(&self) -> Duration {
        self.connection.timeout
    }

    /// The connection manager, for sharing it with other Redis clients.
    pub fn manager(&self) -> &ConnectionManager {
        &self.connection.manager
    }
}

fn unexpected(command: &'static str, reply: &Value) -> StoreError {
    RedisStoreError::UnexpectedReply {
        command,
        reply: format!("{reply:?}"),
    }
    .into()
}

/// Deletes `KEYS[1]` only if it holds `ARGV[1]` (its owner), atomically.
const REMOVE_IF_OWNED: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

#[async_trait]
impl ReplayStore for RedisReplayStore {
    async fn insert_if_absent(
        &self,
        key: &ReplayKey,
        owner: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let mut set = redis::cmd("SET");
        set.arg(self.connection.key(key))
            .arg(owner)
            .arg("NX")
            .arg("PX")
            .arg(ttl_millis(ttl));
        match self.connection.run(&set).await? {
            Value::Okay => Ok(true),
            Value::Nil => Ok(false),
            reply => Err(unexpected("SET NX", &reply)),
        }
    }

    async fn remove(&self, key: &ReplayKey, owner: &str) -> Result<(), StoreError> {
        let mut eval = redis::cmd("EVAL");
        eval.arg(REMOVE_IF_OWNED)
            .arg(1)
            .arg(self.connection.key(key))
            .arg(owner);
        match self.connection.run(&eval).await? {
            Value::Int(_) => Ok(()),
            reply => Err(unexpected("EVAL remove-if-owned", &reply)),
        }
    }

    async fn owner(&self, key: &ReplayKey) -> Result<Option<String>, StoreError> {
        let mut get = redis::cmd("GET");
        get.arg(self.connection.key(key));
        match self.connection.run(&get).await? {
            Value::Nil => Ok(None),
            Value::BulkString(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
            reply => Err(unexpected("GET", &reply)),
        }
    }
}

/// Takes `ARGV[1]` from counter `KEYS[1]` if it holds that much, atomically (Redis runs a
/// script without interleaving other commands). Replies `{1, left}` when taken, `{0, held}` when
/// too little is held, `{-1, "0"}` when the counter does not exist. Arithmetic is Redis'
/// own 64-bit `DECRBY`/`INCRBY`; the script only looks at the sign of the result (exact even
/// as a Lua double) and returns the exact value as Redis' string.
const TAKE_SCRIPT: &str = r"
local held = redis.call('GET', KEYS[1])
if not held then return {-1, '0'} end
if redis.call('DECRBY', KEYS[1], ARGV[1]) < 0 then
  redis.call('INCRBY', KEYS[1], ARGV[1])
  return {0, held}
end
return {1, redis.call('GET', KEYS[1])}
";

/// Gives `ARGV[1]` back to counter `KEYS[1]` if it still exists (its expiry is kept).
const GIVE_BACK_SCRIPT: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('INCRBY', KEYS[1], ARGV[1]) end
return 1
";

/// An [`EntitlementStore`] in Redis: entitlement use counts and prepaid balances shared by
/// every replica that uses the same Redis and prefix.
///
/// - `create` is `SET <prefix><id> <value> PX <ttl ms>`;
/// - `take` runs a short Lua script that decrements only if enough is held, so concurrent
///   requests on any number of replicas never drive a balance below zero and every successful
///   take is counted once;
/// - `give_back` increments the counter if it still exists.
///
/// Failures and reconnection behave as for [`RedisReplayStore`]: every operation is bounded by
/// a timeout (default 2 s), Redis being down yields a [`StoreError`] (the gate answers 503
/// `store_unavailable` and runs no handler), and the store recovers by itself.
///
/// ```no_run
/// use x402_runtime::Gate;
/// use x402_runtime::store::{RedisEntitlementStore, RedisReplayStore};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let replay = RedisReplayStore::connect("redis://127.0.0.1:6379/").await?;
/// // One connection for both stores.
/// let grants = RedisEntitlementStore::from_manager(replay.manager().clone());
/// let gate = Gate::builder()
///     .facilitator("https://facilitator.example/")
///     .pay_to("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC")
///     .replay_store(replay)
///     .entitlement_store(grants)
///     .build()?;
/// # let _ = gate;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct RedisEntitlementStore {
    connection: Connection,
}

impl RedisEntitlementStore {
    /// The key prefix unless [`with_prefix`](Self::with_prefix) sets another.
    pub const DEFAULT_PREFIX: &'static str = "x402:grant:";

    /// Connects to Redis at `url`, as [`RedisReplayStore::connect`] does.
    pub async fn connect(url: impl IntoConnectionInfo) -> Result<Self, RedisStoreError> {
        Ok(Self::from_manager(connect(url).await?))
    }

    /// Uses an existing connection manager, for example a [`RedisReplayStore`]'s.
    pub fn from_manager(manager: ConnectionManager) -> Self {
        RedisEntitlementStore {
            connection: Connection::new(manager, Self::DEFAULT_PREFIX),
        }
    }

    /// Stores counters under `prefix` instead of `x402:grant:`; replicas must agree on it.
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.connection.prefix = prefix.into();
        self
    }

    /// How long one operation may take before it fails (default 2 s).
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

fn counter(command: &'static str, reply: &Value) -> Result<u64, StoreError> {
    match reply {
        Value::BulkString(bytes) => std::str::from_utf8(bytes)
            .ok()
            .and_then(|text| text.parse::<u64>().ok())
            .ok_or_else(|| unexpected(command, reply)),
        Value::Int(n) => u64::try_from(*n).map_err(|_| unexpected(command, reply)),
        _ => Err(unexpected(command, reply)),
    }
}

#[async_trait]
impl EntitlementStore for RedisEntitlementStore {
    async fn create(&self, id: &str, value: u64, ttl: Duration) -> Result<(), StoreError> {
        if value > MAX_COUNTER {
            return Err(StoreError::Corrupt(format!(
                "counter value {value} exceeds {MAX_COUNTER}"
            )));
        }
        let mut set = redis::cmd("SET");
        set.arg(self.connection.key(id))
            .arg(value)
            .arg("PX")
            .arg(ttl_millis(ttl));
        match self.connection.run(&set).await? {
            Value::Okay => Ok(()),
            reply => Err(unexpected("SET PX", &reply)),
        }
    }

    async fn take(&self, id: &str, amount: u64) -> Result<Take, StoreError> {
        if amount > MAX_COUNTER {
            return Ok(Take::Insufficient { remaining: 0 });
        }
        let mut eval = redis::cmd("EVAL");
        eval.arg(TAKE_SCRIPT)
            .arg(1)
            .arg(self.connection.key(id))
            .arg(amount);
        let reply = self.connection.run(&eval).await?;
        match &reply {
            Value::Array(parts) if parts.len() == 2 => {
                match (&parts[0], counter("EVAL take", &parts[1])?) {
                    (Value::Int(1), remaining) => Ok(Take::Taken { remaining }),
                    (Value::Int(0), remaining) => Ok(Take::Insufficient { remaining }),
                    (Value::Int(-1), _) => Ok(Take::Missing),
                    _ => Err(unexpected("EVAL take", &reply)),
                }
            }
            _ => Err(unexpected("EVAL take", &reply)),
        }
    }

    async fn give_back(&self, id: &str, amount: u64) -> Result<(), StoreError> {
        let mut eval = redis::cmd("EVAL");
        eval.arg(GIVE_BACK_SCRIPT)
            .arg(1)
            .arg(self.connection.key(id))
            .arg(amount.min(MAX_COUNTER));
        match self.connection.run(&eval).await? {
            Value::Int(1) => Ok(()),
            reply => Err(unexpected("EVAL give back", &reply)),
        }
    }

    async fn remember_grant(
        &self,
        scope: &str,
        payer: &str,
        token: &str,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let mut set = redis::cmd("SET");
        set.arg(self.connection.key(format_args!(
            "holder:{}",
            super::entitlement::grant_holder_key(scope, payer)
        )))
        .arg(token)
        .arg("PX")
        .arg(ttl_millis(ttl));
        match self.connection.run(&set).await? {
            Value::Okay => Ok(()),
            reply => Err(unexpected("SET PX", &reply)),
        }
    }

    async fn recall_grant(&self, scope: &str, payer: &str) -> Result<Option<String>, StoreError> {
        let mut get = redis::cmd("GET");
        get.arg(self.connection.key(format_args!(
            "holder:{}",
            super::entitlement::grant_holder_key(scope, payer)
        )));
        match self.connection.run(&get).await? {
            Value::Nil => Ok(None),
            Value::BulkString(bytes) => String::from_utf8(bytes)
                .map(Some)
                .map_err(|_| StoreError::Corrupt("a kept grant token is not UTF-8".to_owned())),
            reply => Err(unexpected("GET", &reply)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_are_whole_milliseconds_rounded_up_and_never_zero() {
        assert_eq!(ttl_millis(Duration::ZERO), 1);
        assert_eq!(ttl_millis(Duration::from_nanos(1)), 1);
        assert_eq!(ttl_millis(Duration::from_micros(1_500)), 2);
        assert_eq!(ttl_millis(Duration::from_millis(250)), 250);
        assert_eq!(ttl_millis(Duration::from_secs(90)), 90_000);
        let max = u64::try_from(MAX_TTL.as_millis()).unwrap();
        assert_eq!(ttl_millis(Duration::MAX), max);
        assert_eq!(ttl_millis(MAX_TTL + Duration::from_secs(1)), max);
    }

    #[test]
    fn errors_become_store_errors() {
        let timeout = StoreError::from(RedisStoreError::Timeout(Duration::from_millis(1500)));
        assert_eq!(
            timeout,
            StoreError::Unavailable("redis did not answer within 1500 ms".to_owned())
        );
        let refused = RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(matches!(
            StoreError::from(RedisStoreError::from(refused)),
            StoreError::Unavailable(message) if message.starts_with("redis: ")
        ));
        let odd = RedisStoreError::UnexpectedReply {
            command: "SET NX",
            reply: "int(7)".to_owned(),
        };
        assert_eq!(
            StoreError::from(odd),
            StoreError::Corrupt("unexpected redis reply to SET NX: int(7)".to_owned())
        );
    }
}
