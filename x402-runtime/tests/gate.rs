//! The gate end to end with the embedded facilitator and its dev ledger: challenges, payments of
//! both generations, replays, malformed input, handler failures, settlement failures and
//! facilitator faults.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use x402_protocol::codec;
use x402_protocol::eip3009::LocalSigner;
use x402_protocol::facilitator::{
    FacilitatorRequest, SettleResponse, SupportedResponse, VerifyResponse,
};
use x402_protocol::{Address, Price, PriceError, ProtocolVersion, Reason, U256, headers, v1, v2};
use x402_runtime::facilitator::{EmbeddedFacilitator, Facilitator, FacilitatorError};
use x402_runtime::{Completion, Decision, RequestView, RouteSpec, SettleMode};

use crate::common;

use common::{PAY_TO, Req, World, pay_to, rejected, world, world_with};

static WEATHER: RouteSpec = RouteSpec::fixed("0.01 USDC")
    .networks(&["base-sepolia"])
    .description("Current weather")
    .mime_type("application/json");
static MULTI: RouteSpec = RouteSpec::fixed("$0.02").networks(&["base", "arbitrum", "base-sepolia"]);
static BEFORE: RouteSpec = RouteSpec::fixed("$0.01")
    .networks(&["base-sepolia"])
    .settle(SettleMode::Before);
static DYNAMIC: RouteSpec = RouteSpec::dynamic(by_size).networks(&["base-sepolia"]);
static NO_PAY_TO_NETWORK: RouteSpec = RouteSpec::fixed("$0.01");

fn by_size(request: &dyn RequestView) -> Result<Price, PriceError> {
    if request.path_and_query().contains("size=large") {
        Price::usd("0.05")
    } else {
        Price::usd("0.01")
    }
}

#[tokio::test]
async fn a_challenge_carries_the_v1_body_and_the_v2_header() {
    let w = world();
    let decision = w
        .gate
        .evaluate(&Req::get("/weather?city=Oslo"), &WEATHER)
        .await;
    let Decision::Challenge(rejection) = decision else {
        panic!("no payment must give a challenge")
    };
    let response = rejection.to_response();
    assert_eq!(response.status, 402);
    assert_eq!(response.header("content-type"), Some("application/json"));

    let body: v1::PaymentRequired = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(body.error, "payment_required");
    let [entry] = body.accepts.as_slice() else {
        panic!("one v1 entry")
    };
    assert_eq!(entry.network, "base-sepolia");
    assert_eq!(entry.max_amount_required, U256::from(10_000u64));
    assert_eq!(entry.asset, "0x036CbD53842c5426634e7929541eC2318f3dCF7e");
    assert_eq!(entry.pay_to, PAY_TO);
    assert_eq!(entry.resource, "http://api.test/weather?city=Oslo");
    assert_eq!(entry.description, "Current weather");
    assert_eq!(entry.mime_type, "application/json");
    assert_eq!(entry.max_timeout_seconds, 300);
    assert_eq!(
        entry.extra,
        Some(serde_json::json!({"name": "USDC", "version": "2"}))
    );

    let required: v2::PaymentRequired =
        codec::decode(response.header("payment-required").unwrap(), 1 << 16).unwrap();
    assert_eq!(required.error.as_deref(), Some("payment_required"));
    let resource = required.resource.unwrap();
    assert_eq!(resource.url, "http://api.test/weather?city=Oslo");
    assert_eq!(resource.description, "Current weather");
    let [entry] = required.accepts.as_slice() else {
        panic!("one v2 entry")
    };
    assert_eq!(entry.network, "eip155:84532");
    assert_eq!(entry.amount, U256::from(10_000u64));
    assert_eq!(entry.pay_to, PAY_TO);
}

