//! Permit2 `exact` and metered `upto` through the gate with the embedded facilitator and its dev
//! ledger: what the 402 offers, the 412 for a payer without a Permit2 allowance, settlement of
//! exactly the handler's charge, a zero charge that settles nothing, and a remote facilitator
//! that says `isValid: true` to payments the gate's own checks refuse.

use std::sync::Arc;

use async_trait::async_trait;
use x402_protocol::client::sign_payment;
use x402_protocol::codec;
use x402_protocol::eip2612::Eip2612GasSponsoring;
use x402_protocol::eip3009::{LocalSigner, TokenDomain};
use x402_protocol::erc20_approval::{
    APPROVAL_GAS_LIMIT, ApprovalFees, Erc20ApprovalGasSponsoring, approve_calldata, sign_call,
};
use x402_protocol::facilitator::{
    FacilitatorRequest, PaymentRequirements, SettleResponse, SupportedResponse, VerifyResponse,
};
use x402_protocol::permit2::{EXACT_PERMIT2_PROXY, PERMIT2_ADDRESS, UPTO_PERMIT2_PROXY};
use x402_protocol::{
    NetworkRegistry, ProtocolVersion, Reason, SchemePayload, U256, headers, v1, v2,
};
use x402_runtime::facilitator::{Facilitator, FacilitatorError};
use x402_runtime::scheme::TransferMethod;
use x402_runtime::{ChargeError, Completion, Decision, RouteSpec, SettleMode};

use crate::common;

use common::{Req, World, pay_to, rejected, world, world_with};

const NETWORK: &str = "eip155:84532";
/// 0.01 USDC.
const PRICE: u64 = 10_000;
/// 0.50 USDC.
const MAXIMUM: u64 = 500_000;

static PERMIT2: RouteSpec = RouteSpec::fixed("0.01 USDC")
    .networks(&["base-sepolia"])
    .transfers(&[TransferMethod::Permit2]);
static BOTH: RouteSpec = RouteSpec::fixed("0.01 USDC")
    .networks(&["base-sepolia"])
    .transfers(&[TransferMethod::Eip3009, TransferMethod::Permit2]);
static METERED: RouteSpec = RouteSpec::upto("0.50 USDC").networks(&["base-sepolia"]);
static METERED_BEFORE: RouteSpec = RouteSpec::upto("0.50 USDC")
    .networks(&["base-sepolia"])
    .settle(SettleMode::Before);
static EXACT: RouteSpec = RouteSpec::fixed("0.01 USDC").networks(&["base-sepolia"]);

/// The v1 body and v2 header of a route's 402.
async fn challenge(
    w: &World,
    spec: &'static RouteSpec,
) -> (v1::PaymentRequired, v2::PaymentRequired) {
    let Decision::Challenge(rejection) = w.gate.evaluate(&Req::get("/r"), spec).await else {
        panic!("expected a challenge")
    };
    let response = rejection.to_response();
    let body = serde_json::from_slice(&response.body).unwrap();
    let header = response.header(headers::PAYMENT_REQUIRED).unwrap();
    (body, codec::decode(header, 1 << 16).unwrap())
}

/// A v2 payment for the first entry of the route's 402 that `pick` accepts.
async fn pay(
    w: &World,
    spec: &'static RouteSpec,
    pick: impl Fn(&v2::PaymentRequirements) -> bool,
) -> Req {
    let (_, required) = challenge(w, spec).await;
    let entry = required
        .accepts
        .into_iter()
        .find(|e| pick(e))
        .expect("an entry to pay");
    let payment = sign_payment(
        &PaymentRequirements::V2(entry),
        required.resource.as_ref(),
        &w.payer,
        &NetworkRegistry::builtin(),
        w.clock_now(),
    )
    .unwrap();
    Req::get("/r").with(
        ProtocolVersion::V2.payment_header(),
        codec::encode(&payment),
    )
}

fn permit2(entry: &v2::PaymentRequirements) -> bool {
    entry
        .extra
        .as_ref()
        .and_then(|e| e.get("assetTransferMethod"))
        == Some(&"permit2".into())
}

fn usdc(w: &World) -> x402_protocol::ChainAddress {
    w.gate
        .registry()
        .network(NETWORK)
        .unwrap()
        .default_asset
        .address
}

fn approve(w: &World, amount: U256) {
    let ledger = w.gate.dev_ledger().unwrap();
    ledger.approve_permit2(NETWORK, usdc(w), w.payer.address(), amount);
}

fn receipt(completion: Completion) -> SettleResponse {
    let Completion::Deliver { headers, .. } = completion else {
        panic!("expected a delivered response")
    };
    let (_, value) = headers
        .iter()
        .find(|(n, _)| *n == headers::PAYMENT_RESPONSE)
        .expect("a receipt");
    codec::decode(value, 4096).unwrap()
}

