//! Pay once, use many times: entitlement tokens (time- and use-limited, route- and
//! group-scoped) and prepaid sessions, with the in-memory stores.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use common::{Req, World, rejected, world, world_with};
use x402_protocol::{ProtocolVersion, Reason, U256, codec, v2};
use x402_runtime::entitlement::{EntitlementKeys, cookie_name};
use x402_runtime::store::{EntitlementStore, StoreError, Take};
use x402_runtime::{Access, AccessSpec, Completion, Decision, RouteSpec};

const HOUR: Duration = Duration::from_secs(3600);

static HOURLY: RouteSpec = RouteSpec::fixed("0.05 USDC")
    .networks(&["base-sepolia"])
    .access(AccessSpec {
        duration: Some(HOUR),
        uses: None,
        scope: None,
    });
static THREE_USES: RouteSpec = RouteSpec::fixed("0.05 USDC")
    .networks(&["base-sepolia"])
    .access(AccessSpec {
        duration: None,
        uses: Some(3),
        scope: None,
    });
static HUNDRED_USES: RouteSpec = RouteSpec::fixed("0.05 USDC")
    .networks(&["base-sepolia"])
    .access(AccessSpec {
        duration: None,
        uses: Some(100),
        scope: None,
    });
static REPORTS_DAILY: RouteSpec = RouteSpec::fixed("0.10 USDC")
    .networks(&["base-sepolia"])
    .access(AccessSpec {
        duration: Some(HOUR),
        uses: None,
        scope: Some("reports"),
    });
static REPORTS_WEEKLY: RouteSpec = RouteSpec::fixed("0.10 USDC")
    .networks(&["base-sepolia"])
    .access(AccessSpec {
        duration: Some(HOUR),
        uses: None,
        scope: Some("reports"),
    });
static PREPAID: RouteSpec = RouteSpec::fixed("0.01 USDC")
    .networks(&["base-sepolia"])
    .prepay("0.05 USDC");
static BIG_PREPAID: RouteSpec = RouteSpec::fixed("0.01 USDC")
    .networks(&["base-sepolia"])
    .prepay("0.50 USDC");

/// What a successful purchase delivers.
struct Bought {
    token: String,
    scope: String,
    cookie: String,
    transaction: String,
}

/// Pays for `spec` at `path` (choosing the entry `pick`s), runs a successful handler and
/// returns the grant the response delivers.
async fn buy(
    w: &World,
    spec: &'static RouteSpec,
    path: &'static str,
    pick: impl Fn(&str, U256) -> bool,
) -> Bought {
    let (name, value) = w
        .pay_entry(spec, Req::get(path), ProtocolVersion::V2, pick)
        .await;
    let admission = w
        .gate
        .evaluate(&Req::get(path).with(name, value), spec)
        .await
        .into_result()
        .unwrap_or_else(|r| panic!("payment refused: {r}"));
    assert_eq!(admission.payment.access(), &Access::Paid);
    let Completion::Deliver { headers, .. } = w.gate.finish(admission.pending, 200).await else {
        panic!("settlement failed")
    };
    let find = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no {name} header in {headers:?}"))
    };
    let receipt: x402_protocol::facilitator::SettleResponse =
        codec::decode(&find("payment-response"), 4096).unwrap();
    Bought {
        token: find("x402-entitlement"),
        scope: find("x402-entitlement-scope"),
        cookie: find("set-cookie"),
        transaction: receipt.transaction,
    }
}

async fn any_entry(w: &World, spec: &'static RouteSpec, path: &'static str) -> Bought {
    buy(w, spec, path, |_, _| true).await
}

async fn use_token(
    w: &World,
    spec: &'static RouteSpec,
    path: &'static str,
    token: &str,
) -> Decision {
    w.gate
        .evaluate(&Req::get(path).with("x402-entitlement", token), spec)
        .await
}

