//! Decode + verify of one payment header, per signature-recovery backend, and the hashing
//! pieces of it: the EIP-712 digest of the authorization, and EIP-55 address text.
//!
//! Run with both backends compiled in:
//! `cargo bench -p x402-protocol --features secp256k1 --bench protocol`.
//! The input is the official npm v2 client's header from `tests/data/official-clients.json`.

use criterion::{Criterion, criterion_group, criterion_main};
use serde::Deserialize;
use std::hint::black_box;
use x402_protocol::codec::{self, DEFAULT_MAX_HEADER_BYTES};
use x402_protocol::eip3009::RecoveryBackend;
use x402_protocol::eip3009::TokenDomain;
use x402_protocol::facilitator::{PaymentPayload, PaymentRequirements};
use x402_protocol::verify::{select_requirement, verify_payment_with};
use x402_protocol::{ChainAddress, NetworkRegistry, v2};

#[derive(Deserialize)]
struct Vector {
    signed_at_unix: u64,
    payment_required: v2::PaymentRequired,
    header_value: String,
}

fn first_v2_vector() -> Vector {
    let file: serde_json::Value =
        serde_json::from_str(include_str!("../tests/data/official-clients.json"))
            .expect("vector file");
    let first = file["vectors"][0].clone();
    serde_json::from_value(first).expect("first vector is v2")
}

fn decode_and_verify(c: &mut Criterion) {
    let vector = first_v2_vector();
    let accepts: Vec<_> = vector
        .payment_required
        .accepts
        .iter()
        .cloned()
        .map(PaymentRequirements::V2)
        .collect();
    let registry = NetworkRegistry::builtin();
    let backends = [
        ("k256", RecoveryBackend::K256),
        #[cfg(feature = "secp256k1")]
        ("secp256k1", RecoveryBackend::Secp256k1),
    ];

    let mut group = c.benchmark_group("payment");
    group.bench_function("decode_only", |b| {
        b.iter(|| {
            let payload: v2::PaymentPayload =
                codec::decode(black_box(&vector.header_value), DEFAULT_MAX_HEADER_BYTES)
                    .expect("decodes");
            black_box(payload)
        })
    });
    for (name, backend) in backends {
        group.bench_function(format!("decode_verify/{name}"), |b| {
            b.iter(|| {
                let payload: v2::PaymentPayload =
                    codec::decode(black_box(&vector.header_value), DEFAULT_MAX_HEADER_BYTES)
                        .expect("decodes");
                let payload = PaymentPayload::V2(payload);
                let requirement = select_requirement(&payload, &accepts).expect("matches");
                let verified = verify_payment_with(
                    backend,
                    &payload,
                    requirement,
                    &registry,
                    vector.signed_at_unix,
                )
                .expect("verifies");
                black_box(verified)
            })
        });
    }
    group.finish();
}

fn hashing(c: &mut Criterion) {
    let vector = first_v2_vector();
    let payload: v2::PaymentPayload =
        codec::decode(&vector.header_value, DEFAULT_MAX_HEADER_BYTES).expect("decodes");
    let exact = payload.payload.as_eip3009().expect("an EIP-3009 payload");
    let requirement = &vector.payment_required.accepts[0];
    let extra = |key: &str| {
        requirement
            .extra
            .as_ref()
            .and_then(|e| e[key].as_str())
            .expect("name and version in extra")
    };
    let domain = TokenDomain {
        name: extra("name"),
        version: extra("version"),
        chain_id: 84532,
        verifying_contract: requirement.asset.parse().expect("asset"),
    };
    let payer = ChainAddress::Evm(exact.authorization.from);

    let mut group = c.benchmark_group("hashing");
    // The digest the payer signed: domain separator and hashStruct.
    group.bench_function("eip712_signing_hash", |b| {
        b.iter(|| black_box(black_box(&domain).signing_hash(black_box(&exact.authorization))))
    });
    // A payer written as text, as receipts, logs and facilitator requests do.
    group.bench_function("address_to_string", |b| {
        b.iter(|| black_box(black_box(&payer).to_string()))
    });
    group.finish();
}

criterion_group!(benches, decode_and_verify, hashing);
criterion_main!(benches);
