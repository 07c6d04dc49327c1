//! Per-request cost of the x402 layer on a route that is not paid: the same axum router
//! answering `GET /free` without the layer and behind it, driven in process with `oneshot`
//! (no sockets), so the difference is the layer's own work (a settlement slot in the request's
//! extensions, a boxed future, the post-handler check). Also the 402 a paid route answers
//! without payment (`paid_route/challenge`): extractor, gate and the cached challenge turned
//! into an axum response.
//!
//! `cargo bench -p axum-x402 --bench layer`

use std::hint::black_box;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use axum_x402::{PaidRoute, Payment, RouteSpec, X402};
use criterion::{Criterion, criterion_group, criterion_main};
use http::Request;
use tower::ServiceExt as _;

async fn free() -> &'static str {
    "{\"forecast\":\"sunny\"}"
}

/// What `#[paid(price = "0.01 USDC", network = "base-sepolia")]` generates, by hand.
struct Weather;
impl PaidRoute for Weather {
    fn spec() -> &'static RouteSpec {
        static SPEC: RouteSpec = RouteSpec::fixed("0.01 USDC")
            .networks(&["base-sepolia"])
            .description("Current weather");
        &SPEC
    }
}

async fn weather(payment: Payment<Weather>) -> &'static str {
    let _ = payment;
    "{\"forecast\":\"sunny\"}"
}

fn layer(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let x402 = X402::builder()
        .embedded_facilitator()
        .pay_to("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC")
        .build()
        .expect("x402");
    let plain = Router::new().route("/free", get(free));
    let layered = Router::new().route("/free", get(free)).layer(x402.layer());
    let request = || {
        Request::get("/free")
            .header("host", "api.example.com")
            .body(Body::empty())
            .expect("request")
    };

    let mut group = c.benchmark_group("unpaid_route");
    for (name, router) in [("without_layer", plain), ("behind_layer", layered)] {
        group.bench_function(name, |b| {
            b.iter(|| {
                runtime.block_on(async {
                    let response = router.clone().oneshot(request()).await.expect("infallible");
                    assert_eq!(response.status(), 200);
                    black_box(response)
                })
            });
        });
    }
    group.finish();

    let paid = Router::new()
        .route("/weather", get(weather))
        .layer(x402.layer());
    let mut group = c.benchmark_group("paid_route");
    group.bench_function("challenge", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let request = Request::get("/weather")
                    .header("host", "api.example.com")
                    .body(Body::empty())
                    .expect("request");
                let response = paid.clone().oneshot(request).await.expect("infallible");
                assert_eq!(response.status(), 402);
                black_box(response)
            })
        });
    });
    group.finish();
}

criterion_group!(benches, layer);
criterion_main!(benches);
