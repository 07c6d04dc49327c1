//! `x402ctl pay`: a curl that pays.

use std::io::Write as _;

use alloy_network::{EthereumWallet, TransactionBuilder};
use alloy_provider::{DynProvider, Provider, ProviderBuilder};
use alloy_rpc_types_eth::TransactionRequest;
use alloy_signer_local::PrivateKeySigner;
use alloy_sol_types::SolCall;
use reqwest::Method;
use reqwest::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use reqwest_x402::hooks::Permit2Allowance;
use reqwest_x402::{
    Challenge, KeyLoadError, LocalSigner, Payer, PaymentRecord, PaymentResponseExt, PaymentStatus,
    X402Middleware, X402MiddlewareBuilder, payment_error,
};
use std::sync::Arc;
use x402_client::PayerBuilder;
use x402_protocol::{NetworkRegistry, U256, headers};
use x402_runtime::config::Config;
use x402_svm::{RpcChain, SolanaWallet, wallet};

use crate::{Failure, PayArgs, SolanaArgs};

/// The networks the client knows: the built-in ones, those of the configuration file, and each
/// `--chain`.
pub(crate) fn registry(args: &PayArgs) -> Result<NetworkRegistry, Failure> {
    let mut registry = match crate::serve::load_config(args.config.as_deref())? {
        Some(config) => config
            .registry()
            .map_err(|e| Failure::usage(e.to_string()))?,
        None => NetworkRegistry::builtin(),
    };
    for (i, chain) in args.chain.iter().enumerate() {
        let origin = format!("--chain #{}", i + 1);
        let text = format!("network = [{}]", chain.trim());
        let config = Config::parse(&text, &origin).map_err(|e| Failure::usage(e.to_string()))?;
        config
            .apply(&mut registry)
            .map_err(|e| Failure::usage(e.to_string()))?;
    }
    Ok(registry)
}

/// The Solana wallet of `--solana-key` (and `--solana-rpc`), if one is given.
fn solana_wallet(args: &SolanaArgs) -> Result<Option<SolanaWallet>, Failure> {
    let Some(key) = &args.solana_key else {
        if args.solana_rpc.is_some() {
            return Err(Failure::usage(
                "--solana-rpc is for Solana payments: give the payer's Solana key too (--solana-key or X402_SOLANA_KEY)",
            ));
        }
        return Ok(None);
    };
    let keypair = wallet::load_keypair(key)
        .map_err(|e| Failure::usage(format!("--solana-key (or X402_SOLANA_KEY): {e}")))?;
    Ok(Some(match &args.solana_rpc {
        Some(rpc) => {
            let url = reqwest::Url::parse(rpc)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some());
            if url.is_none() {
                return Err(Failure::usage(format!(
                    "--solana-rpc {rpc:?} is not an http(s) URL of a Solana JSON-RPC node"
                )));
            }
            SolanaWallet::new(keypair, Arc::new(RpcChain::new(rpc.clone())))
        }
        // Offline: only offers that carry their blockhash (extra.recentBlockhash), in mints the
        // registry knows, can be paid; the wallet says so when another comes.
        None => SolanaWallet::offline(keypair),
    }))
}

/// The keys to pay with: the EVM key in the `key_env` variable and/or the Solana key of
/// `--solana-key`; with a Solana key, an unset variable means "Solana only". Shared by `pay`
/// and `mcp call`.
pub(crate) enum Keys {
    /// EVM offers only.
    Evm(LocalSigner),
    /// Solana offers only.
    Solana(SolanaWallet),
    /// Either.
    Both(LocalSigner, SolanaWallet),
}

impl Keys {
    pub(crate) fn load(key_env: &str, solana: &SolanaArgs) -> Result<Keys, Failure> {
        let solana = solana_wallet(solana)?;
        let evm = match reqwest_x402::key_from_env(key_env) {
            Ok(signer) => Some(signer),
            Err(KeyLoadError::NotSet { .. }) => None,
            Err(e) => return Err(Failure::usage(e.to_string())),
        };
        match (evm, solana) {
            (Some(evm), Some(solana)) => Ok(Keys::Both(evm, solana)),
            (Some(evm), None) => Ok(Keys::Evm(evm)),
            (None, Some(solana)) => Ok(Keys::Solana(solana)),
            (None, None) => Err(Failure::usage(format!(
                "no key to pay with: {key_env} is not set (an EVM private key, 0x + 64 hex digits; make one with `x402ctl keygen`) and no Solana key was given (--solana-key or X402_SOLANA_KEY; make one with `x402ctl keygen --solana`)"
            ))),
        }
    }

