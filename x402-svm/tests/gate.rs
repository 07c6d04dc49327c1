//! The gate offers Solana routes around the facilitator's fee payer: the embedded
//! facilitator's own, one configured with `X402Builder::fee_payer`, or one learned from a
//! remote facilitator's `/supported` (before `build_checked` returns; in the background after
//! `build`, the route answering 500 until then).

use std::sync::Arc;
use std::time::{Duration, Instant};

use x402_protocol::{codec, headers, v2};
use x402_runtime::facilitator::EmbeddedFacilitator;
use x402_runtime::scheme::Schemes;
use x402_runtime::{Decision, Gate, RequestView, RouteSpec};
use x402_svm::ExactSvm;

static SOLANA: RouteSpec = RouteSpec::fixed("0.01 USDC").networks(&["solana-devnet"]);
const PAY_TO: &str = "GyGKxMyg1p9SsHfm15MkNUu1u9TN2JtTspcdmrtGUdse";

struct Get;

impl RequestView for Get {
    fn method(&self) -> &str {
        "GET"
    }
    fn path_and_query(&self) -> &str {
        "/r"
    }
    fn header(&self, name: &str) -> Option<&str> {
        name.eq_ignore_ascii_case("host").then_some("api.test")
    }
}

/// A facilitator in another process, as far as the gate knows: its `/supported` lists Solana
/// `exact` with the fee payer of its dev ledger.
fn remote() -> (Arc<EmbeddedFacilitator>, String) {
    let mut schemes = Schemes::default();
    schemes.add(Arc::new(ExactSvm));
    let remote = EmbeddedFacilitator::builder().schemes(schemes).build();
    let fee_payer = remote.dev_ledger().unwrap().fee_payer().to_string();
    (Arc::new(remote), fee_payer)
}

fn builder(remote: Arc<EmbeddedFacilitator>) -> x402_runtime::X402Builder<Gate> {
    Gate::builder()
        .pay_to(PAY_TO)
        .scheme(Arc::new(ExactSvm))
        .facilitator_client(remote)
        .check_route(&SOLANA)
}

fn fee_payer_offered(decision: Decision) -> Result<String, x402_runtime::Rejection> {
    match decision {
        Decision::Challenge(rejection) => {
            let response = rejection.to_response();
            let required: v2::PaymentRequired =
                codec::decode(response.header(headers::PAYMENT_REQUIRED).unwrap(), 1 << 16)
                    .unwrap();
            Ok(required.accepts[0].extra.as_ref().unwrap()["feePayer"]
                .as_str()
                .unwrap()
                .to_owned())
        }
        Decision::Rejected(rejection) => Err(rejection),
        Decision::Admitted(_) => panic!("nothing was paid"),
    }
}

#[tokio::test]
async fn build_checked_learns_the_fee_payer_from_the_facilitators_supported() {
    let (remote, fee_payer) = remote();
    let gate = builder(remote).build_checked().await.unwrap();
    let offered = fee_payer_offered(gate.evaluate(&Get, &SOLANA).await).unwrap();
    assert_eq!(offered, fee_payer);
}

#[tokio::test]
async fn build_learns_the_fee_payer_in_the_background_and_runs_nothing_until_then() {
    let (remote, fee_payer) = remote();
    let gate = builder(remote).build().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let offered = loop {
        match fee_payer_offered(gate.evaluate(&Get, &SOLANA).await) {
            Ok(offered) => break offered,
            Err(rejection) => {
                assert_eq!(rejection.status(), 500, "{rejection}");
                assert!(rejection.message().contains("fee_payer"), "{rejection}");
            }
        }
        assert!(Instant::now() < deadline, "never learned");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(offered, fee_payer);
}

#[tokio::test]
async fn a_configured_fee_payer_is_offered_and_a_bad_one_fails_the_build() {
    let (remote, _) = remote();
    let chosen = "9hSR6S7WPtxmTojgo6GG3k4yDPecgJY292j7xrsUGWBu";
    let gate = builder(remote.clone())
        .fee_payer("solana-devnet", chosen)
        .build_checked()
        .await
        .unwrap();
    assert_eq!(
        fee_payer_offered(gate.evaluate(&Get, &SOLANA).await).unwrap(),
        chosen
    );
    let error = builder(remote)
        .fee_payer(
            "solana-devnet",
            "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
        )
        .build()
        .unwrap_err();
    assert!(error.to_string().contains("solana"), "{error}");
}
