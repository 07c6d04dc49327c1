//! Decode + verify of one payment header, per signature-recovery backend.
//!
//! Run with both backends compiled in:
//! `cargo bench -p x402-protocol --features secp256k1 --bench protocol`.
//! The input is the official npm v2 client's header from `tests/data/official-clients.json`.

use criterion::{Criterion, criterion_group, criterion_main};
use serde::Deserialize;
use std::hint::black_box;
use x402_protocol::codec::{self, DEFAULT_MAX_HEADER_BYTES};
use x402_protocol::eip3009::RecoveryBackend;
use x402_protocol::facilitator::{PaymentPayload, PaymentRequirements};
use x402_protocol::verify::{select_requirement, verify_payment_with};
use x402_protocol::{NetworkRegistry, v2};

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

criterion_group!(benches, decode_and_verify);
criterion_main!(benches);
