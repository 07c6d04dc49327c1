//! `x402ctl serve` as a real process on loopback, driven by the runtime's `HttpFacilitator`
//! (verify, settle, supported) and by raw HTTP (malformed bodies, discovery), and used as the
//! facilitator of a paid server that the reqwest client pays.

#[path = "../../integrations/reqwest/tests/support/server.rs"]
mod server;

use std::process::Stdio;

use reqwest_x402::{PaymentResponseExt, PaymentStatus, X402Middleware};
use tokio::io::{AsyncBufReadExt, BufReader};
use x402_protocol::client::sign_payment;
use x402_protocol::eip3009::LocalSigner;
use x402_protocol::facilitator::{FacilitatorRequest, PaymentRequirements};
use x402_protocol::{NetworkRegistry, ProtocolVersion, U256, v1, v2};
use x402_runtime::Facilitator;
use x402_runtime::facilitator::HttpFacilitator;

/// A running `x402ctl serve`, stopped when dropped.
struct Serve {
    url: String,
    child: tokio::process::Child,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

async fn serve(fund: &[String]) -> Serve {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_x402ctl"));
    command.args(["serve", "--dev", "--port", "0"]);
    for f in fund {
        command.args(["--fund", f]);
    }
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = tokio::time::timeout(std::time::Duration::from_secs(30), lines.next_line())
        .await
        .expect("serve prints its URL")
        .unwrap()
        .unwrap();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    Serve { url, child }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn requirement(version: ProtocolVersion) -> PaymentRequirements {
    match version {
        ProtocolVersion::V1 => PaymentRequirements::V1(v1::PaymentRequirements {
            scheme: "exact".into(),
            network: "base-sepolia".into(),
            max_amount_required: U256::from(10_000u64),
            resource: "http://api.test/weather".into(),
            description: String::new(),
            mime_type: String::new(),
            output_schema: None,
            pay_to: server::PAY_TO.into(),
            max_timeout_seconds: 300,
            asset: "0x036CbD53842c5426634e7929541eC2318f3dCF7e".into(),
            extra: Some(serde_json::json!({"name": "USDC", "version": "2"})),
        }),
        ProtocolVersion::V2 => PaymentRequirements::V2(v2::PaymentRequirements {
            scheme: "exact".into(),
            network: "eip155:84532".into(),
            amount: U256::from(10_000u64),
            asset: "0x036CbD53842c5426634e7929541eC2318f3dCF7e".into(),
            pay_to: server::PAY_TO.into(),
            max_timeout_seconds: 300,
            extra: Some(serde_json::json!({"name": "USDC", "version": "2"})),
        }),
    }
}

fn signed(payer: &LocalSigner, version: ProtocolVersion) -> FacilitatorRequest {
    let requirements = requirement(version);
    let payment = sign_payment(
        &requirements,
        None,
        payer,
        &NetworkRegistry::builtin(),
        now(),
    )
    .unwrap();
    FacilitatorRequest::new(payment, requirements)
}

#[tokio::test]
async fn http_facilitator_verifies_and_settles_against_x402ctl_serve() {
    let payer = LocalSigner::random();
    // Enough for exactly two payments of 0.01 USDC on base-sepolia.
    let serve = serve(&[format!("{}=0.02@base-sepolia", payer.address())]).await;
    let facilitator = HttpFacilitator::new(serve.url.clone()).unwrap();

    let supported = facilitator.supported().await.unwrap();
    assert!(supported.supports(ProtocolVersion::V1, "exact", "base-sepolia"));
    assert!(supported.supports(ProtocolVersion::V2, "exact", "eip155:84532"));

    for version in [ProtocolVersion::V1, ProtocolVersion::V2] {
        let request = signed(&payer, version);
        let verdict = facilitator.verify(&request).await.unwrap();
        assert!(verdict.is_valid, "{version}: {verdict:?}");
        assert_eq!(
            verdict.payer.as_deref(),
            Some(payer.address().to_checksum(None).as_str())
        );
        let settled = facilitator.settle(&request).await.unwrap();
        assert!(settled.success, "{version}: {settled:?}");
        assert_eq!(settled.transaction.len(), 66);
        assert_eq!(settled.network, request.payment_payload.network());
        // The same settle call again (a retry): the same settlement's outcome, not a second
        // transfer (the funds check below proves nothing moved twice).
        let again = facilitator.settle(&request).await.unwrap();
        assert!(again.success, "{again:?}");
        assert_eq!(again.transaction, settled.transaction);
        // Another authorization reusing the nonce: refused, with the reason, as a 200 answer.
        let mut reused = serde_json::to_value(&request).unwrap();
        reused["paymentPayload"]["payload"]["authorization"]["value"] = serde_json::json!("9999");
        let reused: FacilitatorRequest = serde_json::from_value(reused).unwrap();
        let refused = facilitator.settle(&reused).await.unwrap();
        assert!(!refused.success);
        assert_eq!(
            refused.error_reason.as_deref(),
            Some("invalid_exact_evm_nonce_already_used")
        );
        assert_eq!(refused.transaction, "");
    }
    // Both payments moved the funds: a third does not fit.
    let verdict = facilitator
        .verify(&signed(&payer, ProtocolVersion::V2))
        .await
        .unwrap();
    assert!(!verdict.is_valid);
    assert_eq!(
        verdict.invalid_reason.as_deref(),
        Some("insufficient_funds")
    );
}

#[tokio::test]
async fn malformed_requests_get_400_with_a_reason_and_discovery_is_empty() {
    let serve = serve(&[]).await;
    let http = reqwest::Client::new();
    for (path, body) in [
        ("verify", "not json"),
        ("settle", r#"{"x402Version":2}"#),
        (
            "verify",
            r#"{"x402Version":2,"paymentPayload":{"x402Version":7},"paymentRequirements":{}}"#,
        ),
    ] {
        let response = http
            .post(format!("{}/{path}", serve.url))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{path} {body}");
        let answer: serde_json::Value = response.json().await.unwrap();
        assert_eq!(answer["error"], "invalid_request");
        assert!(answer["message"].as_str().unwrap().len() > 10, "{answer}");
    }
    let discovery: serde_json::Value = http
        .get(format!(
            "{}/discovery/resources?limit=500&offset=3",
            serve.url
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        discovery,
        serde_json::json!({"x402Version": 2, "items": [], "pagination": {"limit": 100, "offset": 3, "total": 0}})
    );
    let bad = http
        .get(format!("{}/discovery/resources?limit=lots", serve.url))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paid_server_can_use_x402ctl_serve_as_its_facilitator() {
    let payer = LocalSigner::random();
    let serve = serve(&[format!("{}=1", payer.address())]).await;
    let url = serve.url.clone();
    let paid = server::spawn_with(server::Flavor::Dual, move |b| b.facilitator(url)).await;
    let x402 = X402Middleware::builder(payer).build().unwrap();
    let response = x402
        .client()
        .unwrap()
        .get(format!("{}/weather", paid.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let payment = response.payment().unwrap();
    assert!(
        matches!(payment.status, PaymentStatus::Settled { .. }),
        "{}",
        payment.status
    );
    assert_eq!(response.settlement().unwrap().network, "eip155:84532");
}