#[tokio::test]
async fn an_hour_of_access_is_reused_without_paying_until_it_expires() {
    let w = world();
    let bought = any_entry(&w, &HOURLY, "/hourly").await;
    assert_eq!(bought.scope, "/hourly");
    assert!(
        bought.cookie.contains("HttpOnly") && bought.cookie.contains("SameSite=Lax"),
        "{}",
        bought.cookie
    );
    assert!(
        bought.cookie.contains("Max-Age=3600") && !bought.cookie.contains("Secure"),
        "{}",
        bought.cookie
    );
    assert!(
        bought
            .cookie
            .starts_with(&format!("{}=", cookie_name("path:/hourly")))
    );
    let transfers = w.gate.dev_ledger().unwrap().transfers().len();

    for _ in 0..5 {
        let admission = use_token(&w, &HOURLY, "/hourly", &bought.token)
            .await
            .into_result()
            .unwrap();
        let Access::Entitlement(grant) = admission.payment.access() else {
            panic!("served by the entitlement")
        };
        assert_eq!(
            grant.transaction, bought.transaction,
            "names the payment that bought it"
        );
        assert_eq!(admission.payment.payer(), w.payer.address());
        assert_eq!(
            admission.payment.transaction(),
            Some(bought.transaction.as_str())
        );
        assert!(
            matches!(w.gate.finish(admission.pending, 200).await, Completion::Deliver { headers: h, .. } if h.is_empty())
        );
    }
    assert_eq!(
        w.gate.dev_ledger().unwrap().transfers().len(),
        transfers,
        "nothing more was charged"
    );

    w.clock.advance(3600);
    let expired = rejected(use_token(&w, &HOURLY, "/hourly", &bought.token).await);
    assert_eq!(expired.reason(), &Reason::ENTITLEMENT_EXPIRED);
    let response = expired.to_response();
    assert_eq!(response.status, 402);
    assert!(
        response.header("payment-required").is_some(),
        "an expired grant says how to pay again"
    );
}

#[tokio::test]
async fn tokens_come_from_the_header_a_bearer_token_or_the_cookie() {
    let w = world();
    let bought = any_entry(&w, &HOURLY, "/hourly").await;
    let cookie_pair = bought.cookie.split(';').next().unwrap().to_owned();
    let requests = [
        Req::get("/hourly").with("authorization", format!("Bearer {}", bought.token)),
        Req::get("/hourly").with("cookie", format!("theme=dark; {cookie_pair}")),
    ];
    for request in requests {
        assert!(
            w.gate
                .evaluate(&request, &HOURLY)
                .await
                .into_result()
                .is_ok()
        );
    }
    // The application's own bearer tokens are not ours to judge: a plain challenge.
    let app_jwt = Req::get("/hourly").with("authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig");
    let challenge = rejected(w.gate.evaluate(&app_jwt, &HOURLY).await);
    assert_eq!(challenge.reason(), &Reason::PAYMENT_REQUIRED);
}

#[tokio::test]
async fn forged_and_foreign_tokens_are_refused_with_their_reasons() {
    let w = world();
    let bought = any_entry(&w, &HOURLY, "/hourly").await;

    let other_route = rejected(use_token(&w, &HOURLY, "/other", &bought.token).await);
    assert_eq!(other_route.reason(), &Reason::ENTITLEMENT_SCOPE_MISMATCH);

    let forger =
        EntitlementKeys::new("ephemeral", b"a key the server never had, 32 bytes").unwrap();
    let mut claims = x402_runtime::entitlement::Claims::new(
        x402_runtime::entitlement::GrantKind::Access,
        "path:/hourly",
        u64::MAX,
    );
    claims.network = "eip155:84532".into();
    let forged = rejected(use_token(&w, &HOURLY, "/hourly", &forger.sign(&claims)).await);
    assert_eq!(forged.reason(), &Reason::ENTITLEMENT_INVALID);

    let mut altered = bought.token.clone();
    altered.pop();
    altered.push(if bought.token.ends_with('A') {
        'B'
    } else {
        'A'
    });
    let altered = rejected(use_token(&w, &HOURLY, "/hourly", &altered).await);
    assert_eq!(altered.reason(), &Reason::ENTITLEMENT_INVALID);

    let garbage = rejected(use_token(&w, &HOURLY, "/hourly", "x402e1.garbage").await);
    assert_eq!(garbage.reason(), &Reason::ENTITLEMENT_INVALID);
}

#[tokio::test]
async fn a_group_grant_opens_every_route_of_the_group() {
    let w = world();
    let bought = any_entry(&w, &REPORTS_DAILY, "/reports/daily").await;
    assert_eq!(bought.scope, "/");
    assert!(
        use_token(&w, &REPORTS_WEEKLY, "/reports/weekly", &bought.token)
            .await
            .into_result()
            .is_ok()
    );
    let elsewhere = rejected(use_token(&w, &HOURLY, "/hourly", &bought.token).await);
    assert_eq!(elsewhere.reason(), &Reason::ENTITLEMENT_SCOPE_MISMATCH);
}