#[tokio::test]
async fn a_permit2_route_offers_permit2_in_v2_only_and_both_methods_when_asked() {
    let w = world();
    let (v1, v2) = challenge(&w, &PERMIT2).await;
    assert!(v1.accepts.is_empty(), "v1 clients cannot sign Permit2");
    let [entry] = v2.accepts.as_slice() else {
        panic!("one v2 entry: {:?}", v2.accepts)
    };
    assert_eq!(entry.scheme, "exact");
    assert_eq!(entry.amount, U256::from(PRICE));
    assert_eq!(
        entry.extra,
        Some(serde_json::json!({"assetTransferMethod": "permit2", "name": "USDC", "version": "2"}))
    );

    let (v1, v2) = challenge(&w, &BOTH).await;
    assert_eq!(v1.accepts.len(), 1, "EIP-3009 stays on offer to v1 clients");
    assert_eq!(v2.accepts.len(), 2);
    assert!(!permit2(&v2.accepts[0]) && permit2(&v2.accepts[1]));

    let (_, v2) = challenge(&w, &METERED).await;
    let [entry] = v2.accepts.as_slice() else {
        panic!("one upto entry")
    };
    assert_eq!(entry.scheme, "upto");
    assert_eq!(entry.amount, U256::from(MAXIMUM));
    let extra = entry.extra.as_ref().unwrap();
    assert_eq!(extra["assetTransferMethod"], "permit2");
    assert_eq!(
        extra["facilitatorAddress"],
        w.gate.dev_ledger().unwrap().address().to_string(),
        "the embedded facilitator names the account it settles from"
    );
}

#[tokio::test]
async fn permit2_without_an_allowance_is_412_then_paid_once_approved() {
    let w = world();
    let request = pay(&w, &PERMIT2, permit2).await;
    let refused = rejected(w.gate.evaluate(&request, &PERMIT2).await);
    assert_eq!(refused.reason(), &Reason::PERMIT2_ALLOWANCE_REQUIRED);
    assert_eq!(refused.status(), 412);
    assert!(
        refused
            .to_response()
            .header(headers::PAYMENT_REQUIRED)
            .is_some(),
        "a 412 still carries the challenge"
    );

    // The same payment, sent again after the approval, is admitted: nothing was used.
    approve(&w, U256::from(PRICE));
    let before = w.balance(NETWORK, w.payer.address());
    let admission = w
        .gate
        .evaluate(&request, &PERMIT2)
        .await
        .into_result()
        .unwrap_or_else(|r| panic!("{r}"));
    assert_eq!(admission.payment.amount(), U256::from(PRICE));
    assert!(!admission.payment.is_metered());
    assert_eq!(
        admission.payment.charge(U256::from(1u64)),
        Err(ChargeError::NotMetered)
    );
    let receipt = receipt(w.gate.finish(admission.pending, 200).await);
    assert!(receipt.success);
    assert_eq!(receipt.transaction.len(), 66);
    assert_eq!(
        w.balance(NETWORK, w.payer.address()),
        before - U256::from(PRICE)
    );
    let ledger = w.gate.dev_ledger().unwrap();
    assert_eq!(
        ledger.permit2_allowance(NETWORK, usdc(&w), w.payer.address()),
        U256::ZERO,
        "the transfer used the allowance up"
    );
    let transfer = ledger.transfers().pop().unwrap();
    assert_eq!(transfer.to, x402_protocol::ChainAddress::Evm(pay_to()));
    assert!(transfer.key.as_str().contains("/permit2/"));

    // A replay is answered from the journal (already settled) before anything reaches the
    // ledger.
    approve(&w, U256::MAX);
    let replay = rejected(w.gate.evaluate(&request, &PERMIT2).await);
    assert_eq!(replay.status(), 409, "{replay}");
    assert_eq!(ledger.transfers().len(), 1);
}

#[tokio::test]
async fn a_permit2_payment_for_another_route_or_with_a_changed_field_is_refused() {
    let w = world();
    approve(&w, U256::MAX);
    // An EIP-3009-only route does not take a Permit2 payment for the same price.
    let request = pay(&w, &PERMIT2, permit2).await;
    let refused = rejected(w.gate.evaluate(&request, &EXACT).await);
    assert_eq!(refused.status(), 402);

    // The payload's spender changed to the upto proxy: refused with its own reason.
    let (_, required) = challenge(&w, &PERMIT2).await;
    let entry = required.accepts[0].clone();
    let mut payment = sign_payment(
        &PaymentRequirements::V2(entry),
        None,
        &w.payer,
        &NetworkRegistry::builtin(),
        w.clock_now(),
    )
    .unwrap();
    let x402_protocol::facilitator::PaymentPayload::V2(p) = &mut payment else {
        unreachable!()
    };
    let SchemePayload::Permit2Exact(exact) = &mut p.payload else {
        panic!("a Permit2 payload")
    };
    assert_eq!(exact.permit2_authorization.spender, EXACT_PERMIT2_PROXY);
    exact.permit2_authorization.spender = UPTO_PERMIT2_PROXY;
    let tampered = Req::get("/r").with(
        ProtocolVersion::V2.payment_header(),
        codec::encode(&payment),
    );
    let refused = rejected(w.gate.evaluate(&tampered, &PERMIT2).await);
    assert_eq!(refused.reason(), &Reason::PERMIT2_INVALID_SPENDER);
    assert!(w.gate.dev_ledger().unwrap().transfers().is_empty());
}

