//! `#[paid(…, bazaar(…))]` on axum: the v2 402 carries `extensions.bazaar` with the declared
//! input and output (the method narrowed to the request's) and the service metadata in
//! `resource`; a payment echoing them is read back by `x402_protocol::bazaar::extract`, the
//! facilitator's cataloguing, with the same values; and the route still serves once paid.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::{get, post};
use axum_x402::{Payment, X402, paid};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;
use x402_protocol::bazaar::{self, BodyType, DiscoveryInput};
use x402_protocol::client::sign_payment;
use x402_protocol::eip3009::LocalSigner;
use x402_protocol::facilitator::{PaymentPayload, PaymentRequirements};
use x402_protocol::{NetworkRegistry, U256, codec, v2};
use x402_runtime::discovery::{DiscoveryCatalog, ListQuery};

const PAY_TO: &str = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";

#[paid(
    price = "0.01 USDC",
    network = "base-sepolia",
    description = "Forecast for a city",
    bazaar(
        method = "POST",
        body = "json",
        input = r#"{"city": "Oslo", "days": 3}"#,
        input_schema = r#"{"properties": {"city": {"type": "string"}, "days": {"type": "integer"}}, "required": ["city"]}"#,
        output = r#"{"days": [{"high": 21, "low": 12}]}"#,
        service = "Weather",
        tags = ["weather", "forecast"],
    )
)]
async fn forecast(payment: Payment) -> String {
    format!("forecast for {}", payment.payer())
}

#[paid(
    price = "0.01 USDC",
    network = "base-sepolia",
    bazaar(input = r#"{"city": "Oslo"}"#, output = r#"{"temperature": 21}"#)
)]
async fn weather(payment: Payment) -> String {
    format!("sunny for {}", payment.payer())
}

#[paid(price = "0.01 USDC", network = "base-sepolia")]
async fn hidden(payment: Payment) -> String {
    format!("hidden for {}", payment.payer())
}

fn app() -> (Router, X402, LocalSigner) {
    app_listing_in(Arc::new(DiscoveryCatalog::new()))
}

/// The app, listing its discoverable routes in `catalog`.
fn app_listing_in(catalog: Arc<DiscoveryCatalog>) -> (Router, X402, LocalSigner) {
    let x402 = X402::builder()
        .pay_to(PAY_TO)
        .embedded_facilitator()
        .discovery_catalog(catalog)
        .build()
        .unwrap();
    let payer = LocalSigner::random();
    let ledger = x402.gate().dev_ledger().unwrap();
    for network in x402.gate().registry().networks() {
        ledger.fund(
            &network.caip2,
            network.default_asset.address,
            payer.address(),
            U256::from(1_000_000u64),
        );
    }
    let router = Router::new()
        .route("/forecast", post(forecast))
        .route("/weather", get(weather))
        .route("/hidden", get(hidden))
        .layer(x402.layer());
    (router, x402, payer)
}

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

