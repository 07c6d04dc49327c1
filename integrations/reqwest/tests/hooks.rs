//! The after-payment and payment-failure hooks, against a real paid server (axum + the
//! runtime's gate with the embedded facilitator and its dev ledger): each fires with the right
//! data, exactly when it should, and a panicking hook does not take the request down.

use crate::support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest_x402::hooks::{NotSignedReason, PaymentFailure};
use reqwest_x402::{
    Approval, PaymentProposal, PaymentRecord, PaymentResponseExt, PaymentSigner, PaymentStatus,
    X402MiddlewareBuilder,
};
use support::{CENT, CountingSigner, Flavor};
use x402_protocol::codec;

/// What the hooks saw.
#[derive(Default, Clone)]
struct Seen {
    paid: Arc<Mutex<Vec<PaymentRecord>>>,
    failed: Arc<Mutex<Vec<PaymentFailure>>>,
}

impl Seen {
    fn paid(&self) -> Vec<PaymentRecord> {
        self.paid.lock().unwrap().clone()
    }

    fn failed(&self) -> Vec<PaymentFailure> {
        self.failed.lock().unwrap().clone()
    }

    /// `builder` with both hooks recording here.
    fn hooked(&self, builder: X402MiddlewareBuilder) -> X402MiddlewareBuilder {
        let (paid, failed) = (self.paid.clone(), self.failed.clone());
        builder
            .after_payment(move |record: PaymentRecord| {
                let paid = paid.clone();
                async move { paid.lock().unwrap().push(record) }
            })
            .on_payment_failure(move |failure: PaymentFailure| {
                let failed = failed.clone();
                async move { failed.lock().unwrap().push(failure) }
            })
    }
}

