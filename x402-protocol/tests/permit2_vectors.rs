//! Permit2 `exact` and `upto` payment headers made by the official client (npm
//! `@x402/core`+`@x402/evm` 2.27, `tests/data/official-clients-permit2.json`): the EIP-712
//! digest computed here is the one the client signed and recovers to the payer, each header
//! decodes, round-trips, matches its requirement and verifies at its signing time; and each
//! change of one field is refused with its own reason.

use alloy_primitives::{Address, B256, Bytes, U256, address};
use serde::Deserialize;
use serde_json::{Value, json};
use x402_protocol::codec::{self, DEFAULT_MAX_HEADER_BYTES};
use x402_protocol::eip2612::{Eip2612GasSponsoring, SponsoringError};
use x402_protocol::eip3009::{RecoveryBackend, TokenDomain};
use x402_protocol::facilitator::{PaymentPayload, PaymentRequirements};
use x402_protocol::permit2::{
    self, DEADLINE_GRACE_SECONDS, EXACT_PERMIT2_PROXY, UPTO_PERMIT2_PROXY,
};
use x402_protocol::verify::{
    PaymentKey, select_requirement, verify_payment, verify_payment_with, verify_upto_permit2,
};
use x402_protocol::{NetworkRegistry, Reason, SchemePayload, v2};

#[derive(Deserialize)]
struct File {
    vectors: Vec<Vector>,
}

#[derive(Deserialize)]
struct Vector {
    name: String,
    kind: String,
    signed_at_unix: u64,
    payer: Address,
    payment_required: v2::PaymentRequired,
    header_value: String,
    typed_data: Vec<TypedData>,
    #[serde(default)]
    facilitator_address: Option<Address>,
}

#[derive(Deserialize)]
struct TypedData {
    #[serde(rename = "primaryType")]
    primary_type: String,
    domain: Value,
    eip712_digest: B256,
    signature: Bytes,
}

struct Case {
    name: String,
    upto: bool,
    now: u64,
    payer: Address,
    facilitator: Option<Address>,
    /// The payment as decoded JSON, to change one field at a time.
    raw: Value,
    /// The requirement it answers, as JSON.
    raw_requirement: Value,
    payload: PaymentPayload,
    requirement: PaymentRequirements,
    typed_data: TypedData,
    /// The EIP-2612 permit the client signed for the `eip2612GasSponsoring` extension.
    eip2612_typed_data: Option<TypedData>,
}

fn cases() -> Vec<Case> {
    let file: File =
        serde_json::from_str(include_str!("data/official-clients-permit2.json")).unwrap();
    assert_eq!(
        file.vectors.len(),
        6,
        "the vector file changed; review this test"
    );
    file.vectors
        .into_iter()
        .map(|v| {
            let raw: Value = codec::decode(&v.header_value, DEFAULT_MAX_HEADER_BYTES).unwrap();
            let payload: PaymentPayload =
                codec::decode(&v.header_value, DEFAULT_MAX_HEADER_BYTES).unwrap();
            let requirement = v.payment_required.accepts[0].clone();
            let mut typed_data = v.typed_data;
            let eip2612_typed_data = typed_data
                .iter()
                .position(|t| t.primary_type == "Permit")
                .map(|i| typed_data.remove(i));
            let typed_data = typed_data
                .into_iter()
                .find(|t| t.primary_type == "PermitWitnessTransferFrom")
                .unwrap();
            Case {
                upto: match v.kind.as_str() {
                    "evm-exact-permit2" => false,
                    "evm-upto-permit2" => true,
                    other => panic!("unexpected kind {other}"),
                },
                name: v.name,
                now: v.signed_at_unix,
                payer: v.payer,
                facilitator: v.facilitator_address,
                raw,
                raw_requirement: serde_json::to_value(&requirement).unwrap(),
                payload,
                requirement: PaymentRequirements::V2(requirement),
                typed_data,
                eip2612_typed_data,
            }
        })
        .collect()
}

fn chain_id(case: &Case) -> u64 {
    case.typed_data.domain["chainId"].as_u64().unwrap()
}

/// The signing hash and the payer of either kind of Permit2 payload.
fn digest_and_from(payload: &SchemePayload, chain_id: u64) -> (B256, Address, &Bytes) {
    match payload {
        SchemePayload::Permit2Exact(p) => (
            p.permit2_authorization.signing_hash(chain_id),
            p.permit2_authorization.from,
            &p.signature,
        ),
        SchemePayload::Permit2Upto(p) => (
            p.permit2_authorization.signing_hash(chain_id),
            p.permit2_authorization.from,
            &p.signature,
        ),
        other => panic!("not a Permit2 payload: {}", other.kind()),
    }
}

