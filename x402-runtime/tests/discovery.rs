//! The discovery catalogue and its endpoints: cataloguing payments that carry the bazaar
//! extension, filters, paging, search ranking, bounds, and what is never made public.

use std::sync::Arc;

use serde_json::{Value, json};
use x402_protocol::bazaar::{self, BodyType, HttpDeclaration, McpDeclaration};
use x402_protocol::payment_identifier as pid;
use x402_runtime::clock::ManualClock;
use x402_runtime::discovery::{
    DiscoveryCatalog, ListQuery, SearchQuery, resources_endpoint, search_endpoint,
};

const PAY_TO: &str = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";

fn requirement(network: &str, scheme: &str) -> Value {
    json!({"scheme": scheme, "network": network, "amount": "10000",
           "asset": "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913", "payTo": PAY_TO,
           "maxTimeoutSeconds": 300})
}

fn payment(url: &str, description: &str, ext: &bazaar::BazaarExtension, accepted: &Value) -> Value {
    json!({
        "x402Version": 2,
        "resource": {"url": url, "description": description, "mimeType": "application/json"},
        "accepted": accepted,
        "payload": {},
        "extensions": {"bazaar": ext.to_value()},
    })
}

fn get(url_path: &str) -> bazaar::BazaarExtension {
    bazaar::declare_http(&HttpDeclaration::default()).for_request("GET", None, url_path)
}

fn body(response: &x402_runtime::ResponseParts) -> Value {
    serde_json::from_slice(&response.body).unwrap()
}

fn resources(value: &Value, key: &str) -> Vec<String> {
    value[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["resource"].as_str().unwrap().to_owned())
        .collect()
}

/// A catalogue with three HTTP resources and two MCP tools of one server.
fn catalog() -> DiscoveryCatalog {
    let catalog = DiscoveryCatalog::new().with_clock(Arc::new(ManualClock::new(1_796_050_053)));
    let base = requirement("eip155:8453", "exact");
    let sepolia = requirement("eip155:84532", "exact");
    let weather = get("/weather");
    catalog
        .record_payment(
            &payment(
                "https://api.example.test/weather?city=oslo",
                "Current weather by city",
                &weather,
                &base,
            ),
            &base,
        )
        .unwrap();
    let post = bazaar::declare_http(&HttpDeclaration {
        body_type: Some(BodyType::Json),
        input: Some(json!({"text": "hello"})),
        ..Default::default()
    })
    .for_request("POST", None, "/translate");
    catalog
        .record_payment(
            &payment(
                "https://api.example.test/translate",
                "Translate text",
                &post,
                &sepolia,
            ),
            &sepolia,
        )
        .unwrap();
    let mut users = payment(
        "https://api.example.test/users/7",
        "User profile",
        &get("/users/7"),
        &base,
    );
    users["extensions"]["bazaar"] = get("/users/7").to_value();
    users["extensions"]["bazaar"]["routeTemplate"] = json!("/users/:id");
    users["resource"]["serviceName"] = json!("Example API");
    users["resource"]["tags"] = json!(["people", "Profiles"]);
    catalog.record_payment(&users, &base).unwrap();
    for (tool, description) in [
        ("forecast", "Weather forecast for a place"),
        ("stocks", "Stock quotes"),
    ] {
        let mcp = bazaar::declare_mcp(&McpDeclaration {
            tool_name: tool.into(),
            input_schema: json!({"type": "object"}),
            description: Some(description.into()),
            transport: None,
            example: None,
            output_example: None,
            output_schema: None,
        });
        catalog
            .record_payment(&payment("mcp://tool/x", "", &mcp, &base), &base)
            .unwrap();
    }
    catalog
}

