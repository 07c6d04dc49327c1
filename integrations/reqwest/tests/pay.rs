//! The client pays real paid servers on loopback (axum + the runtime's gate, embedded
//! facilitator, dev ledger) of every flavor, and its headers verify like the official clients'.

use crate::support;

use axum::http::StatusCode;
use axum::response::IntoResponse;
use reqwest_x402::{PaymentResponseExt, PaymentStatus, X402Middleware};
use serde::Deserialize;
use support::{CENT, CountingSigner, Flavor, Target, builder, decode_payment, pay_to};
use x402_protocol::facilitator::{PaymentPayload, PaymentRequirements};
use x402_protocol::verify::verify_payment;
use x402_protocol::{NetworkRegistry, ProtocolVersion, U256, codec, headers, v1, v2};

fn target(server: &support::PaidServer) -> Target<'_> {
    let network = server.gate.registry().network("base-sepolia").unwrap();
    Target {
        url: &server.url,
        ledger: server.ledger(),
        caip2: network.caip2.to_string(),
        asset: network.default_asset.address.as_evm().unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pays_dual_v1_only_and_v2_only_servers() {
    for flavor in [Flavor::Dual, Flavor::V1Only, Flavor::V2Only] {
        let server = support::spawn(flavor).await;
        support::pays_once(&target(&server), "/weather", flavor.paid_version()).await;
        // The server saw exactly one payment, in the header of its generation.
        let seen = server.payments_seen();
        assert_eq!(seen.len(), 1, "{flavor:?}");
        assert_eq!(
            seen[0].0,
            flavor.paid_version().payment_header(),
            "{flavor:?}"
        );
    }
}

#[tokio::test]
async fn free_routes_and_foreign_402s_pass_through_untouched() {
    let server = support::spawn(Flavor::Dual).await;
    let signer = CountingSigner::new();
    let client = builder(&signer).build().unwrap().client().unwrap();
    let response = client
        .get(format!("{}/free", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.payment().is_none());
    assert_eq!(response.text().await.unwrap(), "free");

    // A 402 from some other payment system is returned as it came, body included.
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(|| async {
            (StatusCode::PAYMENT_REQUIRED, "<html>subscribe first</html>").into_response()
        }),
    );
    let (url, _task) = support::server::serve_router(app).await;
    let response = client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 402);
    assert_eq!(response.url().as_str(), format!("{url}/"));
    assert_eq!(
        response.text().await.unwrap(),
        "<html>subscribe first</html>"
    );
    assert_eq!(signer.signed(), 0);
}

#[derive(Deserialize)]
struct Vectors {
    vectors: Vec<Vector>,
}

#[derive(Deserialize)]
struct Vector {
    protocol: u8,
    payment_required: serde_json::Value,
}