#[test]
fn digests_match_what_the_official_client_signed_and_recover_the_payer() {
    for case in cases() {
        assert_eq!(
            case.typed_data.domain,
            json!({
                "name": "Permit2",
                "chainId": chain_id(&case),
                "verifyingContract": "0x000000000022D473030F116dDEE9F6B43aC78BA3",
            }),
            "{}",
            case.name
        );
        let kind = case.payload.payload();
        assert_eq!(
            matches!(kind, SchemePayload::Permit2Upto(_)),
            case.upto,
            "{}: the payload's shape tells its kind",
            case.name
        );
        let (digest, from, signature) = digest_and_from(kind, chain_id(&case));
        assert_eq!(digest, case.typed_data.eip712_digest, "{}", case.name);
        assert_eq!(signature, &case.typed_data.signature, "{}", case.name);
        assert_eq!(from, case.payer, "{}", case.name);
        let backends = [
            RecoveryBackend::K256,
            #[cfg(feature = "secp256k1")]
            RecoveryBackend::Secp256k1,
        ];
        for backend in backends {
            assert_eq!(
                backend.recover(&digest, signature),
                Ok(case.payer),
                "{} ({backend:?})",
                case.name
            );
        }
    }
}

#[test]
fn decoding_then_encoding_loses_nothing() {
    for case in cases() {
        assert_eq!(
            serde_json::to_value(&case.payload).unwrap(),
            case.raw,
            "{}",
            case.name
        );
        let header = codec::encode(&case.payload);
        let again: PaymentPayload = codec::decode(&header, DEFAULT_MAX_HEADER_BYTES).unwrap();
        assert_eq!(again, case.payload, "{}", case.name);
    }
}

#[test]
fn every_official_header_verifies_at_its_signing_time() {
    let registry = NetworkRegistry::builtin();
    for case in cases() {
        let accepts = [case.requirement.clone()];
        let chosen = select_requirement(&case.payload, &accepts)
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        assert_eq!(chosen, &case.requirement);
        let backends = [
            RecoveryBackend::K256,
            #[cfg(feature = "secp256k1")]
            RecoveryBackend::Secp256k1,
        ];
        for backend in backends {
            let verified = verify_payment_with(backend, &case.payload, chosen, &registry, case.now)
                .unwrap_or_else(|e| panic!("{} ({backend:?}): {e}", case.name));
            assert_eq!(verified.payer, case.payer, "{}", case.name);
            assert_eq!(verified.amount, case.requirement.amount(), "{}", case.name);
            let auth = &case.raw["payload"]["permit2Authorization"];
            let deadline: u64 = auth["deadline"].as_str().unwrap().parse().unwrap();
            assert_eq!(verified.expires_at, Some(deadline), "{}", case.name);
            let nonce: U256 = auth["nonce"].as_str().unwrap().parse().unwrap();
            assert_eq!(
                verified.key,
                PaymentKey::permit2(chain_id(&case), case.payer, nonce),
                "{}",
                case.name
            );
            assert!(
                verified
                    .key
                    .as_str()
                    .starts_with(&format!("eip155:{}/permit2/", chain_id(&case))),
                "{}",
                verified.key
            );
        }
        // The official client dates the deadline signed_at + maxTimeoutSeconds: the last
        // second it verifies is 6 s before it.
        let deadline = case.now + case.requirement.max_timeout_seconds();
        assert!(
            verify_payment(
                &case.payload,
                &case.requirement,
                &registry,
                deadline - DEADLINE_GRACE_SECONDS
            )
            .is_ok(),
            "{}",
            case.name
        );
    }
}

/// Applies `change` to a copy of the payment JSON and of the requirement JSON, then verifies
/// at the vector's signing time; returns the refusal's reason (and checks it names the
/// claimed payer).
fn refusal(case: &Case, change: impl FnOnce(&mut Value, &mut Value)) -> Reason {
    let mut raw = case.raw.clone();
    let mut requirement = case.raw_requirement.clone();
    change(&mut raw, &mut requirement);
    let payload: PaymentPayload = serde_json::from_value(raw).unwrap();
    let requirement = PaymentRequirements::V2(serde_json::from_value(requirement).unwrap());
    let registry = NetworkRegistry::builtin();
    match verify_payment(&payload, &requirement, &registry, case.now) {
        Ok(_) => panic!("{}: expected a refusal", case.name),
        Err(e) => {
            assert_eq!(
                e.payer,
                payload.payload().claimed_payer(),
                "{}: the refusal names the claimed payer",
                case.name
            );
            e.reason
        }
    }
}

