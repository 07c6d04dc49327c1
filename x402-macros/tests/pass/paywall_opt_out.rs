//! `paywall = false` opts a route out of the server's browser paywall: browsers get the JSON
//! 402 there, while a route without the key shows them the page.
#![deny(warnings)]

#[path = "../support/mod.rs"]
mod support;

use support::{Payment, run, spec_of};
use x402_runtime::paywall::{PaywallConfig, RoutePaywall};
use x402_runtime::{Decision, Gate, RequestView, RouteSpec, paid};

#[paid(price = "0.01 USDC", network = "base-sepolia", paywall = false)]
async fn api_only(payment: Payment) {
    let _ = payment;
}

#[paid(price = "0.01 USDC", network = "base-sepolia")]
async fn for_people(payment: Payment) {
    let _ = payment;
}

/// A browser's first visit.
struct Browser;

impl RequestView for Browser {
    fn method(&self) -> &str {
        "GET"
    }
    fn path_and_query(&self) -> &str {
        "/report"
    }
    fn header(&self, name: &str) -> Option<&str> {
        match name.to_ascii_lowercase().as_str() {
            "host" => Some("shop.example"),
            "accept" => Some("text/html,application/xhtml+xml,*/*;q=0.8"),
            "user-agent" => Some("Mozilla/5.0 (X11; Linux x86_64) Chrome/130.0"),
            _ => None,
        }
    }
}

fn content_type(gate: &Gate, spec: &'static RouteSpec) -> String {
    let Decision::Challenge(rejection) = run(gate.evaluate(&Browser, spec)) else {
        panic!("no payment was sent");
    };
    let response = rejection.to_response();
    assert_eq!(response.status, 402);
    response.header("content-type").unwrap_or_default().to_owned()
}

fn main() {
    let opted_out = spec_of(api_only);
    assert!(matches!(opted_out.paywall, RoutePaywall::Off));
    let default = spec_of(for_people);
    assert!(matches!(default.paywall, RoutePaywall::Server));

    let gate = Gate::builder()
        .embedded_facilitator()
        .pay_to("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC")
        .paywall(PaywallConfig::new())
        .build()
        .expect("gate");
    assert_eq!(content_type(&gate, opted_out), "application/json");
    assert_eq!(content_type(&gate, default), "text/html; charset=utf-8");
}
