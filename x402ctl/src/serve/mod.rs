//! `x402ctl serve`: a facilitator you can run in production.
//!
//! - Chains come from the configuration file (`--config`, `X402_CONFIG`): every `[[network]]`
//!   with an `rpc_url` and `signers` is settled on. EVM chains through `x402-evm` (EIP-3009
//!   `exact`), with local nonces per signer, several signers sharing the load, stuck
//!   transactions re-priced; Solana clusters through `x402-svm` (`exact`: the signers are fee
//!   payers that co-sign the payer's transaction, listed as `extra.feePayer` in `/supported`).
//! - Every settlement is journaled (`--journal`, `[facilitator] journal`; SQLite or Postgres)
//!   before anything is sent; a retried `/settle` for the same payment gets the same
//!   settlement's outcome, never a second one; what a crash left open is resolved from the
//!   chain at the next start.
//! - Callers authenticate with bearer tokens (`auth_tokens_env`, `auth_tokens_file`, rotated
//!   by editing the file); bodies are size-limited and each caller rate-limited.
//! - `/health` and `/metrics` (Prometheus text) for operations; logs through `tracing`
//!   (`RUST_LOG`).
//! - Shutdown (Ctrl-C, SIGTERM) stops taking requests, lets settlements in flight finish (up to
//!   `shutdown_grace`), and leaves the rest to the next start's reconciliation.
//!
//! `--dev` keeps the development facilitator: the embedded verifier settling into an
//! in-memory dev ledger on every known network (no chain, no money), no auth.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use x402_evm::EvmSettler;
use x402_protocol::{Address, Decimal, NetworkKind, NetworkRegistry, U256};
use x402_runtime::config::{Config, KeySource};
use x402_runtime::facilitator::EmbeddedFacilitator;
use x402_runtime::journal::{Journal, now_ms};

use crate::{Failure, ServeArgs};

mod auth;
mod catalog;
mod http;
mod journal;
mod limit;
mod routes;
mod service;
mod telemetry;

/// Requests larger than this are not facilitator requests.
const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;
/// How long `/settle` waits for a verdict before answering `settlement_pending`.
const DEFAULT_SETTLE_WAIT: Duration = Duration::from_secs(25);
/// How often open settlements are looked up on chain.
const DEFAULT_RECONCILE_EVERY: Duration = Duration::from_secs(15);
/// How long shutdown waits for settlements in flight.
const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// Requests per second and burst per caller, unless configured.
const DEFAULT_RATE: f64 = 500.0;
const DEFAULT_BURST: u32 = 2000;
/// The journal of a facilitator configured without one.
const DEFAULT_JOURNAL: &str = "sqlite://x402-facilitator.db";

/// `--fund <address>=<amount>[@<network>]`: `amount` in whole tokens of the network's default
/// stablecoin (`10` is 10 USDC), on one network or on every known one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Funding {
    pub(crate) account: Address,
    pub(crate) amount: Decimal,
    pub(crate) network: Option<String>,
}

impl FromStr for Funding {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (account, rest) = s
            .split_once('=')
            .ok_or_else(|| format!("{s:?}: write <address>=<amount>[@<network>]"))?;
        let account = Address::from_str(account.trim())
            .map_err(|_| format!("{account:?} is not an EVM address"))?;
        let (amount, network) = match rest.split_once('@') {
            Some((amount, network)) => (amount, Some(network.trim().to_owned())),
            None => (rest, None),
        };
        let amount = Decimal::from_str(amount.trim()).map_err(|e| format!("{amount:?}: {e}"))?;
        Ok(Funding {
            account,
            amount,
            network,
        })
    }
}

