//! Checking one sign-in-with-x header made by the official client: decode, field checks,
//! message rebuild and signature (EIP-191 recovery; ed25519 with the `siws` feature).
//!
//! `cargo bench -p x402-protocol --features siws --bench siwx`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use x402_protocol::siwx::{self, Expectations};

fn vector(name: &str) -> (String, String, u64) {
    let file: serde_json::Value =
        serde_json::from_str(include_str!("../tests/data/official-extensions.json"))
            .expect("vector file");
    let v = file["vectors"]
        .as_array()
        .expect("vectors")
        .iter()
        .find(|v| v["name"] == name)
        .expect("vector")
        .clone();
    (
        v["header_value"].as_str().expect("header").to_owned(),
        v["request_url"].as_str().expect("url").to_owned(),
        v["signed_at_unix"].as_u64().expect("time") * 1000,
    )
}

fn check(c: &mut Criterion) {
    let mut names = vec!["siwx-evm-base-sepolia"];
    if cfg!(feature = "siws") {
        names.push("siwx-solana-devnet");
    }
    for name in names {
        let (header, url, now) = vector(name);
        let expected = Expectations::for_resource(&url).expect("url");
        c.bench_function(&format!("siwx verify {name}"), |b| {
            b.iter(|| {
                let payload = siwx::parse_header(black_box(&header)).expect("header");
                siwx::check_message(&payload, &expected, now).expect("fields");
                siwx::verify_signature(&payload).expect("signature")
            });
        });
    }
}

criterion_group!(benches, check);
criterion_main!(benches);
