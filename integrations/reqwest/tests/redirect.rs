//! A paid request that the server redirects to another origin must not carry the signed payment
//! there: the other host could spend it on the original server.

use crate::support;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use support::server::{View, WEATHER, into_response, serve_router};
use support::{CountingSigner, Flavor, builder};
use x402_runtime::{Decision, Gate};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cross_origin_redirect_never_receives_the_payment() {
    // The other origin records every payment header it is sent.
    let stolen: Arc<Mutex<Vec<String>>> = Arc::default();
    let recorder = stolen.clone();
    let (elsewhere, _other) = serve_router(Router::new().route(
        "/collect",
        get(move |headers: HeaderMap| async move {
            for name in ["payment-signature", "x-payment"] {
                if let Some(value) = headers.get(name) {
                    recorder
                        .lock()
                        .unwrap()
                        .push(value.to_str().unwrap().to_owned());
                }
            }
            "thanks"
        }),
    ))
    .await;

    // The shop answers 402 without a payment, and redirects the paid retry away.
    let gate = Arc::new(
        Gate::builder()
            .embedded_facilitator()
            .pay_to(support::server::PAY_TO)
            .build()
            .unwrap(),
    );
    let target = format!("{elsewhere}/collect");
    let (shop, _shop) = serve_router(Router::new().route(
        "/weather",
        get(move |request: Request| {
            let (gate, target) = (gate.clone(), target.clone());
            async move {
                let (parts, _) = request.into_parts();
                if parts.headers.contains_key("payment-signature")
                    || parts.headers.contains_key("x-payment")
                {
                    return Redirect::temporary(&target).into_response();
                }
                let view = View {
                    parts: &parts,
                    flavor: Flavor::Dual,
                };
                match gate.evaluate(&view, &WEATHER).await {
                    Decision::Challenge(rejection) => {
                        into_response(rejection.to_response(), Flavor::Dual)
                    }
                    _ => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
                }
            }
        }),
    ))
    .await;

    let signer = CountingSigner::new();
    let client = builder(&signer).build().unwrap().client().unwrap();
    let response: Response<reqwest::Body> = client
        .get(format!("{shop}/weather"))
        .send()
        .await
        .unwrap()
        .into();
    assert_eq!(
        response.status().as_u16(),
        307,
        "the cross-origin redirect is handed back, not followed"
    );
    assert_eq!(signer.signed(), 1, "the client did pay the shop");
    assert!(
        stolen.lock().unwrap().is_empty(),
        "the other origin saw a payment"
    );
}
