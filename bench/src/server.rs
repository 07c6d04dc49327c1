//! The server under test: this project's axum integration on four listeners.
//!
//! | listener | routes | facilitator |
//! |---|---|---|
//! | `plain` | `/free` without the x402 layer | none |
//! | `http` | `/free` behind the layer, `/weather` (paid), `/pass` (paid, 1 h pass) | HTTP, the stub |
//! | `http_trusted` | `/weather` | HTTP, the stub, with the gate's local checks off |
//! | `http_sqlite` | `/weather` | as `http`, journaled in a SQLite file as shipped |
//! | `embedded_k256` | `/weather` | embedded, real verification with `k256` |
//! | `embedded_secp256k1` | `/weather` | embedded, real verification with libsecp256k1 |
//! | `embedded_sqlite` | `/weather` | as `embedded_secp256k1`, journaled in a SQLite file as shipped (WAL, `synchronous = FULL`) |
//! | `embedded_sqlite_normal` | `/weather` | the same with `synchronous = NORMAL` (what a power loss may cost, measured) |
//!
//! Every route answers the same small JSON body. The embedded listeners settle into a dev
//! ledger in which the bench payer is funded; the listeners without a SQLite journal keep the
//! gate's default, the in-memory journal. The SQLite files live in a fresh directory under the
//! system's temporary directory, removed when the server stops. On start it prints one JSON
//! line with the listeners' ports, then serves until killed.

use std::io::Write as _;
use std::sync::Arc;

use axum::routing::get;
use axum::{Json, Router};
use axum_x402::{Payment, X402, paid};
use serde_json::{Value, json};
use x402_protocol::eip3009::RecoveryBackend;
use x402_protocol::{Address, NetworkRegistry, U256};
use x402_runtime::entitlement::EntitlementKeys;
use x402_runtime::facilitator::EmbeddedFacilitator;
use x402_runtime::journal::{Journal, SqliteJournal};
use x402_runtime::scheme::{ExactEip3009, Schemes};
use x402_runtime::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};

use crate::{BENCH_NETWORK, Error, PAY_TO};

/// The key id and secret of the entitlement tokens this server signs. A bench needs no secret
/// secret; the fixed key lets the pass route run with an HTTP facilitator.
const ENTITLEMENT_KEY: (&str, &[u8]) = ("bench", b"x402-bench entitlement key, not a secret!");

#[paid(
    price = "0.01 USDC",
    network = "base-sepolia",
    description = "Current weather"
)]
async fn weather(payment: Payment) -> Json<Value> {
    let _ = payment;
    body()
}

#[paid(
    price = "0.01 USDC",
    network = "base-sepolia",
    description = "Current weather, an hour of it",
    access = "1h"
)]
async fn pass(payment: Payment) -> Json<Value> {
    let _ = payment;
    body()
}

async fn free() -> Json<Value> {
    body()
}

fn body() -> Json<Value> {
    Json(json!({"forecast": "sunny"}))
}