const OTHER: &str = "0x1111111111111111111111111111111111111111";

/// Sets the requirement's and the echoed `accepted` field together, as a client answering
/// that requirement would.
fn both(raw: &mut Value, requirement: &mut Value, key: &str, value: Value) {
    raw["accepted"][key] = value.clone();
    requirement[key] = value;
}

fn auth(raw: &mut Value) -> &mut Value {
    &mut raw["payload"]["permit2Authorization"]
}

#[test]
fn each_changed_field_is_refused_with_its_own_reason() {
    for case in cases() {
        let c = &case;
        let amount = c.requirement.amount();
        let other_amount = json!((amount + U256::from(1u64)).to_string());
        let other_network = if chain_id(c) == 8453 {
            "eip155:84532"
        } else {
            "eip155:8453"
        };
        let wrong_proxy = if c.upto {
            EXACT_PERMIT2_PROXY
        } else {
            UPTO_PERMIT2_PROXY
        };
        let checks: Vec<(&str, Reason)> = vec![
            // Amount: the route asks for another amount; the signed amount changed with it.
            (
                "requirement amount",
                refusal(c, |r, q| both(r, q, "amount", other_amount.clone())),
            ),
            (
                "permitted amount",
                refusal(c, |r, q| {
                    auth(r)["permitted"]["amount"] = other_amount.clone();
                    both(r, q, "amount", other_amount.clone());
                }),
            ),
            // Recipient: the route pays someone else; the witness was changed to match.
            (
                "requirement payTo",
                refusal(c, |r, q| both(r, q, "payTo", json!(OTHER))),
            ),
            (
                "witness.to",
                refusal(c, |r, _| auth(r)["witness"]["to"] = json!(OTHER)),
            ),
            (
                "witness.to and payTo",
                refusal(c, |r, q| {
                    auth(r)["witness"]["to"] = json!(OTHER);
                    both(r, q, "payTo", json!(OTHER));
                }),
            ),
            // Token: the permit is for another token; the route asks for another.
            (
                "permitted.token",
                refusal(c, |r, _| auth(r)["permitted"]["token"] = json!(OTHER)),
            ),
            (
                "requirement asset",
                refusal(c, |r, q| both(r, q, "asset", json!(OTHER))),
            ),
            (
                "permitted.token and asset",
                refusal(c, |r, q| {
                    auth(r)["permitted"]["token"] = json!(OTHER);
                    both(r, q, "asset", json!(OTHER));
                }),
            ),
            // Spender: another proxy, or anyone else.
            (
                "spender (other proxy)",
                refusal(c, |r, _| {
                    auth(r)["spender"] = json!(wrong_proxy.to_string())
                }),
            ),
            (
                "spender",
                refusal(c, |r, _| auth(r)["spender"] = json!(OTHER)),
            ),
            // Deadline: too close at verification; extended after signing.
            (
                "deadline near",
                refusal(c, |r, _| {
                    auth(r)["deadline"] = json!((c.now + DEADLINE_GRACE_SECONDS - 1).to_string())
                }),
            ),
            (
                "deadline extended",
                refusal(c, |r, _| {
                    auth(r)["deadline"] = json!((c.now + 86_400).to_string())
                }),
            ),
            (
                "validAfter",
                refusal(c, |r, _| {
                    auth(r)["witness"]["validAfter"] = json!((c.now + 1).to_string())
                }),
            ),
            // Chain: the route is on another network; the whole payment moved to another.
            (
                "requirement network",
                refusal(c, |_, q| q["network"] = json!(other_network)),
            ),
            (
                "network",
                refusal(c, |r, q| both(r, q, "network", json!(other_network))),
            ),
            // Nonce and signature.
            ("nonce", refusal(c, |r, _| auth(r)["nonce"] = json!("1"))),
            (
                "signature byte",
                refusal(c, |r, _| {
                    let sig = r["payload"]["signature"].as_str().unwrap().to_owned();
                    let flipped = if sig.as_bytes()[10] == b'0' { "1" } else { "0" };
                    r["payload"]["signature"] =
                        json!(format!("{}{}{}", &sig[..10], flipped, &sig[11..]));
                }),
            ),
            (
                "signature length",
                refusal(c, |r, _| {
                    let sig = r["payload"]["signature"].as_str().unwrap().to_owned();
                    r["payload"]["signature"] = json!(sig[..sig.len() - 2].to_owned());
                }),
            ),
            ("from", refusal(c, |r, _| auth(r)["from"] = json!(OTHER))),
        ];
        let expected = [
            Reason::PERMIT2_AMOUNT_MISMATCH,
            Reason::PERMIT2_INVALID_SIGNATURE,
            Reason::PERMIT2_RECIPIENT_MISMATCH,
            Reason::PERMIT2_RECIPIENT_MISMATCH,
            Reason::PERMIT2_INVALID_SIGNATURE,
            Reason::PERMIT2_TOKEN_MISMATCH,
            Reason::PERMIT2_TOKEN_MISMATCH,
            Reason::PERMIT2_INVALID_SIGNATURE,
            Reason::PERMIT2_INVALID_SPENDER,
            Reason::PERMIT2_INVALID_SPENDER,
            Reason::PERMIT2_DEADLINE_EXPIRED,
            Reason::PERMIT2_INVALID_SIGNATURE,
            Reason::PERMIT2_NOT_YET_VALID,
            Reason::INVALID_NETWORK,
            Reason::PERMIT2_INVALID_SIGNATURE,
            Reason::PERMIT2_INVALID_SIGNATURE,
            Reason::PERMIT2_INVALID_SIGNATURE,
            // Not 65 bytes: only a contract wallet's could be valid, which needs the chain.
            Reason::SMART_WALLET_NEEDS_RPC,
            Reason::PERMIT2_INVALID_SIGNATURE,
        ];
        assert_eq!(checks.len(), expected.len());
        for ((what, got), want) in checks.into_iter().zip(expected) {
            assert_eq!(got, want, "{}: changed {what}", case.name);
        }
    }
}

