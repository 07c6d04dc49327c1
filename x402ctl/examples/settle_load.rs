//! Settlement throughput of `x402ctl serve` on anvil: settlements per second for a number of
//! signers, measured from the first `/settle` to the last answer, every answer checked.
//!
//! ```sh
//! scripts/bench-settle            # builds in release, runs 1 and 4 signers
//! # or by hand:
//! cargo build --release -p x402ctl --bin x402ctl --example settle_load
//! target/release/examples/settle_load --signers 4 --payments 2000 --concurrency 256
//! ```
//!
//! It starts its own anvil (automatic mining: a block per transaction), deploys the
//! workspace's EIP-3009 token, funds payers, writes a configuration with `--signers` keys and
//! starts `x402ctl serve` from it (`--facilitator-bin`, default: beside this program, i.e.
//! `target/release/x402ctl`), with a SQLite journal (or `--journal <url>`). Payments are signed
//! before the clock starts. Prints one line of JSON.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::Semaphore;
use x402_protocol::client::sign_payment;
use x402_protocol::eip3009::LocalSigner;
use x402_protocol::facilitator::{FacilitatorRequest, PaymentRequirements};
use x402_protocol::{AssetInfo, NetworkInfo, NetworkRegistry, U256, v2};
use x402_test_support::anvil::{Anvil, DEV_ADDRESSES, DEV_KEYS, TOKEN_NAME, TOKEN_VERSION};

type Error = Box<dyn std::error::Error + Send + Sync>;

const PRICE: u64 = 10_000;
const TOKEN: &str = "bench-caller-token-0123456789abcdef";

struct Options {
    signers: usize,
    payments: usize,
    concurrency: usize,
    journal: Option<String>,
    bin: PathBuf,
}

