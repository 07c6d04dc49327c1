//! Redis failing under a running gate, for real: each test starts its own `redis-server` (never
//! the shared one from `scripts/test`), kills, freezes and restarts it, and checks that paid
//! requests fail closed with 503 `store_unavailable` meanwhile and that the same store instance
//! recovers by itself.
#![cfg(feature = "redis")]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use x402_protocol::client::sign_payment;
use x402_protocol::codec;
use x402_protocol::eip3009::LocalSigner;
use x402_protocol::facilitator::PaymentRequirements;
use x402_protocol::{NetworkRegistry, Reason, U256, headers, v2};
use x402_runtime::clock::{Clock, ManualClock};
use x402_runtime::store::{RedisReplayStore, ReplayStore, StoreError};
use x402_runtime::{Completion, Decision, Gate, Rejection, RequestView, RouteSpec};

use support::backends::{RedisServer, unique_prefix};
use support::replay_store::key;

const PAY_TO: &str = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";
const NOW: u64 = 1_800_000_000;
const STORE_TIMEOUT: Duration = Duration::from_millis(1_500);
/// Longer than `connect`'s manager keeps retrying a refused connection (6 retries at most
/// 500 ms apart).
const RECONNECT_ATTEMPTS_RUN_OUT: Duration = Duration::from_secs(4);

static WEATHER: RouteSpec = RouteSpec::fixed("$0.01").networks(&["base-sepolia"]);

struct Get(Option<String>);

impl RequestView for Get {
    fn method(&self) -> &str {
        "GET"
    }
    fn path_and_query(&self) -> &str {
        "/weather"
    }
    fn header(&self, name: &str) -> Option<&str> {
        if name.eq_ignore_ascii_case("host") {
            Some("api.test")
        } else if name.eq_ignore_ascii_case(headers::PAYMENT_SIGNATURE) {
            self.0.as_deref()
        } else {
            None
        }
    }
}

struct Shop {
    gate: Gate,
    clock: Arc<ManualClock>,
    payer: LocalSigner,
}

impl Shop {
    fn new(replay: RedisReplayStore) -> Self {
        let clock = Arc::new(ManualClock::new(NOW));
        let gate = Gate::builder()
            .embedded_facilitator()
            .pay_to(PAY_TO)
            .clock(clock.clone())
            .replay_store(replay)
            .build()
            .unwrap();
        let payer = LocalSigner::random();
        let network = gate.registry().network("base-sepolia").unwrap();
        gate.dev_ledger().unwrap().fund(
            network.chain_id,
            network.default_asset.address,
            payer.address(),
            U256::from(1_000_000u64),
        );
        Shop { gate, clock, payer }
    }

    /// A fresh payment, signed the way a v2 client answers the challenge.
    async fn new_payment(&self) -> String {
        let Decision::Challenge(challenge) = self.gate.evaluate(&Get(None), &WEATHER).await else {
            panic!("expected a challenge")
        };
        let response = challenge.to_response();
        let required: v2::PaymentRequired =
            codec::decode(response.header(headers::PAYMENT_REQUIRED).unwrap(), 1 << 16).unwrap();
        let entry = required.accepts.into_iter().next().unwrap();
        let payment = sign_payment(
            &PaymentRequirements::V2(entry),
            required.resource.as_ref(),
            &self.payer,
            &NetworkRegistry::builtin(),
            self.clock.now_unix(),
        )
        .unwrap();
        codec::encode(&payment)
    }

    /// Sends `payment`; once admitted, checks that a copy sent meanwhile is refused (before
    /// settlement only the replay store knows it was used), then runs the "handler" (status
    /// 200) and settles.
    async fn request(&self, payment: &str) -> Result<(), Rejection> {
        let request = Get(Some(payment.to_owned()));
        let admission = self.gate.evaluate(&request, &WEATHER).await.into_result()?;
        let copy = self.gate.evaluate(&request, &WEATHER).await.into_result();
        assert_eq!(
            copy.map(|_| ()).unwrap_err().reason(),
            &Reason::NONCE_ALREADY_USED,
            "the replay store refuses a copy of an admitted payment"
        );
        match self.gate.finish(admission.pending, 200).await {
            Completion::Deliver(receipt) => {
                assert!(!receipt.is_empty(), "a settled payment carries a receipt");
                Ok(())
            }
            Completion::Replace(response) => panic!("settlement failed: {response:?}"),
        }
    }

    fn settled(&self) -> usize {
        self.gate.dev_ledger().unwrap().transfers().len()
    }
}

fn assert_store_unavailable(rejection: &Rejection) {
    assert_eq!(
        rejection.reason(),
        &Reason::STORE_UNAVAILABLE,
        "{rejection}"
    );
    let response = rejection.to_response();
    assert_eq!(response.status, 503);
    let body: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(body["error"], "store_unavailable", "{body}");
    assert!(body["message"].is_string(), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_redis_is_down_payments_get_503_and_the_same_store_recovers() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let store = RedisReplayStore::connect(server.url())
        .await
        .unwrap()
        .with_prefix(unique_prefix("outage"))
        .with_timeout(STORE_TIMEOUT);
    let shop = Shop::new(store);

    // Up: a payment goes through (and a copy of it is refused).
    let first = shop.new_payment().await;
    shop.request(&first).await.unwrap();
    assert_eq!(shop.settled(), 1);

    // Down: valid payments are refused with 503, promptly, and nothing is settled. Between
    // requests the connection manager's reconnect attempts run out, so each request meets a
    // manager that has given up (the state a long outage leaves it in).
    server.kill();
    for _ in 0..2 {
        let payment = shop.new_payment().await;
        let started = Instant::now();
        let rejection = shop.request(&payment).await.unwrap_err();
        assert_store_unavailable(&rejection);
        assert!(
            started.elapsed() < STORE_TIMEOUT + Duration::from_secs(1),
            "answered after {:?}",
            started.elapsed()
        );
        tokio::time::sleep(RECONNECT_ATTEMPTS_RUN_OUT).await;
    }
    assert_eq!(
        shop.settled(),
        1,
        "no payment was taken while Redis was down"
    );

    // Back on the same port: the very next payment is verified by the same gate and store.
    server.restart();
    let again = shop.new_payment().await;
    shop.request(&again).await.unwrap();
    assert_eq!(shop.settled(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_redis_fails_within_the_timeout_and_is_used_again_once_it_answers() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let timeout = Duration::from_millis(300);
    let store = RedisReplayStore::connect(server.url())
        .await
        .unwrap()
        .with_prefix(unique_prefix("hung"))
        .with_timeout(timeout);
    let ttl = Duration::from_secs(60);
    assert!(store.insert_if_absent(&key(), ttl).await.unwrap());

    server.pause();
    let started = Instant::now();
    let error = store.insert_if_absent(&key(), ttl).await.unwrap_err();
    let elapsed = started.elapsed();
    server.resume();
    assert_eq!(
        error,
        StoreError::Unavailable("redis did not answer within 300 ms".to_owned())
    );
    assert!(
        elapsed >= timeout && elapsed < timeout + Duration::from_secs(1),
        "failed after {elapsed:?}"
    );

    let k = key();
    assert!(store.insert_if_absent(&k, ttl).await.unwrap());
    assert!(!store.insert_if_absent(&k, ttl).await.unwrap());
}