#[tokio::test]
async fn valid_payments_of_both_generations_are_verified_then_settled() {
    let w = world();
    for version in [ProtocolVersion::V1, ProtocolVersion::V2] {
        let network = if version == ProtocolVersion::V1 {
            "base-sepolia"
        } else {
            "eip155:84532"
        };
        let before = (
            w.balance("base-sepolia", w.payer.address()),
            w.balance("base-sepolia", pay_to()),
        );
        let (name, value) = w
            .pay(&WEATHER, Req::get("/weather"), version, network)
            .await;
        let admission = w
            .gate
            .evaluate(&Req::get("/weather").with(name, value), &WEATHER)
            .await
            .into_result()
            .unwrap_or_else(|r| panic!("{version}: {r}"));
        let payment = &admission.payment;
        assert_eq!(payment.payer(), w.payer.address());
        assert_eq!(payment.amount_display(), "0.01 USDC");
        assert_eq!(payment.version(), version);
        assert_eq!(payment.network().name, "base-sepolia");
        assert_eq!(payment.transaction(), None, "settles after the handler");
        // Verified, not yet settled: nothing moved.
        assert_eq!(w.balance("base-sepolia", pay_to()), before.1);

        let Completion::Deliver { headers, .. } = w.gate.finish(admission.pending, 200).await
        else {
            panic!("settlement must succeed")
        };
        let receipt = headers
            .iter()
            .find(|(n, _)| *n == version.settlement_header())
            .unwrap_or_else(|| panic!("{version} receipt header"));
        let receipt: SettleResponse = codec::decode(&receipt.1, 4096).unwrap();
        assert!(receipt.success);
        assert_eq!(receipt.network, network);
        assert_eq!(receipt.transaction.len(), 66);
        assert_eq!(
            w.balance("base-sepolia", w.payer.address()),
            before.0 - U256::from(10_000u64)
        );
        assert_eq!(
            w.balance("base-sepolia", pay_to()),
            before.1 + U256::from(10_000u64)
        );
    }
}

#[tokio::test]
async fn a_replayed_payment_is_rejected_with_its_reason() {
    let w = world();
    let request = w
        .paid(&WEATHER, "/weather", ProtocolVersion::V2, "eip155:84532")
        .await;
    let first = w
        .gate
        .evaluate(&request, &WEATHER)
        .await
        .into_result()
        .unwrap();
    assert!(matches!(
        w.gate.finish(first.pending, 200).await,
        Completion::Deliver { .. }
    ));
    // Sent again to the route it paid for: the journal knows it settled. This gate was given
    // only a status, so there is no kept answer to send again; the receipt says what was paid.
    let again = rejected(w.gate.evaluate(&request, &WEATHER).await);
    assert_eq!(again.reason(), &Reason::PAYMENT_ALREADY_SETTLED);
    let answer = again.to_response();
    assert_eq!(answer.status, 409);
    let receipt = answer.header("payment-response").expect("a receipt");
    let receipt: x402_protocol::facilitator::SettleResponse =
        x402_protocol::codec::decode(receipt, 4096).unwrap();
    assert!(receipt.success);

    // Sent to another resource, it is a replay.
    let elsewhere = Req {
        path: "/elsewhere",
        headers: request.headers.clone(),
    };
    let replay = rejected(w.gate.evaluate(&elsewhere, &WEATHER).await);
    assert_eq!(replay.reason(), &Reason::NONCE_ALREADY_USED);
    let response = replay.to_response();
    assert_eq!(response.status, 402);
    assert!(
        response.header("payment-required").is_some(),
        "a replay still says how to pay"
    );
    let body: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(body["error"], "invalid_exact_evm_nonce_already_used");
    assert_eq!(body["payer"], w.payer.address().to_checksum(None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_64_concurrent_copies_of_one_payment_exactly_one_is_verified() {
    let w = world();
    let (name, value) = w
        .pay(
            &WEATHER,
            Req::get("/weather"),
            ProtocolVersion::V2,
            "eip155:84532",
        )
        .await;
    let request = Req::get("/weather").with(name, value);
    let start = Arc::new(tokio::sync::Barrier::new(64));
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let (gate, request, start) = (w.gate.clone(), request.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                gate.evaluate(&request, &WEATHER).await
            })
        })
        .collect();
    let mut verified = 0;
    for task in tasks {
        match task.await.unwrap() {
            Decision::Admitted(_) => verified += 1,
            // A copy that finds the journal record is told the payment is being served; one
            // that loses the race before the record is written is refused as a replay.
            other => {
                let reason = rejected(other).reason().clone();
                assert!(
                    reason == Reason::PAYMENT_IN_PROGRESS || reason == Reason::NONCE_ALREADY_USED,
                    "{reason:?}"
                );
            }
        }
    }
    assert_eq!(verified, 1);
}

