//! Several independent server processes (the `replica` binary) that share nothing but Redis and
//! the facilitator: replay protection, entitlement uses and prepaid balances must hold across
//! them, under concurrency, and fail closed while Redis is away.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::future::join_all;
use x402_protocol::ProtocolVersion::V2;
use x402_protocol::eip3009::LocalSigner;
use x402_protocol::{NetworkRegistry, U256};
use x402_test_support::{RedisServer, redis_url, unique_prefix};
use x402_tests::client::{Challenge, Fault, pay};
use x402_tests::facilitator::{Mode, TestFacilitator, start};

const PAY_TO: &str = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";
/// Every replica signs and checks entitlement tokens with this key.
const KEYS: &str = "replicas:5e6f2a9c41d7b38e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f70";

/// A replica process, killed when dropped.
struct Replica {
    child: Child,
    base: String,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn replicas(count: usize, redis: &str, facilitator: &str, prefix: &str) -> Vec<Replica> {
    (0..count)
        .map(|_| {
            let mut child = Command::new(env!("CARGO_BIN_EXE_replica"))
                .env("X402_FACILITATOR_URL", facilitator)
                .env("X402_PAY_TO", PAY_TO)
                .env("X402_ENTITLEMENT_KEYS", KEYS)
                .env("X402_REDIS_URL", redis)
                .env("X402_REDIS_PREFIX", prefix)
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("start a replica");
            let mut line = String::new();
            BufReader::new(child.stdout.take().expect("stdout"))
                .read_line(&mut line)
                .expect("the replica says where it listens");
            let base = line
                .trim()
                .strip_prefix("listening ")
                .unwrap_or_else(|| panic!("unexpected replica output {line:?}"))
                .to_owned();
            Replica { child, base }
        })
        .collect()
}

struct World {
    facilitator: TestFacilitator,
    payer: LocalSigner,
    client: reqwest::Client,
}

async fn world() -> World {
    world_with(Mode::Honest).await
}

async fn world_with(mode: Mode) -> World {
    let facilitator = start(mode).await;
    let payer = LocalSigner::random();
    let network = NetworkRegistry::builtin()
        .network("base-sepolia")
        .unwrap()
        .clone();
    facilitator.ledger.fund(
        &network.caip2,
        network.default_asset.address,
        payer.address(),
        U256::from(10_000_000u64),
    );
    World {
        facilitator,
        payer,
        client: reqwest::Client::new(),
    }
}

struct Answer {
    status: u16,
    reason: Option<String>,
    token: Option<String>,
}

impl World {
    async fn get(&self, url: &str, header: Option<(&str, &str)>) -> Answer {
        let mut request = self.client.get(url);
        if let Some((name, value)) = header {
            request = request.header(name, value);
        }
        let response = request.send().await.expect("the replica answers");
        let status = response.status().as_u16();
        let token = response
            .headers()
            .get("x402-entitlement")
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        let body: Option<serde_json::Value> = response.json().await.ok();
        Answer {
            status,
            reason: body.and_then(|b| b.get("error").and_then(|e| e.as_str()).map(String::from)),
            token,
        }
    }

    /// Signs a payment for the entry of `url`'s 402 whose amount is `amount` (or the first).
    async fn payment(&self, url: &str, amount: Option<u64>) -> (&'static str, String) {
        let response = self.client.get(url).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 402, "{url} asks for payment");
        let header = response
            .headers()
            .get("payment-required")
            .map(|v| v.to_str().unwrap().to_owned());
        let body = response.bytes().await.unwrap();
        let mut challenge = Challenge::parse(header.as_deref(), &body);
        if let (Some(amount), Some(required)) = (amount, challenge.v2.as_mut()) {
            required.accepts.retain(|r| r.amount == U256::from(amount));
        }
        pay(&challenge, V2, None, &self.payer, Fault::None)
    }

    async fn hits(&self, replicas: &[Replica]) -> usize {
        let mut total = 0;
        for replica in replicas {
            let text = self
                .client
                .get(format!("{}/hits", replica.base))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            total += text.parse::<usize>().unwrap();
        }
        total
    }
}

