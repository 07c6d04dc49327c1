//! Payment headers made by the official clients (npm `@x402/core`+`@x402/evm` 2.27, npm `x402`
//! 1.2.0, PyPI `x402` 2.25) decode, match their requirements and verify; and each tampering
//! is rejected with its own reason.

use alloy_primitives::{Address, U256};
use serde::Deserialize;
use x402_protocol::codec::{self, DEFAULT_MAX_HEADER_BYTES};
use x402_protocol::eip3009::{RecoveryBackend, VALID_BEFORE_GRACE_SECONDS};
use x402_protocol::exact::ExactEvmPayload;
use x402_protocol::facilitator::{PaymentPayload, PaymentRequirements};
use x402_protocol::verify::{select_requirement, verify_payment, verify_payment_with};
use x402_protocol::{NetworkRegistry, ProtocolVersion, Reason, SchemePayload, headers, v1, v2};

#[derive(Deserialize)]
struct File {
    vectors: Vec<Vector>,
}

#[derive(Deserialize)]
struct Vector {
    producer: String,
    protocol: u8,
    signed_at_unix: u64,
    payer: Address,
    payment_required: serde_json::Value,
    header_name: String,
    header_value: String,
}

struct Case {
    name: String,
    now: u64,
    payer: Address,
    payload: PaymentPayload,
    raw_payload: serde_json::Value,
    requirements: PaymentRequirements,
}

fn cases() -> Vec<Case> {
    let file: File = serde_json::from_str(include_str!("data/official-clients.json")).unwrap();
    assert_eq!(
        file.vectors.len(),
        5,
        "the vector file changed; review this test"
    );
    file.vectors
        .into_iter()
        .map(|v| {
            let name = format!("{} ({})", v.producer, v.header_name);
            let raw_payload: serde_json::Value =
                codec::decode(&v.header_value, DEFAULT_MAX_HEADER_BYTES).unwrap();
            let (payload, requirements) = match v.header_name.to_ascii_lowercase().as_str() {
                headers::X_PAYMENT => {
                    assert_eq!(v.protocol, 1);
                    let required: v1::PaymentRequired =
                        serde_json::from_value(v.payment_required).unwrap();
                    let payload: v1::PaymentPayload =
                        codec::decode(&v.header_value, DEFAULT_MAX_HEADER_BYTES).unwrap();
                    (
                        PaymentPayload::V1(payload),
                        PaymentRequirements::V1(required.accepts[0].clone()),
                    )
                }
                headers::PAYMENT_SIGNATURE => {
                    assert_eq!(v.protocol, 2);
                    let required: v2::PaymentRequired =
                        serde_json::from_value(v.payment_required).unwrap();
                    let payload: v2::PaymentPayload =
                        codec::decode(&v.header_value, DEFAULT_MAX_HEADER_BYTES).unwrap();
                    (
                        PaymentPayload::V2(payload),
                        PaymentRequirements::V2(required.accepts[0].clone()),
                    )
                }
                other => panic!("unexpected header {other}"),
            };
            Case {
                name,
                now: v.signed_at_unix,
                payer: v.payer,
                payload,
                raw_payload,
                requirements,
            }
        })
        .collect()
}

fn eip3009(payload: &PaymentPayload) -> &ExactEvmPayload {
    payload
        .payload()
        .as_eip3009()
        .expect("the official vectors are EIP-3009 payments")
}

fn reason(case: &Case, requirements: &PaymentRequirements, now: u64) -> Reason {
    let registry = NetworkRegistry::builtin();
    match verify_payment(&case.payload, requirements, &registry, now) {
        Ok(_) => panic!("{}: expected a rejection", case.name),
        Err(e) => {
            assert_eq!(
                e.payer,
                Some(case.payer.into()),
                "{}: rejection names the claimed payer",
                case.name
            );
            e.reason
        }
    }
}

#[test]
fn every_official_header_verifies_at_its_signing_time() {
    let registry = NetworkRegistry::builtin();
    for case in cases() {
        let accepts = [case.requirements.clone()];
        let chosen = select_requirement(&case.payload, &accepts)
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        assert_eq!(chosen, &case.requirements);
        let backends = [
            RecoveryBackend::K256,
            #[cfg(feature = "secp256k1")]
            RecoveryBackend::Secp256k1,
        ];
        for backend in backends {
            let verified = verify_payment_with(backend, &case.payload, chosen, &registry, case.now)
                .unwrap_or_else(|e| panic!("{} ({backend:?}): {e}", case.name));
            assert_eq!(verified.payer, case.payer, "{}", case.name);
            assert_eq!(verified.amount, U256::from(10_000u64));
        }
    }
}

#[test]
fn decoding_then_encoding_loses_nothing() {
    for case in cases() {
        let reencoded = serde_json::to_value(&case.payload).unwrap();
        assert_eq!(reencoded, case.raw_payload, "{}", case.name);
        // And our header text decodes back to the same payload.
        let header = codec::encode(&case.payload);
        let again: PaymentPayload = codec::decode(&header, DEFAULT_MAX_HEADER_BYTES).unwrap();
        assert_eq!(again, case.payload, "{}", case.name);
    }
}

#[test]
fn expired_headers_are_rejected() {
    for case in cases() {
        let valid_before: u64 = eip3009(&case.payload).authorization.valid_before.to();
        let last_ok = valid_before - VALID_BEFORE_GRACE_SECONDS;
        let registry = NetworkRegistry::builtin();
        assert!(
            verify_payment(&case.payload, &case.requirements, &registry, last_ok).is_ok(),
            "{}",
            case.name
        );
        for now in [last_ok + 1, valid_before, valid_before + 3600] {
            assert_eq!(
                reason(&case, &case.requirements, now),
                Reason::VALID_BEFORE,
                "{}",
                case.name
            );
        }
    }
}