fn options() -> Result<Options, Error> {
    let here = std::env::current_exe()?;
    let mut options = Options {
        signers: 1,
        payments: 1000,
        concurrency: 256,
        journal: None,
        bin: here
            .parent()
            .and_then(|p| p.parent())
            .map(|p| p.join("x402ctl"))
            .unwrap_or_else(|| PathBuf::from("x402ctl")),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--signers" => options.signers = value.parse()?,
            "--payments" => options.payments = value.parse()?,
            "--concurrency" => options.concurrency = value.parse()?,
            "--journal" => options.journal = Some(value),
            "--facilitator-bin" => options.bin = PathBuf::from(value),
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    if !(1..=8).contains(&options.signers) {
        return Err("--signers is 1 to 8".into());
    }
    Ok(options)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let options = options()?;
    let anvil = Anvil::start().ok_or("anvil is not installed (scripts/test installs it)")?;
    let token = anvil.deploy_token();
    let chain_id = anvil.chain_id();
    let network = NetworkInfo::new(
        "anvil",
        chain_id,
        AssetInfo::usdc(token, TOKEN_NAME, TOKEN_VERSION),
    );
    let mut registry = NetworkRegistry::builtin();
    registry.register_network(network.clone())?;

    let dir = std::env::temp_dir().join(format!("x402-settle-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let journal = options
        .journal
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", dir.join("journal.db").display()));
    // Signers: dev accounts 1..=n (account 0 deployed the token and mints).
    let signers: Vec<usize> = (1..=options.signers).collect();
    let keys: Vec<String> = signers
        .iter()
        .map(|i| format!("{{ key_env = \"BENCH_SIGNER_{i}\" }}"))
        .collect();
    let config = format!(
        "[[network]]\nname = \"anvil\"\nchain_id = {chain_id}\nrpc_url = \"{}\"\nsigners = [{}]\n[[network.token]]\naddress = \"{token}\"\nsymbol = \"USDC\"\ndecimals = 6\neip712_name = \"{TOKEN_NAME}\"\neip712_version = \"{TOKEN_VERSION}\"\nusd = true\n[network.settlement]\npoll_interval = \"20ms\"\nreceipt_timeout = \"120s\"\n[facilitator]\nauth_tokens_env = \"BENCH_TOKENS\"\njournal_env = \"BENCH_JOURNAL\"\nsettle_wait = \"120s\"\nrate_limit_per_second = 100000\nrate_limit_burst = 100000\n",
        anvil.url(),
        keys.join(", ")
    );
    let path = dir.join("x402.toml");
    std::fs::write(&path, config)?;

    let mut command = tokio::process::Command::new(&options.bin);
    command
        .args(["serve", "--port", "0", "--config"])
        .arg(&path)
        .env("RUST_LOG", "warn")
        .env("BENCH_TOKENS", format!("bench:{TOKEN}"))
        .env("BENCH_JOURNAL", &journal)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.join("facilitator.log"))?)
        .kill_on_drop(true);
    for i in &signers {
        command.env(format!("BENCH_SIGNER_{i}"), DEV_KEYS[*i]);
    }
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", options.bin.display()))?;
    let mut lines = BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();
    let url = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await?
        .map_err(|e| e.to_string())?
        .ok_or("the facilitator did not start")?;

    // Payments, signed before the clock starts: 20 payers, funded.
    let pay_to = LocalSigner::random().address();
    let requirement = PaymentRequirements::V2(v2::PaymentRequirements {
        scheme: "exact".into(),
        network: network.caip2.to_string(),
        amount: U256::from(PRICE),
        asset: token.to_string(),
        pay_to: pay_to.to_string(),
        max_timeout_seconds: 3600,
        extra: Some(json!({"name": TOKEN_NAME, "version": TOKEN_VERSION})),
    });
    let payers: Vec<LocalSigner> = (0..20).map(|_| LocalSigner::random()).collect();
    for payer in &payers {
        anvil.mint(
            token,
            payer.address(),
            U256::from(PRICE * options.payments as u64),
        );
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let requests: Vec<FacilitatorRequest> = (0..options.payments)
        .map(|i| {
            let payment = sign_payment(
                &requirement,
                None,
                &payers[i % payers.len()],
                &registry,
                now,
            )?;
            Ok(FacilitatorRequest::new(payment, requirement.clone()))
        })
        .collect::<Result<_, Error>>()?;
    let sent_before: u64 = signers
        .iter()
        .map(|i| anvil.nonce(DEV_ADDRESSES[*i].parse().unwrap_or_default()))
        .sum();

    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(options.concurrency)
        .build()?;
    let gate = Arc::new(Semaphore::new(options.concurrency));
    let started = Instant::now();
    let tasks: Vec<_> = requests
        .into_iter()
        .map(|request| {
            let (http, url, gate) = (http.clone(), url.clone(), gate.clone());
            tokio::spawn(async move {
                let _permit = gate.acquire_owned().await.ok();
                let began = Instant::now();
                let answer: Result<Value, String> = async {
                    http.post(format!("{url}/settle"))
                        .bearer_auth(TOKEN)
                        .json(&request)
                        .send()
                        .await
                        .map_err(|e| e.to_string())?
                        .json()
                        .await
                        .map_err(|e| e.to_string())
                }
                .await;
                (answer, began.elapsed())
            })
        })
        .collect();
    let mut settled = 0usize;
    let mut failed = Vec::new();
    let mut latencies = Vec::with_capacity(tasks.len());
    for task in tasks {
        let (answer, took) = task.await?;
        latencies.push(took);
        match answer {
            Ok(answer) if answer["success"] == true => settled += 1,
            Ok(answer) => failed.push(answer.to_string()),
            Err(error) => failed.push(error),
        }
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let percentile = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    let sent_after: u64 = signers
        .iter()
        .map(|i| anvil.nonce(DEV_ADDRESSES[*i].parse().unwrap_or_default()))
        .sum();
    let paid = anvil.balance(token, pay_to);
    let result = json!({
        "signers": options.signers,
        "payments": options.payments,
        "concurrency": options.concurrency,
        "journal": journal.split("://").next(),
        "settled": settled,
        "failed": failed.len(),
        "seconds": elapsed.as_secs_f64(),
        "settlements_per_second": settled as f64 / elapsed.as_secs_f64(),
        "latency_ms": {"p50": percentile(0.5), "p90": percentile(0.9), "p99": percentile(0.99)},
        "transactions": sent_after - sent_before,
        "paid_matches": paid == U256::from(PRICE * settled as u64),
    });
    println!("{result}");
    for failure in failed.iter().take(3) {
        eprintln!("failed: {failure}");
    }
    let _ = child.start_kill();
    let _ = std::fs::remove_dir_all(&dir);
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("{} settlements failed", failed.len()).into())
    }
}