#[tokio::test]
async fn malformed_headers_get_a_4xx_with_a_reason() {
    let w = world();
    let v2_json_in_v1_header = {
        let (_, value) = w
            .pay(
                &WEATHER,
                Req::get("/weather"),
                ProtocolVersion::V2,
                "eip155:84532",
            )
            .await;
        value
    };
    let cases = [
        (
            headers::PAYMENT_SIGNATURE,
            "%%% not base64 %%%".to_owned(),
            400,
            Reason::INVALID_PAYLOAD,
        ),
        (
            headers::X_PAYMENT,
            codec::encode_bytes(b"not json"),
            400,
            Reason::INVALID_PAYLOAD,
        ),
        (
            headers::X_PAYMENT,
            codec::encode(&serde_json::json!({"x402Version": 1})),
            400,
            Reason::INVALID_PAYLOAD,
        ),
        (
            headers::PAYMENT_SIGNATURE,
            "".to_owned(),
            400,
            Reason::INVALID_PAYLOAD,
        ),
        (
            headers::X_PAYMENT,
            v2_json_in_v1_header,
            402,
            Reason::INVALID_X402_VERSION,
        ),
        (
            headers::PAYMENT_SIGNATURE,
            "A".repeat(20_000),
            431,
            Reason::HEADER_TOO_LARGE,
        ),
    ];
    for (name, value, status, reason) in cases {
        let rejection = rejected(
            w.gate
                .evaluate(&Req::get("/weather").with(name, value), &WEATHER)
                .await,
        );
        assert_eq!(
            (rejection.status(), rejection.reason()),
            (status, &reason),
            "{name}: {rejection}"
        );
        let body: serde_json::Value =
            serde_json::from_slice(&rejection.to_response().body).unwrap();
        assert!(
            body["error"].is_string() && body["message"].is_string(),
            "{body}"
        );
    }
}

#[tokio::test]
async fn a_failing_handler_is_not_charged_and_the_authorization_can_be_retried() {
    let w = world();
    let request = w
        .paid(&WEATHER, "/weather", ProtocolVersion::V1, "base-sepolia")
        .await;
    let payee_before = w.balance("base-sepolia", pay_to());

    let admission = w
        .gate
        .evaluate(&request, &WEATHER)
        .await
        .into_result()
        .unwrap();
    let Completion::Deliver { headers, .. } = w.gate.finish(admission.pending, 500).await else {
        panic!("a failed handler's response is delivered as is")
    };
    assert!(headers.is_empty(), "no receipt for an unsettled payment");
    assert_eq!(
        w.balance("base-sepolia", pay_to()),
        payee_before,
        "nothing settled"
    );
    assert!(w.gate.dev_ledger().unwrap().transfers().is_empty());

    // The unused authorization was released: the same header pays once the handler works.
    let admission = w
        .gate
        .evaluate(&request, &WEATHER)
        .await
        .into_result()
        .unwrap();
    assert!(matches!(
        w.gate.finish(admission.pending, 200).await,
        Completion::Deliver { .. }
    ));
    assert_eq!(
        w.balance("base-sepolia", pay_to()),
        payee_before + U256::from(10_000u64)
    );
}

#[tokio::test]
async fn expired_and_unfunded_payments_are_rejected() {
    let w = world();
    let request = w
        .paid(&WEATHER, "/weather", ProtocolVersion::V2, "eip155:84532")
        .await;
    w.clock.advance(300);
    let rejection = rejected(w.gate.evaluate(&request, &WEATHER).await);
    assert_eq!(rejection.reason(), &Reason::VALID_BEFORE);
    assert_eq!(rejection.status(), 402);

    let broke = World {
        payer: LocalSigner::random(),
        ..world()
    };
    let request = broke
        .paid(&WEATHER, "/weather", ProtocolVersion::V2, "eip155:84532")
        .await;
    let rejection = rejected(broke.gate.evaluate(&request, &WEATHER).await);
    assert_eq!(rejection.reason(), &Reason::INSUFFICIENT_FUNDS);
}

