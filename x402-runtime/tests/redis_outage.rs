//! Redis failing under a running gate, for real: each test starts its own `redis-server` (never
//! the shared one from `scripts/test`), kills, freezes and restarts it, and checks that paid
//! requests fail closed with 503 `store_unavailable` meanwhile and that the same store instance
//! recovers by itself.

use crate::common;
use crate::support;

use std::time::{Duration, Instant};

use x402_protocol::{ProtocolVersion, Reason};
use x402_runtime::store::{RedisReplayStore, ReplayStore, StoreError};
use x402_runtime::{Completion, Rejection, RouteSpec};

use common::{Req, World, world_with};
use support::backends::{RedisServer, unique_prefix};
use support::replay_store::key;

const STORE_TIMEOUT: Duration = Duration::from_millis(1_500);
/// Longer than `connect`'s manager keeps retrying a refused connection (6 retries at most
/// 500 ms apart).
const RECONNECT_ATTEMPTS_RUN_OUT: Duration = Duration::from_secs(4);

static WEATHER: RouteSpec = RouteSpec::fixed("$0.01").networks(&["base-sepolia"]);

/// A fresh payment, signed the way a v2 client answers the challenge.
async fn new_payment(w: &World) -> Req {
    let (name, value) = w
        .pay(
            &WEATHER,
            Req::get("/weather"),
            ProtocolVersion::V2,
            "eip155:84532",
        )
        .await;
    Req::get("/weather").with(name, value)
}

/// Sends a paid request; once admitted, checks that a copy sent meanwhile is refused (before
/// settlement only the replay store knows it was used), then runs the "handler" (status 200)
/// and settles.
async fn request(w: &World, request: &Req) -> Result<(), Rejection> {
    let admission = w.gate.evaluate(request, &WEATHER).await.into_result()?;
    // Sent to another resource, so that the journal (which would say "in progress" to a copy
    // for the same one) has nothing to add: the replay store alone answers.
    let elsewhere = Req {
        path: "/elsewhere",
        headers: request.headers.clone(),
    };
    let copy = w.gate.evaluate(&elsewhere, &WEATHER).await.into_result();
    assert_eq!(
        copy.map(|_| ()).unwrap_err().reason(),
        &Reason::NONCE_ALREADY_USED,
        "the replay store refuses a copy of an admitted payment"
    );
    match w.gate.finish(admission.pending, 200).await {
        Completion::Deliver {
            headers: receipt, ..
        } => {
            assert!(!receipt.is_empty(), "a settled payment carries a receipt");
            Ok(())
        }
        Completion::Replace(response) => panic!("settlement failed: {response:?}"),
    }
}

fn settled(w: &World) -> usize {
    w.gate.dev_ledger().unwrap().transfers().len()
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
    let w = world_with(|b| b.embedded_facilitator().replay_store(store));

    // Up: a payment goes through (and a copy of it is refused).
    let first = new_payment(&w).await;
    request(&w, &first).await.unwrap();
    assert_eq!(settled(&w), 1);

    // Down: valid payments are refused with 503, promptly, and nothing is settled. Between
    // requests the connection manager's reconnect attempts run out, so each request meets a
    // manager that has given up (the state a long outage leaves it in).
    server.kill();
    for _ in 0..2 {
        let payment = new_payment(&w).await;
        let started = Instant::now();
        let rejection = request(&w, &payment).await.unwrap_err();
        assert_store_unavailable(&rejection);
        assert!(
            started.elapsed() < STORE_TIMEOUT + Duration::from_secs(1),
            "answered after {:?}",
            started.elapsed()
        );
        tokio::time::sleep(RECONNECT_ATTEMPTS_RUN_OUT).await;
    }
    assert_eq!(settled(&w), 1, "no payment was taken while Redis was down");

    // Back on the same port: the very next payment is verified by the same gate and store.
    server.restart();
    let again = new_payment(&w).await;
    request(&w, &again).await.unwrap();
    assert_eq!(settled(&w), 2);
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
    assert!(store.insert_if_absent(&key(), "owner", ttl).await.unwrap());

    server.pause();
    let started = Instant::now();
    let error = store
        .insert_if_absent(&key(), "owner", ttl)
        .await
        .unwrap_err();
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
    assert!(store.insert_if_absent(&k, "owner", ttl).await.unwrap());
    assert!(!store.insert_if_absent(&k, "owner", ttl).await.unwrap());
}
