//! Crash test (issue 9): paid servers (the `crash_server` binary) settle on anvil and journal in
//! SQLite (one server) or Postgres (four replicas sharing it and a Redis replay store). For each
//! of 30 payments per backend, a request is sent and the server handling it is killed with
//! SIGKILL at a random moment between admission and answer, then started again. The client
//! sends the same payment again until it is served.
//!
//! Afterwards, once the restarted servers have reconciled: every payment was served; journal
//! and chain agree on every payment (settled in the journal exactly when its authorization is
//! used on chain, nothing left open); the recipient received exactly one price per payment and
//! every payer paid exactly once.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use alloy_network::{EthereumWallet, ReceiptResponse, TransactionBuilder};
use alloy_primitives::{Address, Bytes, U256};
use alloy_provider::{DynProvider, Provider, ProviderBuilder};
use alloy_rpc_types_eth::{TransactionInput, TransactionReceipt, TransactionRequest};
use alloy_signer_local::PrivateKeySigner;
use alloy_sol_types::{SolCall, SolValue};
use x402_protocol::client::sign_payment;
use x402_protocol::eip3009::LocalSigner;
use x402_protocol::exact::ExactEvmPayload;
use x402_protocol::facilitator::PaymentRequirements;
use x402_protocol::verify::PaymentKey;
use x402_protocol::{AssetInfo, NetworkInfo, NetworkRegistry, codec, headers, v2};
use x402_runtime::journal::{self, Journal, PaymentState};
use x402_test_support::{postgres_url, redis_url, unique_prefix};

const ARTIFACT: &str = include_str!("../../contracts/out/X402TestToken.json");
const TOKEN_NAME: &str = "X402 Test USD";
const TOKEN_SYMBOL: &str = "USDC";
const TOKEN_VERSION: &str = "2";
const PRICE: u64 = 10_000;
const FUNDS: u64 = 100 * PRICE;
const RUNS: usize = 30;

/// Anvil dev account #9 deploys the token; #5–#8 settle, one per replica (other tests use #0).
const DEPLOYER_KEY: &str = "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6";
const SETTLER_KEYS: [&str; 4] = [
    "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
    "0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e",
    "0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",
    "0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97",
];

mod token {
    #![allow(missing_docs)]
    alloy_sol_types::sol! {
        interface X402TestToken {
            function mint(address to, uint256 value) external;
            function balanceOf(address account) external view returns (uint256);
            function authorizationState(address authorizer, bytes32 nonce) external view returns (bool);
        }
    }
}
use token::X402TestToken as T;

fn anvil_url() -> Option<String> {
    match std::env::var("X402_ANVIL_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            x402_test_support::skip("X402_ANVIL_URL not set (scripts/test starts anvil)");
            None
        }
    }
}

/// A small deterministic generator (the seed is printed, so a failing run can be replayed).
struct Lcg(u64);
impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

struct Chain {
    rpc: DynProvider,
    chain_id: u64,
    token: Address,
}

impl Chain {
    async fn deploy(url: &str) -> Chain {
        let signer: PrivateKeySigner = DEPLOYER_KEY.parse().unwrap();
        let rpc = ProviderBuilder::default()
            .with_gas_estimation()
            .with_simple_nonce_management()
            .fetch_chain_id()
            .wallet(EthereumWallet::from(signer))
            .connect_http(url.parse().unwrap())
            .erased();
        let chain_id = rpc.get_chain_id().await.unwrap();
        let artifact: serde_json::Value = serde_json::from_str(ARTIFACT).unwrap();
        let mut code: Vec<u8> = artifact["bytecode"]
            .as_str()
            .unwrap()
            .parse::<Bytes>()
            .unwrap()
            .to_vec();
        code.extend((TOKEN_NAME, TOKEN_SYMBOL, TOKEN_VERSION).abi_encode_params());
        let receipt: TransactionReceipt = rpc
            .send_transaction(TransactionRequest::default().with_deploy_code(code))
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
        let token = receipt.contract_address().expect("a deployment");
        Chain {
            rpc,
            chain_id,
            token,
        }
    }

