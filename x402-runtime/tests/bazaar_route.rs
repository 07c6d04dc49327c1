//! A route declared `discoverable`: its v2 402 carries `extensions.bazaar` in the protocol's
//! shape, and a configured discovery catalogue lists it.

use std::sync::Arc;

use serde_json::json;
use x402_protocol::bazaar::{self, BazaarExtension, HttpDeclaration};
use x402_protocol::{codec, headers, v2};
use x402_runtime::discovery::{self, DiscoveryCatalog};
use x402_runtime::{Decision, RouteSpec};

use crate::common;

use common::{Req, World, world_with};

fn weather() -> BazaarExtension {
    bazaar::declare_http(&HttpDeclaration {
        input: Some(json!({"city": "Oslo"})),
        input_schema: Some(
            json!({"properties": {"city": {"type": "string"}}, "required": ["city"]}),
        ),
        output_example: Some(json!({"temperature": 21})),
        ..Default::default()
    })
}

static WEATHER: RouteSpec = RouteSpec::fixed("0.01 USDC")
    .networks(&["base-sepolia"])
    .description("Weather now")
    .discoverable(weather);
static PLAIN: RouteSpec = RouteSpec::fixed("0.01 USDC").networks(&["base-sepolia"]);

async fn challenge(w: &World, request: Req, spec: &'static RouteSpec) -> v2::PaymentRequired {
    let decision = w.gate.evaluate(&request, spec).await;
    let Decision::Challenge(rejection) = decision else {
        panic!("expected a challenge")
    };
    let response = rejection.to_response();
    codec::decode(response.header(headers::PAYMENT_REQUIRED).unwrap(), 1 << 16).unwrap()
}

#[tokio::test]
async fn a_discoverable_route_declares_bazaar_in_its_402_and_is_listed() {
    let catalog = Arc::new(DiscoveryCatalog::new());
    let w = world_with(|b| b.embedded_facilitator().discovery_catalog(catalog.clone()));

    let required = challenge(&w, Req::get("/weather?city=Oslo"), &WEATHER).await;
    let extensions = required.extensions.expect("extensions declared");
    assert!(
        extensions.get("payment-identifier").is_some(),
        "the route's other extensions stay: {extensions}"
    );
    let declared = &extensions[bazaar::EXTENSION_KEY];
    bazaar::validate_spec(declared).unwrap_or_else(|e| panic!("{e:?}: {declared}"));
    let parsed: BazaarExtension = serde_json::from_value(declared.clone()).unwrap();
    assert_eq!(parsed.info.input.kind(), "http");
    assert_eq!(
        parsed.info.input.method(),
        Some("GET"),
        "narrowed to the request"
    );
    assert_eq!(
        parsed.info.output.as_ref().and_then(|o| o.example.clone()),
        Some(json!({"temperature": 21}))
    );
    assert_eq!(declared["info"]["input"]["queryParams"]["city"], "Oslo");
    assert_eq!(
        declared["schema"]["properties"]["input"]["properties"]["method"]["enum"],
        json!(["GET"])
    );

    // The catalogue lists it once, at its canonical URL, with what the 402 offers.
    let _ = challenge(&w, Req::get("/weather?city=Bergen"), &WEATHER).await;
    let page = discovery::resources_endpoint(&catalog, "type=http");
    let body: serde_json::Value = serde_json::from_slice(&page.body).unwrap();
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{body}");
    assert_eq!(items[0]["resource"], "http://api.test/weather");
    assert_eq!(items[0]["description"], "Weather now");
    assert_eq!(items[0]["accepts"][0]["network"], "eip155:84532");
    assert_eq!(items[0]["accepts"][0]["amount"], "10000");
    assert_eq!(
        items[0]["extensions"]["bazaar"]["info"]["input"]["method"],
        "GET"
    );
    let found = discovery::search_endpoint(&catalog, "query=weather");
    let body: serde_json::Value = serde_json::from_slice(&found.body).unwrap();
    assert_eq!(body["resources"].as_array().unwrap().len(), 1, "{body}");

    // A route without a declaration declares nothing and is not listed.
    let plain = challenge(&w, Req::get("/plain"), &PLAIN).await;
    assert!(plain.extensions.unwrap().get("bazaar").is_none());
    assert_eq!(catalog.len(), 1);
}
