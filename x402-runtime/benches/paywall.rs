//! Cost of answering a browser's unpaid request with the paywall page, next to the JSON 402
//! for the same route. The route keeps the last page it rendered (like its JSON challenge), so
//! a browser reloading one URL hits that cache (`same_url`); `distinct_urls` gives every
//! iteration its own query string, so every page is rendered (the cost without the cache).
//!
//! `cargo bench -p x402-runtime --bench paywall`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use x402_runtime::paywall::PaywallConfig;
use x402_runtime::{Decision, Gate, RequestView, RouteSpec};

static ROUTE: RouteSpec = RouteSpec::fixed("0.01 USDC")
    .networks(&["base-sepolia"])
    .description("The quarterly report")
    .mime_type("text/html");
static TWO_NETWORKS: RouteSpec = RouteSpec::fixed("$0.01")
    .networks(&["base-sepolia", "base"])
    .description("The quarterly report");

/// A GET for `path`, from a browser (`browser`) or a program.
struct Get {
    path: String,
    browser: bool,
}

impl RequestView for Get {
    fn method(&self) -> &str {
        "GET"
    }
    fn path_and_query(&self) -> &str {
        &self.path
    }
    fn header(&self, name: &str) -> Option<&str> {
        match name.to_ascii_lowercase().as_str() {
            "host" => Some("shop.example"),
            "accept" if self.browser => Some("text/html,application/xhtml+xml,*/*;q=0.8"),
            "user-agent" if self.browser => Some(
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/130.0 Safari/537.36",
            ),
            _ => None,
        }
    }
}

fn paywall(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let gate = Gate::builder()
        .embedded_facilitator()
        .pay_to("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC")
        .paywall(PaywallConfig::new().app_name("Example Shop"))
        .build()
        .expect("gate");
    let respond = |view: &Get, spec: &'static RouteSpec| {
        let Decision::Challenge(rejection) = runtime.block_on(gate.evaluate(black_box(view), spec))
        else {
            unreachable!("no payment was sent")
        };
        rejection.to_response()
    };

    let mut group = c.benchmark_group("paywall");
    for (kind, browser) in [("page", true), ("json", false)] {
        for (name, spec) in [("one_network", &ROUTE), ("two_networks", &TWO_NETWORKS)] {
            let view = Get {
                path: "/report?year=2026".to_owned(),
                browser,
            };
            group.bench_function(format!("{kind}/{name}/same_url"), |b| {
                b.iter(|| black_box(respond(&view, spec)))
            });
            let mut n = 0u64;
            group.bench_function(format!("{kind}/{name}/distinct_urls"), |b| {
                b.iter(|| {
                    n += 1;
                    let view = Get {
                        path: format!("/report?year=2026&n={n}"),
                        browser,
                    };
                    black_box(respond(&view, spec))
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, paywall);
criterion_main!(benches);