#[tokio::test]
async fn keys_rotate_old_tokens_keep_working_with_the_previous_key() {
    let secret_old = [7u8; 32];
    let secret_new = [8u8; 32];
    let old = world_with(|b| {
        b.embedded_facilitator()
            .entitlement_keys(EntitlementKeys::new("old", &secret_old).unwrap())
    });
    let bought = any_entry(&old, &HOURLY, "/hourly").await;

    let rotated = world_with(|b| {
        b.embedded_facilitator().entitlement_keys(
            EntitlementKeys::new("new", &secret_new)
                .unwrap()
                .with_previous("old", &secret_old)
                .unwrap(),
        )
    });
    assert!(
        use_token(&rotated, &HOURLY, "/hourly", &bought.token)
            .await
            .into_result()
            .is_ok()
    );

    let retired = world_with(|b| {
        b.embedded_facilitator()
            .entitlement_keys(EntitlementKeys::new("new", &secret_new).unwrap())
    });
    let refused = rejected(use_token(&retired, &HOURLY, "/hourly", &bought.token).await);
    assert_eq!(refused.reason(), &Reason::ENTITLEMENT_INVALID);
}

#[tokio::test]
async fn uses_are_counted_and_a_failed_request_gives_its_use_back() {
    let w = world();
    // The paying request is the first of three uses.
    let bought = any_entry(&w, &THREE_USES, "/three").await;
    let first = use_token(&w, &THREE_USES, "/three", &bought.token)
        .await
        .into_result()
        .unwrap();
    assert_eq!(first.payment.grant().unwrap().remaining, Some(1));
    // A failing handler gives the use back...
    w.gate.finish(first.pending, 503).await;
    for remaining in [1, 0] {
        let admission = use_token(&w, &THREE_USES, "/three", &bought.token)
            .await
            .into_result()
            .unwrap();
        assert_eq!(
            admission.payment.grant().unwrap().remaining,
            Some(remaining)
        );
        w.gate.finish(admission.pending, 200).await;
    }
    // ...so exactly three requests were served in all.
    let exhausted = rejected(use_token(&w, &THREE_USES, "/three", &bought.token).await);
    assert_eq!(exhausted.reason(), &Reason::ENTITLEMENT_EXHAUSTED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_never_use_more_than_was_bought() {
    let w = Arc::new(world());
    let bought = any_entry(&w, &HUNDRED_USES, "/hundred").await;
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let (w, token) = (w.clone(), bought.token.clone());
            tokio::spawn(async move {
                use_token(&w, &HUNDRED_USES, "/hundred", &token)
                    .await
                    .into_result()
                    .is_ok()
            })
        })
        .collect();
    let mut served = 0;
    for task in tasks {
        served += usize::from(task.await.unwrap());
    }
    assert_eq!(served, 99, "100 uses: the paying request and 99 more");
}