#[tokio::test]
async fn settle_before_routes_settle_before_the_handler() {
    let w = world();
    let request = w
        .paid(&BEFORE, "/report", ProtocolVersion::V2, "eip155:84532")
        .await;
    let mut admission = w
        .gate
        .evaluate(&request, &BEFORE)
        .await
        .into_result()
        .unwrap();
    // Admitted, not yet settled: the request's other extractors have not all accepted yet.
    assert!(admission.pending.settles_before());
    assert!(w.gate.dev_ledger().unwrap().transfers().is_empty());
    // Every extractor accepted: settle, then the handler runs (and fails here).
    let transaction = w
        .gate
        .settle_before(&mut admission.pending)
        .await
        .unwrap()
        .expect("settled before the handler");
    assert_eq!(w.gate.dev_ledger().unwrap().transfers().len(), 1);
    let Completion::Deliver { headers, private } = w.gate.finish(admission.pending, 500).await
    else {
        panic!()
    };
    assert!(private);
    let receipt: SettleResponse = codec::decode(&headers[0].1, 4096).unwrap();
    assert_eq!(receipt.transaction, transaction);
}

#[tokio::test]
async fn a_settle_before_payment_whose_request_is_refused_later_is_not_charged() {
    let w = world();
    let request = w
        .paid(&BEFORE, "/report", ProtocolVersion::V2, "eip155:84532")
        .await;
    let admission = w
        .gate
        .evaluate(&request, &BEFORE)
        .await
        .into_result()
        .unwrap();
    // A body extractor after `Payment` refused the request (422): the handler never ran, so
    // settle_before was never called.
    let Completion::Deliver { headers, .. } = w.gate.finish(admission.pending, 422).await else {
        panic!()
    };
    assert!(headers.is_empty());
    assert!(w.gate.dev_ledger().unwrap().transfers().is_empty());
    // The authorization is the client's again: the same header is admitted once more.
    assert!(
        w.gate
            .evaluate(&request, &BEFORE)
            .await
            .into_result()
            .is_ok()
    );
}

#[tokio::test]
async fn multi_network_routes_offer_each_network_and_accept_each() {
    let w = world();
    let Decision::Challenge(challenge) = w.gate.evaluate(&Req::get("/multi"), &MULTI).await else {
        panic!()
    };
    let response = challenge.to_response();
    let required: v2::PaymentRequired =
        codec::decode(response.header("payment-required").unwrap(), 1 << 16).unwrap();
    let networks: Vec<_> = required
        .accepts
        .iter()
        .map(|r| r.network.as_str())
        .collect();
    assert_eq!(networks, ["eip155:8453", "eip155:42161", "eip155:84532"]);
    assert!(
        required
            .accepts
            .iter()
            .all(|r| r.amount == U256::from(20_000u64))
    );
    // Legacy v1 clients do not know "arbitrum", so the v1 body leaves it out.
    let body: v1::PaymentRequired = serde_json::from_slice(&response.body).unwrap();
    let v1_networks: Vec<_> = body.accepts.iter().map(|r| r.network.as_str()).collect();
    assert_eq!(v1_networks, ["base", "base-sepolia"]);

    for network in ["eip155:8453", "eip155:42161"] {
        let (name, value) = w
            .pay(&MULTI, Req::get("/multi"), ProtocolVersion::V2, network)
            .await;
        let admission = w
            .gate
            .evaluate(&Req::get("/multi").with(name, value), &MULTI)
            .await
            .into_result()
            .unwrap();
        assert_eq!(admission.payment.network().caip2, network);
    }
}

#[tokio::test]
async fn dynamic_prices_follow_the_request() {
    let w = world();
    for (path, amount) in [
        ("/data?size=small", 10_000u64),
        ("/data?size=large", 50_000),
    ] {
        let Decision::Challenge(challenge) = w.gate.evaluate(&Req::get(path), &DYNAMIC).await
        else {
            panic!()
        };
        assert_eq!(
            challenge.challenge().unwrap().options()[0].amount,
            U256::from(amount)
        );
    }
    // A payment for the small price does not buy the large one.
    let (name, value) = w
        .pay(
            &DYNAMIC,
            Req::get("/data?size=small"),
            ProtocolVersion::V2,
            "eip155:84532",
        )
        .await;
    let rejection = rejected(
        w.gate
            .evaluate(&Req::get("/data?size=large").with(name, value), &DYNAMIC)
            .await,
    );
    // The client's `accepted` names the small price, which this request does not ask.
    assert_eq!(rejection.reason(), &Reason::ACCEPTED_MISMATCH);
    assert!(
        rejection.message().contains("accepted.amount"),
        "{}",
        rejection.message()
    );
}