#[test]
fn exact_permit2_needs_a_requirement_that_offers_permit2() {
    for case in cases().iter().filter(|c| !c.upto) {
        for method in [Value::Null, json!("eip3009")] {
            let reason = refusal(case, |_, q| match &method {
                Value::Null => {
                    q["extra"]
                        .as_object_mut()
                        .unwrap()
                        .remove("assetTransferMethod");
                }
                m => q["extra"]["assetTransferMethod"] = m.clone(),
            });
            assert_eq!(
                reason,
                Reason::ASSET_TRANSFER_METHOD_MISMATCH,
                "{}",
                case.name
            );
        }
    }
}

#[test]
fn a_payload_of_one_scheme_does_not_pay_the_other() {
    for case in cases() {
        let other = if case.upto { "exact" } else { "upto" };
        let reason = refusal(&case, |r, q| both(r, q, "scheme", json!(other)));
        assert_eq!(reason, Reason::UNSUPPORTED_SCHEME, "{}", case.name);
    }
}

#[test]
fn upto_witness_must_name_an_accepted_facilitator() {
    let registry = NetworkRegistry::builtin();
    for case in cases().iter().filter(|c| c.upto) {
        let facilitator = case.facilitator.unwrap();
        assert_eq!(
            facilitator,
            address!("0x90F79bf6EB2c4f870365E785982E1f101E93b906")
        );
        // The witness names someone else than the requirement's facilitatorAddress.
        assert_eq!(
            refusal(case, |r, _| auth(r)["witness"]["facilitator"] =
                json!(OTHER)),
            Reason::UPTO_FACILITATOR_MISMATCH,
            "{}",
            case.name
        );
        // The requirement names another facilitator.
        assert_eq!(
            refusal(case, |r, q| {
                r["accepted"]["extra"]["facilitatorAddress"] = json!(OTHER);
                q["extra"]["facilitatorAddress"] = json!(OTHER);
            }),
            Reason::UPTO_FACILITATOR_MISMATCH,
            "{}",
            case.name
        );
        // Witness and requirement both changed: the signature no longer matches.
        assert_eq!(
            refusal(case, |r, q| {
                auth(r)["witness"]["facilitator"] = json!(OTHER);
                q["extra"]["facilitatorAddress"] = json!(OTHER);
            }),
            Reason::PERMIT2_INVALID_SIGNATURE,
            "{}",
            case.name
        );
        // A requirement that names no facilitator cannot be checked.
        assert_eq!(
            refusal(case, |_, q| {
                q["extra"]
                    .as_object_mut()
                    .unwrap()
                    .remove("facilitatorAddress");
            }),
            Reason::INVALID_PAYMENT_REQUIREMENTS,
            "{}",
            case.name
        );
        // A facilitator checks against its own addresses.
        let upto = case.payload.payload().as_permit2_upto().unwrap();
        let backend = RecoveryBackend::default();
        let own = [Address::repeat_byte(3), facilitator];
        let verified = verify_upto_permit2(
            backend,
            upto,
            &case.requirement,
            &registry,
            case.now,
            Some(&own),
        )
        .unwrap();
        assert_eq!(verified.payer, case.payer);
        let err = verify_upto_permit2(
            backend,
            upto,
            &case.requirement,
            &registry,
            case.now,
            Some(&own[..1]),
        )
        .unwrap_err();
        assert_eq!(err.reason, Reason::UPTO_FACILITATOR_MISMATCH);
    }
}

