//! Decode + verify of one Permit2 `exact` and one `upto` payment header, per signature-recovery
//! backend, and the EIP-712 digest of each (compare with `payment/decode_verify/*` of the
//! `protocol` bench, the same for EIP-3009).
//!
//! Run with both backends compiled in:
//! `cargo bench -p x402-protocol --features secp256k1 --bench permit2`.
//! The inputs are the official npm 2.27 client's headers from
//! `tests/data/official-clients-permit2.json`.

use criterion::{Criterion, criterion_group, criterion_main};
use serde::Deserialize;
use std::hint::black_box;
use x402_protocol::codec::{self, DEFAULT_MAX_HEADER_BYTES};
use x402_protocol::eip3009::RecoveryBackend;
use x402_protocol::facilitator::{PaymentPayload, PaymentRequirements};
use x402_protocol::verify::{select_requirement, verify_payment_with};
use x402_protocol::{NetworkRegistry, SchemePayload, v2};

#[derive(Deserialize)]
struct Vector {
    kind: String,
    signed_at_unix: u64,
    payment_required: v2::PaymentRequired,
    header_value: String,
}

/// The first vector of a kind (`evm-exact-permit2`, `evm-upto-permit2`).
fn first(kind: &str) -> Vector {
    #[derive(Deserialize)]
    struct File {
        vectors: Vec<Vector>,
    }
    let file: File =
        serde_json::from_str(include_str!("../tests/data/official-clients-permit2.json"))
            .expect("vector file");
    file.vectors
        .into_iter()
        .find(|v| v.kind == kind)
        .expect("a vector of that kind")
}

fn decode_and_verify(c: &mut Criterion) {
    let registry = NetworkRegistry::builtin();
    let backends = [
        ("k256", RecoveryBackend::K256),
        #[cfg(feature = "secp256k1")]
        ("secp256k1", RecoveryBackend::Secp256k1),
    ];
    let mut group = c.benchmark_group("permit2");
    for (label, kind) in [("exact", "evm-exact-permit2"), ("upto", "evm-upto-permit2")] {
        let vector = first(kind);
        let accepts: Vec<_> = vector
            .payment_required
            .accepts
            .iter()
            .cloned()
            .map(PaymentRequirements::V2)
            .collect();
        group.bench_function(format!("decode_only/{label}"), |b| {
            b.iter(|| {
                let payload: v2::PaymentPayload =
                    codec::decode(black_box(&vector.header_value), DEFAULT_MAX_HEADER_BYTES)
                        .expect("decodes");
                black_box(payload)
            })
        });
        for (name, backend) in backends {
            group.bench_function(format!("decode_verify/{label}/{name}"), |b| {
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
        let payload: v2::PaymentPayload =
            codec::decode(&vector.header_value, DEFAULT_MAX_HEADER_BYTES).expect("decodes");
        let chain_id: u64 = vector.payment_required.accepts[0]
            .network
            .strip_prefix("eip155:")
            .and_then(|id| id.parse().ok())
            .expect("an eip155 network");
        group.bench_function(format!("eip712_signing_hash/{label}"), |b| {
            match &payload.payload {
                SchemePayload::Permit2Exact(p) => {
                    b.iter(|| black_box(black_box(&p.permit2_authorization).signing_hash(chain_id)))
                }
                SchemePayload::Permit2Upto(p) => {
                    b.iter(|| black_box(black_box(&p.permit2_authorization).signing_hash(chain_id)))
                }
                other => panic!("not a Permit2 payload: {}", other.kind()),
            }
        });
    }
    group.finish();
}

criterion_group!(benches, decode_and_verify);
criterion_main!(benches);
