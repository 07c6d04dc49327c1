//! The conformance suite for [`EntitlementStore`] backends, written once and run against each.
//!
//! A backend plugs in with an `async fn open(replicas: usize) -> Option<Vec<S>>` returning
//! `replicas` independent handles on one fresh store (see `replay_store.rs`), then
//! `support::entitlement_store::entitlement_store_conformance!(open);` in a test file.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Barrier;
use x402_runtime::store::{EntitlementStore, MAX_COUNTER, Take};

const LONG: Duration = Duration::from_secs(120);

/// Runs every case against the backend opened by `$open`.
macro_rules! entitlement_store_conformance {
    ($open:path) => {
        $crate::support::entitlement_store::entitlement_store_conformance!(@cases $open:
            takes_count_down_to_zero(1),
            a_short_counter_gives_nothing(1),
            missing_counters_are_missing(1),
            give_back_restores_and_missing_stays_missing(1),
            counters_expire(1),
            values_up_to_the_limit_are_exact(1),
            creating_again_resets(1),
            of_200_concurrent_takes_on_4_replicas_exactly_what_fits_succeed(4),
            grants_are_recalled_on_another_replica_by_payer_and_scope(2),
        );
    };
    (@cases $open:path: $($case:ident($replicas:expr)),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                if let Some(stores) = $open($replicas).await {
                    assert_eq!(stores.len(), $replicas, "open() returned the wrong number of replicas");
                    $crate::support::entitlement_store::$case(stores).await;
                }
            }
        )*
    };
}
pub(crate) use entitlement_store_conformance;

/// A counter id no other call uses.
fn id() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "grant-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub(crate) async fn takes_count_down_to_zero<S: EntitlementStore>(stores: Vec<S>) {
    let store = &stores[0];
    let id = id();
    store.create(&id, 30, LONG).await.unwrap();
    for remaining in [20, 10, 0] {
        assert_eq!(
            store.take(&id, 10).await.unwrap(),
            Take::Taken { remaining }
        );
    }
    assert_eq!(
        store.take(&id, 1).await.unwrap(),
        Take::Insufficient { remaining: 0 }
    );
    assert_eq!(
        store.take(&id, 0).await.unwrap(),
        Take::Taken { remaining: 0 }
    );
}

pub(crate) async fn a_short_counter_gives_nothing<S: EntitlementStore>(stores: Vec<S>) {
    let store = &stores[0];
    let id = id();
    store.create(&id, 5, LONG).await.unwrap();
    assert_eq!(
        store.take(&id, 6).await.unwrap(),
        Take::Insufficient { remaining: 5 }
    );
    assert_eq!(
        store.take(&id, 5).await.unwrap(),
        Take::Taken { remaining: 0 },
        "the refused take took nothing"
    );
}

pub(crate) async fn missing_counters_are_missing<S: EntitlementStore>(stores: Vec<S>) {
    assert_eq!(stores[0].take(&id(), 1).await.unwrap(), Take::Missing);
}

pub(crate) async fn give_back_restores_and_missing_stays_missing<S: EntitlementStore>(
    stores: Vec<S>,
) {
    let store = &stores[0];
    let id = id();
    store.create(&id, 3, LONG).await.unwrap();
    assert_eq!(
        store.take(&id, 3).await.unwrap(),
        Take::Taken { remaining: 0 }
    );
    store.give_back(&id, 2).await.unwrap();
    assert_eq!(
        store.take(&id, 2).await.unwrap(),
        Take::Taken { remaining: 0 }
    );
    let never = self::id();
    store.give_back(&never, 7).await.unwrap();
    assert_eq!(
        store.take(&never, 1).await.unwrap(),
        Take::Missing,
        "giving back does not create"
    );
}

