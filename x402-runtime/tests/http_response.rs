//! `Rejection::to_http_response` says exactly what `to_response` says (status, headers in
//! order, body), for a bare challenge rendered fresh and served from the route's cache, for a
//! challenge to another URL, for a kept paid answer sent again, and for rejections that are not
//! challenges.

use x402_protocol::{ProtocolVersion, Reason};
use x402_runtime::{Completion, HandlerResponse, Rejection, ResponseParts, RouteSpec};

use crate::common;

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

    // A paid answer, kept: the same payment sent again is answered with it, in both forms.
    let request = w
        .paid(&WEATHER, "/weather", ProtocolVersion::V2, "eip155:84532")
        .await;
    let admitted = w
        .gate
        .evaluate(&request, &WEATHER)
        .await
        .into_result()
        .unwrap();
    let handler = HandlerResponse {
        status: 200,
        headers: vec![
            ("content-type".to_owned(), "text/plain".to_owned()),
            ("x-forecast".to_owned(), "sunny".to_owned()),
        ],
        body: Some(bytes::Bytes::from_static(b"sunny all week")),
    };
    assert!(matches!(
        w.gate.finish_with(admitted.pending, handler).await,
        Completion::Deliver { .. }
    ));
    let again = rejected(w.gate.evaluate(&request, &WEATHER).await);
    assert!(again.is_answer());
    let kept = again.to_response();
    assert_eq!(kept.status, 200);
    assert_eq!(kept.header("x-forecast"), Some("sunny"));
    assert_eq!(&kept.body[..], b"sunny all week");
    same(&kept, &again.to_http_response());

    // The same payment sent to another resource: a 402 particular to the request, never cached.
    let elsewhere = Req {
        path: "/elsewhere",
        headers: request.headers.clone(),
    };
    let replayed = rejected(w.gate.evaluate(&elsewhere, &WEATHER).await);
    assert_eq!(replayed.reason(), &Reason::NONCE_ALREADY_USED);
    same(&replayed.to_response(), &replayed.to_http_response());

    let plain = Rejection::new(Reason::STORE_UNAVAILABLE, "try again");
    same(&plain.to_response(), &plain.to_http_response());
}
