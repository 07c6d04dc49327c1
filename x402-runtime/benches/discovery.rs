//! The discovery catalogue at its default capacity (10 000 resources): recording a payment,
//! listing a filtered page, and a two-word search.
//!
//! `cargo bench -p x402-runtime --bench discovery`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use x402_protocol::bazaar::{self, HttpDeclaration};
use x402_runtime::discovery::{DiscoveryCatalog, ListQuery, SearchQuery};

const WORDS: [&str; 8] = [
    "weather",
    "stocks",
    "translate",
    "maps",
    "news",
    "images",
    "search",
    "sports",
];

fn payment(i: usize) -> serde_json::Value {
    let ext = bazaar::declare_http(&HttpDeclaration::default()).for_request("GET", None, "/");
    let network = if i.is_multiple_of(2) {
        "eip155:8453"
    } else {
        "eip155:84532"
    };
    json!({
        "x402Version": 2,
        "resource": {"url": format!("https://api{i}.example.test/r/{i}"),
                     "description": format!("{} {} data feed {i}", WORDS[i % 8], WORDS[(i / 8) % 8])},
        "accepted": {"scheme": "exact", "network": network, "amount": "10000",
                     "asset": "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
                     "payTo": "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC", "maxTimeoutSeconds": 300},
        "extensions": {"bazaar": ext.to_value()},
    })
}

fn catalogue(c: &mut Criterion) {
    let catalog = DiscoveryCatalog::new();
    for i in 0..10_000 {
        let p = payment(i);
        catalog.record_payment(&p, &p["accepted"]).expect("record");
    }
    let p = payment(5);
    c.bench_function("discovery record_payment (update, 10k entries)", |b| {
        b.iter(|| {
            catalog
                .record_payment(black_box(&p), &p["accepted"])
                .expect("record")
        });
    });
    let query = ListQuery::from_query_string("network=base&limit=20&offset=100").expect("query");
    c.bench_function("discovery list filtered page (10k entries)", |b| {
        b.iter(|| catalog.list(black_box(&query)));
    });
    let search = SearchQuery::new("weather news");
    c.bench_function("discovery search two words (10k entries)", |b| {
        b.iter(|| catalog.search(black_box(&search)));
    });
}

criterion_group!(benches, catalogue);
criterion_main!(benches);
