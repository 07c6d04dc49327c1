//! Checking an entitlement token, the work of every request that reuses a pass: `again` is
//! the same token presented on every request (what clients do), `first_time` a token the keys
//! have not seen.
//!
//! `cargo bench -p x402-runtime --bench entitlement`

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use x402_runtime::entitlement::{Claims, EntitlementKeys, GrantKind};

const SECRET: &[u8] = b"a bench key of at least thirty-two bytes";

fn token(keys: &EntitlementKeys) -> String {
    let mut claims = Claims::new(GrantKind::Access, "path:/weather", 4_000_000_000);
    claims.payer = "0x90F79bf6EB2c4f870365E785982E1f101E93b906".to_owned();
    claims.network = "eip155:84532".to_owned();
    claims.asset = "0x036CbD53842c5426634e7929541eC2318f3dCF7e".to_owned();
    claims.amount = "10000".to_owned();
    claims.price = "10000".to_owned();
    claims.transaction = format!("0x{}", "ab".repeat(32));
    claims.method = "GET".to_owned();
    claims.route = "server::pass".to_owned();
    keys.sign(&claims)
}

fn entitlement(c: &mut Criterion) {
    let keys = EntitlementKeys::new("bench", SECRET).expect("key");
    let token = token(&keys);
    let mut group = c.benchmark_group("entitlement");
    group.bench_function("verify_token/again", |b| {
        b.iter(|| black_box(keys.verify(black_box(&token), 1_800_000_000)).expect("valid"))
    });
    group.bench_function("verify_token/first_time", |b| {
        b.iter_batched(
            || EntitlementKeys::new("bench", SECRET).expect("key"),
            |fresh| black_box(fresh.verify(black_box(&token), 1_800_000_000)).expect("valid"),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, entitlement);
criterion_main!(benches);
