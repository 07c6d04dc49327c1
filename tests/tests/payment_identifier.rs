//! The v2 `payment-identifier` extension on every framework, over loopback: the 402 declares
//! it in the extension's shape; a payment sent again with the same id for the same request gets
//! the byte-identical kept answer and is not charged again (even re-signed); the same id for
//! another request is refused with 409.

use x402_protocol::codec;
use x402_protocol::eip3009::LocalSigner;
use x402_protocol::facilitator::PaymentPayload;
use x402_protocol::{ProtocolVersion, payment_identifier};
use x402_tests::apps::{actix_app, axum_app, rocket_app};
use x402_tests::client::{Challenge, Fault, pay};
use x402_tests::facilitator::{Mode, start};
use x402_tests::scenarios::{FACILITATOR_TIMEOUT, Launch, ServerConfig};

struct Answer {
    status: u16,
    receipt: Option<String>,
    body: Vec<u8>,
}

async fn get(client: &reqwest::Client, url: &str, payment: Option<&str>) -> Answer {
    let mut request = client.get(url);
    if let Some(payment) = payment {
        request = request.header("payment-signature", payment);
    }
    let response = request.send().await.unwrap();
    Answer {
        status: response.status().as_u16(),
        receipt: response
            .headers()
            .get("payment-response")
            .map(|v| v.to_str().unwrap().to_owned()),
        body: response.bytes().await.unwrap().to_vec(),
    }
}

async fn challenge(client: &reqwest::Client, url: &str) -> Challenge {
    let response = client.get(url).send().await.unwrap();
    assert_eq!(response.status(), 402);
    let header = response
        .headers()
        .get("payment-required")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.bytes().await.unwrap();
    Challenge::parse(header.as_deref(), &body)
}

/// A v2 payment for `url`'s 402 carrying payment id `id` (echoing the server's declaration, as
/// the reference client does).
async fn pay_with_id(client: &reqwest::Client, url: &str, payer: &LocalSigner, id: &str) -> String {
    let challenge = challenge(client, url).await;
    let declared = challenge
        .v2
        .as_ref()
        .and_then(|r| r.extensions.clone())
        .expect("a v2 402 with extensions");
    let (_, header) = pay(&challenge, ProtocolVersion::V2, None, payer, Fault::None);
    let mut payment: serde_json::Value = codec::decode(&header, 1 << 16).unwrap();
    let mut extensions = declared;
    payment_identifier::append_id(&mut extensions, id).unwrap();
    payment["extensions"] = extensions;
    // Still a payment the protocol types read.
    let _: PaymentPayload = serde_json::from_value(payment.clone()).unwrap();
    codec::encode(&payment)
}

async fn check(framework: &str, launch: Launch) {
    let facilitator = start(Mode::Honest).await;
    let payer = LocalSigner::random();
    facilitator.fund_everywhere(payer.address());
    let server = launch(ServerConfig {
        facilitator_url: facilitator.url.clone(),
        facilitator_timeout: FACILITATOR_TIMEOUT,
        pay_to: "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
        upto_facilitator: None,
        fee_payer: None,
        chain_checks: None,
    })
    .await;
    let client = reqwest::Client::new();
    let weather = format!("{}/weather", server.base);
    let hits = || server.hits.load(std::sync::atomic::Ordering::SeqCst);

    // The declaration, in the extension's shape: `info.required` and a JSON schema.
    let offered = challenge(&client, &weather).await;
    let declaration = offered.v2.as_ref().unwrap().extensions.as_ref().unwrap()
        [payment_identifier::EXTENSION_KEY]
        .clone();
    assert_eq!(declaration["info"]["required"], false, "{framework}");
    assert!(declaration["schema"].is_object(), "{framework}");

    let id = payment_identifier::generate_id();
    let first_payment = pay_with_id(&client, &weather, &payer, &id).await;
    let first = get(&client, &weather, Some(&first_payment)).await;
    assert_eq!(first.status, 200, "{framework}");
    assert!(first.receipt.is_some(), "{framework}");
    assert_eq!(hits(), 1, "{framework}");

    // The same payment and id again: the kept answer, byte for byte.
    let again = get(&client, &weather, Some(&first_payment)).await;
    assert_eq!(again.status, 200, "{framework}");
    assert_eq!(again.body, first.body, "{framework}");
    assert_eq!(again.receipt, first.receipt, "{framework}");

    // Re-signed under the same id for the same request: still the kept answer, and the new
    // authorization is not charged.
    let resigned = pay_with_id(&client, &weather, &payer, &id).await;
    assert_ne!(resigned, first_payment);
    let third = get(&client, &weather, Some(&resigned)).await;
    assert_eq!(third.status, 200, "{framework}");
    assert_eq!(third.body, first.body, "{framework}");
    assert_eq!(hits(), 1, "{framework}: the handler ran once");
    assert_eq!(
        facilitator.ledger.transfers().len(),
        1,
        "{framework}: charged once"
    );

    // The same id for another request: 409.
    let cheap = format!("{}/cheap", server.base);
    let other = pay_with_id(&client, &cheap, &payer, &id).await;
    let conflict = get(&client, &cheap, Some(&other)).await;
    assert_eq!(conflict.status, 409, "{framework}");
    let body: serde_json::Value = serde_json::from_slice(&conflict.body).unwrap();
    assert_eq!(body["error"], "payment_identifier_conflict", "{framework}");
    assert_eq!(hits(), 1, "{framework}");
    assert_eq!(facilitator.ledger.transfers().len(), 1, "{framework}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payment_ids_on_axum() {
    check("axum", axum_app::launch).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payment_ids_on_actix_web() {
    check("actix-web", actix_app::launch).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payment_ids_on_rocket() {
    check("rocket", rocket_app::launch).await;
}