/// The payloads the crate's own signer makes verify like the official ones, with the
/// official client's payer key (a public dev key).
#[test]
fn payloads_signed_here_verify_like_the_official_ones() {
    let signer = x402_protocol::eip3009::LocalSigner::from_hex(
        "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    )
    .unwrap();
    let registry = NetworkRegistry::builtin();
    for case in cases() {
        let mut payload = case.payload.clone();
        let PaymentPayload::V2(p) = &mut payload else {
            unreachable!()
        };
        let chain = chain_id(&case);
        p.payload = match &p.payload {
            SchemePayload::Permit2Exact(e) => {
                let mut auth = e.permit2_authorization.clone();
                auth.nonce = permit2::random_permit2_nonce();
                permit2::sign(&signer, auth, chain).into()
            }
            SchemePayload::Permit2Upto(u) => {
                let mut auth = u.permit2_authorization.clone();
                auth.nonce = permit2::random_permit2_nonce();
                permit2::sign(&signer, auth, chain).into()
            }
            other => panic!("{}", other.kind()),
        };
        let verified = verify_payment(&payload, &case.requirement, &registry, case.now)
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        assert_eq!(verified.payer, case.payer);
    }
}

#[test]
fn malformed_permit2_payloads_do_not_decode() {
    let case = &cases()[0];
    let decode = |change: &dyn Fn(&mut Value)| {
        let mut raw = case.raw.clone();
        change(&mut raw);
        serde_json::from_value::<PaymentPayload>(raw)
    };
    // The nonce is a uint256 in base 10 (or 0x hex): anything else is refused, naming why.
    for nonce in [
        json!("abc"),
        json!("-1"),
        json!("0x"),
        json!(format!("0x1{}", "0".repeat(64))),
        json!(U256::MAX.to_string() + "0"),
        json!(null),
    ] {
        let err = decode(&|r| auth(r)["nonce"] = nonce.clone()).unwrap_err();
        assert!(!err.to_string().is_empty(), "{nonce}");
    }
    // A hex nonce is read as the same number and written back in base 10.
    let nonce: U256 = case.raw["payload"]["permit2Authorization"]["nonce"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let hex = decode(&|r| auth(r)["nonce"] = json!(format!("{nonce:#x}"))).unwrap();
    assert_eq!(hex, case.payload);
    // A signature is required, and one payload is one kind.
    let err = decode(&|r| {
        r["payload"].as_object_mut().unwrap().remove("signature");
    })
    .unwrap_err();
    assert!(err.to_string().contains("signature"), "{err}");
    let err = decode(&|r| r["payload"]["transaction"] = json!("AQID")).unwrap_err();
    assert!(err.to_string().contains("more than one"), "{err}");
    for field in ["from", "spender", "deadline", "permitted", "witness"] {
        assert!(
            decode(&|r| {
                auth(r).as_object_mut().unwrap().remove(field);
            })
            .is_err(),
            "{field}"
        );
    }
}

/// The extension as sent in a changed copy of the payment, checked against its Permit2
/// authorization at the vector's signing time and its signature in the token's domain.
fn sponsoring_refusal(case: &Case, change: impl FnOnce(&mut Value)) -> Reason {
    let mut raw = case.raw.clone();
    change(&mut raw);
    let result = (|| -> Result<(), SponsoringError> {
        let info = Eip2612GasSponsoring::from_extensions(raw.get("extensions"))?
            .expect("the vector carries the extension");
        let payload: PaymentPayload = serde_json::from_value(raw.clone()).unwrap();
        let permit = payload.payload().as_permit2_exact().unwrap();
        info.check(&permit.permit2_authorization, case.now)?;
        info.verify_signature(RecoveryBackend::default(), &token_domain(case))
    })();
    result.expect_err("expected a refusal").reason()
}

fn token_domain(case: &Case) -> TokenDomain<'_> {
    let d = &case.eip2612_typed_data.as_ref().unwrap().domain;
    TokenDomain {
        name: d["name"].as_str().unwrap(),
        version: d["version"].as_str().unwrap(),
        chain_id: d["chainId"].as_u64().unwrap(),
        verifying_contract: d["verifyingContract"].as_str().unwrap().parse().unwrap(),
    }
}

#[test]
fn the_eip2612_sponsoring_permit_checks_out_and_each_change_is_refused() {
    let all = cases();
    let with: Vec<_> = all
        .iter()
        .filter(|c| c.eip2612_typed_data.is_some())
        .collect();
    assert_eq!(with.len(), 1, "one vector carries eip2612GasSponsoring");
    for case in &all {
        let extensions = case.raw.get("extensions");
        let found = Eip2612GasSponsoring::from_extensions(extensions).unwrap();
        assert_eq!(
            found.is_some(),
            case.eip2612_typed_data.is_some(),
            "{}",
            case.name
        );
    }
    let case = with[0];
    let signed = case.eip2612_typed_data.as_ref().unwrap();
    let info = Eip2612GasSponsoring::from_extensions(case.raw.get("extensions"))
        .unwrap()
        .unwrap();
    // The digest is the one the client signed, and the signature is the payer's.
    let token = token_domain(case);
    assert_eq!(token.verifying_contract, info.asset);
    assert_eq!(info.signing_hash(&token), signed.eip712_digest);
    assert_eq!(info.signature, signed.signature);
    let permit = case.payload.payload().as_permit2_exact().unwrap();
    assert_eq!(info.check(&permit.permit2_authorization, case.now), Ok(()));
    assert_eq!(
        info.verify_signature(RecoveryBackend::default(), &token),
        Ok(())
    );

    // An info without one of its fields is no permit at all (the reference's
    // extractEip2612GasSponsoringInfo: clients echo the 402's declaration unsigned).
    for field in ["signature", "from", "nonce"] {
        let mut raw = case.raw.clone();
        ext(&mut raw).as_object_mut().unwrap().remove(field);
        assert_eq!(
            Eip2612GasSponsoring::from_extensions(raw.get("extensions")),
            Ok(None),
            "{field}"
        );
    }

    let cases: Vec<(&str, Change, Reason)> = vec![
        (
            "amount as a number",
            Box::new(|r: &mut Value| ext(r)["amount"] = json!(50000)),
            Reason::EIP2612_EXTENSION_FORMAT,
        ),
        (
            "version",
            Box::new(|r: &mut Value| ext(r)["version"] = json!("v1")),
            Reason::EIP2612_EXTENSION_FORMAT,
        ),
        (
            "from",
            Box::new(|r: &mut Value| ext(r)["from"] = json!(OTHER)),
            Reason::EIP2612_FROM_MISMATCH,
        ),
        (
            "asset",
            Box::new(|r: &mut Value| ext(r)["asset"] = json!(OTHER)),
            Reason::EIP2612_ASSET_MISMATCH,
        ),
        (
            "spender",
            Box::new(|r: &mut Value| ext(r)["spender"] = json!(EXACT_PERMIT2_PROXY.to_string())),
            Reason::EIP2612_SPENDER_NOT_PERMIT2,
        ),
        (
            "deadline",
            Box::new(move |r: &mut Value| ext(r)["deadline"] = json!((case.now + 5).to_string())),
            Reason::EIP2612_DEADLINE_EXPIRED,
        ),
        (
            "amount",
            Box::new(|r: &mut Value| ext(r)["amount"] = json!(U256::MAX.to_string())),
            Reason::EIP2612_AMOUNT_MISMATCH,
        ),
        (
            "nonce",
            Box::new(|r: &mut Value| ext(r)["nonce"] = json!("1")),
            Reason::EIP2612_INVALID_SIGNATURE,
        ),
        (
            "deadline extended",
            Box::new(move |r: &mut Value| {
                ext(r)["deadline"] = json!((case.now + 86_400).to_string())
            }),
            Reason::EIP2612_INVALID_SIGNATURE,
        ),
    ];
    for (what, change, want) in cases {
        assert_eq!(sponsoring_refusal(case, change), want, "changed {what}");
    }
    // In another token's domain the same signature is not the payer's.
    let other = TokenDomain {
        name: "USD Coin",
        ..token
    };
    assert_eq!(
        info.verify_signature(RecoveryBackend::default(), &other)
            .unwrap_err()
            .reason(),
        Reason::EIP2612_INVALID_SIGNATURE
    );
}

/// A change to a copy of a payment's JSON.
type Change<'a> = Box<dyn FnOnce(&mut Value) + 'a>;

fn ext(raw: &mut Value) -> &mut Value {
    &mut raw["extensions"]["eip2612GasSponsoring"]["info"]
}

#[test]
fn the_erc20_approval_transaction_checks_out_and_each_change_is_refused() {
    use x402_protocol::erc20_approval::{ApprovalError, Erc20ApprovalGasSponsoring};
    let all = cases();
    let with: Vec<_> = all
        .iter()
        .filter(|c| {
            Erc20ApprovalGasSponsoring::from_extensions(c.raw.get("extensions"))
                .unwrap()
                .is_some()
        })
        .collect();
    assert_eq!(
        with.len(),
        1,
        "one vector carries erc20ApprovalGasSponsoring"
    );
    let case = with[0];
    let backend = RecoveryBackend::default();
    let check = |raw: &Value| -> Result<_, ApprovalError> {
        let info = Erc20ApprovalGasSponsoring::from_extensions(raw.get("extensions"))?.unwrap();
        let permit = case.payload.payload().as_permit2_exact().unwrap();
        info.check(backend, &permit.permit2_authorization, chain_id(case))
    };
    // The official client's transaction: approve(Permit2, 2^256 - 1) on the token, chain
    // 8453, nonce 0, gas 70 000, fees 1 / 0.1 gwei, signed by the payer.
    let tx = check(&case.raw).unwrap();
    assert_eq!(tx.signer, case.payer);
    assert_eq!(tx.chain_id, 8453);
    assert_eq!(tx.nonce, 0);
    assert_eq!(tx.gas_limit, 70_000);
    assert_eq!(tx.max_fee_per_gas, 1_000_000_000);
    assert_eq!(tx.max_priority_fee_per_gas, 100_000_000);
    assert_eq!(tx.to, Some(case.requirement.asset().parse().unwrap()));
    assert_eq!(&tx.input[..4], &[0x09, 0x5e, 0xa7, 0xb3]);
    assert_eq!(&tx.input[36..], &[0xff; 32]);

    fn info(r: &mut Value) -> &mut Value {
        &mut r["extensions"]["erc20ApprovalGasSponsoring"]["info"]
    }
    let signed = case.raw["extensions"]["erc20ApprovalGasSponsoring"]["info"]["signedTransaction"]
        .as_str()
        .unwrap()
        .to_owned();
    // The transaction with bytes changed at a byte offset (the RLP layout of this one: type
    // byte, a 2-byte list header, the chain id at bytes 4-5, `to` at 22, the calldata at 45).
    let patched = |at: usize, with: &str| {
        let hex = &signed[2..];
        format!(
            "0x{}{}{}",
            &hex[..at * 2],
            with,
            &hex[at * 2 + with.len()..]
        )
    };
    assert_eq!(
        &signed[2 + 22 * 2..2 + 42 * 2],
        "833589fcd6edb6e08f4c7c32d4f71b54bda02913"
    );
    assert_eq!(&signed[2 + 45 * 2..2 + 49 * 2], "095ea7b3");
    let changes: Vec<(&str, Value, Reason)> = vec![
        (
            "from",
            json!({"from": OTHER}),
            Reason::ERC20_APPROVAL_FROM_MISMATCH,
        ),
        (
            "asset",
            json!({"asset": OTHER}),
            Reason::ERC20_APPROVAL_ASSET_MISMATCH,
        ),
        (
            "spender",
            json!({"spender": OTHER}),
            Reason::ERC20_APPROVAL_SPENDER_NOT_PERMIT2,
        ),
        (
            "amount",
            json!({"amount": "max"}),
            Reason::ERC20_APPROVAL_EXTENSION_FORMAT,
        ),
        (
            "truncated tx",
            json!({"signedTransaction": &signed[..signed.len() - 2]}),
            Reason::ERC20_APPROVAL_TX_PARSE_FAILED,
        ),
        (
            "legacy type",
            json!({"signedTransaction": patched(0, "01")}),
            Reason::ERC20_APPROVAL_TX_PARSE_FAILED,
        ),
        (
            "chain",
            json!({"signedTransaction": patched(4, "2106")}),
            Reason::ERC20_APPROVAL_TX_WRONG_CHAIN,
        ),
        (
            "target",
            json!({"signedTransaction": patched(22, "1111")}),
            Reason::ERC20_APPROVAL_TX_WRONG_TARGET,
        ),
        (
            "selector",
            json!({"signedTransaction": patched(45, "a9059cbb")}),
            Reason::ERC20_APPROVAL_TX_WRONG_SELECTOR,
        ),
        (
            "calldata",
            json!({"signedTransaction": patched(49, "01")}),
            Reason::ERC20_APPROVAL_TX_INVALID_CALLDATA,
        ),
        (
            "approved spender",
            json!({"signedTransaction": patched(61, "11")}),
            Reason::ERC20_APPROVAL_TX_WRONG_SPENDER,
        ),
        (
            "approved amount",
            json!({"signedTransaction": patched(81, "00")}),
            Reason::ERC20_APPROVAL_TX_SIGNER_MISMATCH,
        ),
    ];
    for (what, fields, want) in changes {
        let mut raw = case.raw.clone();
        for (k, v) in fields.as_object().unwrap() {
            info(&mut raw)[k] = v.clone();
        }
        let got = check(&raw).map(|_| ()).unwrap_err().reason();
        assert_eq!(got, want, "changed {what}");
    }
}

/// No prefix and no one-byte change of a signed transaction makes the decoder panic.
#[test]
fn the_transaction_decoder_survives_damage() {
    use x402_protocol::erc20_approval::decode_eip1559;
    let case = cases()
        .into_iter()
        .find(|c| c.name.contains("erc20approval"))
        .unwrap();
    let signed = case.raw["extensions"]["erc20ApprovalGasSponsoring"]["info"]["signedTransaction"]
        .as_str()
        .unwrap();
    let tx: Vec<u8> = alloy_primitives::hex::decode(signed).unwrap();
    let backend = RecoveryBackend::default();
    assert_eq!(decode_eip1559(backend, &tx).unwrap().signer, case.payer);
    for end in 0..tx.len() {
        assert!(decode_eip1559(backend, &tx[..end]).is_err(), "prefix {end}");
    }
    // Every byte up to the calldata's arguments, and the headers of yParity, r and s, set to
    // each kind of RLP header (damage elsewhere only changes what is signed; a decode that
    // gets as far as recovering a signer is slow in debug builds).
    let structural = (0..50)
        .chain([113, 114, 146, 147])
        .filter(|at| *at < tx.len());
    for at in structural {
        for byte in [0x00, 0x7f, 0x80, 0xb7, 0xb8, 0xc0, 0xf7, 0xf8, 0xff] {
            let mut damaged = tx.clone();
            damaged[at] = byte;
            let _ = decode_eip1559(backend, &damaged);
        }
    }
}

/// What an `upto` handler may charge against the official client's maximum: 37 % settles
/// exactly that, zero settles nothing, the maximum is allowed and one unit more is refused.
#[test]
fn upto_charges_are_bounded_by_the_signed_maximum() {
    for case in cases().iter().filter(|c| c.upto) {
        let upto = case.payload.payload().as_permit2_upto().unwrap();
        let maximum = case.requirement.amount();
        let share = maximum * U256::from(37u64) / U256::from(100u64);
        assert_eq!(
            upto.settlement_amount(share),
            Ok(Some(share)),
            "{}",
            case.name
        );
        assert_eq!(
            upto.settlement_amount(U256::ZERO),
            Ok(None),
            "{}",
            case.name
        );
        assert_eq!(
            upto.settlement_amount(maximum),
            Ok(Some(maximum)),
            "{}",
            case.name
        );
        assert_eq!(
            upto.settlement_amount(maximum + U256::from(1u64))
                .unwrap_err()
                .reason(),
            Reason::UPTO_SETTLEMENT_EXCEEDS_AMOUNT,
            "{}",
            case.name
        );
    }
}

/// Signing the official authorization with the same (public dev) key reproduces the official
/// signature byte for byte: both sides use deterministic (RFC 6979) ECDSA over the same digest.
#[test]
fn signing_the_official_authorization_reproduces_the_official_signature() {
    let signer = x402_protocol::eip3009::LocalSigner::from_hex(
        "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    )
    .unwrap();
    for case in cases() {
        let chain = chain_id(&case);
        let (ours, theirs) = match case.payload.payload() {
            SchemePayload::Permit2Exact(p) => (
                permit2::sign(&signer, p.permit2_authorization.clone(), chain).signature,
                &p.signature,
            ),
            SchemePayload::Permit2Upto(p) => (
                permit2::sign(&signer, p.permit2_authorization.clone(), chain).signature,
                &p.signature,
            ),
            other => panic!("{}", other.kind()),
        };
        assert_eq!(&ours, theirs, "{}", case.name);
        // And the EIP-2612 permit of the sponsored vector, in the token's domain.
        if let Some(info) =
            Eip2612GasSponsoring::from_extensions(case.raw.get("extensions")).unwrap()
        {
            let ours = signer.sign_hash(&info.signing_hash(&token_domain(&case)));
            assert_eq!(&ours[..], &info.signature[..], "{} (EIP-2612)", case.name);
        }
    }
}
