//! Never pay twice for one logical request: a loopback proxy in front of a real paid server
//! forwards the paid request, lets the server answer (and settle), then drops the connection
//! before the client reads the answer. Whoever retries (the caller, or a retry middleware
//! before or after the x402 one), the same authorization is sent again: one signature, one
//! charge.
//!
//! The second answer is the kept one: the runtime's journal recognises the settled
//! authorization and sends the handler's stored response again with its receipt. The client
//! reports the payment settled and does not pay again.
//!
//! A server that reports the settlement pending (504 `settlement_pending`) gets the same
//! authorization again, with backoff, until it has a verdict.

use crate::support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest_x402::{PaymentResponseExt, PaymentStatus};
use support::{Flavor, Retrier, Target, lost_answer_then_retry};
use x402_protocol::{codec, payment_identifier};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_a_dropped_connection_reuses_the_signed_authorization() {
    for retrier in [Retrier::Caller, Retrier::LayerOutside, Retrier::LayerInside] {
        for flavor in [Flavor::Dual, Flavor::V1Only, Flavor::V2Only] {
            let server = support::spawn(flavor).await;
            let network = server.gate.registry().network("base-sepolia").unwrap();
            let target = Target {
                url: &server.url,
                ledger: server.ledger(),
                caip2: network.caip2.to_string(),
                asset: network.default_asset.address.as_evm().unwrap(),
            };
            lost_answer_then_retry(&target, "/weather", flavor.paid_version(), retrier).await;
            // The server's own log agrees with the proxy's.
            let seen = server.payments_seen();
            assert_eq!(seen.len(), 2);
            assert_eq!(seen[0], seen[1]);
        }
    }
}

/// A stand-in server whose settlement stays pending twice: the challenge comes from a real
/// gate; paid requests are answered 504 `settlement_pending` (with the failure receipt the
/// runtime sends) twice, then 200 with a receipt.
async fn pending_twice() -> (String, Arc<Mutex<Vec<String>>>) {
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
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let app = axum::Router::new().route(
        "/weather",
        axum::routing::get(move |headers: HeaderMap| {
            let (log, required) = (log.clone(), required.clone());
            async move {
                let Some(payment) = headers.get("payment-signature") else {
                    return (
                        StatusCode::PAYMENT_REQUIRED,
                        [("payment-required", required)],
                        "{}",
                    )
                        .into_response();
                };
                let attempt = {
                    let mut log = log.lock().unwrap();
                    log.push(payment.to_str().unwrap().to_owned());
                    log.len()
                };
                let receipt = if attempt <= 2 {
                    SettleResponse::failure(
                        "settlement_pending",
                        "settlement pending",
                        "eip155:84532".to_owned(),
                        None,
                    )
                } else {
                    SettleResponse {
                        success: true,
                        transaction: format!("0x{}", "ab".repeat(32)),
                        ..SettleResponse::failure("", "", "eip155:84532".to_owned(), None)
                    }
                };
                let status = if attempt <= 2 {
                    StatusCode::GATEWAY_TIMEOUT
                } else {
                    StatusCode::OK
                };
                let body = if attempt <= 2 {
                    r#"{"error":"settlement_pending"}"#
                } else {
                    "sunny"
                };
                (
                    status,
                    [("payment-response", codec::encode(&receipt))],
                    body,
                )
                    .into_response()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    std::mem::forget(server);
    (url, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_settlement_is_retried_with_the_same_authorization_and_payment_id() {
    let (url, seen) = pending_twice().await;
    let signer = support::CountingSigner::new();
    let x402 = support::builder(&signer)
        .settlement_retries(5, Duration::from_millis(20))
        .build()
        .unwrap();
    let client = x402.wrap(reqwest::Client::new());
    let response = client.get(format!("{url}/weather")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let record = response.payment().cloned().expect("a payment record");
    assert!(
        matches!(record.status, PaymentStatus::Settled { .. }),
        "{}",
        record.status
    );
    assert_eq!(record.attempts, 3);
    assert_eq!(response.text().await.unwrap(), "sunny");

    // One signature, sent three times, carrying one payment id.
    assert_eq!(signer.signed(), 1);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3);
    assert!(seen.iter().all(|p| *p == seen[0]));
    let payload: serde_json::Value = codec::decode(&seen[0], 1 << 16).unwrap();
    let id = payload["extensions"]["payment-identifier"]["info"]["id"]
        .as_str()
        .expect("the server offered payment-identifier, so the payment carries an id");
    assert!(payment_identifier::is_valid_id(id), "{id}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_retries_the_pending_answer_is_returned_and_the_authorization_kept() {
    let (url, seen) = pending_twice().await;
    let signer = support::CountingSigner::new();
    let x402 = support::builder(&signer)
        .settlement_retries(0, Duration::from_millis(20))
        .build()
        .unwrap();
    let client = x402.wrap(reqwest::Client::new());
    let first = client.get(format!("{url}/weather")).send().await.unwrap();
    assert_eq!(first.status(), 504);
    // The caller retries by hand: the kept authorization goes again, nothing new is signed.
    let second = client.get(format!("{url}/weather")).send().await.unwrap();
    assert_eq!(second.status(), 504);
    let third = client.get(format!("{url}/weather")).send().await.unwrap();
    assert_eq!(third.status(), 200);
    assert_eq!(signer.signed(), 1);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3);
    assert!(seen.iter().all(|p| *p == seen[0]));
}