#[tokio::test]
async fn misconfigured_routes_fail_closed_with_an_explanation() {
    let w = world();
    let rejection = rejected(w.gate.evaluate(&Req::get("/x"), &NO_PAY_TO_NETWORK).await);
    assert_eq!(
        (rejection.status(), rejection.reason()),
        (500, &Reason::NOT_CONFIGURED)
    );
    assert!(
        rejection.message().contains("network"),
        "{}",
        rejection.message()
    );
}

/// A facilitator that misbehaves in one chosen way.
enum Fault {
    Slow(Duration),
    OtherPayer,
    SettleFails,
}

#[async_trait]
impl Facilitator for Fault {
    async fn verify(
        &self,
        request: &FacilitatorRequest,
    ) -> Result<VerifyResponse, FacilitatorError> {
        match self {
            Fault::Slow(delay) => {
                tokio::time::sleep(*delay).await;
                Ok(VerifyResponse::valid(
                    request
                        .payment_payload
                        .payload()
                        .claimed_payer()
                        .unwrap()
                        .to_string(),
                ))
            }
            Fault::OtherPayer => Ok(VerifyResponse::valid(Address::repeat_byte(9).to_string())),
            Fault::SettleFails => Ok(VerifyResponse::valid(
                request
                    .payment_payload
                    .payload()
                    .claimed_payer()
                    .unwrap()
                    .to_string(),
            )),
        }
    }
    async fn settle(
        &self,
        request: &FacilitatorRequest,
    ) -> Result<SettleResponse, FacilitatorError> {
        Ok(SettleResponse::failure(
            "invalid_exact_evm_insufficient_balance",
            "balance changed since verification",
            request.payment_payload.network(),
            None,
        ))
    }
    async fn supported(&self) -> Result<SupportedResponse, FacilitatorError> {
        Ok(SupportedResponse::default())
    }
}

#[tokio::test]
async fn facilitator_faults_map_to_502_504_and_402() {
    // Unreachable: nothing listens on the port.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let w = world_with(|b| b.facilitator(url));
    let request = w
        .paid(&WEATHER, "/weather", ProtocolVersion::V2, "eip155:84532")
        .await;
    let rejection = rejected(w.gate.evaluate(&request, &WEATHER).await);
    assert_eq!(
        (rejection.status(), rejection.reason()),
        (502, &Reason::FACILITATOR_UNAVAILABLE)
    );

    // Slower than the timeout: 504, and within the timeout (plus scheduling slack).
    let timeout = Duration::from_millis(300);
    let w = world_with(|b| {
        b.facilitator_client(Arc::new(Fault::Slow(Duration::from_secs(30))))
            .facilitator_timeout(timeout)
    });
    let request = w
        .paid(&WEATHER, "/weather", ProtocolVersion::V2, "eip155:84532")
        .await;
    let started = Instant::now();
    let rejection = rejected(w.gate.evaluate(&request, &WEATHER).await);
    assert_eq!(
        (rejection.status(), rejection.reason()),
        (504, &Reason::FACILITATOR_TIMEOUT)
    );
    assert!(started.elapsed() >= timeout && started.elapsed() < timeout + Duration::from_secs(2));

    // "Valid", but for someone else: not believed.
    let w = world_with(|b| b.facilitator_client(Arc::new(Fault::OtherPayer)));
    let request = w
        .paid(&WEATHER, "/weather", ProtocolVersion::V2, "eip155:84532")
        .await;
    let rejection = rejected(w.gate.evaluate(&request, &WEATHER).await);
    assert_eq!(
        (rejection.status(), rejection.reason()),
        (502, &Reason::FACILITATOR_INVALID_RESPONSE)
    );

    // Verified, then settlement fails: the handler's output is replaced by a 402.
    let w = world_with(|b| b.facilitator_client(Arc::new(Fault::SettleFails)));
    let request = w
        .paid(&WEATHER, "/weather", ProtocolVersion::V2, "eip155:84532")
        .await;
    let admission = w
        .gate
        .evaluate(&request, &WEATHER)
        .await
        .into_result()
        .unwrap();
    let Completion::Replace(response) = w.gate.finish(admission.pending, 200).await else {
        panic!("a failed settlement must replace the response")
    };
    assert_eq!(response.status, 402);
    let body: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(body["error"], "invalid_exact_evm_insufficient_balance");
    let receipt: SettleResponse =
        codec::decode(response.header("payment-response").unwrap(), 4096).unwrap();
    assert!(!receipt.success);
    assert_eq!(receipt.transaction, "");
}

