//! A paid server for the crash test (`tests/crash.rs`): an axum app whose payments settle on
//! an anvil chain through the embedded facilitator's EVM settler and are journaled in SQLite or
//! Postgres, configured only through the environment. The test kills it with SIGKILL at random
//! points and starts it again. It prints `listening http://127.0.0.1:<port>` once it accepts
//! connections.
//!
//! | variable | meaning |
//! | --- | --- |
//! | `X402_ANVIL_URL` | the chain's JSON-RPC URL |
//! | `CRASH_TOKEN` | the EIP-3009 test token (`contracts/`), deployed by the test |
//! | `CRASH_SETTLER_KEY` | the settler's private key (one per replica: one nonce sequence each) |
//! | `CRASH_PAY_TO` | the recipient |
//! | `X402_JOURNAL_URL` | the journal every replica shares (`sqlite://…`, `postgres://…`) |
//! | `X402_PUBLIC_URL` | the public origin every replica answers for |
//! | `X402_REDIS_URL`, `CRASH_PREFIX` | optional: a replay store shared through Redis |
//!
//! Route: `/paid`, 0.01 test USDC on the network `anvil`; its handler takes 30 ms.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use axum_x402::{Payment, X402};
use x402_evm::EvmSettler;
use x402_protocol::{Address, AssetInfo, NetworkInfo, NetworkRegistry};
use x402_runtime::facilitator::EmbeddedFacilitator;
use x402_runtime::store::RedisReplayStore;
use x402_runtime::{PaidRoute, RouteSpec};

/// The token's EIP-712 name and version (see `contracts/src/X402TestToken.sol`).
const TOKEN_NAME: &str = "X402 Test USD";
const TOKEN_VERSION: &str = "2";

struct Paid;
impl PaidRoute for Paid {
    fn spec() -> &'static RouteSpec {
        static SPEC: RouteSpec = RouteSpec::fixed("$0.01").networks(&["anvil"]);
        &SPEC
    }
}

async fn paid(payment: Payment<Paid>) -> String {
    tokio::time::sleep(Duration::from_millis(30)).await;
    format!("served {}", payment.payer())
}

fn var(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is not set"))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let rpc = var("X402_ANVIL_URL")?;
    let token: Address = var("CRASH_TOKEN")?.parse()?;
    let settler = EvmSettler::builder(&rpc)
        .private_key(&var("CRASH_SETTLER_KEY")?)
        .receipt_timeout(Duration::from_secs(5))
        .connect()
        .await?;
    let chain_id = settler.chain_id();
    let network = NetworkInfo::new(
        "anvil",
        chain_id,
        AssetInfo::usdc(token, TOKEN_NAME, TOKEN_VERSION),
    );
    let mut registry = NetworkRegistry::builtin();
    registry.register_network(network.clone())?;
    let facilitator = EmbeddedFacilitator::builder()
        .registry(Arc::new(registry))
        .settler(Arc::new(settler))
        .build();
    let mut builder = X402::builder()
        .embedded_facilitator_with(facilitator)
        .network(network)
        .pay_to(var("CRASH_PAY_TO")?)
        .public_url(var("X402_PUBLIC_URL")?)
        .journal_url(var("X402_JOURNAL_URL")?)
        // A record left `verified` or `settling` by a killed replica is resolved soon after.
        .reconcile_after(Duration::from_secs(2))
        .reconcile_every(Some(Duration::from_millis(500)));
    if let Ok(redis) = var("X402_REDIS_URL") {
        let prefix = var("CRASH_PREFIX").unwrap_or_else(|_| "x402:crash:".to_owned());
        builder = builder.replay_store(
            RedisReplayStore::connect(redis.as_str())
                .await?
                .with_prefix(format!("{prefix}replay:"))
                .with_timeout(Duration::from_secs(2)),
        );
    }
    let x402: X402 = builder.build()?;
    let app = Router::new().route("/paid", get(paid)).layer(x402.layer());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("listening http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
