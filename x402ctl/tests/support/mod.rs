//! A facilitator for tests: an anvil chain of the test's own with the workspace's token, a
//! configuration file for it, and `x402ctl serve` started as a real process.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use x402_protocol::client::sign_payment;
use x402_protocol::eip3009::LocalSigner;
use x402_protocol::facilitator::{FacilitatorRequest, PaymentRequirements};
use x402_protocol::{Address, AssetInfo, NetworkInfo, NetworkRegistry, U256, v2};
use x402_test_support::anvil::{Anvil, DEV_ADDRESSES, DEV_KEYS, TOKEN_NAME, TOKEN_VERSION};
use x402_test_support::unique_identifier;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_x402ctl");
pub(crate) const PRICE: u64 = 10_000;
pub(crate) const TOKEN_A: &str = "shop-token-0123456789abcdef0123";
pub(crate) const TOKEN_B: &str = "next-token-fedcba9876543210fedc";

/// A temporary directory, removed when dropped.
pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    pub(crate) fn new(what: &str) -> TempDir {
        let dir = std::env::temp_dir().join(unique_identifier(what));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A chain with the test token, and a configuration for the facilitator.
pub(crate) struct Setup {
    pub(crate) anvil: Anvil,
    pub(crate) token: Address,
    pub(crate) registry: NetworkRegistry,
    pub(crate) network: NetworkInfo,
    pub(crate) dir: TempDir,
    pub(crate) config: PathBuf,
    pub(crate) journal: String,
    pub(crate) signers: Vec<Address>,
}

/// Starts anvil, deploys the token, and writes a configuration with `signers` dev accounts
/// (by index), the journal at `journal` (`None`: a SQLite file in the test's directory), and
/// `facilitator` lines added to `[facilitator]`.
pub(crate) fn setup(
    signers: &[usize],
    journal: Option<String>,
    facilitator: &str,
) -> Option<Setup> {
    let anvil = Anvil::start()?;
    let token = anvil.deploy_token();
    let dir = TempDir::new("facilitator");
    let journal =
        journal.unwrap_or_else(|| format!("sqlite://{}", dir.0.join("journal.db").display()));
    let keys: Vec<String> = signers
        .iter()
        .map(|i| format!("{{ key_env = \"X402_TEST_SIGNER_{i}\" }}"))
        .collect();
    let config = format!(
        r#"
[[network]]
name = "anvil"
chain_id = {chain_id}
rpc_url = "{url}"
signers = [{keys}]

[[network.token]]
address = "{token}"
symbol = "USDC"
decimals = 6
eip712_name = "{TOKEN_NAME}"
eip712_version = "{TOKEN_VERSION}"
usd = true

[network.settlement]
poll_interval = "50ms"
receipt_timeout = "60s"

[facilitator]
auth_tokens_env = "X402_TEST_CALLER_TOKENS"
journal_env = "X402_TEST_JOURNAL"
settle_wait = "90s"
reconcile_every = "1s"
shutdown_grace = "60s"
{facilitator}
"#,
        chain_id = anvil.chain_id(),
        url = anvil.url(),
        keys = keys.join(", "),
    );
    let path = dir.0.join("x402.toml");
    std::fs::write(&path, config).unwrap();
    let network = NetworkInfo::new(
        "anvil",
        anvil.chain_id(),
        AssetInfo::usdc(token, TOKEN_NAME, TOKEN_VERSION),
    );
    let mut registry = NetworkRegistry::builtin();
    registry.register_network(network.clone()).unwrap();
    Some(Setup {
        anvil,
        token,
        registry,
        network,
        config: path,
        dir,
        journal,
        signers: signers
            .iter()
            .map(|i| DEV_ADDRESSES[*i].parse().unwrap())
            .collect(),
    })
}

/// A running facilitator process.
pub(crate) struct Facilitator {
    pub(crate) url: String,
    pub(crate) child: tokio::process::Child,
    pub(crate) log: PathBuf,
}

impl Drop for Facilitator {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

impl Setup {
    pub(crate) async fn start(&self, signers: &[usize]) -> Facilitator {
        self.start_with(signers, &self.config, true).await
    }

    /// Starts `x402ctl serve --config <config>` (on a free port when `any_port`, else where the
    /// file says).
    pub(crate) async fn start_with(
        &self,
        signers: &[usize],
        config: &std::path::Path,
        any_port: bool,
    ) -> Facilitator {
        let log = self
            .dir
            .0
            .join(format!("facilitator-{}.log", unique_identifier("run")));
        let mut command = tokio::process::Command::new(BIN);
        command.arg("serve");
        if any_port {
            command.args(["--port", "0"]);
        }
        command
            .arg("--config")
            .arg(config)
            .env("RUST_LOG", "info")
            .env(
                "X402_TEST_CALLER_TOKENS",
                format!("shop:{TOKEN_A},next:{TOKEN_B}"),
            )
            .env("X402_TEST_JOURNAL", &self.journal)
            .env_remove("X402_CONFIG")
            .env_remove("X402_JOURNAL_URL");
        for i in signers {
            command.env(format!("X402_TEST_SIGNER_{i}"), DEV_KEYS[*i]);
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let url = match tokio::time::timeout(Duration::from_secs(60), lines.next_line()).await {
            Ok(Ok(Some(url))) => url,
            other => panic!(
                "the facilitator did not start ({other:?}):\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            ),
        };
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        Facilitator { url, child, log }
    }

    pub(crate) fn requirement(&self, pay_to: Address) -> PaymentRequirements {
        PaymentRequirements::V2(v2::PaymentRequirements {
            scheme: "exact".into(),
            network: self.network.caip2.to_string(),
            amount: U256::from(PRICE),
            asset: self.token.to_string(),
            pay_to: pay_to.to_string(),
            max_timeout_seconds: 900,
            extra: Some(json!({"name": TOKEN_NAME, "version": TOKEN_VERSION})),
        })
    }

    /// `n` signed payments of [`PRICE`] to `pay_to` from one funded payer.
    pub(crate) fn payments(&self, n: usize, pay_to: Address) -> Vec<FacilitatorRequest> {
        let payer = LocalSigner::random();
        self.anvil
            .mint(self.token, payer.address(), U256::from(PRICE * n as u64));
        let requirement = self.requirement(pay_to);
        (0..n)
            .map(|_| {
                let payment =
                    sign_payment(&requirement, None, &payer, &self.registry, now()).unwrap();
                FacilitatorRequest::new(payment, requirement.clone())
            })
            .collect()
    }

    pub(crate) fn sent(&self) -> u64 {
        self.signers.iter().map(|s| self.anvil.nonce(*s)).sum()
    }

    pub(crate) fn used(&self, request: &FacilitatorRequest) -> bool {
        let auth = &request
            .payment_payload
            .payload()
            .as_eip3009()
            .unwrap()
            .authorization;
        self.anvil
            .authorization_used(self.token, auth.from, auth.nonce)
    }
}

impl Facilitator {
    pub(crate) fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL: no shutdown, no goodbye.
    pub(crate) async fn kill9(&mut self) {
        self.child.start_kill().unwrap();
        self.child.wait().await.unwrap();
    }

    /// SIGTERM, then the exit status.
    pub(crate) async fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().unwrap();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        tokio::time::timeout(Duration::from_secs(90), self.child.wait())
            .await
            .expect("the facilitator exits after SIGTERM")
            .unwrap()
    }

    pub(crate) async fn metrics(&self, http: &reqwest::Client) -> String {
        http.get(format!("{}/metrics", self.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The sum of a metric's samples whose labels contain every one of `labels`.
pub(crate) fn metric(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| {
            line.starts_with(name)
                && matches!(line.as_bytes().get(name.len()), Some(b'{') | Some(b' '))
        })
        .filter(|line| labels.iter().all(|l| line.contains(l)))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

pub(crate) async fn post(
    http: &reqwest::Client,
    url: &str,
    path: &str,
    body: &impl serde::Serialize,
) -> (u16, Value) {
    let response = http
        .post(format!("{url}{path}"))
        .bearer_auth(TOKEN_A)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Settles until the answer is final (not `settlement_pending`, not a broken connection).
pub(crate) async fn settle_until_final(
    http: &reqwest::Client,
    url: &str,
    request: &FacilitatorRequest,
    deadline: Instant,
) -> Value {
    loop {
        let sent = http
            .post(format!("{url}/settle"))
            .bearer_auth(TOKEN_A)
            .json(request)
            .send()
            .await;
        if let Ok(response) = sent
            && response.status().is_success()
            && let Ok(answer) = response.json::<Value>().await
            && answer["errorReason"] != "settlement_pending"
        {
            return answer;
        }
        assert!(Instant::now() < deadline, "no final answer for a payment");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