#[test]
fn payments_are_catalogued_newest_first_with_filters_and_paging() {
    let catalog = catalog();
    assert_eq!(catalog.len(), 5, "two MCP tools at one URL are two entries");
    let all = body(&resources_endpoint(&catalog, ""));
    assert_eq!(all["x402Version"], 2);
    assert_eq!(
        all["pagination"],
        json!({"limit": 20, "offset": 0, "total": 5})
    );
    assert_eq!(
        resources(&all, "items"),
        [
            "mcp://tool/x",
            "mcp://tool/x",
            "https://api.example.test/users/:id",
            "https://api.example.test/translate",
            "https://api.example.test/weather"
        ]
    );
    let item = &all["items"][2];
    assert_eq!(item["type"], "http");
    assert_eq!(item["serviceName"], "Example API");
    assert_eq!(item["tags"], json!(["people", "Profiles"]));
    assert_eq!(item["lastUpdated"], "2026-11-30T14:47:33.000Z");
    assert_eq!(item["accepts"][0]["network"], "eip155:8453");

    let cases = [
        ("type=mcp", 2),
        ("type=http", 3),
        ("network=eip155%3A84532", 1),
        ("network=base-sepolia", 1),
        ("scheme=exact", 5),
        ("scheme=upto", 0),
        (&format!("payTo={}", PAY_TO.to_lowercase()), 5),
        ("payTo=0x0000000000000000000000000000000000000001", 0),
        ("extensions=bazaar", 5),
        ("extensions=sign-in-with-x", 0),
        ("type=http&network=base", 2),
    ];
    for (query, count) in cases {
        let page = body(&resources_endpoint(&catalog, query));
        assert_eq!(page["pagination"]["total"], count, "{query}");
        assert_eq!(page["items"].as_array().unwrap().len(), count, "{query}");
    }
    let page = body(&resources_endpoint(&catalog, "limit=2&offset=3"));
    assert_eq!(
        page["pagination"],
        json!({"limit": 2, "offset": 3, "total": 5})
    );
    assert_eq!(
        resources(&page, "items"),
        [
            "https://api.example.test/translate",
            "https://api.example.test/weather"
        ]
    );
    assert_eq!(
        body(&resources_endpoint(&catalog, "limit=1000"))["pagination"]["limit"],
        100
    );
    assert_eq!(
        body(&resources_endpoint(&catalog, "limit=0"))["pagination"]["limit"],
        1
    );
    for bad in ["limit=ten", "offset=-1", "type=rpc"] {
        let response = resources_endpoint(&catalog, bad);
        assert_eq!(response.status, 400, "{bad}");
        assert_eq!(body(&response)["error"], "invalid_request");
    }
}

