//! The conformance suite for [`ReplayStore`] backends, written once and run against each.
//!
//! A backend plugs in with an `async fn open(replicas: usize) -> Option<Vec<S>>` that returns
//! `replicas` independent handles on one fresh, empty store — handles that share records the
//! way separate server replicas would (for Redis: separate connection managers on one new key
//! prefix) — or `None` after [`skip`](super::backends::skip) when the backend is not available.
//! Then, in a test file:
//!
//! ```ignore
//! mod support;
//! support::replay_store::replay_store_conformance!(open);
//! ```
//!
//! which generates one `#[tokio::test]` per case below.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Barrier;
use x402_protocol::eip3009::random_nonce;
use x402_protocol::exact::{Eip3009Authorization, ExactEvmPayload};
use x402_protocol::{Address, U256};
use x402_runtime::store::{ReplayKey, ReplayStore};

/// The owner token of the tests' own records.
const OWNER: &str = "test-owner";

/// Long enough never to expire during a test, short enough to clean up after it.
const LONG: Duration = Duration::from_secs(120);

/// Runs every case against the backend opened by `$open` (see the module docs).
macro_rules! replay_store_conformance {
    ($open:path) => {
        $crate::support::replay_store::replay_store_conformance!(@cases $open:
            insert_then_duplicate(1),
            every_key_field_distinguishes_keys(1),
            only_the_owner_can_remove(1),
            records_expire_after_their_ttl(1),
            zero_and_sub_millisecond_ttls_are_accepted(1),
            huge_ttls_are_accepted(1),
            removed_keys_can_be_inserted_again(1),
            of_64_concurrent_inserts_exactly_one_wins(1),
            replicas_share_records(3),
            of_64_concurrent_inserts_on_4_replicas_exactly_one_wins(4),
        );
    };
    (@cases $open:path: $($case:ident($replicas:expr)),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                if let Some(stores) = $open($replicas).await {
                    assert_eq!(stores.len(), $replicas, "open() returned the wrong number of replicas");
                    $crate::support::replay_store::$case(stores).await;
                }
            }
        )*
    };
}
pub(crate) use replay_store_conformance;

/// A key for an EIP-3009 authorization with a fresh nonce.
pub(crate) fn key() -> ReplayKey {
    key_of(
        84532,
        Address::repeat_byte(0x11),
        Address::repeat_byte(0x22),
        random_nonce(),
    )
}

fn key_of(chain_id: u64, asset: Address, payer: Address, nonce: x402_protocol::B256) -> ReplayKey {
    let payload = ExactEvmPayload {
        signature: Default::default(),
        authorization: Eip3009Authorization {
            from: payer,
            to: Address::ZERO,
            value: U256::ZERO,
            valid_after: U256::ZERO,
            valid_before: U256::ZERO,
            nonce,
        },
    };
    ReplayKey::eip3009(chain_id, asset, &payload)
}

fn single<S>(stores: Vec<S>) -> S {
    let [store]: [S; 1] = stores
        .try_into()
        .unwrap_or_else(|_| panic!("one store expected"));
    store
}

async fn insert<S: ReplayStore + ?Sized>(store: &S, key: &ReplayKey, ttl: Duration) -> bool {
    store
        .insert_if_absent(key, OWNER, ttl)
        .await
        .unwrap_or_else(|e| panic!("insert_if_absent({key}, {ttl:?}): {e}"))
}

async fn remove<S: ReplayStore + ?Sized>(store: &S, key: &ReplayKey) {
    store
        .remove(key, OWNER)
        .await
        .unwrap_or_else(|e| panic!("remove({key}): {e}"));
}

pub(crate) async fn insert_then_duplicate<S: ReplayStore>(stores: Vec<S>) {
    let store = single(stores);
    let k = key();
    assert!(insert(&store, &k, LONG).await, "first insert records");
    assert!(!insert(&store, &k, LONG).await, "a duplicate is refused");
    assert!(
        !insert(&store, &k, Duration::from_secs(5)).await,
        "a duplicate with another TTL is refused too"
    );
    remove(&store, &k).await;
}

pub(crate) async fn every_key_field_distinguishes_keys<S: ReplayStore>(stores: Vec<S>) {
    let store = single(stores);
    let (asset, payer, nonce) = (
        Address::repeat_byte(0x11),
        Address::repeat_byte(0x22),
        random_nonce(),
    );
    let variants = [
        key_of(84532, asset, payer, nonce),
        key_of(84533, asset, payer, nonce),
        key_of(84532, Address::repeat_byte(0x12), payer, nonce),
        key_of(84532, asset, Address::repeat_byte(0x23), nonce),
        key_of(84532, asset, payer, nonce.0.map(|b| b ^ 0xff).into()),
    ];
    for k in &variants {
        assert!(insert(&store, k, LONG).await, "{k} is a new key");
    }
    for k in &variants {
        assert!(!insert(&store, k, LONG).await, "{k} is recorded");
    }
    for k in &variants {
        remove(&store, k).await;
    }
}