/// Credits the dev ledger as `--fund` says.
fn fund(
    facilitator: &EmbeddedFacilitator,
    registry: &NetworkRegistry,
    funding: &Funding,
) -> Result<String, Failure> {
    let ledger = facilitator
        .dev_ledger()
        .ok_or_else(|| Failure::usage("the facilitator has no dev ledger to fund"))?;
    let networks: Vec<_> = match &funding.network {
        Some(id) => vec![
            registry
                .network(id)
                .map_err(|e| Failure::usage(e.to_string()))?,
        ],
        None => registry
            .networks()
            .filter(|n| matches!(n.kind, NetworkKind::Evm { .. }))
            .collect(),
    };
    let mut symbol = String::new();
    for network in &networks {
        let asset = &network.default_asset;
        let Some(token) = asset.evm_address() else {
            continue;
        };
        let atomic: U256 = funding
            .amount
            .to_atomic(asset.decimals)
            .map_err(|e| Failure::usage(format!("--fund {}: {e}", funding.amount)))?;
        ledger.fund(&network.caip2, token, funding.account, atomic);
        symbol = asset.symbol.to_string();
    }
    let place = match &funding.network {
        Some(id) => id.clone(),
        None => "every network".to_owned(),
    };
    Ok(format!(
        "funded {} with {} {symbol} on {place}",
        funding.account, funding.amount
    ))
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`).
pub(crate) fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// The configuration `--config` or the environment names, if any.
pub(crate) fn load_config(path: Option<&std::path::Path>) -> Result<Option<Config>, Failure> {
    match path {
        Some(path) => Config::load(path)
            .map(Some)
            .map_err(|e| Failure::usage(e.to_string())),
        None => Config::from_env().map_err(|e| Failure::usage(e.to_string())),
    }
}

/// A settler per configured chain with an RPC URL and signers.
async fn chain_settlers(config: &Config) -> Result<routes::Routes, Failure> {
    let mut routes = routes::Routes::default();
    for entry in &config.networks {
        if entry.rpc_url.is_none() && entry.signers.is_empty() {
            continue;
        }
        match entry.network.kind {
            NetworkKind::Evm { .. } => {
                let settler = EvmSettler::from_config(config, entry)
                    .await
                    .map_err(|e| Failure::usage(e.to_string()))?;
                tracing::info!(target: "x402::facilitator", network = %entry.network, signers = ?settler.addresses(), "settling EIP-3009 `exact` payments");
                routes.add(routes::Route {
                    network: entry.network.caip2.to_string(),
                    scheme: x402_protocol::exact::EXACT,
                    payload: "EIP-3009",
                    extra: None,
                    settler: Arc::new(settler),
                });
            }
            NetworkKind::Solana => {
                let settler = x402_svm::SvmSettler::from_config(config, entry)
                    .map_err(|e| Failure::usage(e.to_string()))?;
                let fee_payers = settler.fee_payer_addresses();
                tracing::info!(target: "x402::facilitator", network = %entry.network, fee_payers = ?fee_payers, "settling Solana `exact` payments (SPL TransferChecked, co-signed as fee payer)");
                routes.add(routes::Route {
                    network: entry.network.caip2.to_string(),
                    scheme: x402_protocol::exact::EXACT,
                    payload: "Solana transaction",
                    // Payers build around one fee payer; the first key is the one offered.
                    extra: Some(serde_json::json!({ "feePayer": fee_payers[0].to_string() })),
                    settler: Arc::new(settler),
                });
            }
        }
    }
    if routes.is_empty() {
        return Err(Failure::usage(format!(
            "configuration {}: no network to settle on; give a [[network]] an rpc_url (or rpc_url_env) and signers = [{{ key_env = \"FACILITATOR_KEY\" }}], or run `x402ctl serve --dev` for the in-memory dev ledger",
            config.origin
        )));
    }
    Ok(routes)
}

fn caller_tokens(
    args: &ServeArgs,
    config: Option<&Config>,
) -> Result<Option<auth::Tokens>, Failure> {
    let settings = config.map(|c| &c.facilitator);
    let env = args
        .auth_tokens_env
        .clone()
        .or_else(|| settings.and_then(|s| s.auth_tokens_env.clone()));
    let file = settings.and_then(|s| s.auth_tokens_file.clone());
    let mut fixed = Vec::new();
    if let Some(var) = &env {
        let text = KeySource::Env(var.clone())
            .read()
            .map_err(|message| Failure::usage(format!("caller tokens: {message}")))?;
        fixed =
            auth::parse(&text, &format!("environment variable {var}")).map_err(Failure::usage)?;
    }
    if env.is_none() && file.is_none() {
        return Ok(None);
    }
    let tokens = auth::Tokens::new(fixed, file).map_err(Failure::usage)?;
    if tokens.count() == 0 {
        return Err(Failure::usage(
            "caller tokens are configured but none was found; add name:token entries",
        ));
    }
    Ok(Some(tokens))
}

async fn open_journal(
    args: &ServeArgs,
    config: Option<&Config>,
    dev: bool,
) -> Result<Arc<dyn Journal>, Failure> {
    let url = match (
        &args.journal,
        config.and_then(|c| c.facilitator.journal.as_ref()),
    ) {
        (Some(url), _) => zeroize::Zeroizing::new(url.clone()),
        (None, Some(source)) => source.read().map_err(|m| {
            Failure::usage(format!("configuration, key `facilitator.journal`: {m}"))
        })?,
        (None, None) if dev => zeroize::Zeroizing::new("memory:".to_owned()),
        (None, None) => zeroize::Zeroizing::new(DEFAULT_JOURNAL.to_owned()),
    };
    let journal = journal::open(&url)
        .await
        .map_err(|e| Failure::usage(format!("the settlement journal cannot be opened: {e}")))?;
    let shown = redact(&url);
    tracing::info!(target: "x402::facilitator", journal = %shown, "settlement journal open");
    Ok(journal)
}

/// A URL without its password, for the log.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}

pub(crate) async fn run(args: ServeArgs) -> Result<(), Failure> {
    init_logging();
    let config = load_config(args.config.as_deref())?;
    let dev = args.dev || !args.fund.is_empty();
    let metrics = match telemetry::install() {
        Ok(handle) => Some(handle),
        Err(error) => {
            tracing::warn!(target: "x402::facilitator", %error, "metrics are not recorded");
            None
        }
    };
    let registry = Arc::new(match &config {
        Some(config) => config
            .registry()
            .map_err(|e| Failure::usage(e.to_string()))?,
        None => NetworkRegistry::builtin(),
    });

    // Solana `exact` beside the built-in EVM schemes.
    let mut schemes = x402_runtime::scheme::Schemes::default();
    schemes.add(Arc::new(x402_svm::ExactSvm));
    let (facilitator, routes) = if dev {
        let facilitator = EmbeddedFacilitator::builder()
            .registry(registry.clone())
            .schemes(schemes)
            .build();
        for funding in &args.fund {
            eprintln!("x402ctl serve: {}", fund(&facilitator, &registry, funding)?);
        }
        (facilitator, None)
    } else {
        let Some(config) = &config else {
            return Err(Failure::usage(
                "no chains configured: pass --config x402.toml (or set X402_CONFIG) with a [[network]] that has rpc_url and signers, or run `x402ctl serve --dev` for the in-memory dev ledger",
            ));
        };
        let routes = Arc::new(chain_settlers(config).await?);
        let facilitator = EmbeddedFacilitator::builder()
            .registry(registry.clone())
            .schemes(schemes)
            .settler(routes.clone())
            .build();
        (facilitator, Some(routes))
    };

    let tokens = caller_tokens(&args, config.as_ref())?;
    if tokens.is_none() && !dev && !args.no_auth {
        return Err(Failure::usage(
            "no caller tokens: anyone reaching this facilitator could make it spend gas. Set [facilitator] auth_tokens_env (name:token,…) or auth_tokens_file, or --auth-tokens-env VAR; pass --no-auth only behind a gateway that authenticates callers",
        ));
    }
    let settings = config
        .as_ref()
        .map(|c| c.facilitator.clone())
        .unwrap_or_default();
    let journal = open_journal(&args, config.as_ref(), dev).await?;
    let service = Arc::new(service::Service::new(
        facilitator,
        routes,
        journal,
        Arc::new(x402_runtime::discovery::DiscoveryCatalog::new()),
        service::Settings {
            settle_wait: settings.settle_wait.unwrap_or(DEFAULT_SETTLE_WAIT),
            reconcile_every: settings.reconcile_every.unwrap_or(DEFAULT_RECONCILE_EVERY),
        },
    ));
    let max_body_bytes = settings.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES);
    let app = Arc::new(http::App {
        service: service.clone(),
        tokens: tokens.map(Arc::new),
        limit: Some(limit::RateLimit::new(
            settings.rate_limit_per_second.unwrap_or(DEFAULT_RATE),
            settings.rate_limit_burst.unwrap_or(DEFAULT_BURST),
        )),
        metrics,
        max_body_bytes,
    });

    // What the last run left open: everything journaled before this start.
    let started = now_ms();
    service.reconcile(started).await;
    let reconciler = {
        let service = service.clone();
        let every = settings.reconcile_every.unwrap_or(DEFAULT_RECONCILE_EVERY);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let before = now_ms()
                    .saturating_sub(u64::try_from(every.as_millis() * 2).unwrap_or(u64::MAX));
                service.reconcile(before).await;
            }
        })
    };

    let address = SocketAddr::new(
        args.host
            .or_else(|| settings.listen.map(|l| l.ip()))
            .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        args.port
            .or_else(|| settings.listen.map(|l| l.port()))
            .unwrap_or(4022),
    );
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|e| Failure::usage(format!("cannot listen on {address}: {e}")))?;
    let bound = listener
        .local_addr()
        .map_err(|e| Failure::usage(format!("cannot listen on {address}: {e}")))?;
    // The first line of stdout is the URL, for scripts.
    println!("http://{bound}");
    eprintln!(
        "x402ctl serve: facilitator listening on http://{bound} (POST /verify, POST /settle, GET /supported, GET /discovery/resources, GET /discovery/search, GET /health, GET /metrics)"
    );
    if dev {
        eprintln!(
            "x402ctl serve: embedded verifier, in-memory dev ledger: no money moves; Ctrl-C stops"
        );
    }
    if app.tokens.is_none() {
        tracing::warn!(target: "x402::facilitator", "callers are not authenticated");
    }

    let stopping = service.stopping.clone();
    let served = axum::serve(
        listener,
        http::router(app).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown_signal().await;
        tracing::info!(target: "x402::facilitator", "shutting down: no new requests; finishing settlements in flight");
        // Settlements waiting on a slow chain stop asking and stay journaled as unknown.
        stopping.cancel();
    })
    .await;
    reconciler.abort();
    service.stopping.cancel();
    service.tasks.close();
    let grace = settings.shutdown_grace.unwrap_or(DEFAULT_SHUTDOWN_GRACE);
    if tokio::time::timeout(grace, service.tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!(target: "x402::facilitator", unfinished = service.tasks.len(), "settlements still running at shutdown; the next start reconciles them");
    } else {
        tracing::info!(target: "x402::facilitator", "every settlement in flight finished");
    }
    served.map_err(|e| Failure::http(format!("server failed: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn funding_parses_with_and_without_a_network() {
        let f: Funding = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8=1.5@base-sepolia"
            .parse()
            .unwrap();
        assert_eq!(f.amount.to_atomic(6).unwrap(), U256::from(1_500_000u64));
        assert_eq!(f.network.as_deref(), Some("base-sepolia"));
        let f: Funding = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8=10"
            .parse()
            .unwrap();
        assert_eq!(f.network, None);
        assert!(
            "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
                .parse::<Funding>()
                .is_err()
        );
        assert!("bob=1".parse::<Funding>().is_err());
        assert!(
            "0x70997970C51812dc3A010C7d01b50e0d17dc79C8=-1"
                .parse::<Funding>()
                .is_err()
        );
    }
}