#[test]
fn a_new_payment_updates_the_entry_and_merges_its_terms() {
    let catalog = catalog();
    let upto = requirement("eip155:84532", "upto");
    catalog
        .record_payment(
            &payment(
                "https://api.example.test/weather",
                "Weather, now with upto",
                &get("/weather"),
                &upto,
            ),
            &upto,
        )
        .unwrap();
    assert_eq!(catalog.len(), 5);
    let page = body(&resources_endpoint(&catalog, "limit=1"));
    let entry = &page["items"][0];
    assert_eq!(entry["resource"], "https://api.example.test/weather");
    assert_eq!(entry["description"], "Weather, now with upto");
    let networks: Vec<_> = entry["accepts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["scheme"].as_str().unwrap())
        .collect();
    assert_eq!(networks, ["upto", "exact"]);
    assert!(catalog.remove("https://api.example.test/weather", None));
    assert!(!catalog.remove("https://api.example.test/weather", None));
    assert!(catalog.remove("mcp://tool/x", Some("stocks")));
    assert_eq!(catalog.len(), 3);
}

#[test]
fn search_ranks_by_matched_words_then_weight() {
    let catalog = catalog();
    let found = body(&search_endpoint(&catalog, "query=weather+forecast"));
    assert_eq!(found["x402Version"], 2);
    assert_eq!(found["partialResults"], false);
    // The MCP forecast tool matches both words; the weather route one.
    let names = resources(&found, "resources");
    assert_eq!(names, ["mcp://tool/x", "https://api.example.test/weather"]);
    assert_eq!(
        found["resources"][0]["extensions"]["bazaar"]["info"]["input"]["toolName"],
        "forecast"
    );
    // Prefix matching, tags and service names count.
    assert_eq!(
        resources(
            &body(&search_endpoint(&catalog, "query=profil")),
            "resources"
        ),
        ["https://api.example.test/users/:id"]
    );
    assert_eq!(
        resources(
            &body(&search_endpoint(&catalog, "query=EXAMPLE+api&type=mcp")),
            "resources"
        )
        .len(),
        0
    );
    assert!(
        resources(
            &body(&search_endpoint(&catalog, "query=zebra")),
            "resources"
        )
        .is_empty()
    );
    // Paging with a cursor.
    let first = catalog.search(&SearchQuery {
        limit: 2,
        ..SearchQuery::new("api example")
    });
    assert_eq!(first.resources.len(), 2);
    let cursor = first.pagination.unwrap().cursor.expect("more to come");
    let rest = catalog.search(&SearchQuery {
        limit: 2,
        cursor: Some(cursor),
        ..SearchQuery::new("api example")
    });
    assert_eq!(rest.resources.len(), 1);
    assert_eq!(rest.pagination.unwrap().cursor, None);
    for bad in [
        "",
        "query=",
        "query=%20%20",
        &format!("query={}", "a".repeat(600)),
    ] {
        let response = search_endpoint(&catalog, bad);
        assert_eq!(response.status, 400, "{bad}");
    }
}

#[test]
fn the_catalogue_is_bounded_and_keeps_the_newest() {
    let catalog = DiscoveryCatalog::with_capacity(3);
    let base = requirement("eip155:8453", "exact");
    for i in 0..5 {
        let url = format!("https://api.example.test/r{i}");
        catalog
            .record_payment(&payment(&url, "", &get(&format!("/r{i}")), &base), &base)
            .unwrap();
    }
    assert_eq!(catalog.len(), 3);
    let page = catalog.list(&ListQuery::default());
    let urls: Vec<_> = page.items.iter().map(|r| r.resource.as_str()).collect();
    assert_eq!(
        urls,
        [
            "https://api.example.test/r4",
            "https://api.example.test/r3",
            "https://api.example.test/r2"
        ]
    );
}

#[test]
fn payer_choices_and_unsafe_fields_never_become_public() {
    let catalog = DiscoveryCatalog::new();
    let base = requirement("eip155:8453", "exact");
    let mut p = payment(
        "https://api.example.test/orders/1",
        "Order",
        &get("/orders/1"),
        &base,
    );
    let mut extensions = json!({pid::EXTENSION_KEY: pid::declare(true)});
    pid::append_id(&mut extensions, "pay_secret_id_0123456789").unwrap();
    p["extensions"][pid::EXTENSION_KEY] = extensions[pid::EXTENSION_KEY].clone();
    p["extensions"]["bazaar"]["routeTemplate"] = json!("/%2e%2e/admin");
    p["resource"]["iconUrl"] = json!("http://127.0.0.1/icon.png");
    p["resource"]["serviceName"] = json!("x".repeat(40));
    catalog
        .record_facilitator_request(
            &json!({"x402Version": 2, "paymentPayload": p, "paymentRequirements": base}),
        )
        .unwrap();
    let item = serde_json::to_value(&catalog.list(&ListQuery::default()).items[0]).unwrap();
    assert_eq!(
        item["resource"], "https://api.example.test/orders/1",
        "unsafe template ignored"
    );
    assert!(item.get("iconUrl").is_none() && item.get("serviceName").is_none());
    assert!(!item.to_string().contains("pay_secret_id"), "{item}");
    assert!(item["extensions"][pid::EXTENSION_KEY]["schema"].is_object());
    // Payments without the extension, or of v1, are not catalogued.
    let mut plain = payment("https://api.example.test/x", "", &get("/x"), &base);
    plain["extensions"] = json!({});
    assert!(catalog.record_payment(&plain, &base).is_err());
    assert_eq!(catalog.len(), 1);
}
