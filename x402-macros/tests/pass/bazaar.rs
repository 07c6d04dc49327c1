//! `bazaar(…)` declares Bazaar discovery metadata from checked literals, and `discovery = f`
//! takes a computed declaration; both become the spec's `discovery`, with the service
//! metadata beside it.
#![deny(warnings)]

#[path = "../support/mod.rs"]
mod support;

use serde_json::json;
use support::{Payment, spec_of};
use x402_runtime::paid;
use x402_runtime::protocol::bazaar::{self, BazaarExtension, HttpDeclaration};

#[paid(
    price = "$0.01",
    network = "base-sepolia",
    bazaar(
        method = "POST",
        body = "json",
        input = r#"{"city": "Oslo"}"#,
        input_schema = r#"{"properties": {"city": {"type": "string"}}, "required": ["city"]}"#,
        output = r#"{"temperature": 21}"#,
        service = "Weather",
        tags = ["weather", "forecast"],
        icon = "https://example.com/icon.png",
    )
)]
async fn forecast(payment: Payment) {
    let _ = payment;
}

mod declarations {
    use super::*;

    pub fn report() -> BazaarExtension {
        bazaar::declare_http(&HttpDeclaration {
            input: Some(json!({"month": "2026-11"})),
            ..Default::default()
        })
    }
}

#[paid(
    price = "$0.01",
    network = "base-sepolia",
    discovery = declarations::report,
    bazaar(service = "Reports")
)]
async fn report(payment: Payment) {
    let _ = payment;
}

#[paid(price = "$0.01", network = "base-sepolia")]
async fn hidden(payment: Payment) {
    let _ = payment;
}

fn main() {
    let spec = spec_of(forecast);
    let declared = (spec.discovery.expect("discoverable"))().to_value();
    assert_eq!(declared["info"]["input"]["type"], "http");
    assert_eq!(declared["info"]["input"]["method"], "POST");
    assert_eq!(declared["info"]["input"]["bodyType"], "json");
    assert_eq!(declared["info"]["input"]["body"], json!({"city": "Oslo"}));
    assert_eq!(declared["info"]["output"]["example"], json!({"temperature": 21}));
    assert_eq!(
        declared["schema"]["properties"]["input"]["properties"]["body"]["required"],
        json!(["city"])
    );
    assert!(bazaar::validate_spec(&declared).is_ok());
    assert_eq!(spec.service_name, Some("Weather"));
    assert_eq!(spec.tags, ["weather", "forecast"]);
    assert_eq!(spec.icon_url, Some("https://example.com/icon.png"));

    let spec = spec_of(report);
    let declared = (spec.discovery.expect("discoverable"))().to_value();
    assert_eq!(declared["info"]["input"]["queryParams"], json!({"month": "2026-11"}));
    assert_eq!(spec.service_name, Some("Reports"));
    assert!(spec.tags.is_empty());

    let spec = spec_of(hidden);
    assert!(spec.discovery.is_none() && spec.service_name.is_none());
}
