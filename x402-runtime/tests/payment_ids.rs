//! `PaymentIds::Required`: the 402 declares the payment-identifier extension as required, and
//! a v2 payment without an id is refused with 400 before anything is charged.

use x402_protocol::{ProtocolVersion, Reason, codec, v2};
use x402_runtime::{Decision, PaymentIds, RouteSpec};

use crate::common;

use common::{Req, rejected, world_with};

static WEATHER: RouteSpec = RouteSpec::fixed("0.01 USDC").networks(&["base-sepolia"]);

#[tokio::test]
async fn a_required_payment_id_that_is_missing_is_refused_with_400() {
    let w = world_with(|b| b.embedded_facilitator().payment_ids(PaymentIds::Required));
    let Decision::Challenge(challenge) = w.gate.evaluate(&Req::get("/weather"), &WEATHER).await
    else {
        panic!("an unpaid request is challenged");
    };
    let parts = challenge.to_response();
    let required: v2::PaymentRequired =
        codec::decode(parts.header("payment-required").unwrap(), 1 << 16).unwrap();
    let extensions = required.extensions.expect("extensions");
    assert_eq!(extensions["payment-identifier"]["info"]["required"], true);

    let request = w
        .paid(&WEATHER, "/weather", ProtocolVersion::V2, "eip155:84532")
        .await;
    let refused = rejected(w.gate.evaluate(&request, &WEATHER).await);
    assert_eq!(refused.reason(), &Reason::PAYMENT_ID_REQUIRED);
    assert_eq!(refused.to_response().status, 400);
    assert!(w.gate.dev_ledger().unwrap().transfers().is_empty());
}