#[tokio::test]
async fn upto_settles_exactly_the_handlers_charge() {
    let w = world();
    approve(&w, U256::MAX);
    let before = (
        w.balance(NETWORK, w.payer.address()),
        w.balance(NETWORK, pay_to()),
    );
    let request = pay(&w, &METERED, |_| true).await;
    let admission = w
        .gate
        .evaluate(&request, &METERED)
        .await
        .into_result()
        .unwrap_or_else(|r| panic!("{r}"));
    let payment = &admission.payment;
    assert!(payment.is_metered());
    assert_eq!(payment.amount(), U256::from(MAXIMUM));
    assert_eq!(payment.scheme(), "upto");
    assert_eq!(
        payment.charge(U256::from(MAXIMUM + 1)),
        Err(ChargeError::AboveMaximum {
            maximum: U256::from(MAXIMUM),
            charge: U256::from(MAXIMUM + 1)
        })
    );
    // 37% of the maximum; the handler's copy of the payment sets it.
    let charge = U256::from(MAXIMUM * 37 / 100);
    payment.clone().charge(charge).unwrap();
    assert_eq!(payment.charged(), Some(charge));
    let receipt = receipt(w.gate.finish(admission.pending, 200).await);
    assert!(receipt.success);
    assert_eq!(receipt.amount.as_deref(), Some("185000"));
    assert_eq!(w.balance(NETWORK, w.payer.address()), before.0 - charge);
    assert_eq!(w.balance(NETWORK, pay_to()), before.1 + charge);
    let [transfer] = w.gate.dev_ledger().unwrap().transfers().try_into().unwrap();
    assert_eq!(transfer.value, charge);
}

#[tokio::test]
async fn upto_charging_zero_settles_nothing_and_leaves_the_authorization_unused() {
    let w = world();
    approve(&w, U256::MAX);
    let before = w.balance(NETWORK, w.payer.address());
    let request = pay(&w, &METERED, |_| true).await;
    let admission = w
        .gate
        .evaluate(&request, &METERED)
        .await
        .into_result()
        .unwrap_or_else(|r| panic!("{r}"));
    admission.payment.charge(U256::ZERO).unwrap();
    let receipt = receipt(w.gate.finish(admission.pending, 200).await);
    assert!(receipt.success);
    assert_eq!(receipt.transaction, "", "no transaction for a zero charge");
    assert_eq!(receipt.amount.as_deref(), Some("0"));
    let ledger = w.gate.dev_ledger().unwrap();
    assert!(ledger.transfers().is_empty());
    assert_eq!(w.balance(NETWORK, w.payer.address()), before);
    // The gate still holds it: one authorization serves one request.
    let again = rejected(w.gate.evaluate(&request, &METERED).await);
    assert_ne!(again.status(), 200);
    assert!(ledger.transfers().is_empty());
}

#[tokio::test]
async fn upto_without_a_charge_settles_the_maximum_and_a_failed_handler_nothing() {
    let w = world();
    approve(&w, U256::MAX);
    let before = w.balance(NETWORK, w.payer.address());
    let admission = w
        .gate
        .evaluate(&pay(&w, &METERED, |_| true).await, &METERED)
        .await
        .into_result()
        .unwrap();
    let receipt = receipt(w.gate.finish(admission.pending, 200).await);
    assert_eq!(receipt.amount.as_deref(), Some("500000"));
    assert_eq!(
        w.balance(NETWORK, w.payer.address()),
        before - U256::from(MAXIMUM)
    );

    let admission = w
        .gate
        .evaluate(&pay(&w, &METERED, |_| true).await, &METERED)
        .await
        .into_result()
        .unwrap();
    admission.payment.charge(U256::from(5u64)).unwrap();
    w.gate.finish(admission.pending, 500).await;
    assert_eq!(
        w.gate.dev_ledger().unwrap().transfers().len(),
        1,
        "a failed handler is not charged"
    );
}

#[test]
fn an_upto_route_that_settles_before_its_handler_is_refused_at_start() {
    let w = world();
    let error = w.gate.check_route(&METERED_BEFORE).unwrap_err();
    assert!(error.contains("settle after"), "{error}");
}

