//! Cost of answering an unpaid request to a paid route with a 402 challenge, next to a
//! baseline in the same run: serialising a small JSON error body, about what any API does for
//! an error response. The route keeps the last challenge it rendered, so repeated requests for
//! one URL hit that cache; `distinct_urls` renders every time.
//!
//! `cargo bench -p x402-runtime --bench challenge`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use x402_runtime::{Decision, Gate, RequestView, RouteSpec};

static ROUTE: RouteSpec = RouteSpec::fixed("0.01 USDC")
    .networks(&["base"])
    .description("Current weather")
    .mime_type("application/json");
static TWO_NETWORKS: RouteSpec = RouteSpec::fixed("$0.01").networks(&["base", "base-sepolia"]);

/// A request with its own query string, so no two iterations ask for the same resource (the
/// route's last-challenge cache never hits).
struct Varying(String);
impl RequestView for Varying {
    fn method(&self) -> &str {
        "GET"
    }
    fn path_and_query(&self) -> &str {
        &self.0
    }
    fn header(&self, name: &str) -> Option<&str> {
        name.eq_ignore_ascii_case("host")
            .then_some("api.example.com")
    }
}

struct Get;
impl RequestView for Get {
    fn method(&self) -> &str {
        "GET"
    }
    fn path_and_query(&self) -> &str {
        "/weather?city=Oslo"
    }
    fn header(&self, name: &str) -> Option<&str> {
        name.eq_ignore_ascii_case("host")
            .then_some("api.example.com")
    }
}

fn challenge(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let gate = Gate::builder()
        .embedded_facilitator()
        .pay_to("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC")
        .build()
        .expect("gate");

    let mut group = c.benchmark_group("challenge");
    group.bench_function("baseline_json_error_body", |b| {
        b.iter(|| {
            let body = serde_json::to_vec(&serde_json::json!({
                "error": "not_found",
                "message": black_box("no such resource"),
            }))
            .expect("json");
            black_box(body)
        })
    });
    for (name, spec) in [("one_network", &ROUTE), ("two_networks", &TWO_NETWORKS)] {
        group.bench_function(format!("evaluate_and_render/{name}"), |b| {
            b.iter(|| {
                let decision = runtime.block_on(gate.evaluate(black_box(&Get), spec));
                let Decision::Challenge(rejection) = decision else {
                    unreachable!("no payment was sent")
                };
                black_box(rejection.to_response())
            })
        });
    }
    let mut n = 0u64;
    group.bench_function("evaluate_and_render/one_network_distinct_urls", |b| {
        b.iter(|| {
            n += 1;
            let view = Varying(format!("/weather?city=Oslo&n={n}"));
            let decision = runtime.block_on(gate.evaluate(black_box(&view), &ROUTE));
            let Decision::Challenge(rejection) = decision else {
                unreachable!("no payment was sent")
            };
            black_box(rejection.to_response())
        })
    });
    group.finish();
}

criterion_group!(benches, challenge);
criterion_main!(benches);