/// Tallies answers: how many were served, and every other (status, reason).
fn tally(answers: &[Answer]) -> (usize, Vec<(u16, Option<String>)>) {
    let served = answers.iter().filter(|a| a.status == 200).count();
    let mut others: Vec<_> = answers
        .iter()
        .filter(|a| a.status != 200)
        .map(|a| (a.status, a.reason.clone()))
        .collect();
    others.sort();
    others.dedup();
    (served, others)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_payment_sent_1000_times_across_four_replicas_is_served_and_settled_once() {
    let Some(redis) = redis_url() else { return };
    // Settlement takes a while, as on a chain, so the ledger cannot catch the copies: only the
    // replay records the replicas share in Redis can.
    let w = world_with(Mode::SlowSettle).await;
    let replicas = replicas(
        4,
        &redis,
        &w.facilitator.url,
        &unique_prefix("replicas-replay"),
    );
    let (name, value) = w.payment(&format!("{}/paid", replicas[0].base), None).await;

    let answers = join_all((0..1_000).map(|i| {
        let url = format!("{}/paid", replicas[i % replicas.len()].base);
        let (w, value) = (&w, &value);
        async move { w.get(&url, Some((name, value))).await }
    }))
    .await;
    let (served, others) = tally(&answers);
    // Copies reaching another replica are replays (its journal has no record, the shared
    // replay store refuses them). Copies reaching the serving replica get what its journal
    // says: in progress, settlement pending, or (once settled) the kept answer again.
    assert!(served >= 1, "the payment is served");
    let allowed = [
        (402, "invalid_exact_evm_nonce_already_used"),
        (409, "payment_in_progress"),
        (504, "settlement_pending"),
    ];
    for (status, reason) in &others {
        assert!(
            allowed.contains(&(*status, reason.as_deref().unwrap_or_default())),
            "a copy got {status} {reason:?}"
        );
    }
    assert!(others.iter().any(|(status, _)| *status == 402));
    assert_eq!(w.facilitator.ledger.transfers().len(), 1, "settled once");
    assert_eq!(
        w.hits(&replicas).await,
        1,
        "one handler ran, on one replica"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_bought_on_one_replica_is_honoured_and_counted_on_all() {
    let Some(redis) = redis_url() else { return };
    let w = world().await;
    let replicas = replicas(
        4,
        &redis,
        &w.facilitator.url,
        &unique_prefix("replicas-uses"),
    );
    // Bought on replica 0: the paying request is the first of 100 uses.
    let url = format!("{}/hundred", replicas[0].base);
    let (name, value) = w.payment(&url, None).await;
    let bought = w.get(&url, Some((name, &value))).await;
    assert_eq!(bought.status, 200);
    let token = bought.token.expect("the purchase delivers a token");

    let answers = join_all((0..150).map(|i| {
        let url = format!("{}/hundred", replicas[i % replicas.len()].base);
        let (w, token) = (&w, &token);
        async move { w.get(&url, Some(("x402-entitlement", token))).await }
    }))
    .await;
    let (served, others) = tally(&answers);
    assert_eq!(served, 99, "uses 2 to 100, on whichever replica");
    assert_eq!(
        others,
        [(402, Some("entitlement_exhausted".to_owned()))],
        "the 101st and later are refused"
    );
    assert_eq!(w.hits(&replicas).await, 100);
    assert_eq!(w.facilitator.ledger.transfers().len(), 1, "paid once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prepaid_balance_drawn_from_four_replicas_never_goes_below_zero() {
    let Some(redis) = redis_url() else { return };
    let w = world().await;
    let replicas = replicas(
        4,
        &redis,
        &w.facilitator.url,
        &unique_prefix("replicas-prepaid"),
    );
    let url = format!("{}/prepaid", replicas[1].base);
    let (name, value) = w.payment(&url, Some(1_000_000)).await;
    let bought = w.get(&url, Some((name, &value))).await;
    assert_eq!(bought.status, 200);
    let token = bought.token.expect("the purchase opens a session");

    let answers = join_all((0..200).map(|i| {
        let url = format!("{}/prepaid", replicas[i % replicas.len()].base);
        let (w, token) = (&w, &token);
        async move { w.get(&url, Some(("x402-entitlement", token))).await }
    }))
    .await;
    let (served, others) = tally(&answers);
    // 1 USDC bought; the paying request drew 0.01; 0.99 / 0.01 = 99 more.
    assert_eq!(served, 990_000 / 10_000, "served = balance / price");
    assert_eq!(
        others,
        [(402, Some("entitlement_balance_insufficient".to_owned()))]
    );
    let transfers = w.facilitator.ledger.transfers();
    assert_eq!(transfers.len(), 1);
    assert_eq!(transfers[0].value, U256::from(1_000_000u64));
    assert_eq!(w.hits(&replicas).await, 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_redis_is_down_paid_routes_answer_503_and_resume_when_it_returns() {
    let Some(mut redis) = RedisServer::start_persistent() else {
        return;
    };
    let w = world().await;
    let replicas = replicas(
        2,
        &redis.url(),
        &w.facilitator.url,
        &unique_prefix("replicas-outage"),
    );
    let url = |i: usize, path: &str| format!("{}{path}", replicas[i].base);

    let (name, value) = w.payment(&url(0, "/hundred"), None).await;
    let token = w
        .get(&url(0, "/hundred"), Some((name, &value)))
        .await
        .token
        .expect("a token");
    let (name, fresh) = w.payment(&url(1, "/paid"), None).await;
    let before = (
        w.hits(&replicas).await,
        w.facilitator.ledger.transfers().len(),
    );

    redis.kill();
    for replica in 0..2 {
        let paid = w.get(&url(replica, "/paid"), Some((name, &fresh))).await;
        assert_eq!(
            (paid.status, paid.reason.as_deref()),
            (503, Some("store_unavailable"))
        );
        let entitled = w
            .get(
                &url(replica, "/hundred"),
                Some(("x402-entitlement", &token)),
            )
            .await;
        assert_eq!(
            (entitled.status, entitled.reason.as_deref()),
            (503, Some("store_unavailable"))
        );
    }
    assert_eq!(
        w.hits(&replicas).await,
        before.0,
        "no handler ran while Redis was away"
    );
    assert_eq!(
        w.facilitator.ledger.transfers().len(),
        before.1,
        "nothing was settled"
    );

    redis.restart();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The payment refused during the outage was never recorded, so it pays now.
    assert_eq!(
        w.get(&url(0, "/paid"), Some((name, &fresh))).await.status,
        200
    );
    assert_eq!(
        w.get(&url(1, "/hundred"), Some(("x402-entitlement", &token)))
            .await
            .status,
        200
    );
    assert_eq!(w.hits(&replicas).await, before.0 + 2);
}