/// A change made to a signed EIP-3009 payload.
type Tamper = dyn Fn(&mut x402_protocol::exact::ExactEvmPayload);

/// A remote facilitator that says yes to everything.
struct Liar;

#[async_trait]
impl Facilitator for Liar {
    async fn verify(
        &self,
        request: &FacilitatorRequest,
    ) -> Result<VerifyResponse, FacilitatorError> {
        let payer = request.payment_payload.payload().claimed_payer().unwrap();
        Ok(VerifyResponse::valid(payer.to_string()))
    }
    async fn settle(
        &self,
        request: &FacilitatorRequest,
    ) -> Result<SettleResponse, FacilitatorError> {
        let payer = request.payment_payload.payload().claimed_payer().unwrap();
        Ok(SettleResponse {
            success: true,
            error_reason: None,
            error_message: None,
            payer: Some(payer.to_string()),
            transaction: format!("0x{}", "ab".repeat(32)),
            network: request.payment_requirements.network().to_owned(),
            amount: None,
            extensions: None,
        })
    }
    async fn supported(&self) -> Result<SupportedResponse, FacilitatorError> {
        Ok(SupportedResponse::default())
    }
}

#[tokio::test]
async fn a_lying_facilitator_cannot_get_a_bad_payment_past_the_gates_own_checks() {
    let w = world_with(|b| {
        b.facilitator_client(Arc::new(Liar))
            .upto_facilitator(NETWORK, "0x1111111111111111111111111111111111111111")
    });
    // An honest payment goes through (the liar settles it), so the refusals below are the
    // gate's own.
    let honest = pay(&w, &EXACT, |_| true).await;
    assert!(matches!(
        w.gate.evaluate(&honest, &EXACT).await,
        Decision::Admitted(_)
    ));

    let tamper = |change: &dyn Fn(&mut x402_protocol::exact::ExactEvmPayload)| {
        let (name, value) = signed_exact(&w);
        let mut payment: x402_protocol::facilitator::PaymentPayload =
            codec::decode(&value, 1 << 16).unwrap();
        let x402_protocol::facilitator::PaymentPayload::V2(p) = &mut payment else {
            unreachable!()
        };
        let SchemePayload::Eip3009(exact) = &mut p.payload else {
            unreachable!()
        };
        change(exact);
        Req::get("/r").with(name, codec::encode(&payment))
    };
    let cases: [(&str, Box<Tamper>, Reason); 3] = [
        (
            "bad signature",
            Box::new(|p| {
                let mut bytes = p.signature.to_vec();
                bytes[10] ^= 1;
                p.signature = bytes.into();
            }),
            Reason::INVALID_SIGNATURE,
        ),
        (
            "wrong payTo",
            Box::new(|p| p.authorization.to = x402_protocol::Address::repeat_byte(7)),
            Reason::RECIPIENT_MISMATCH,
        ),
        (
            "short amount",
            Box::new(|p| p.authorization.value = U256::from(PRICE - 1)),
            Reason::VALUE_MISMATCH,
        ),
    ];
    for (name, change, reason) in cases {
        let request = tamper(&*change);
        let refused = rejected(w.gate.evaluate(&request, &EXACT).await);
        assert_eq!(refused.reason(), &reason, "{name}: {refused}");
        assert!(
            refused.message().contains("checked by this server"),
            "{name}: the reason names the local check: {}",
            refused.message()
        );
    }
}

/// A freshly signed v2 EIP-3009 payment for [`EXACT`], as header name and value.
fn signed_exact(w: &World) -> (&'static str, String) {
    let requirement = v2::PaymentRequirements {
        scheme: "exact".into(),
        network: NETWORK.into(),
        amount: U256::from(PRICE),
        asset: usdc(w).to_string(),
        pay_to: pay_to().to_string(),
        max_timeout_seconds: 300,
        extra: Some(serde_json::json!({"name": "USDC", "version": "2"})),
    };
    let payment = sign_payment(
        &PaymentRequirements::V2(requirement),
        None,
        &w.payer,
        &NetworkRegistry::builtin(),
        w.clock_now(),
    )
    .unwrap();
    (
        ProtocolVersion::V2.payment_header(),
        codec::encode(&payment),
    )
}

// ------------------------------------------------------------------------------------------
// eip2612GasSponsoring: a payer without a Permit2 allowance sends an EIP-2612 permit instead.
// ------------------------------------------------------------------------------------------

/// A v2 Permit2 payment for `spec`'s first Permit2 entry, and that entry.
async fn permit2_payment(
    w: &World,
    spec: &'static RouteSpec,
) -> (
    x402_protocol::facilitator::PaymentPayload,
    v2::PaymentRequirements,
) {
    let (_, required) = challenge(w, spec).await;
    let entry = required
        .accepts
        .into_iter()
        .find(permit2)
        .expect("a Permit2 entry");
    let payment = sign_payment(
        &PaymentRequirements::V2(entry.clone()),
        None,
        &w.payer,
        &NetworkRegistry::builtin(),
        w.clock_now(),
    )
    .unwrap();
    (payment, entry)
}