/// The official vectors' base-sepolia requirement of each generation.
fn official_requirement(version: ProtocolVersion) -> PaymentRequirements {
    let file: Vectors = serde_json::from_str(include_str!(
        "../../../x402-protocol/tests/data/official-clients.json"
    ))
    .unwrap();
    file.vectors
        .into_iter()
        .filter(|v| v.protocol == version.number())
        .find_map(|v| match version {
            ProtocolVersion::V1 => {
                let required: v1::PaymentRequired =
                    serde_json::from_value(v.payment_required).ok()?;
                let entry = required.accepts.into_iter().next()?;
                (entry.network == "base-sepolia").then_some(PaymentRequirements::V1(entry))
            }
            ProtocolVersion::V2 => {
                let required: v2::PaymentRequired =
                    serde_json::from_value(v.payment_required).ok()?;
                let entry = required.accepts.into_iter().next()?;
                (entry.network == "eip155:84532").then_some(PaymentRequirements::V2(entry))
            }
        })
        .expect("a base-sepolia vector")
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn headers_verify_with_the_official_vectors_rules() {
    let registry = NetworkRegistry::builtin();
    for flavor in [Flavor::V1Only, Flavor::V2Only] {
        let server = support::spawn(flavor).await;
        let signer = CountingSigner::new();
        server.fund(reqwest_x402::PaymentSigner::address(&signer), 100 * CENT);
        let client = builder(&signer).build().unwrap().client().unwrap();
        let response = client
            .get(format!("{}/weather", server.url))
            .send()
            .await
            .unwrap();
        // Accepted by the runtime's verifier (the gate) and settled.
        assert_eq!(response.status(), 200);

        let (name, value) = server.payments_seen().pop().unwrap();
        let version = flavor.paid_version();
        assert_eq!(name, version.payment_header());
        let payment = decode_payment(&value);
        assert_eq!(payment.version(), version);
        // The same EIP-712 domain and type string as the official clients' headers: ours
        // verifies against the very requirement those vectors were signed for.
        let official = official_requirement(version);
        let verified = verify_payment(&payment, &official, &registry, now()).unwrap();
        assert_eq!(
            verified.payer,
            reqwest_x402::PaymentSigner::address(&signer)
        );
        assert_eq!(verified.amount, U256::from(CENT));
        let auth = &payment.payload().as_eip3009().unwrap().authorization;
        assert_eq!(auth.to, pay_to());
        assert_eq!(auth.valid_before - auth.valid_after, U256::from(300 + 600));
        match &payment {
            PaymentPayload::V1(p) => {
                assert_eq!(
                    (p.scheme.as_str(), p.network.as_str()),
                    ("exact", "base-sepolia")
                );
            }
            PaymentPayload::V2(p) => {
                assert_eq!(PaymentRequirements::V2(p.accepted.clone()), official);
                let resource = p.resource.as_ref().expect("resource copied from the 402");
                assert_eq!(resource.url, format!("{}/weather", server.url));
                assert_eq!(resource.description, "Current weather");
            }
        }
    }
}

/// A hand-written v2 server: offers what it is told, records the paid header, answers 200.
async fn raw_v2_server(
    required: serde_json::Value,
) -> (
    String,
    std::sync::Arc<std::sync::Mutex<Option<String>>>,
    tokio::task::JoinHandle<()>,
) {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
    let header = codec::encode(&required);
    let app = axum::Router::new().route(
        "/thing",
        axum::routing::get({
            let seen = seen.clone();
            move |request_headers: axum::http::HeaderMap| async move {
                match request_headers.get(headers::PAYMENT_SIGNATURE) {
                    Some(value) => {
                        *seen.lock().unwrap() = Some(value.to_str().unwrap().to_owned());
                        (StatusCode::OK, "paid").into_response()
                    }
                    None => (
                        StatusCode::PAYMENT_REQUIRED,
                        [(headers::PAYMENT_REQUIRED, header)],
                        "{}",
                    )
                        .into_response(),
                }
            }
        }),
    );
    let (url, task) = support::server::serve_router(app).await;
    (url, seen, task)
}

fn entry(network: &str, amount: &str, asset: &str, name: &str) -> serde_json::Value {
    serde_json::json!({
        "scheme": "exact", "network": network, "amount": amount, "asset": asset,
        "payTo": support::PAY_TO, "maxTimeoutSeconds": 120,
        "extra": {"name": name, "version": "2"}
    })
}

const BASE_USDC: &str = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913";
const SEPOLIA_USDC: &str = "0x036CbD53842c5426634e7929541eC2318f3dCF7e";
const ARBITRUM_USDC: &str = "0xaf88d065e77c8cC2239327C5EDb3A432268e5831";

#[tokio::test]
async fn v2_echoes_the_chosen_entry_verbatim_and_takes_the_cheapest() {
    let mut cheap = entry("eip155:84532", "5000", SEPOLIA_USDC, "USDC");
    // Fields this client does not know, and an amount written as a number, must survive.
    cheap["futureField"] = serde_json::json!({"nested": [1, 2, 3]});
    cheap["extra"]["assetTransferMethod"] = serde_json::json!("eip3009");
    let required = serde_json::json!({
        "x402Version": 2,
        "error": "Payment required",
        "resource": {"url": "https://api.test/thing", "description": "a thing", "mimeType": ""},
        "accepts": [
            {"scheme": "upto", "network": "eip155:8453", "amount": "1", "asset": BASE_USDC,
             "payTo": support::PAY_TO, "maxTimeoutSeconds": 60},
            entry("eip155:8453", "20000", BASE_USDC, "USD Coin"),
            cheap.clone(),
            entry("eip155:42161", "9000", ARBITRUM_USDC, "USD Coin"),
        ],
        "extensions": {"bazaar": {"info": {"input": {"type": "http"}}}}
    });
    let (url, seen, _task) = raw_v2_server(required.clone()).await;
    let signer = CountingSigner::new();
    let x402 = builder(&signer).build().unwrap();
    let response = x402
        .client()
        .unwrap()
        .get(format!("{url}/thing"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let payment = response.payment().unwrap();
    assert_eq!(payment.network.name, "base-sepolia", "the cheapest offer");
    // No receipt from this server: most likely settled, unconfirmed.
    assert_eq!(payment.status, PaymentStatus::Unconfirmed { status: 200 });

    let header = seen.lock().unwrap().clone().unwrap();
    let sent: serde_json::Value = codec::decode(&header, 1 << 16).unwrap();
    assert_eq!(
        sent["accepted"], cheap,
        "accepted must be the offered entry, unmodified"
    );
    assert_eq!(sent["resource"], required["resource"]);
    assert_eq!(sent["extensions"], required["extensions"]);
    assert_eq!(sent["x402Version"], 2);
    // And it verifies against that entry.
    let typed: PaymentRequirements = serde_json::from_value(cheap).unwrap();
    let payload: PaymentPayload = serde_json::from_value(sent).unwrap();
    verify_payment(&payload, &typed, &NetworkRegistry::builtin(), now()).unwrap();

    // Preferences come before price.
    let signer = CountingSigner::new();
    let (url, seen, _task) = raw_v2_server(required).await;
    let response = builder(&signer)
        .prefer_networks(["base"])
        .build()
        .unwrap()
        .client()
        .unwrap()
        .get(format!("{url}/thing"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.payment().unwrap().network.name, "base");
    let header = seen.lock().unwrap().clone().unwrap();
    let sent: serde_json::Value = codec::decode(&header, 1 << 16).unwrap();
    assert_eq!(sent["accepted"]["amount"], "20000");
}

#[tokio::test]
async fn preferences_pick_the_network_on_a_real_gate() {
    let server = support::spawn(Flavor::Dual).await;
    let signer = CountingSigner::new();
    server.fund(reqwest_x402::PaymentSigner::address(&signer), 100 * CENT);
    for (prefer, expected) in [(None, "base"), (Some("base-sepolia"), "base-sepolia")] {
        let mut b = builder(&signer);
        if let Some(network) = prefer {
            b = b.prefer_networks([network]);
        }
        let response = b
            .build()
            .unwrap()
            .client()
            .unwrap()
            .get(format!("{}/multi", server.url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let payment = response.payment().unwrap();
        assert_eq!(payment.network.name, expected);
        assert_eq!(payment.amount_display(), "0.02 USDC");
        assert!(matches!(payment.status, PaymentStatus::Settled { .. }));
    }
}

#[tokio::test]
async fn insufficient_funds_come_back_as_a_rejected_payment() {
    for flavor in [Flavor::Dual, Flavor::V1Only] {
        let server = support::spawn(flavor).await;
        let signer = CountingSigner::new(); // never funded
        let x402 = builder(&signer).build().unwrap();
        let response = x402
            .client()
            .unwrap()
            .get(format!("{}/weather", server.url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 402, "{flavor:?}");
        let payment = response.payment().cloned().unwrap();
        let PaymentStatus::Rejected { reason, message } = &payment.status else {
            panic!("{flavor:?}: {}", payment.status)
        };
        assert_eq!(reason, "insufficient_funds");
        // The facilitator's explanation, from the v1 body (also on a dual server).
        assert!(
            message.as_deref().unwrap_or_default().contains("holds 0"),
            "{flavor:?}: {message:?}"
        );
        assert!(server.ledger().transfers().is_empty());
        // Exactly one payment attempt: a rejected payment is not paid again.
        assert_eq!(signer.signed(), 1);
        assert_eq!(server.payments_seen().len(), 1);
        assert_eq!(x402.history()[0].status, payment.status);
    }
}

#[tokio::test]
async fn an_unsettled_payment_is_reused_when_the_request_is_sent_again() {
    let server = support::spawn(Flavor::Dual).await;
    let signer = CountingSigner::new();
    server.fund(reqwest_x402::PaymentSigner::address(&signer), 100 * CENT);
    let x402 = builder(&signer).build().unwrap();
    let client = x402.client().unwrap();
    for attempt in 1..=2 {
        let response = client
            .get(format!("{}/broken", server.url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 500);
        let payment = response.payment().unwrap();
        assert_eq!(payment.status, PaymentStatus::NotSettled { status: 500 });
        assert_eq!(payment.attempts, attempt);
    }
    assert_eq!(signer.signed(), 1, "one authorization for both attempts");
    let seen = server.payments_seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0], seen[1]);
    assert!(
        server.ledger().transfers().is_empty(),
        "a failing handler is not charged"
    );
    assert_eq!(x402.history().len(), 1);

    // A different request is a different purchase.
    let response = client
        .get(format!("{}/weather", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(signer.signed(), 2);
}

#[tokio::test]
async fn a_request_carrying_its_own_payment_is_not_paid_again() {
    let server = support::spawn(Flavor::Dual).await;
    let signer = CountingSigner::new();
    let client = X402Middleware::builder(signer.clone())
        .build()
        .unwrap()
        .client()
        .unwrap();
    let response = client
        .get(format!("{}/weather", server.url))
        .header(
            "PAYMENT-SIGNATURE",
            codec::encode(&serde_json::json!({"x402Version": 2})),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        400,
        "the server's answer to a bad payment, untouched"
    );
    assert!(response.payment().is_none());
    assert_eq!(signer.signed(), 0);
}
