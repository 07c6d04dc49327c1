//! `Rejection::to_http_response` says exactly what `to_response` says (status, headers in
//! order, body), for a bare challenge rendered fresh and served from the route's cache, for a
//! challenge to another URL, and for a rejection that is not a challenge.

use x402_protocol::{ProtocolVersion, Reason};
use x402_runtime::{Rejection, ResponseParts, RouteSpec};

mod common;

use common::{Req, rejected, world};

static WEATHER: RouteSpec = RouteSpec::fixed("0.01 USDC")
    .networks(&["base-sepolia"])
    .description("Current weather")
    .mime_type("application/json");

fn same(parts: &ResponseParts, response: &http::Response<bytes::Bytes>) {
    assert_eq!(response.status().as_u16(), parts.status);
    let headers: Vec<(&str, &str)> = response
        .headers()
        .iter()
        .map(|(name, value)| (name.as_str(), value.to_str().unwrap()))
        .collect();
    let expected: Vec<(&str, &str)> = parts
        .headers
        .iter()
        .map(|(name, value)| (name.as_ref(), value.as_str()))
        .collect();
    assert_eq!(headers, expected);
    assert_eq!(response.body(), &parts.body);
}

#[tokio::test]
async fn the_http_rendering_is_the_same_response() {
    let w = world();
    for (path, times) in [("/weather?city=Oslo", 3), ("/weather?city=Bergen", 2)] {
        for _ in 0..times {
            let rejection = rejected(w.gate.evaluate(&Req::get(path), &WEATHER).await);
            let http = rejection.to_http_response();
            let parts = rejection.to_response();
            assert_eq!(parts.status, 402);
            assert!(parts.header("payment-required").is_some());
            assert!(String::from_utf8_lossy(&parts.body).contains(path));
            same(&parts, &http);
        }
    }

    // A payment that fails: a 402 particular to the request, never cached.
    let request = w
        .paid(&WEATHER, "/weather", ProtocolVersion::V2, "eip155:84532")
        .await;
    let admitted = w.gate.evaluate(&request, &WEATHER).await;
    assert!(admitted.into_result().is_ok());
    let replayed = rejected(w.gate.evaluate(&request, &WEATHER).await);
    assert_eq!(replayed.reason(), &Reason::NONCE_ALREADY_USED);
    same(&replayed.to_response(), &replayed.to_http_response());

    let plain = Rejection::new(Reason::STORE_UNAVAILABLE, "try again");
    same(&plain.to_response(), &plain.to_http_response());
}
