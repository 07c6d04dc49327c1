//! Sign-in-with-x on every framework, over loopback: a payer who bought an hour of access and
//! lost its token signs in with the wallet that paid and is served within its grant (the token
//! delivered again, nothing charged); a sign-in by another wallet, with a nonce used before,
//! with an expired message or for another domain is refused with its own reason and a fresh
//! challenge, and the handler does not run.

use x402_protocol::ProtocolVersion;
use x402_protocol::eip3009::LocalSigner;
use x402_protocol::siwx::{self, SiwxDeclaration};
use x402_tests::apps::{actix_app, axum_app, rocket_app};
use x402_tests::client::{Challenge, Fault, pay};
use x402_tests::facilitator::{Mode, start};
use x402_tests::scenarios::{FACILITATOR_TIMEOUT, Launch, ServerConfig};

struct Answer {
    status: u16,
    token: Option<String>,
    reason: Option<String>,
    body: String,
    sign_in: Option<SiwxDeclaration>,
}

async fn get(client: &reqwest::Client, url: &str, header: Option<(&str, &str)>) -> Answer {
    let mut request = client.get(url);
    if let Some((name, value)) = header {
        request = request.header(name, value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let token = response
        .headers()
        .get("x402-entitlement")
        .map(|v| v.to_str().unwrap().to_owned());
    let required = response
        .headers()
        .get("payment-required")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.text().await.unwrap();
    let sign_in = (status == 402).then(|| {
        let challenge = Challenge::parse(required.as_deref(), body.as_bytes());
        let extensions = challenge.v2.unwrap().extensions.expect("v2 extensions");
        serde_json::from_value(extensions[siwx::EXTENSION_KEY].clone())
            .expect("a sign-in-with-x declaration")
    });
    let reason = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_owned));
    Answer {
        status,
        token,
        reason,
        body,
        sign_in,
    }
}