    /// A payer builder for these keys.
    pub(crate) fn payer(self) -> PayerBuilder {
        match self {
            Keys::Evm(evm) => Payer::builder(evm),
            Keys::Solana(solana) => Payer::solana_builder(solana),
            Keys::Both(evm, solana) => Payer::builder(evm).solana(solana),
        }
    }

    /// A middleware builder for these keys.
    fn middleware(self) -> X402MiddlewareBuilder {
        match self {
            Keys::Evm(evm) => X402Middleware::builder(evm),
            Keys::Solana(solana) => X402Middleware::solana_builder(solana),
            Keys::Both(evm, solana) => X402Middleware::builder(evm).solana(solana),
        }
    }
}

pub(crate) async fn run(args: PayArgs) -> Result<(), Failure> {
    let mut builder = Keys::load(&args.key_env, &args.solana)?
        .middleware()
        .registry(registry(&args)?)
        .max_per_request(&args.max);
    if !args.network.is_empty() {
        builder = builder.networks(args.network.clone());
    }
    if let Some(rpc) = &args.approve_permit2 {
        let key = std::env::var(&args.key_env).map_err(|_| {
            Failure::usage(format!(
                "--approve-permit2 signs with the key in {}",
                args.key_env
            ))
        })?;
        let approver = Permit2Approver::new(rpc, &key)?;
        builder = builder.approve_permit2(move |needed: Permit2Allowance| {
            let approver = approver.clone();
            async move { approver.approve(needed).await }
        });
    }
    let x402 = builder.build().map_err(|e| Failure::usage(e.to_string()))?;
    let client = x402
        .client()
        .map_err(|e| Failure::http(format!("building the HTTP client: {e}")))?;

    let method = match &args.method {
        Some(m) => Method::from_bytes(m.to_ascii_uppercase().as_bytes())
            .map_err(|_| Failure::usage(format!("{m:?} is not an HTTP method")))?,
        None if args.data.is_some() => Method::POST,
        None => Method::GET,
    };
    let mut request = client.request(method, &args.url);
    let mut has_content_type = false;
    for header in &args.header {
        let (name, value) = header.split_once(':').ok_or_else(|| {
            Failure::usage(format!("-H {header:?}: write headers as \"Name: value\""))
        })?;
        let name = HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| Failure::usage(format!("-H {header:?}: bad header name")))?;
        let value = HeaderValue::from_str(value.trim())
            .map_err(|_| Failure::usage(format!("-H {header:?}: bad header value")))?;
        has_content_type |= name == CONTENT_TYPE;
        request = request.header(name, value);
    }
    if let Some(data) = &args.data {
        let body = match data.strip_prefix('@') {
            Some(path) => {
                std::fs::read(path).map_err(|e| Failure::usage(format!("-d @{path}: {e}")))?
            }
            None => data.clone().into_bytes(),
        };
        if !has_content_type {
            // What curl sends for -d.
            request = request.header(CONTENT_TYPE, "application/x-www-form-urlencoded");
        }
        request = request.body(body);
    }

    let response = match request.send().await {
        Ok(response) => response,
        Err(error) => {
            return Err(match payment_error(&error) {
                Some(refused) => Failure::refused(refused.to_string()),
                None => Failure::http(format!(
                    "{} {}: {}",
                    "request to",
                    args.url,
                    crate::chain(&error)
                )),
            });
        }
    };
    let status = response.status();
    let payment = response.payment().cloned();
    let version = response.version();
    let response_headers = response.headers().clone();
    let body = response
        .bytes()
        .await
        .map_err(|e| Failure::http(format!("reading the response: {}", crate::chain(&e))))?;

    let mut stdout = std::io::stdout().lock();
    if args.include {
        let _ = writeln!(stdout, "{version:?} {status}");
        for (name, value) in &response_headers {
            let _ = writeln!(stdout, "{name}: {}", value.to_str().unwrap_or("<binary>"));
        }
        let _ = writeln!(stdout);
    }
    let _ = stdout.write_all(&body);
    let _ = stdout.flush();

    let registry = x402.registry();
    let summary = match &payment {
        Some(record) => summarize(record, &response_headers, &body, registry),
        None if status.as_u16() == 402 => {
            "x402: the server answered 402 without an x402 challenge; nothing was paid".to_owned()
        }
        None => format!("x402: no payment was needed (HTTP {status})"),
    };
    eprintln!("{summary}");
    if status.is_success() || status.is_redirection() {
        Ok(())
    } else {
        Err(Failure::silent_http())
    }
}