#[tokio::test]
async fn after_payment_gets_the_settled_record_with_its_receipt() {
    for flavor in [Flavor::Dual, Flavor::V1Only, Flavor::V2Only] {
        let server = support::spawn(flavor).await;
        let signer = CountingSigner::new();
        server.fund(signer.address(), 100 * CENT);
        let seen = Seen::default();
        let client = seen
            .hooked(support::builder(&signer))
            .build()
            .unwrap()
            .client()
            .unwrap();

        // A free route: no payment, no hook.
        let free = client
            .get(format!("{}/free", server.url))
            .send()
            .await
            .unwrap();
        assert_eq!(free.status(), 200);
        assert!(seen.paid().is_empty() && seen.failed().is_empty());

        let response = client
            .get(format!("{}/weather", server.url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{flavor:?}");
        let returned = response.payment().cloned().expect("a payment record");
        let paid = seen.paid();
        assert_eq!(paid.len(), 1, "{flavor:?}");
        assert!(seen.failed().is_empty(), "{flavor:?}");
        let record = &paid[0];
        // The hook saw the final record: the one the response carries.
        assert_eq!(record.nonce, returned.nonce);
        assert_eq!(record.status, returned.status);
        assert_eq!(record.version, flavor.paid_version());
        assert_eq!(record.amount_display(), "0.01 USDC");
        assert_eq!(record.url, format!("{}/weather", server.url));
        let PaymentStatus::Settled { transaction } = &record.status else {
            panic!("{flavor:?}: {}", record.status);
        };
        let receipt = record.receipt.as_ref().expect("the settlement receipt");
        assert!(receipt.success);
        assert_eq!(&receipt.transaction, transaction);
        // The ledger moved: the hook reported a real settlement.
        assert_eq!(
            server.balance("base-sepolia", support::pay_to()),
            alloy_primitives::U256::from(CENT)
        );
    }
}

#[tokio::test]
async fn a_refused_payment_reaches_the_failure_hook_only() {
    let server = support::spawn(Flavor::Dual).await;
    let signer = CountingSigner::new(); // never funded
    let seen = Seen::default();
    let client = seen
        .hooked(support::builder(&signer))
        .build()
        .unwrap()
        .client()
        .unwrap();
    let response = client
        .get(format!("{}/weather", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 402);
    assert!(seen.paid().is_empty());
    let failed = seen.failed();
    assert_eq!(failed.len(), 1, "{failed:?}");
    let PaymentFailure::Refused(record) = &failed[0] else {
        panic!("{:?}", failed[0]);
    };
    let PaymentStatus::Rejected { reason, .. } = &record.status else {
        panic!("{}", record.status);
    };
    assert_eq!(reason, "insufficient_funds");
    assert_eq!(Some(record.nonce), response.payment().map(|p| p.nonce));
    assert!(failed[0].to_string().contains("insufficient_funds"));
}

#[tokio::test]
async fn a_failing_handler_is_reported_not_settled() {
    let server = support::spawn(Flavor::Dual).await;
    let signer = CountingSigner::new();
    server.fund(signer.address(), 100 * CENT);
    let seen = Seen::default();
    let client = seen
        .hooked(support::builder(&signer))
        .build()
        .unwrap()
        .client()
        .unwrap();
    let response = client
        .get(format!("{}/broken", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 500);
    assert!(seen.paid().is_empty());
    let failed = seen.failed();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(
        matches!(&failed[0], PaymentFailure::NotSettled(r) if r.status == PaymentStatus::NotSettled { status: 500 }),
        "{:?}",
        failed[0]
    );
    assert!(server.ledger().transfers().is_empty());
}

#[tokio::test]
async fn nothing_signed_is_reported_with_why() {
    let server = support::spawn(Flavor::Dual).await;
    let signer = CountingSigner::new();
    server.fund(signer.address(), 1000 * CENT);

    // Over the default per-request cap.
    let seen = Seen::default();
    let client = seen
        .hooked(support::builder(&signer))
        .build()
        .unwrap()
        .client()
        .unwrap();
    let error = client
        .get(format!("{}/expensive", server.url))
        .send()
        .await
        .unwrap_err();
    let failed = seen.failed();
    assert_eq!(failed.len(), 1, "{failed:?}");
    let PaymentFailure::NotSigned {
        method,
        url,
        reason,
        message,
    } = &failed[0]
    else {
        panic!("{:?}", failed[0]);
    };
    assert_eq!(*reason, NotSignedReason::NoPayableOffer);
    assert_eq!(method, "GET");
    assert_eq!(url, &format!("{}/expensive", server.url));
    assert_eq!(
        message,
        &reqwest_x402::payment_error(&error).unwrap().to_string()
    );
    assert!(failed[0].record().is_none());

    // The approval hook refuses.
    let seen = Seen::default();
    let client = seen
        .hooked(
            support::builder(&signer)
                .approve(|_: PaymentProposal| async { Approval::Refuse("not today".to_owned()) }),
        )
        .build()
        .unwrap()
        .client()
        .unwrap();
    client
        .get(format!("{}/weather", server.url))
        .send()
        .await
        .unwrap_err();
    let failed = seen.failed();
    assert!(
        matches!(&failed[..], [PaymentFailure::NotSigned { reason: NotSignedReason::NotApproved, message, .. }] if message.contains("not today")),
        "{failed:?}"
    );
    assert!(seen.paid().is_empty());
    assert_eq!(signer.signed(), 0);
}

#[tokio::test]
async fn panicking_hooks_are_caught_and_the_request_goes_on() {
    let server = support::spawn(Flavor::Dual).await;
    let signer = CountingSigner::new();
    server.fund(signer.address(), 100 * CENT);
    let calls = Arc::new(Mutex::new(Vec::<&'static str>::new()));
    let (after, failure) = (calls.clone(), calls.clone());
    let client = support::builder(&signer)
        .after_payment(move |_: PaymentRecord| {
            let after = after.clone();
            async move {
                after.lock().unwrap().push("after_payment");
                panic!("the after-payment hook fails");
            }
        })
        .on_payment_failure(move |_: PaymentFailure| {
            let failure = failure.clone();
            async move {
                failure.lock().unwrap().push("on_payment_failure");
                panic!("the failure hook fails");
            }
        })
        .build()
        .unwrap()
        .client()
        .unwrap();

    // Settled: the handler's answer and the record arrive despite the panic.
    let response = client
        .get(format!("{}/weather", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(matches!(
        response.payment().map(|p| &p.status),
        Some(PaymentStatus::Settled { .. })
    ));
    assert!(response.text().await.unwrap().contains("sunny"));

    // Not settled: the 500 comes back as such.
    let response = client
        .get(format!("{}/broken", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 500);
    assert_eq!(
        *calls.lock().unwrap(),
        ["after_payment", "on_payment_failure"]
    );
}

/// A stand-in server whose settlement is always pending: the challenge comes from a real gate;
/// paid requests are answered 504 `settlement_pending` with the failure receipt.
async fn always_pending() -> String {
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;
    use x402_protocol::facilitator::SettleResponse;

    let server = support::spawn(Flavor::V2Only).await;
    let challenge = reqwest::get(format!("{}/weather", server.url))
        .await
        .unwrap();
    let required = challenge
        .headers()
        .get("payment-required")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let app = axum::Router::new().route(
        "/weather",
        axum::routing::get(move |headers: HeaderMap| {
            let required = required.clone();
            async move {
                if !headers.contains_key("payment-signature") {
                    return (
                        StatusCode::PAYMENT_REQUIRED,
                        [("payment-required", required)],
                        "{}",
                    )
                        .into_response();
                }
                let receipt = SettleResponse::failure(
                    "settlement_pending",
                    "settlement pending",
                    "eip155:84532".to_owned(),
                    None,
                );
                (
                    StatusCode::GATEWAY_TIMEOUT,
                    [("payment-response", codec::encode(&receipt))],
                    r#"{"error":"settlement_pending"}"#,
                )
                    .into_response()
            }
        }),
    );
    let (url, _task) = support::server::serve_router(app).await;
    std::mem::forget(server);
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settlement_still_pending_after_the_retries_is_a_failure() {
    let url = always_pending().await;
    let signer = CountingSigner::new();
    let seen = Seen::default();
    let client = seen
        .hooked(support::builder(&signer).settlement_retries(1, Duration::from_millis(10)))
        .build()
        .unwrap()
        .client()
        .unwrap();
    let response = client.get(format!("{url}/weather")).send().await.unwrap();
    assert_eq!(response.status(), 504);
    assert!(seen.paid().is_empty());
    let failed = seen.failed();
    assert_eq!(failed.len(), 1, "{failed:?}");
    let PaymentFailure::Pending(record) = &failed[0] else {
        panic!("{:?}", failed[0]);
    };
    // The first attempt and one retry, with the same authorization.
    assert_eq!(record.attempts, 2);
    assert_eq!(signer.signed(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_answer_is_a_failure_and_the_retry_that_gets_one_a_payment() {
    let server = support::spawn(Flavor::Dual).await;
    let signer = CountingSigner::new();
    server.fund(signer.address(), 100 * CENT);
    let upstream = server.url.trim_start_matches("http://").parse().unwrap();
    let proxy = support::proxy::spawn_drop_proxy(upstream, 1).await;
    let seen = Seen::default();
    let x402 = seen.hooked(support::builder(&signer)).build().unwrap();
    let client = x402.wrap(reqwest::Client::new());
    let url = format!("{}/weather", proxy.url);

    // The server settles, the proxy swallows the answer: the payment's fate is unknown.
    client.get(&url).send().await.unwrap_err();
    let failed = seen.failed();
    let [PaymentFailure::NoAnswer(lost)] = &failed[..] else {
        panic!("{failed:?}");
    };
    assert_eq!(lost.status, PaymentStatus::Sent);
    assert!(seen.paid().is_empty());

    // Sent again: the same authorization gets the kept answer, and only now is it paid.
    let response = client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let paid = seen.paid();
    assert_eq!(paid.len(), 1, "{paid:?}");
    assert_eq!(paid[0].nonce, lost.nonce);
    assert_eq!(paid[0].attempts, 2);
    assert!(matches!(paid[0].status, PaymentStatus::Settled { .. }));
    assert_eq!(seen.failed().len(), 1);
    assert_eq!(signer.signed(), 1);
}