/// A `SIGN-IN-WITH-X` header for `declaration`, after `edit` changed what is signed.
fn sign_in(
    declaration: &SiwxDeclaration,
    wallet: &LocalSigner,
    edit: impl FnOnce(&mut siwx::SiwxInfo),
) -> String {
    let mut info = declaration.info.clone();
    edit(&mut info);
    let chain = &declaration.supported_chains[0];
    siwx::encode_header(&siwx::sign_evm(&info, chain, wallet).unwrap())
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
    // No cookie jar: the client has lost its token.
    let client = reqwest::Client::new();
    let hourly = format!("{}/hourly", server.base);
    let hits = || server.hits.load(std::sync::atomic::Ordering::SeqCst);
    let settled = || facilitator.ledger.transfers().len();

    // The 402 of a route that sells access declares the extension, for this resource.
    let first = get(&client, &hourly, None).await;
    assert_eq!(first.status, 402, "{framework}");
    let declaration = first.sign_in.expect("declared");
    assert_eq!(declaration.info.uri, hourly, "{framework}");
    assert_eq!(
        declaration.supported_chains[0].chain_id, "eip155:84532",
        "{framework}"
    );
    // Each 402 carries a nonce of its own.
    let again = get(&client, &hourly, None).await.sign_in.unwrap();
    assert_ne!(again.info.nonce, declaration.info.nonce, "{framework}");

    // Pay for an hour.
    let response = client.get(&hourly).send().await.unwrap();
    let header = response
        .headers()
        .get("payment-required")
        .map(|v| v.to_str().unwrap().to_owned());
    let challenge = Challenge::parse(header.as_deref(), &response.bytes().await.unwrap());
    let (_, payment) = pay(&challenge, ProtocolVersion::V2, None, &payer, Fault::None);
    let paid = get(&client, &hourly, Some(("payment-signature", &payment))).await;
    assert_eq!(paid.status, 200, "{framework}: {}", paid.body);
    let token = paid.token.expect("a grant token");
    assert_eq!((hits(), settled()), (1, 1), "{framework}");

    // Token lost: sign in with the wallet that paid.
    let offered = get(&client, &hourly, None).await.sign_in.unwrap();
    let header = sign_in(&offered, &payer, |_| {});
    let back = get(&client, &hourly, Some((siwx::HEADER, &header))).await;
    assert_eq!(back.status, 200, "{framework}: {}", back.body);
    assert_eq!(back.body, "hourly", "{framework}");
    assert_eq!(
        back.token.as_deref(),
        Some(token.as_str()),
        "{framework}: the token again"
    );
    assert_eq!(
        (hits(), settled()),
        (2, 1),
        "{framework}: served, not charged"
    );
    // The token it got back works like the original.
    let reuse = get(&client, &hourly, Some(("x402-entitlement", &token))).await;
    assert_eq!(reuse.status, 200, "{framework}");
    assert_eq!(hits(), 3, "{framework}");

    // The same sign-in again: its nonce is spent.
    let replayed = get(&client, &hourly, Some((siwx::HEADER, &header))).await;
    assert_eq!(replayed.status, 402, "{framework}");
    assert_eq!(
        replayed.reason.as_deref(),
        Some("invalid_siwx_nonce"),
        "{framework}"
    );
    assert!(
        replayed.sign_in.is_some(),
        "{framework}: a fresh challenge to sign"
    );

    // Another wallet signs in correctly but bought nothing here.
    let stranger = LocalSigner::random();
    let offered = get(&client, &hourly, None).await.sign_in.unwrap();
    let other = get(
        &client,
        &hourly,
        Some((siwx::HEADER, &sign_in(&offered, &stranger, |_| {}))),
    )
    .await;
    assert_eq!(other.status, 402, "{framework}");
    assert_eq!(
        other.reason.as_deref(),
        Some("siwx_no_grant"),
        "{framework}"
    );

    // An expired message, signed by the payer.
    let offered = get(&client, &hourly, None).await.sign_in.unwrap();
    let expired = sign_in(&offered, &payer, |info| {
        let past = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
            - 60_000;
        info.expiration_time = Some(siwx::format_timestamp(past));
    });
    let refused = get(&client, &hourly, Some((siwx::HEADER, &expired))).await;
    assert_eq!(refused.status, 402, "{framework}");
    assert_eq!(
        refused.reason.as_deref(),
        Some("invalid_siwx_expired"),
        "{framework}"
    );

    // A message for another domain, signed by the payer.
    let offered = get(&client, &hourly, None).await.sign_in.unwrap();
    let elsewhere = sign_in(&offered, &payer, |info| {
        info.domain = "evil.example".to_owned();
    });
    let refused = get(&client, &hourly, Some((siwx::HEADER, &elsewhere))).await;
    assert_eq!(refused.status, 402, "{framework}");
    assert_eq!(
        refused.reason.as_deref(),
        Some("invalid_siwx_domain_mismatch"),
        "{framework}"
    );

    // A signature that is not the payer's for the payer's address.
    let offered = get(&client, &hourly, None).await.sign_in.unwrap();
    let mut forged =
        siwx::sign_evm(&offered.info, &offered.supported_chains[0], &stranger).unwrap();
    forged.address = payer.address().to_checksum(None);
    let refused = get(
        &client,
        &hourly,
        Some((siwx::HEADER, &siwx::encode_header(&forged))),
    )
    .await;
    assert_eq!(refused.status, 402, "{framework}");
    assert_eq!(
        refused.reason.as_deref(),
        Some("invalid_siwx_signature"),
        "{framework}"
    );

    assert_eq!(
        (hits(), settled()),
        (3, 1),
        "{framework}: no refusal ran the handler"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_returning_payer_signs_in_on_axum() {
    check("axum", axum_app::launch).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_returning_payer_signs_in_on_actix_web() {
    check("actix-web", actix_app::launch).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_returning_payer_signs_in_on_rocket() {
    check("rocket", rocket_app::launch).await;
}