#[tokio::test]
async fn a_prepaid_session_draws_each_request_from_its_balance() {
    let w = world();
    let Decision::Challenge(challenge) = w.gate.evaluate(&Req::get("/prepaid"), &PREPAID).await
    else {
        panic!()
    };
    let required: v2::PaymentRequired = codec::decode(
        challenge.to_response().header("payment-required").unwrap(),
        1 << 16,
    )
    .unwrap();
    let amounts: Vec<_> = required
        .accepts
        .iter()
        .map(|r| r.amount.to::<u64>())
        .collect();
    assert_eq!(
        amounts,
        [10_000, 50_000],
        "the per-request price first, then the prepaid option"
    );
    assert_eq!(
        required.accepts[1].extra.as_ref().unwrap()["prepaid"]["balance"],
        "50000"
    );

    let payee_before = w.balance("base-sepolia", common::pay_to());
    let bought = buy(&w, &PREPAID, "/prepaid", |_, amount| {
        amount == U256::from(50_000u64)
    })
    .await;
    assert_eq!(
        w.balance("base-sepolia", common::pay_to()),
        payee_before + U256::from(50_000u64)
    );
    // 0.05 bought; the paying request drew 0.01; four more draws fit.
    for remaining in [30_000, 20_000, 10_000, 0] {
        let admission = use_token(&w, &PREPAID, "/prepaid", &bought.token)
            .await
            .into_result()
            .unwrap();
        let Access::Prepaid(grant) = admission.payment.access() else {
            panic!()
        };
        assert_eq!(grant.remaining, Some(remaining));
        assert_eq!(admission.payment.amount_display(), "0.01 USDC");
        w.gate.finish(admission.pending, 200).await;
    }
    let empty = rejected(use_token(&w, &PREPAID, "/prepaid", &bought.token).await);
    assert_eq!(empty.reason(), &Reason::ENTITLEMENT_BALANCE_INSUFFICIENT);
    assert!(empty.to_response().header("payment-required").is_some());

    // Paying the single price still works next to the session, and buys nothing more.
    let (name, value) = w
        .pay_entry(
            &PREPAID,
            Req::get("/prepaid"),
            ProtocolVersion::V2,
            |_, amount| amount == U256::from(10_000u64),
        )
        .await;
    let single = w
        .gate
        .evaluate(&Req::get("/prepaid").with(name, value), &PREPAID)
        .await
        .into_result()
        .unwrap();
    let Completion::Deliver { headers, .. } = w.gate.finish(single.pending, 200).await else {
        panic!()
    };
    assert!(headers.iter().any(|(n, _)| *n == "payment-response"));
    assert!(
        !headers.iter().any(|(n, _)| *n == "x402-entitlement"),
        "{headers:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_draws_never_overdraw_a_prepaid_balance() {
    let w = Arc::new(world());
    let bought = buy(&w, &BIG_PREPAID, "/big", |_, amount| {
        amount == U256::from(500_000u64)
    })
    .await;
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let (w, token) = (w.clone(), bought.token.clone());
            tokio::spawn(async move {
                use_token(&w, &BIG_PREPAID, "/big", &token)
                    .await
                    .into_result()
                    .is_ok()
            })
        })
        .collect();
    let mut served = 0;
    for task in tasks {
        served += usize::from(task.await.unwrap());
    }
    assert_eq!(served, 490_000 / 10_000, "served = balance / price");
}

/// A store that is down.
struct DownStore;

#[async_trait]
impl EntitlementStore for DownStore {
    async fn create(&self, _: &str, _: u64, _: Duration) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
    async fn take(&self, _: &str, _: u64) -> Result<Take, StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
    async fn give_back(&self, _: &str, _: u64) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
}

#[tokio::test]
async fn a_store_outage_fails_closed_and_charges_nothing() {
    let w = world_with(|b| b.embedded_facilitator().entitlement_store(DownStore));
    let (name, value) = w
        .pay_entry(
            &PREPAID,
            Req::get("/prepaid"),
            ProtocolVersion::V2,
            |_, amount| amount == U256::from(50_000u64),
        )
        .await;
    let admission = w
        .gate
        .evaluate(&Req::get("/prepaid").with(name, value.clone()), &PREPAID)
        .await
        .into_result()
        .unwrap();
    let Completion::Replace(response) = w.gate.finish(admission.pending, 200).await else {
        panic!("without a store the session cannot be opened")
    };
    assert_eq!(response.status, 503);
    assert!(
        w.gate.dev_ledger().unwrap().transfers().is_empty(),
        "nothing settled"
    );
    // The authorization was released, so the client can retry the same payment.
    let again = w
        .gate
        .evaluate(&Req::get("/prepaid").with(name, value.clone()), &PREPAID)
        .await;
    assert!(again.into_result().is_ok());

    let token_request = Req::get("/prepaid").with("x402-entitlement", "x402e1.any.thing");
    let refused = rejected(w.gate.evaluate(&token_request, &PREPAID).await);
    assert_eq!(
        refused.reason(),
        &Reason::ENTITLEMENT_INVALID,
        "invalid tokens never reach the store"
    );
}

#[tokio::test]
async fn selling_reusable_access_outside_development_needs_entitlement_keys() {
    // A real facilitator (never reached: the challenge needs none) and no keys: refused, with
    // the fix named, before anything can be paid.
    let facilitator = "http://127.0.0.1:9";
    let w = world_with(|b| b.facilitator(facilitator));
    let refused = rejected(w.gate.evaluate(&Req::get("/hourly"), &HOURLY).await);
    assert_eq!(
        (refused.status(), refused.reason()),
        (500, &Reason::NOT_CONFIGURED)
    );
    assert!(
        refused.message().contains("entitlement_keys"),
        "{}",
        refused.message()
    );

    let keyed = world_with(|b| {
        b.facilitator(facilitator)
            .entitlement_keys(EntitlementKeys::new("k1", &[1; 32]).unwrap())
    });
    let challenge = rejected(keyed.gate.evaluate(&Req::get("/hourly"), &HOURLY).await);
    assert_eq!(challenge.reason(), &Reason::PAYMENT_REQUIRED);
}
