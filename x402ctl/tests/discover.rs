//! `x402ctl discover` as a process, against a real HTTP facilitator on loopback that serves
//! the runtime's discovery endpoints over a catalogue filled by payments.

use std::process::Output;
use std::sync::Arc;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use x402_protocol::bazaar::{self, HttpDeclaration, McpDeclaration};
use x402_runtime::ResponseParts;
use x402_runtime::discovery::{DiscoveryCatalog, resources_endpoint, search_endpoint};

const BIN: &str = env!("CARGO_BIN_EXE_x402ctl");

fn into_response(parts: ResponseParts) -> Response {
    let mut response = (
        axum::http::StatusCode::from_u16(parts.status).unwrap(),
        parts.body,
    )
        .into_response();
    for (name, value) in parts.headers {
        response.headers_mut().insert(
            axum::http::HeaderName::try_from(name.as_ref()).unwrap(),
            value.parse().unwrap(),
        );
    }
    response
}

/// A facilitator serving `catalog` on a free loopback port; returns its URL.
async fn facilitator(catalog: Arc<DiscoveryCatalog>) -> String {
    let app = Router::new()
        .route(
            "/discovery/resources",
            get(
                |State(c): State<Arc<DiscoveryCatalog>>, RawQuery(q): RawQuery| async move {
                    into_response(resources_endpoint(&c, q.as_deref().unwrap_or("")))
                },
            ),
        )
        .route(
            "/discovery/search",
            get(
                |State(c): State<Arc<DiscoveryCatalog>>, RawQuery(q): RawQuery| async move {
                    into_response(search_endpoint(&c, q.as_deref().unwrap_or("")))
                },
            ),
        )
        .with_state(catalog);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

fn requirement(network: &str, asset: &str, amount: &str) -> Value {
    json!({"scheme": "exact", "network": network, "amount": amount, "asset": asset,
           "payTo": "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC", "maxTimeoutSeconds": 300})
}

fn record(
    catalog: &DiscoveryCatalog,
    url: &str,
    description: &str,
    ext: &bazaar::BazaarExtension,
    accepted: Value,
) {
    let payment = json!({"x402Version": 2,
        "resource": {"url": url, "description": description, "mimeType": "application/json"},
        "accepted": accepted, "payload": {}, "extensions": {"bazaar": ext.to_value()}});
    catalog
        .record_payment(&payment, &payment["accepted"])
        .unwrap();
}

fn catalog() -> Arc<DiscoveryCatalog> {
    let catalog = DiscoveryCatalog::new();
    let base_usdc = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913";
    let sepolia_usdc = "0x036CbD53842c5426634e7929541eC2318f3dCF7e";
    let get_ext =
        bazaar::declare_http(&HttpDeclaration::default()).for_request("GET", None, "/weather");
    record(
        &catalog,
        "https://api.example.test/weather",
        "Current weather",
        &get_ext,
        requirement("eip155:8453", base_usdc, "10000"),
    );
    let post = bazaar::declare_http(&HttpDeclaration {
        body_type: Some(bazaar::BodyType::Json),
        ..Default::default()
    })
    .for_request("POST", None, "/translate");
    record(
        &catalog,
        "https://api.example.test/translate",
        "Translate text",
        &post,
        requirement("eip155:84532", sepolia_usdc, "250000"),
    );
    let mcp = bazaar::declare_mcp(&McpDeclaration {
        tool_name: "forecast".into(),
        input_schema: json!({"type": "object"}),
        description: Some("Weather forecast".into()),
        transport: None,
        example: None,
        output_example: None,
        output_schema: None,
    });
    record(
        &catalog,
        "https://api.example.test/mcp",
        "",
        &mcp,
        requirement(
            "eip155:8453",
            "0x0000000000000000000000000000000000000042",
            "7",
        ),
    );
    Arc::new(catalog)
}

async fn x402ctl(args: &[&str]) -> Output {
    tokio::process::Command::new(BIN)
        .args(args)
        .output()
        .await
        .expect("x402ctl runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn lists_filters_pages_and_searches_a_facilitators_catalogue() {
    let url = facilitator(catalog()).await;

    let out = x402ctl(&["discover", &url]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listing = text(&out.stdout);
    assert!(
        listing.contains("GET https://api.example.test/weather"),
        "{listing}"
    );
    assert!(
        listing.contains("price        0.01 USDC on base (exact)"),
        "{listing}"
    );
    assert!(
        listing.contains("POST https://api.example.test/translate"),
        "{listing}"
    );
    assert!(listing.contains("0.25 USDC on base-sepolia"), "{listing}");
    assert!(
        listing.contains("https://api.example.test/mcp (mcp tool forecast)"),
        "{listing}"
    );
    assert!(
        listing.contains("7 atomic units of 0x0000000000000000000000000000000000000042"),
        "{listing}"
    );
    assert!(text(&out.stderr).contains("3 of 3 resource(s)"));

    let out = x402ctl(&["discover", &url, "--type", "mcp", "--json"]).await;
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["total"], 1);
    assert_eq!(
        json["items"][0]["extensions"]["bazaar"]["info"]["input"]["toolName"],
        "forecast"
    );

    let out = x402ctl(&["discover", &url, "--network", "base-sepolia", "--json"]).await;
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        json["items"][0]["resource"],
        "https://api.example.test/translate"
    );

    // One page of one, then every page.
    let out = x402ctl(&["discover", &url, "--limit", "1", "--json"]).await;
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (
            json["items"].as_array().unwrap().len(),
            json["total"].as_u64()
        ),
        (1, Some(3))
    );
    let out = x402ctl(&["discover", &url, "--limit", "1", "--all", "--json"]).await;
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let all: Vec<_> = json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["resource"].as_str().unwrap())
        .collect();
    assert_eq!(
        all,
        [
            "https://api.example.test/mcp",
            "https://api.example.test/translate",
            "https://api.example.test/weather"
        ]
    );

    let out = x402ctl(&["discover", &url, "--search", "weather forecast"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let found = text(&out.stdout);
    let first = found.lines().next().unwrap();
    assert_eq!(
        first, "https://api.example.test/mcp (mcp tool forecast)",
        "{found}"
    );
    assert!(found.contains("GET https://api.example.test/weather"));
    assert!(!found.contains("translate"));
}

#[tokio::test]
async fn failures_say_what_went_wrong() {
    let url = facilitator(catalog()).await;
    let out = x402ctl(&["discover", &format!("{url}/nowhere")]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("HTTP 404"),
        "{}",
        text(&out.stderr)
    );

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let out = x402ctl(&["discover", &closed]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("unreachable"),
        "{}",
        text(&out.stderr)
    );

    let out = x402ctl(&["discover", "ftp://facilitator.example"]).await;
    assert_eq!(out.status.code(), Some(2));
    let out = x402ctl(&["discover", &url, "--type", "rpc"]).await;
    assert_eq!(out.status.code(), Some(2));
}