/// The payer's EIP-2612 permit for `payment`, signed in the token domain the entry names
/// (`version` overrides the domain version), at `nonce`.
fn eip2612_permit(
    w: &World,
    payment: &x402_protocol::facilitator::PaymentPayload,
    entry: &v2::PaymentRequirements,
    version: Option<&str>,
    nonce: U256,
) -> Eip2612GasSponsoring {
    let extra = entry.extra.as_ref().unwrap();
    let x402_protocol::ChainAddress::Evm(token) = usdc(w) else {
        unreachable!()
    };
    let domain = TokenDomain {
        name: extra["name"].as_str().unwrap(),
        version: version.unwrap_or(extra["version"].as_str().unwrap()),
        chain_id: 84532,
        verifying_contract: token,
    };
    match payment.payload() {
        SchemePayload::Permit2Exact(p) => {
            Eip2612GasSponsoring::sign(&w.payer, &domain, &p.permit2_authorization, nonce)
        }
        SchemePayload::Permit2Upto(p) => {
            Eip2612GasSponsoring::sign(&w.payer, &domain, &p.permit2_authorization, nonce)
        }
        other => panic!("a Permit2 payload, not {}", other.kind()),
    }
}

fn with_extension(
    mut payment: x402_protocol::facilitator::PaymentPayload,
    info: &Eip2612GasSponsoring,
) -> Req {
    let x402_protocol::facilitator::PaymentPayload::V2(p) = &mut payment else {
        unreachable!()
    };
    info.insert_into(&mut p.extensions);
    Req::get("/r").with(
        ProtocolVersion::V2.payment_header(),
        codec::encode(&payment),
    )
}

#[tokio::test]
async fn permit2_routes_declare_eip2612_gas_sponsoring_and_a_permit_stands_in_for_the_approval() {
    let w = world();
    let (_, required) = challenge(&w, &PERMIT2).await;
    let declared = &required.extensions.as_ref().unwrap()["eip2612GasSponsoring"];
    assert_eq!(declared["info"]["version"], "1");
    assert!(declared["info"]["description"].is_string());
    assert_eq!(declared["schema"]["type"], "object");
    assert!(
        declared["schema"]["required"]
            .as_array()
            .unwrap()
            .contains(&"signature".into())
    );
    let (_, required) = challenge(&w, &EXACT).await;
    assert!(
        required
            .extensions
            .as_ref()
            .is_none_or(|e| e.get("eip2612GasSponsoring").is_none()),
        "an EIP-3009-only route declares no Permit2 extension"
    );

    // No allowance, a permit at the token nonce the ledger tracks: paid.
    let ledger = w.gate.dev_ledger().unwrap();
    assert_eq!(
        ledger.permit2_allowance(NETWORK, usdc(&w), w.payer.address()),
        U256::ZERO
    );
    let (payment, entry) = permit2_payment(&w, &PERMIT2).await;
    let info = eip2612_permit(&w, &payment, &entry, None, U256::ZERO);
    let before = w.balance(NETWORK, w.payer.address());
    let admission = w
        .gate
        .evaluate(&with_extension(payment, &info), &PERMIT2)
        .await
        .into_result()
        .unwrap_or_else(|r| panic!("{r}"));
    assert!(receipt(w.gate.finish(admission.pending, 200).await).success);
    assert_eq!(
        w.balance(NETWORK, w.payer.address()),
        before - U256::from(PRICE)
    );
    // The permit approved exactly the price, which the transfer used up; its nonce is spent.
    assert_eq!(
        ledger.permit2_allowance(NETWORK, usdc(&w), w.payer.address()),
        U256::ZERO
    );
    assert_eq!(
        ledger.token_nonce(NETWORK, usdc(&w), w.payer.address()),
        U256::from(1u64)
    );

    // Metered: the permit approves the maximum, the charge is spent from it.
    let (payment, entry) = permit2_payment(&w, &METERED).await;
    let info = eip2612_permit(&w, &payment, &entry, None, U256::from(1u64));
    assert_eq!(info.amount, U256::from(MAXIMUM));
    let admission = w
        .gate
        .evaluate(&with_extension(payment, &info), &METERED)
        .await
        .into_result()
        .unwrap_or_else(|r| panic!("{r}"));
    admission.payment.charge(U256::from(1_234u64)).unwrap();
    let settled = receipt(w.gate.finish(admission.pending, 200).await);
    assert!(settled.success);
    assert_eq!(
        ledger.permit2_allowance(NETWORK, usdc(&w), w.payer.address()),
        U256::from(MAXIMUM - 1_234)
    );
    assert_eq!(
        ledger.token_nonce(NETWORK, usdc(&w), w.payer.address()),
        U256::from(2u64)
    );
}