pub(crate) async fn counters_expire<S: EntitlementStore>(stores: Vec<S>) {
    let store = &stores[0];
    let id = id();
    store
        .create(&id, 10, Duration::from_millis(150))
        .await
        .unwrap();
    assert_eq!(
        store.take(&id, 1).await.unwrap(),
        Take::Taken { remaining: 9 }
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(store.take(&id, 1).await.unwrap(), Take::Missing);
}

/// Counters near `i64::MAX` must not lose precision (Lua numbers are doubles).
pub(crate) async fn values_up_to_the_limit_are_exact<S: EntitlementStore>(stores: Vec<S>) {
    let store = &stores[0];
    let id = id();
    store.create(&id, MAX_COUNTER, LONG).await.unwrap();
    assert_eq!(
        store.take(&id, 1).await.unwrap(),
        Take::Taken {
            remaining: MAX_COUNTER - 1
        }
    );
    assert_eq!(
        store.take(&id, MAX_COUNTER).await.unwrap(),
        Take::Insufficient {
            remaining: MAX_COUNTER - 1
        }
    );
    store.give_back(&id, 1).await.unwrap();
    assert_eq!(
        store.take(&id, 3).await.unwrap(),
        Take::Taken {
            remaining: MAX_COUNTER - 3
        }
    );
    assert!(
        store
            .create(&self::id(), MAX_COUNTER + 1, LONG)
            .await
            .is_err(),
        "beyond the limit is refused"
    );
}

pub(crate) async fn creating_again_resets<S: EntitlementStore>(stores: Vec<S>) {
    let store = &stores[0];
    let id = id();
    store.create(&id, 1, LONG).await.unwrap();
    store.create(&id, 4, LONG).await.unwrap();
    assert_eq!(
        store.take(&id, 4).await.unwrap(),
        Take::Taken { remaining: 0 }
    );
}

pub(crate) async fn of_200_concurrent_takes_on_4_replicas_exactly_what_fits_succeed<
    S: EntitlementStore,
>(
    stores: Vec<S>,
) {
    let id = Arc::new(id());
    stores[0].create(&id, 1_000, LONG).await.unwrap();
    let stores: Vec<_> = stores.into_iter().map(Arc::new).collect();
    let start = Arc::new(Barrier::new(200));
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let (store, id, start) = (stores[i % stores.len()].clone(), id.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                store.take(&id, 7).await.unwrap()
            })
        })
        .collect();
    let mut taken = 0;
    let mut lowest = u64::MAX;
    for task in tasks {
        match task.await.unwrap() {
            Take::Taken { remaining } => {
                taken += 1;
                lowest = lowest.min(remaining);
            }
            Take::Insufficient { remaining } => {
                assert!(remaining < 7, "refused while {remaining} was left")
            }
            Take::Missing => panic!("the counter vanished"),
        }
    }
    assert_eq!(taken, 1_000 / 7, "exactly balance / price takes succeed");
    assert_eq!(lowest, 1_000 % 7, "never below zero");
}

pub(crate) async fn grants_are_recalled_on_another_replica_by_payer_and_scope<
    S: EntitlementStore,
>(
    stores: Vec<S>,
) {
    let scope = format!("path:/{}", id());
    let payer = "0x00000000000000000000000000000000000000Ab";
    assert_eq!(stores[1].recall_grant(&scope, payer).await.unwrap(), None);
    stores[0]
        .remember_grant(&scope, payer, "x402e1.first", LONG)
        .await
        .unwrap();
    // Another replica, the address in another letter case: the same payer.
    assert_eq!(
        stores[1]
            .recall_grant(&scope, &payer.to_ascii_lowercase())
            .await
            .unwrap()
            .as_deref(),
        Some("x402e1.first")
    );
    stores[1]
        .remember_grant(&scope, payer, "x402e1.second", LONG)
        .await
        .unwrap();
    assert_eq!(
        stores[0]
            .recall_grant(&scope, payer)
            .await
            .unwrap()
            .as_deref(),
        Some("x402e1.second")
    );
    assert_eq!(
        stores[0]
            .recall_grant("path:/elsewhere", payer)
            .await
            .unwrap(),
        None
    );
    let other = "0x00000000000000000000000000000000000000cd";
    assert_eq!(stores[0].recall_grant(&scope, other).await.unwrap(), None);
    stores[0]
        .remember_grant(&scope, other, "x402e1.short", Duration::from_millis(50))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(stores[1].recall_grant(&scope, other).await.unwrap(), None);
}