fn summarize(
    record: &PaymentRecord,
    response_headers: &reqwest::header::HeaderMap,
    body: &[u8],
    registry: &NetworkRegistry,
) -> String {
    let mut text = payment_summary(record);
    if let PaymentStatus::Rejected { .. } = record.status {
        let challenge = Challenge::parse(
            response_headers
                .get(headers::PAYMENT_REQUIRED)
                .and_then(|v| v.to_str().ok()),
            body,
        );
        if let Ok(challenge) = challenge {
            text.push_str("\nx402: the server accepts:\n");
            text.push_str(&challenge.describe_accepts(registry));
        }
    }
    text
}

/// What became of a payment, for people: a headline and its details (shared by `pay` and
/// `mcp call`).
pub(crate) fn payment_summary(record: &PaymentRecord) -> String {
    let what = format!("{} on {}", record.amount_display(), record.network);
    let mut lines = Vec::new();
    let mut detail = |name: &str, value: String| lines.push(format!("  {name:<12} {value}"));
    let headline = match &record.status {
        PaymentStatus::Settled { .. } => format!("x402: paid {what}"),
        PaymentStatus::Rejected { reason, message } => {
            let mut line = format!("x402: the server refused the payment of {what}: {reason}");
            if let Some(message) = message {
                line.push_str(&format!(" ({message})"));
            }
            if reason == "insufficient_funds" || reason.contains("insufficient_balance") {
                line.push_str(&format!(
                    "\nx402: the facilitator reports insufficient funds: {} does not hold {} on {}",
                    record.payer,
                    record.amount_display(),
                    record.network.name
                ));
            }
            line
        }
        PaymentStatus::NotSettled { status } => format!(
            "x402: sent {what}, but the server answered HTTP {status} and did not settle it (not charged)"
        ),
        PaymentStatus::Unconfirmed { status } => format!(
            "x402: sent {what}; HTTP {status} without a settlement receipt (probably settled)"
        ),
        PaymentStatus::ToolError => format!(
            "x402: sent {what}, but the tool answered with an error and the payment was not settled (not charged)"
        ),
        PaymentStatus::Sent => format!("x402: sent {what}; no answer"),
        other => format!("x402: {what}: {other}"),
    };
    detail("to", record.pay_to.to_string());
    detail("from", record.payer.to_string());
    detail(
        "asset",
        format!("{} ({})", record.asset.address, record.asset.symbol),
    );
    if let Some(tx) = record.transaction() {
        detail("transaction", tx.to_owned());
    }
    detail("protocol", format!("x402 {}", record.version));
    detail("resource", record.resource.clone());
    if record.attempts > 1 {
        detail(
            "attempts",
            format!("{} (the same authorization each time)", record.attempts),
        );
    }
    let mut text = headline;
    for line in lines {
        text.push('\n');
        text.push_str(&line);
    }
    text
}

alloy_sol_types::sol! {
    function approve(address spender, uint256 value) external returns (bool);
}

/// Sends the payer's `approve(Permit2, unlimited)` for a token through an RPC node.
#[derive(Clone)]
struct Permit2Approver {
    provider: DynProvider,
    payer: x402_protocol::Address,
}

impl Permit2Approver {
    fn new(rpc: &str, key: &str) -> Result<Self, Failure> {
        let signer: PrivateKeySigner = key.trim().parse().map_err(|_| {
            Failure::usage("--approve-permit2: the payer's key is not a private key")
        })?;
        let url = rpc
            .parse()
            .map_err(|e| Failure::usage(format!("--approve-permit2 {rpc:?}: {e}")))?;
        let payer = signer.address();
        let provider = ProviderBuilder::default()
            .with_gas_estimation()
            .with_simple_nonce_management()
            .fetch_chain_id()
            .wallet(EthereumWallet::from(signer))
            .connect_http(url)
            .erased();
        Ok(Permit2Approver { provider, payer })
    }

    async fn approve(&self, needed: Permit2Allowance) -> Result<(), String> {
        if needed.owner != self.payer {
            return Err(format!(
                "the payment is from {}, not from the key's address {}",
                needed.owner, self.payer
            ));
        }
        let data = approveCall {
            spender: needed.spender,
            value: U256::MAX,
        }
        .abi_encode();
        let tx = TransactionRequest::default()
            .with_from(self.payer)
            .with_to(needed.token)
            .with_input(data);
        eprintln!(
            "approving Permit2 ({}) for {} on {} from {}",
            needed.spender, needed.token, needed.network.name, self.payer
        );
        let receipt = self
            .provider
            .send_transaction(tx)
            .await
            .map_err(|e| format!("sending the approval: {e}"))?
            .get_receipt()
            .await
            .map_err(|e| format!("waiting for the approval: {e}"))?;
        if receipt.status() {
            Ok(())
        } else {
            Err(format!(
                "the approval {} reverted",
                receipt.transaction_hash
            ))
        }
    }
}