#[tokio::test]
async fn a_bad_eip2612_permit_is_refused_with_its_own_reason_and_nothing_moves() {
    let w = world();
    let ledger = w.gate.dev_ledger().unwrap();
    let (payment, entry) = permit2_payment(&w, &PERMIT2).await;
    let good = eip2612_permit(&w, &payment, &entry, None, U256::ZERO);

    let mut from = good.clone();
    from.from = x402_protocol::Address::repeat_byte(9);
    let mut asset = good.clone();
    asset.asset = x402_protocol::Address::repeat_byte(8);
    let mut spender = good.clone();
    spender.spender = EXACT_PERMIT2_PROXY;
    let mut deadline = good.clone();
    deadline.deadline = U256::from(w.clock_now());
    let mut amount = good.clone();
    amount.amount = U256::MAX;
    let other_domain = eip2612_permit(&w, &payment, &entry, Some("9"), U256::ZERO);
    for (bad, reason) in [
        (from, Reason::EIP2612_FROM_MISMATCH),
        (asset, Reason::EIP2612_ASSET_MISMATCH),
        (spender, Reason::EIP2612_SPENDER_NOT_PERMIT2),
        (deadline, Reason::EIP2612_DEADLINE_EXPIRED),
        (amount, Reason::EIP2612_AMOUNT_MISMATCH),
        (other_domain, Reason::EIP2612_INVALID_SIGNATURE),
    ] {
        let refused = rejected(
            w.gate
                .evaluate(&with_extension(payment.clone(), &bad), &PERMIT2)
                .await,
        );
        assert_eq!(refused.reason(), &reason, "{refused}");
    }
    // A malformed extension (every field present, one not a decimal).
    let mut broken = payment.clone();
    let x402_protocol::facilitator::PaymentPayload::V2(p) = &mut broken else {
        unreachable!()
    };
    good.insert_into(&mut p.extensions);
    p.extensions.as_mut().unwrap()["eip2612GasSponsoring"]["info"]["nonce"] = "0x0".into();
    let refused = rejected(
        w.gate
            .evaluate(
                &Req::get("/r").with(ProtocolVersion::V2.payment_header(), codec::encode(&broken)),
                &PERMIT2,
            )
            .await,
    );
    assert_eq!(refused.reason(), &Reason::EIP2612_EXTENSION_FORMAT);

    // A good signature over a nonce the token does not expect: the token would refuse it.
    let stale = eip2612_permit(&w, &payment, &entry, None, U256::from(5u64));
    let refused = rejected(
        w.gate
            .evaluate(&with_extension(payment.clone(), &stale), &PERMIT2)
            .await,
    );
    assert_eq!(refused.reason(), &Reason::SIMULATION_FAILED, "{refused}");
    assert!(ledger.transfers().is_empty());
    assert_eq!(
        ledger.token_nonce(NETWORK, usdc(&w), w.payer.address()),
        U256::ZERO
    );
    // The 402's declaration echoed back unsigned (what clients that sign no permit send) is
    // no permit: still the 412.
    let (_, required) = challenge(&w, &PERMIT2).await;
    let mut echoed = payment.clone();
    let x402_protocol::facilitator::PaymentPayload::V2(p) = &mut echoed else {
        unreachable!()
    };
    p.extensions = required.extensions.clone();
    let refused = rejected(
        w.gate
            .evaluate(
                &Req::get("/r").with(ProtocolVersion::V2.payment_header(), codec::encode(&echoed)),
                &PERMIT2,
            )
            .await,
    );
    assert_eq!(refused.status(), 412, "{refused}");
    // Without the extension: still the 412.
    let refused = rejected(
        w.gate
            .evaluate(
                &Req::get("/r").with(
                    ProtocolVersion::V2.payment_header(),
                    codec::encode(&payment),
                ),
                &PERMIT2,
            )
            .await,
    );
    assert_eq!(refused.status(), 412);
}

// erc20ApprovalGasSponsoring: a payer without a Permit2 allowance sends a signed
// approve(Permit2) transaction for the facilitator to broadcast first.
// ------------------------------------------------------------------------------------------

fn approval_fees(nonce: u64) -> ApprovalFees {
    ApprovalFees {
        nonce,
        max_fee_per_gas: 1_000_000_000,
        max_priority_fee_per_gas: 100_000_000,
        gas_limit: APPROVAL_GAS_LIMIT,
    }
}

fn with_approval(
    mut payment: x402_protocol::facilitator::PaymentPayload,
    info: &Erc20ApprovalGasSponsoring,
) -> Req {
    let x402_protocol::facilitator::PaymentPayload::V2(p) = &mut payment else {
        unreachable!()
    };
    info.insert_into(&mut p.extensions);
    Req::get("/r").with(
        ProtocolVersion::V2.payment_header(),
        codec::encode(&payment),
    )
}