#[tokio::test]
async fn the_embedded_facilitator_lists_every_network_in_both_generations() {
    let facilitator = EmbeddedFacilitator::builder().build();
    let supported = facilitator.supported().await.unwrap();
    assert!(supported.supports(ProtocolVersion::V1, "exact", "base"));
    assert!(supported.supports(ProtocolVersion::V2, "exact", "eip155:8453"));
    assert!(!supported.supports(ProtocolVersion::V2, "exact", "base"));
    // Its Permit2 schemes check, and its settler (the dev ledger) applies, EIP-2612 permits
    // and signed ERC-20 approvals.
    assert_eq!(
        supported.extensions,
        ["eip2612GasSponsoring", "erc20ApprovalGasSponsoring"]
    );
}

static V1_ONLY: RouteSpec = RouteSpec::fixed("0.01 USDC")
    .networks(&["base-sepolia"])
    .only(ProtocolVersion::V1);
static V2_ONLY: RouteSpec = RouteSpec::fixed("0.01 USDC")
    .networks(&["base-sepolia"])
    .only(ProtocolVersion::V2);

#[tokio::test]
async fn single_generation_routes_speak_and_accept_only_their_generation() {
    let w = world();
    // v1 only: the body lists the requirements, no PAYMENT-REQUIRED header.
    let response = rejected(w.gate.evaluate(&Req::get("/v1"), &V1_ONLY).await).to_response();
    assert!(response.header("payment-required").is_none());
    let body: v1::PaymentRequired = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(body.accepts.len(), 1);
    let request = w
        .paid(&V1_ONLY, "/v1", ProtocolVersion::V1, "base-sepolia")
        .await;
    assert!(
        w.gate
            .evaluate(&request, &V1_ONLY)
            .await
            .into_result()
            .is_ok()
    );

    // v2 only: the header lists them, the body is a plain error.
    let response = rejected(w.gate.evaluate(&Req::get("/v2"), &V2_ONLY).await).to_response();
    let required: v2::PaymentRequired =
        codec::decode(response.header("payment-required").unwrap(), 1 << 16).unwrap();
    assert_eq!(required.accepts.len(), 1);
    let body: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"error": "payment_required", "message": body["message"]})
    );
    let request = w
        .paid(&V2_ONLY, "/v2", ProtocolVersion::V2, "eip155:84532")
        .await;
    assert!(
        w.gate
            .evaluate(&request, &V2_ONLY)
            .await
            .into_result()
            .is_ok()
    );

    // A payment of the other generation is refused with its reason.
    let (name, value) = w
        .pay(
            &WEATHER,
            Req::get("/weather"),
            ProtocolVersion::V2,
            "eip155:84532",
        )
        .await;
    let refused = rejected(
        w.gate
            .evaluate(&Req::get("/v1").with(name, value), &V1_ONLY)
            .await,
    );
    assert_eq!(refused.reason(), &Reason::INVALID_X402_VERSION);
    let (name, value) = w
        .pay(
            &WEATHER,
            Req::get("/weather"),
            ProtocolVersion::V1,
            "base-sepolia",
        )
        .await;
    let refused = rejected(
        w.gate
            .evaluate(&Req::get("/v2").with(name, value), &V2_ONLY)
            .await,
    );
    assert_eq!(
        (refused.status(), refused.reason()),
        (402, &Reason::INVALID_X402_VERSION)
    );
}
