//! One server replica for the multi-instance tests: an axum app with paid routes whose replay
//! records, use counts and balances live in Redis, configured only through the environment.
//! It prints `listening http://127.0.0.1:<port>` on stdout once it accepts connections.
//!
//! | variable | meaning |
//! | --- | --- |
//! | `X402_FACILITATOR_URL`, `X402_PAY_TO`, `X402_ENTITLEMENT_KEYS` | as for `X402Builder::read_env` |
//! | `X402_REDIS_URL` | the Redis every replica shares |
//! | `X402_REDIS_PREFIX` | key prefix, so concurrent test runs do not meet |
//!
//! Routes: `/paid` (0.01 USDC), `/hundred` (0.05 USDC for 100 uses), `/prepaid` (0.01 USDC a
//! request, or 1 USDC prepaid), and `/hits`, the number of times a paid handler ran.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::extract::Extension;
use axum::routing::get;
use axum_x402::{Payment, X402, paid};
use x402_runtime::store::{RedisEntitlementStore, RedisReplayStore};

type Hits = Arc<AtomicUsize>;

#[paid(price = "0.01 USDC", network = "base-sepolia")]
async fn per_request(Extension(hits): Extension<Hits>, _: Payment) -> &'static str {
    hits.fetch_add(1, Ordering::SeqCst);
    "paid"
}

#[paid(price = "0.05 USDC", network = "base-sepolia", uses = 100)]
async fn hundred(Extension(hits): Extension<Hits>, _: Payment) -> &'static str {
    hits.fetch_add(1, Ordering::SeqCst);
    "hundred"
}

#[paid(price = "0.01 USDC", network = "base-sepolia", prepay = "1 USDC")]
async fn prepaid(Extension(hits): Extension<Hits>, _: Payment) -> &'static str {
    hits.fetch_add(1, Ordering::SeqCst);
    "prepaid"
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let redis = std::env::var("X402_REDIS_URL")?;
    let prefix = std::env::var("X402_REDIS_PREFIX").unwrap_or_else(|_| "x402:".to_owned());
    let replay = RedisReplayStore::connect(redis.as_str())
        .await?
        .with_prefix(format!("{prefix}replay:"))
        .with_timeout(std::time::Duration::from_secs(2));
    let grants = RedisEntitlementStore::from_manager(replay.manager().clone())
        .with_prefix(format!("{prefix}grant:"))
        .with_timeout(std::time::Duration::from_secs(2));
    let x402: X402 = X402::builder()
        .read_env()
        .replay_store(replay)
        .entitlement_store(grants)
        .build()?;
    let hits = Hits::default();
    let count = hits.clone();
    let app = Router::new()
        .route("/paid", get(per_request))
        .route("/hundred", get(hundred))
        .route("/prepaid", get(prepaid))
        .layer(Extension(hits))
        .layer(x402.layer())
        .route(
            "/hits",
            get(move || async move { count.load(Ordering::SeqCst).to_string() }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("listening http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