pub(crate) async fn only_the_owner_can_remove<S: ReplayStore>(stores: Vec<S>) {
    let store = single(stores);
    let k = key();
    assert!(insert(&store, &k, LONG).await);
    // Someone else giving the record back changes nothing: a late request whose own hold
    // expired must never free a record another request made meanwhile.
    store.remove(&k, "someone-else").await.unwrap();
    assert!(!insert(&store, &k, LONG).await, "still held by its owner");
    remove(&store, &k).await;
    assert!(insert(&store, &k, LONG).await, "freed by its owner");
    remove(&store, &k).await;
}

pub(crate) async fn records_expire_after_their_ttl<S: ReplayStore>(stores: Vec<S>) {
    let store = single(stores);
    let (short, long) = (key(), key());
    let ttl = Duration::from_millis(300);
    assert!(insert(&store, &short, ttl).await);
    assert!(insert(&store, &long, LONG).await);
    assert!(
        !insert(&store, &short, ttl).await,
        "recorded until its TTL passes"
    );
    tokio::time::sleep(ttl + Duration::from_millis(400)).await;
    assert!(
        insert(&store, &short, ttl).await,
        "free again once its TTL has passed"
    );
    assert!(
        !insert(&store, &long, LONG).await,
        "a record with a longer TTL is still there"
    );
    remove(&store, &long).await;
}

pub(crate) async fn zero_and_sub_millisecond_ttls_are_accepted<S: ReplayStore>(stores: Vec<S>) {
    let store = single(stores);
    let (zero, tiny) = (key(), key());
    assert!(insert(&store, &zero, Duration::ZERO).await);
    assert!(insert(&store, &tiny, Duration::from_micros(100)).await);
    tokio::time::sleep(Duration::from_millis(50)).await;
    // Short TTLs stay short: neither became a long-lived record.
    assert!(
        insert(&store, &zero, Duration::ZERO).await,
        "zero TTL expired"
    );
    assert!(
        insert(&store, &tiny, Duration::from_micros(100)).await,
        "sub-millisecond TTL expired"
    );
}

pub(crate) async fn huge_ttls_are_accepted<S: ReplayStore>(stores: Vec<S>) {
    let store = single(stores);
    let k = key();
    assert!(insert(&store, &k, Duration::MAX).await);
    assert!(!insert(&store, &k, LONG).await);
    remove(&store, &k).await;
    assert!(insert(&store, &k, LONG).await);
    remove(&store, &k).await;
}

pub(crate) async fn removed_keys_can_be_inserted_again<S: ReplayStore>(stores: Vec<S>) {
    let store = single(stores);
    let (k, other) = (key(), key());
    assert!(insert(&store, &k, LONG).await);
    assert!(insert(&store, &other, LONG).await);
    remove(&store, &k).await;
    assert!(insert(&store, &k, LONG).await, "free again after remove");
    assert!(!insert(&store, &k, LONG).await, "and recorded again");
    assert!(
        !insert(&store, &other, LONG).await,
        "remove touched only its key"
    );
    remove(&store, &k).await;
    remove(&store, &k).await; // removing an absent key is not an error
    remove(&store, &other).await;
}

/// 64 tasks insert one key at once, round-robin over `stores`; returns how many won.
async fn race<S: ReplayStore>(stores: Vec<S>, key: ReplayKey) -> usize {
    let stores: Vec<Arc<S>> = stores.into_iter().map(Arc::new).collect();
    let key = Arc::new(key);
    let start = Arc::new(Barrier::new(64));
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let (store, start, key) =
                (stores[i % stores.len()].clone(), start.clone(), key.clone());
            tokio::spawn(async move {
                start.wait().await;
                store
                    .insert_if_absent(&key, &format!("racer-{i}"), LONG)
                    .await
                    .unwrap_or_else(|e| panic!("insert_if_absent: {e}"))
            })
        })
        .collect();
    let mut winners = Vec::new();
    for (i, task) in tasks.into_iter().enumerate() {
        if task.await.expect("insert task panicked") {
            winners.push(i);
        }
    }
    for i in &winners {
        stores[0].remove(&key, &format!("racer-{i}")).await.unwrap();
    }
    winners.len()
}

pub(crate) async fn of_64_concurrent_inserts_exactly_one_wins<S: ReplayStore>(stores: Vec<S>) {
    assert_eq!(race(stores, key()).await, 1);
}

pub(crate) async fn replicas_share_records<S: ReplayStore>(stores: Vec<S>) {
    let k = key();
    assert!(insert(&stores[0], &k, LONG).await);
    for (i, replica) in stores.iter().enumerate() {
        assert!(
            !insert(replica, &k, LONG).await,
            "replica {i} sees the record"
        );
    }
    remove(&stores[1], &k).await;
    assert!(
        insert(&stores[2], &k, LONG).await,
        "a removal on one replica frees the key on the others"
    );
    remove(&stores[0], &k).await;
}

pub(crate) async fn of_64_concurrent_inserts_on_4_replicas_exactly_one_wins<S: ReplayStore>(
    stores: Vec<S>,
) {
    assert_eq!(race(stores, key()).await, 1);
}