#[test]
fn headers_are_rejected_when_the_requirements_differ() {
    for case in cases() {
        let mut pay_to = case.requirements.clone();
        let mut amount = case.requirements.clone();
        let mut network = case.requirements.clone();
        let mut asset = case.requirements.clone();
        let other_address = "0x1111111111111111111111111111111111111111".to_owned();
        match (&mut pay_to, &mut amount, &mut network, &mut asset) {
            (
                PaymentRequirements::V1(p),
                PaymentRequirements::V1(a),
                PaymentRequirements::V1(n),
                PaymentRequirements::V1(s),
            ) => {
                p.pay_to = other_address.clone();
                a.max_amount_required = U256::from(10_001u64);
                n.network = "polygon".into();
                s.asset = other_address.clone();
            }
            (
                PaymentRequirements::V2(p),
                PaymentRequirements::V2(a),
                PaymentRequirements::V2(n),
                PaymentRequirements::V2(s),
            ) => {
                p.pay_to = other_address.clone();
                a.amount = U256::from(10_001u64);
                n.network = "eip155:137".into();
                s.asset = other_address.clone();
            }
            _ => unreachable!(),
        }
        assert_eq!(
            reason(&case, &pay_to, case.now),
            Reason::RECIPIENT_MISMATCH,
            "{}",
            case.name
        );
        assert_eq!(
            reason(&case, &amount, case.now),
            Reason::VALUE_MISMATCH,
            "{}",
            case.name
        );
        assert_eq!(
            reason(&case, &network, case.now),
            Reason::INVALID_NETWORK,
            "{}",
            case.name
        );
        // v2 payments name their asset; a v1 payment only commits to it through the EIP-712
        // domain, so another asset makes its signature recover to someone else.
        let asset_reason = match case.payload.version() {
            ProtocolVersion::V1 => Reason::INVALID_SIGNATURE,
            ProtocolVersion::V2 => Reason::ASSET_MISMATCH,
        };
        assert_eq!(
            reason(&case, &asset, case.now),
            asset_reason,
            "{}",
            case.name
        );

        // A server offering only the other network or asset finds no requirement to match.
        for (offered, expected) in [(network, Reason::INVALID_NETWORK), (asset, asset_reason)] {
            if let Err(e) = select_requirement(&case.payload, std::slice::from_ref(&offered)) {
                assert_eq!(e.reason, expected, "{}", case.name);
            } else {
                assert_eq!(
                    case.payload.version(),
                    ProtocolVersion::V1,
                    "{}: v2 must not match",
                    case.name
                );
            }
        }
    }
}

#[test]
fn changing_any_signature_byte_is_detected() {
    for case in cases() {
        let signature = eip3009(&case.payload).signature.clone();
        assert_eq!(signature.len(), 65);
        for index in 0..signature.len() {
            let mut tampered = case.payload.clone();
            let mut bytes = signature.to_vec();
            bytes[index] ^= 0x01;
            let scheme_payload = match &mut tampered {
                PaymentPayload::V1(p) => &mut p.payload,
                PaymentPayload::V2(p) => &mut p.payload,
            };
            if let SchemePayload::Eip3009(exact) = scheme_payload {
                exact.signature = bytes.into();
            }
            let tampered_case = Case {
                payload: tampered,
                ..clone_case(&case)
            };
            assert_eq!(
                reason(&tampered_case, &case.requirements, case.now),
                Reason::INVALID_SIGNATURE,
                "{}: byte {index}",
                case.name
            );
        }
    }
}

fn clone_case(case: &Case) -> Case {
    Case {
        name: case.name.clone(),
        now: case.now,
        payer: case.payer,
        payload: case.payload.clone(),
        raw_payload: case.raw_payload.clone(),
        requirements: case.requirements.clone(),
    }
}

/// The legacy Python v1 client posts `null` for optional fields; other clients omit them.
#[test]
fn null_optional_fields_are_accepted() {
    let v1: v1::PaymentRequirements = serde_json::from_value(serde_json::json!({
        "scheme": "exact", "network": "base", "maxAmountRequired": "10000",
        "resource": "http://api.test/weather", "description": null, "mimeType": null,
        "outputSchema": null, "payTo": "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
        "maxTimeoutSeconds": 60, "asset": "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913", "extra": null
    }))
    .unwrap();
    assert_eq!((v1.description.as_str(), v1.mime_type.as_str()), ("", ""));
    assert_eq!((v1.output_schema, v1.extra), (None, None));

    let settled: x402_protocol::facilitator::SettleResponse = serde_json::from_value(serde_json::json!({
        "success": false, "errorReason": "insufficient_funds", "payer": null, "transaction": null, "network": "base"
    }))
    .unwrap();
    assert_eq!(settled.transaction, "");
    let verified: x402_protocol::facilitator::VerifyResponse = serde_json::from_value(
        serde_json::json!({"isValid": true, "invalidReason": null, "payer": null}),
    )
    .unwrap();
    assert!(verified.is_valid && verified.payer.is_none());
    // And we always send `payer` (null when unknown), which the Python v1 model requires.
    assert!(
        serde_json::to_value(&verified)
            .unwrap()
            .as_object()
            .unwrap()
            .contains_key("payer")
    );
}