fn token(w: &World) -> x402_protocol::Address {
    let x402_protocol::ChainAddress::Evm(token) = usdc(w) else {
        unreachable!()
    };
    token
}

#[tokio::test]
async fn permit2_routes_declare_erc20_approval_gas_sponsoring_and_a_signed_approval_stands_in_for_the_approval()
 {
    let w = world();
    let (_, required) = challenge(&w, &PERMIT2).await;
    let declared = &required.extensions.as_ref().unwrap()["erc20ApprovalGasSponsoring"];
    assert_eq!(declared["info"]["version"], "1");
    assert!(
        declared["schema"]["required"]
            .as_array()
            .unwrap()
            .contains(&"signedTransaction".into())
    );
    let (_, required) = challenge(&w, &EXACT).await;
    assert!(
        required
            .extensions
            .as_ref()
            .is_none_or(|e| e.get("erc20ApprovalGasSponsoring").is_none()),
        "an EIP-3009-only route declares no Permit2 extension"
    );

    let ledger = w.gate.dev_ledger().unwrap();
    let payer = w.payer.address();
    let (payment, _) = permit2_payment(&w, &PERMIT2).await;
    let info =
        Erc20ApprovalGasSponsoring::sign(&w.payer, 84532, token(&w), U256::MAX, approval_fees(0));
    let before = w.balance(NETWORK, payer);
    let admission = w
        .gate
        .evaluate(&with_approval(payment, &info), &PERMIT2)
        .await
        .into_result()
        .unwrap_or_else(|r| panic!("{r}"));
    assert!(receipt(w.gate.finish(admission.pending, 200).await).success);
    assert_eq!(w.balance(NETWORK, payer), before - U256::from(PRICE));
    // approve(Permit2, 2^256 - 1): an unlimited allowance; the payer's nonce is spent.
    assert_eq!(
        ledger.permit2_allowance(NETWORK, usdc(&w), payer),
        U256::MAX
    );
    assert_eq!(ledger.transaction_nonce(NETWORK, payer), 1);

    // Metered, a fresh payer state: an approval of exactly the maximum, the charge spent.
    ledger.approve_permit2(NETWORK, usdc(&w), payer, U256::ZERO);
    let (payment, _) = permit2_payment(&w, &METERED).await;
    let info = Erc20ApprovalGasSponsoring::sign(
        &w.payer,
        84532,
        token(&w),
        U256::from(MAXIMUM),
        approval_fees(1),
    );
    let admission = w
        .gate
        .evaluate(&with_approval(payment, &info), &METERED)
        .await
        .into_result()
        .unwrap_or_else(|r| panic!("{r}"));
    admission.payment.charge(U256::from(1_234u64)).unwrap();
    assert!(receipt(w.gate.finish(admission.pending, 200).await).success);
    assert_eq!(
        ledger.permit2_allowance(NETWORK, usdc(&w), payer),
        U256::from(MAXIMUM - 1_234)
    );
    assert_eq!(ledger.transaction_nonce(NETWORK, payer), 2);
}