async fn send(router: &Router, method: &str, path: &str, header: Option<&str>) -> Reply {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "api.test")
        .header("content-type", "application/json");
    if let Some(value) = header {
        request = request.header("payment-signature", value);
    }
    let response = router
        .clone()
        .oneshot(request.body(Body::from(r#"{"city":"Oslo"}"#)).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// The 402's `PAYMENT-REQUIRED`, as JSON and typed.
fn required(reply: &Reply) -> (Value, v2::PaymentRequired) {
    assert_eq!(reply.status, StatusCode::PAYMENT_REQUIRED, "{}", reply.body);
    let header = reply.headers["payment-required"].to_str().unwrap();
    (
        codec::decode(header, 1 << 16).unwrap(),
        codec::decode(header, 1 << 16).unwrap(),
    )
}

/// A v2 payment for the 402's first entry that echoes its `resource` and `extensions`, as
/// clients do.
fn pay(required: &v2::PaymentRequired, payer: &LocalSigner) -> PaymentPayload {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut payment = sign_payment(
        &PaymentRequirements::V2(required.accepts[0].clone()),
        required.resource.as_ref(),
        payer,
        &NetworkRegistry::builtin(),
        now,
    )
    .unwrap();
    if let PaymentPayload::V2(payload) = &mut payment {
        payload.extensions = required.extensions.clone();
    }
    payment
}

#[tokio::test]
async fn the_402_of_a_body_route_carries_the_declaration_and_the_service() {
    let (router, x402, payer) = app();
    let reply = send(&router, "POST", "/forecast", None).await;
    let (json, typed) = required(&reply);

    let declared = &json["extensions"]["bazaar"];
    assert_eq!(
        declared["info"]["input"],
        json!({
            "type": "http",
            "method": "POST",
            "bodyType": "json",
            "body": {"city": "Oslo", "days": 3},
        })
    );
    assert_eq!(
        declared["info"]["output"],
        json!({"type": "json", "example": {"days": [{"high": 21, "low": 12}]}})
    );
    // The schema carries the declared input keywords and the narrowed method.
    let input_schema = &declared["schema"]["properties"]["input"]["properties"];
    assert_eq!(input_schema["body"]["required"], json!(["city"]));
    assert_eq!(input_schema["method"]["enum"], json!(["POST"]));
    assert!(bazaar::validate_spec(declared).is_ok());
    // Service metadata sits in `resource`, next to the description.
    assert_eq!(json["resource"]["serviceName"], "Weather");
    assert_eq!(json["resource"]["tags"], json!(["weather", "forecast"]));
    assert!(json["resource"].get("iconUrl").is_none());
    assert_eq!(json["resource"]["description"], "Forecast for a city");

    // What a facilitator catalogues from a payment echoing the 402.
    let payment = pay(&typed, &payer);
    let found = bazaar::extract(&serde_json::to_value(&payment).unwrap()).unwrap();
    assert_eq!(found.resource, "http://api.test/forecast");
    assert_eq!(found.kind, "http");
    let DiscoveryInput::Body {
        method,
        body_type,
        body,
        ..
    } = &found.info.input
    else {
        panic!("not a body declaration: {:?}", found.info.input);
    };
    assert_eq!(method.as_deref(), Some("POST"));
    assert_eq!(*body_type, BodyType::Json);
    assert_eq!(body, &json!({"city": "Oslo", "days": 3}));
    assert_eq!(
        found.info.output.and_then(|o| o.example),
        Some(json!({"days": [{"high": 21, "low": 12}]}))
    );
    assert_eq!(found.metadata.service_name.as_deref(), Some("Weather"));
    assert_eq!(
        found.metadata.tags,
        Some(vec!["weather".to_owned(), "forecast".to_owned()])
    );
    assert_eq!(found.description.as_deref(), Some("Forecast for a city"));

    // The same payment is accepted: the route serves and settles.
    let paid = send(&router, "POST", "/forecast", Some(&codec::encode(&payment))).await;
    assert_eq!(paid.status, StatusCode::OK, "{}", paid.body);
    assert_eq!(paid.body, format!("forecast for {}", payer.address()));
    assert!(paid.headers.contains_key("payment-response"));
    let network = x402.gate().registry().network("base-sepolia").unwrap();
    assert_eq!(
        x402.gate().dev_ledger().unwrap().balance(
            &network.caip2,
            network.default_asset.address,
            PAY_TO.parse::<x402_protocol::Address>().unwrap()
        ),
        U256::from(10_000u64)
    );
}

#[tokio::test]
async fn a_query_route_declares_query_parameters_and_undeclared_routes_nothing() {
    let (router, _x402, payer) = app();
    let reply = send(&router, "GET", "/weather?city=Oslo", None).await;
    let (json, typed) = required(&reply);
    assert_eq!(
        json["extensions"]["bazaar"]["info"]["input"],
        json!({"type": "http", "method": "GET", "queryParams": {"city": "Oslo"}})
    );
    // No service metadata declared: none sent.
    assert!(json["resource"].get("serviceName").is_none());
    assert!(json["resource"].get("tags").is_none());
    let found = bazaar::extract(&serde_json::to_value(pay(&typed, &payer)).unwrap()).unwrap();
    assert_eq!(found.info.input.method(), Some("GET"));
    assert_eq!(
        found.info.output.and_then(|o| o.example),
        Some(json!({"temperature": 21}))
    );

    let reply = send(&router, "GET", "/hidden", None).await;
    let (json, typed) = required(&reply);
    assert!(
        json.get("extensions")
            .is_none_or(|e| e.get("bazaar").is_none()),
        "{json}"
    );
    assert!(matches!(
        bazaar::extract(&serde_json::to_value(pay(&typed, &payer)).unwrap()),
        Err(bazaar::ExtractError::Absent)
    ));
}

#[tokio::test]
async fn the_catalogue_lists_the_declaration_with_the_service() {
    let catalog = Arc::new(DiscoveryCatalog::new());
    let (router, _x402, _payer) = app_listing_in(catalog.clone());
    for path in ["/forecast", "/hidden"] {
        let method = if path == "/forecast" { "POST" } else { "GET" };
        let reply = send(&router, method, path, None).await;
        assert_eq!(reply.status, StatusCode::PAYMENT_REQUIRED);
    }
    let listed = catalog.list(&ListQuery::default());
    // Only the discoverable route is listed.
    assert_eq!(listed.items.len(), 1, "{:?}", listed.items);
    let item = &listed.items[0];
    assert_eq!(item.resource, "http://api.test/forecast");
    assert_eq!(item.service_name.as_deref(), Some("Weather"));
    assert_eq!(
        item.tags,
        Some(vec!["weather".to_owned(), "forecast".to_owned()])
    );
    let declared = item.extensions.as_ref().unwrap();
    assert_eq!(
        declared["bazaar"]["info"]["input"]["body"],
        json!({"city": "Oslo", "days": 3})
    );
}