    fn network(&self) -> NetworkInfo {
        NetworkInfo::new(
            "anvil",
            self.chain_id,
            AssetInfo::usdc(self.token, TOKEN_NAME, TOKEN_VERSION),
        )
    }

    async fn call<C: SolCall>(&self, call: C) -> C::Return {
        let tx = TransactionRequest::default()
            .to(self.token)
            .input(TransactionInput::new(call.abi_encode().into()));
        C::abi_decode_returns(&self.rpc.call(tx).await.unwrap()).unwrap()
    }

    async fn mint(&self, to: Address, value: u64) {
        let call = T::mintCall {
            to,
            value: U256::from(value),
        };
        let tx = TransactionRequest::default()
            .to(self.token)
            .input(TransactionInput::new(call.abi_encode().into()));
        let receipt: TransactionReceipt = self
            .rpc
            .send_transaction(tx)
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
        assert!(receipt.status());
    }

    async fn balance(&self, who: Address) -> U256 {
        self.call(T::balanceOfCall { account: who }).await
    }

    async fn used(&self, payload: &ExactEvmPayload) -> bool {
        let auth = &payload.authorization;
        self.call(T::authorizationStateCall {
            authorizer: auth.from,
            nonce: auth.nonce,
        })
        .await
    }
}

/// Where the servers' logs go: `CRASH_LOG` (appended), or nowhere.
fn log() -> Stdio {
    match std::env::var("CRASH_LOG") {
        Ok(path) => std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_or_else(|_| Stdio::null(), Stdio::from),
        Err(_) => Stdio::null(),
    }
}

/// One server process; killed (SIGKILL) when dropped.
struct Server {
    env: Vec<(String, String)>,
    child: Child,
    url: String,
}

impl Server {
    fn start(env: Vec<(String, String)>) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_crash_server"))
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(log())
            .spawn()
            .expect("start the crash server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("the server says where it listens");
        let url = line
            .trim()
            .strip_prefix("listening ")
            .unwrap_or_else(|| panic!("unexpected server output {line:?}"))
            .to_owned();
        Server { env, child, url }
    }