#[tokio::test]
async fn a_bad_erc20_approval_is_refused_with_its_own_reason_and_nothing_moves() {
    let w = world();
    let ledger = w.gate.dev_ledger().unwrap();
    let payer = w.payer.address();
    let (payment, _) = permit2_payment(&w, &PERMIT2).await;
    let good =
        Erc20ApprovalGasSponsoring::sign(&w.payer, 84532, token(&w), U256::MAX, approval_fees(0));
    let signed = |signer: &LocalSigner, chain: u64, to, calldata: Vec<u8>, nonce| {
        let mut info = good.clone();
        info.signed_transaction =
            sign_call(signer, chain, to, &calldata, approval_fees(nonce)).into();
        info
    };
    let approve_permit2 = approve_calldata(PERMIT2_ADDRESS, U256::MAX);
    let mut from = good.clone();
    from.from = x402_protocol::Address::repeat_byte(9);
    let mut asset = good.clone();
    asset.asset = x402_protocol::Address::repeat_byte(8);
    let mut spender = good.clone();
    spender.spender = EXACT_PERMIT2_PROXY;
    let mut garbage = good.clone();
    garbage.signed_transaction = vec![0x02, 0xc0].into();
    let wrong_token = signed(
        &w.payer,
        84532,
        x402_protocol::Address::repeat_byte(8),
        approve_permit2.clone(),
        0,
    );
    let wrong_chain = signed(&w.payer, 1, token(&w), approve_permit2.clone(), 0);
    let mut transfer = approve_permit2.clone();
    transfer[..4].copy_from_slice(&[0xa9, 0x05, 0x9c, 0xbb]);
    let wrong_selector = signed(&w.payer, 84532, token(&w), transfer, 0);
    let wrong_spender = signed(
        &w.payer,
        84532,
        token(&w),
        approve_calldata(EXACT_PERMIT2_PROXY, U256::MAX),
        0,
    );
    let wrong_signer = signed(
        &LocalSigner::random(),
        84532,
        token(&w),
        approve_permit2.clone(),
        0,
    );
    for (bad, reason) in [
        (from, Reason::ERC20_APPROVAL_FROM_MISMATCH),
        (asset, Reason::ERC20_APPROVAL_ASSET_MISMATCH),
        (spender, Reason::ERC20_APPROVAL_SPENDER_NOT_PERMIT2),
        (garbage, Reason::ERC20_APPROVAL_TX_PARSE_FAILED),
        (wrong_chain, Reason::ERC20_APPROVAL_TX_WRONG_CHAIN),
        (wrong_token, Reason::ERC20_APPROVAL_TX_WRONG_TARGET),
        (wrong_selector, Reason::ERC20_APPROVAL_TX_WRONG_SELECTOR),
        (wrong_spender, Reason::ERC20_APPROVAL_TX_WRONG_SPENDER),
        (wrong_signer, Reason::ERC20_APPROVAL_TX_SIGNER_MISMATCH),
    ] {
        let refused = rejected(
            w.gate
                .evaluate(&with_approval(payment.clone(), &bad), &PERMIT2)
                .await,
        );
        assert_eq!(refused.reason(), &reason, "{refused}");
    }
    // A good approval at a nonce the chain would not take next.
    let stale = signed(&w.payer, 84532, token(&w), approve_permit2.clone(), 3);
    let refused = rejected(
        w.gate
            .evaluate(&with_approval(payment.clone(), &stale), &PERMIT2)
            .await,
    );
    assert_eq!(refused.reason(), &Reason::SIMULATION_FAILED, "{refused}");
    // An approval of less than the price: still the 412.
    let short = signed(
        &w.payer,
        84532,
        token(&w),
        approve_calldata(PERMIT2_ADDRESS, U256::from(1u64)),
        0,
    );
    let refused = rejected(
        w.gate
            .evaluate(&with_approval(payment.clone(), &short), &PERMIT2)
            .await,
    );
    assert_eq!(refused.status(), 412, "{refused}");
    assert!(ledger.transfers().is_empty());
    assert_eq!(ledger.transaction_nonce(NETWORK, payer), 0);
    assert_eq!(
        ledger.permit2_allowance(NETWORK, usdc(&w), payer),
        U256::ZERO
    );
}

#[tokio::test]
async fn build_checked_learns_the_upto_account_from_the_facilitators_supported() {
    use x402_runtime::facilitator::EmbeddedFacilitator;
    // A facilitator in another process, as far as the gate knows: it lists `upto` with the
    // account its dev ledger settles from.
    let remote = EmbeddedFacilitator::builder().build();
    let account = remote.dev_ledger().unwrap().address();
    let gate: x402_runtime::Gate = x402_runtime::Gate::builder()
        .pay_to(common::PAY_TO)
        .facilitator_client(Arc::new(remote))
        .check_route(&METERED)
        .build_checked()
        .await
        .unwrap();
    let Decision::Challenge(rejection) = gate.evaluate(&Req::get("/r"), &METERED).await else {
        panic!("expected a challenge")
    };
    let response = rejection.to_response();
    let required: v2::PaymentRequired =
        codec::decode(response.header(headers::PAYMENT_REQUIRED).unwrap(), 1 << 16).unwrap();
    assert_eq!(
        required.accepts[0].extra.as_ref().unwrap()["facilitatorAddress"],
        account.to_string()
    );

    // `build` does not wait: it learns the account in the background, and until then the route
    // answers 500 without running anything.
    let remote = EmbeddedFacilitator::builder().build();
    let account = remote.dev_ledger().unwrap().address();
    let gate: x402_runtime::Gate = x402_runtime::Gate::builder()
        .pay_to(common::PAY_TO)
        .facilitator_client(Arc::new(remote))
        .check_route(&METERED)
        .build()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let required = loop {
        match gate.evaluate(&Req::get("/r"), &METERED).await {
            Decision::Challenge(rejection) => {
                let response = rejection.to_response();
                let header = response.header(headers::PAYMENT_REQUIRED).unwrap();
                break codec::decode::<v2::PaymentRequired>(header, 1 << 16).unwrap();
            }
            Decision::Rejected(rejection) => {
                assert_eq!(rejection.status(), 500, "{rejection}");
                assert!(rejection.message().contains("build_checked"), "{rejection}");
            }
            Decision::Admitted(_) => panic!("nothing was paid"),
        }
        assert!(std::time::Instant::now() < deadline, "never learned");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    assert_eq!(
        required.accepts[0].extra.as_ref().unwrap()["facilitatorAddress"],
        account.to_string()
    );
}