/// Options of `x402-bench server`.
#[derive(Debug, clap::Args)]
pub(crate) struct ServerArgs {
    /// Base URL of the (stub) facilitator for the `http` listener.
    #[arg(long)]
    facilitator: String,
    /// The payer funded in the embedded listeners' dev ledgers.
    #[arg(long)]
    payer: Address,
    /// Tokio worker threads (1: the server gets one core).
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

/// A server whose embedded facilitator verifies with `backend`: the gate checks each payment
/// once with that scheme, the facilitator only checks and moves the dev ledger's funds. The
/// gate journals into `journal` when given, else into its default in-memory journal.
fn embedded(
    backend: RecoveryBackend,
    payer: Address,
    journal: Option<Arc<dyn Journal>>,
) -> Result<X402, Error> {
    let registry = Arc::new(NetworkRegistry::builtin());
    let scheme = Arc::new(ExactEip3009::new(backend));
    let mut schemes = Schemes::default();
    schemes.add(scheme.clone());
    let facilitator = EmbeddedFacilitator::builder()
        .registry(registry.clone())
        .schemes(schemes)
        .build();
    let network = registry.network(BENCH_NETWORK)?;
    let ledger = facilitator
        .dev_ledger()
        .ok_or("the embedded facilitator has no dev ledger")?;
    ledger.fund(
        &network.caip2,
        network.default_asset.address,
        payer,
        U256::from(u128::MAX),
    );
    let mut builder = X402::builder()
        .embedded_facilitator_with(facilitator)
        .scheme(scheme)
        .pay_to(PAY_TO)
        .entitlement_keys(EntitlementKeys::new(ENTITLEMENT_KEY.0, ENTITLEMENT_KEY.1)?);
    if let Some(journal) = journal {
        builder = builder.journal(journal);
    }
    Ok(builder.build()?)
}

/// A server that asks the (stub) facilitator at `facilitator`, with the gate's local checks
/// on or off, journaling into `journal` when given, else into its default in-memory journal.
fn remote(
    facilitator: &str,
    local_checks: bool,
    journal: Option<Arc<dyn Journal>>,
) -> Result<X402, Error> {
    let mut builder = X402::builder()
        .facilitator(facilitator)
        .local_checks(local_checks)
        .pay_to(PAY_TO)
        .entitlement_keys(EntitlementKeys::new(ENTITLEMENT_KEY.0, ENTITLEMENT_KEY.1)?);
    if let Some(journal) = journal {
        builder = builder.journal(journal);
    }
    Ok(builder.build()?)
}

/// A SQLite journal in `file` with the shipped settings, or with `synchronous = NORMAL`.
async fn sqlite_journal(file: &std::path::Path, normal: bool) -> Result<Arc<dyn Journal>, Error> {
    if !normal {
        return Ok(Arc::new(SqliteJournal::open(file).await?));
    }
    let options = SqliteConnectOptions::new()
        .filename(file)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(std::time::Duration::from_secs(5));
    Ok(Arc::new(SqliteJournal::open_with_options(options).await?))
}

/// A fresh directory for the journal files, removed when dropped.
struct JournalDir(std::path::PathBuf);

impl JournalDir {
    fn new() -> Result<Self, Error> {
        let dir = std::env::temp_dir().join(format!("x402-bench-journal-{}", std::process::id()));
        // A directory left by an earlier process with the same id holds nothing of ours.
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        Ok(JournalDir(dir))
    }
}

impl Drop for JournalDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the server until the process is killed.
pub(crate) fn run(args: ServerArgs) -> Result<(), Error> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads)
        .enable_all()
        .build()?;
    let journals = JournalDir::new()?;
    runtime.block_on(async {
        let sqlite = sqlite_journal(&journals.0.join("full.db"), false).await?;
        let sqlite_normal = sqlite_journal(&journals.0.join("normal.db"), true).await?;
        let http_sqlite = sqlite_journal(&journals.0.join("http.db"), false).await?;
        let http = remote(&args.facilitator, true, None)?;
        let http_journaled = remote(&args.facilitator, true, Some(http_sqlite))?;
        // Every check left to the facilitator, as x402-axum does: no signature recovery here.
        let trusted = remote(&args.facilitator, false, None)?;
        let apps = [
            ("plain", Router::new().route("/free", get(free))),
            (
                "http",
                Router::new()
                    .route("/free", get(free))
                    .route("/weather", get(weather))
                    .route("/pass", get(pass))
                    .layer(http.layer()),
            ),
            (
                "http_trusted",
                Router::new()
                    .route("/weather", get(weather))
                    .layer(trusted.layer()),
            ),
            (
                "http_sqlite",
                Router::new()
                    .route("/weather", get(weather))
                    .layer(http_journaled.layer()),
            ),
            (
                "embedded_k256",
                Router::new()
                    .route("/weather", get(weather))
                    .layer(embedded(RecoveryBackend::K256, args.payer, None)?.layer()),
            ),
            (
                "embedded_secp256k1",
                Router::new()
                    .route("/weather", get(weather))
                    .layer(embedded(RecoveryBackend::Secp256k1, args.payer, None)?.layer()),
            ),
            (
                "embedded_sqlite",
                Router::new()
                    .route("/weather", get(weather))
                    .layer(embedded(RecoveryBackend::Secp256k1, args.payer, Some(sqlite))?.layer()),
            ),
            (
                "embedded_sqlite_normal",
                Router::new().route("/weather", get(weather)).layer(
                    embedded(RecoveryBackend::Secp256k1, args.payer, Some(sqlite_normal))?.layer(),
                ),
            ),
        ];
        let mut ports = serde_json::Map::new();
        let mut servers = Vec::new();
        for (name, app) in apps {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            ports.insert(name.to_owned(), json!(listener.local_addr()?.port()));
            servers.push(tokio::spawn(
                async move { axum::serve(listener, app).await },
            ));
        }
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{}", Value::Object(ports))?;
        stdout.flush()?;
        drop(stdout);
        // Exit normally on SIGTERM or SIGINT, so a profiler wrapping the server writes its
        // data.
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = terminate.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        for server in servers {
            server.abort();
        }
        Ok::<(), Error>(())
    })?;
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    drop(journals);
    Ok(())
}