    fn kill(&mut self) {
        // Child::kill sends SIGKILL: no destructor, no graceful shutdown, nothing flushed.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn restart(&mut self) {
        self.kill();
        *self = Server::start(self.env.clone());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A payment for `/paid` signed by `payer`, from the server's own 402.
async fn pay(
    http: &reqwest::Client,
    url: &str,
    payer: &LocalSigner,
    registry: &NetworkRegistry,
) -> (String, ExactEvmPayload) {
    let challenge = http.get(format!("{url}/paid")).send().await.unwrap();
    assert_eq!(challenge.status(), 402);
    let required: v2::PaymentRequired = codec::decode(
        challenge
            .headers()
            .get(headers::PAYMENT_REQUIRED)
            .unwrap()
            .to_str()
            .unwrap(),
        1 << 16,
    )
    .unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let entry = required.accepts.into_iter().next().unwrap();
    let payment = sign_payment(
        &PaymentRequirements::V2(entry),
        required.resource.as_ref(),
        payer,
        registry,
        now,
    )
    .unwrap();
    let payload = payment.payload().as_eip3009().unwrap().clone();
    (codec::encode(&payment), payload)
}

async fn run(journal_url: &str, replicas: usize, redis: Option<String>) {
    let Some(anvil) = anvil_url() else { return };
    let chain = Chain::deploy(&anvil).await;
    let pay_to = LocalSigner::random().address();
    let prefix = unique_prefix("crash");
    let mut servers: Vec<Server> = (0..replicas)
        .map(|i| {
            let mut env = vec![
                ("X402_ANVIL_URL".to_owned(), anvil.clone()),
                ("CRASH_TOKEN".to_owned(), chain.token.to_string()),
                ("CRASH_SETTLER_KEY".to_owned(), SETTLER_KEYS[i].to_owned()),
                ("CRASH_PAY_TO".to_owned(), pay_to.to_string()),
                ("X402_JOURNAL_URL".to_owned(), journal_url.to_owned()),
                ("CRASH_PREFIX".to_owned(), prefix.clone()),
                // Replicas behind one public URL, as behind a load balancer.
                (
                    "X402_PUBLIC_URL".to_owned(),
                    "http://api.crash.test".to_owned(),
                ),
            ];
            if let Some(redis) = &redis {
                env.push(("X402_REDIS_URL".to_owned(), redis.clone()));
            }
            Server::start(env)
        })
        .collect();
    let mut registry = NetworkRegistry::builtin();
    registry.register_network(chain.network()).unwrap();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("crash test ({journal_url}, {replicas} replicas): seed {seed}");
    let mut random = Lcg(seed);

    let mut payments = Vec::new();
    for run in 0..RUNS {
        let payer = LocalSigner::random();
        chain.mint(payer.address(), FUNDS).await;
        let target = run % replicas;
        let (header, payload) = pay(&http, &servers[target].url, &payer, &registry).await;

        // Send it, and kill the server somewhere between admission and answer.
        let request = {
            let (http, url, header) = (http.clone(), servers[target].url.clone(), header.clone());
            tokio::spawn(async move {
                http.get(format!("{url}/paid"))
                    .header(headers::PAYMENT_SIGNATURE, header)
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
            })
        };
        tokio::time::sleep(Duration::from_millis(random.below(150))).await;
        servers[target].restart();
        let _ = request.await;

        // The client sends the same payment again (to any replica) until it is served.
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut last = String::from("nothing sent");
        let mut served = false;
        while Instant::now() < deadline {
            let url = &servers[random.below(replicas as u64) as usize].url;
            match http
                .get(format!("{url}/paid"))
                .header(headers::PAYMENT_SIGNATURE, &header)
                .send()
                .await
            {
                Ok(answer) => {
                    let status = answer.status().as_u16();
                    let body = answer.text().await.unwrap_or_default();
                    if status == 200 {
                        assert_eq!(body, format!("served {}", payer.address()));
                        served = true;
                        break;
                    }
                    last = format!("{status} {body}");
                }
                Err(error) => last = format!("no answer: {error}"),
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        assert!(served, "run {run}: payment never served; last: {last}");
        payments.push((payer, payload));
    }

    // Journal and chain agree once the servers have reconciled (records of killed requests are
    // resolved two seconds after their last change; the loop allows for more).
    let journal: Arc<dyn Journal> = journal::connect(journal_url).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut disagreements = Vec::new();
        for (payer, payload) in &payments {
            let key = PaymentKey::eip3009(chain.chain_id, chain.token, payload);
            let record = journal.find_by_payment_key(key.as_str()).await.unwrap();
            let used = chain.used(payload).await;
            let state = record.as_ref().map(|r| r.state);
            if !used || state != Some(PaymentState::Settled) {
                disagreements.push(format!(
                    "{}: chain used {used}, journal {state:?}",
                    payer.address()
                ));
            }
        }
        if disagreements.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "journal and chain disagree: {disagreements:#?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Charged exactly once each.
    assert_eq!(
        chain.balance(pay_to).await,
        U256::from(PRICE * RUNS as u64),
        "the recipient got one price per payment"
    );
    for (payer, _) in &payments {
        assert_eq!(
            chain.balance(payer.address()).await,
            U256::from(FUNDS - PRICE),
            "{} paid once",
            payer.address()
        );
    }
    drop(servers.drain(..));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_servers_lose_nothing_and_charge_once() {
    // SQLite: one server, its journal in a file.
    let dir = std::env::temp_dir().join(unique_prefix("x402-crash").replace(':', "-"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("payments.db");
    run(&format!("sqlite://{}", file.display()), 1, None).await;
    let _ = std::fs::remove_dir_all(&dir);

    // Postgres: four replicas sharing the journal and a Redis replay store.
    match (postgres_url(), redis_url()) {
        (Some(postgres), Some(redis)) => run(&postgres, 4, Some(redis)).await,
        _ => x402_test_support::skip("X402_POSTGRES_URL / X402_REDIS_URL not set"),
    }
}
