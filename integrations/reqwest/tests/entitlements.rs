//! Entitlement tokens, against a loopback server that follows the contract: after a payment it
//! answers `x402-entitlement: <token>` + `x402-entitlement-scope: /reports` and a cookie, serves
//! later requests under the scope that show the token without payment, and refuses a revoked
//! token with 402 (challenge, error `entitlement_expired`) or 401 (`entitlement_revoked`).

use crate::support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use reqwest_x402::{PaymentResponseExt, PaymentSigner, PaymentStatus};
use support::server::{View, into_response};
use support::{CENT, CountingSigner, Flavor, builder};
use x402_protocol::{Reason, headers};
use x402_runtime::{Completion, Decision, Gate, RouteSpec};

static REPORTS: RouteSpec = RouteSpec::fixed("0.01 USDC").networks(&["base-sepolia"]);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TokenState {
    Valid,
    Expired,
    Revoked,
}

/// What one request carried.
#[derive(Debug, Clone, Default)]
struct Seen {
    path: String,
    token: Option<String>,
    cookie: Option<String>,
    paid: bool,
}

#[derive(Default)]
struct Tokens {
    issued: HashMap<String, TokenState>,
    seen: Vec<Seen>,
}

struct AppState {
    gate: Gate,
    tokens: Mutex<Tokens>,
}

async fn entitled(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let paid_route = parts.uri.path().starts_with("/reports/");
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let token = header("x402-entitlement");
    let seen = Seen {
        path: parts.uri.path().to_owned(),
        token: token.clone(),
        cookie: header("cookie"),
        paid: header(headers::PAYMENT_SIGNATURE).is_some() || header(headers::X_PAYMENT).is_some(),
    };
    state.tokens.lock().unwrap().seen.push(seen);
    if !paid_route {
        return next.run(Request::from_parts(parts, body)).await;
    }

    if let Some(token) = &token {
        let known = state.tokens.lock().unwrap().issued.get(token).copied();
        match known {
            Some(TokenState::Valid) => {
                return next.run(Request::from_parts(parts, body)).await;
            }
            Some(TokenState::Revoked) => {
                return (
                    StatusCode::UNAUTHORIZED,
                    axum::Json(serde_json::json!({"error": "entitlement_revoked"})),
                )
                    .into_response();
            }
            // Expired (or unknown): a 402 that says so, with the challenge to pay again.
            _ if header(headers::PAYMENT_SIGNATURE).is_none() => {
                let challenge = state
                    .gate
                    .challenge(
                        &View {
                            parts: &parts,
                            flavor: Flavor::Dual,
                        },
                        &REPORTS,
                    )
                    .unwrap();
                let rejection =
                    x402_runtime::Rejection::new(Reason::new("entitlement_expired"), "renew it")
                        .with_challenge(Arc::new(challenge));
                return into_response(rejection.to_response(), Flavor::Dual);
            }
            _ => {}
        }
    }

    let decision = state
        .gate
        .evaluate(
            &View {
                parts: &parts,
                flavor: Flavor::Dual,
            },
            &REPORTS,
        )
        .await;
    let admission = match decision {
        Decision::Admitted(admission) => admission,
        Decision::Challenge(r) | Decision::Rejected(r) => {
            return into_response(r.to_response(), Flavor::Dual);
        }
    };
    let mut response = next.run(Request::from_parts(parts, body)).await;
    match state.gate.finish(admission.pending, 200).await {
        Completion::Deliver {
            headers: receipt, ..
        } => {
            for (name, value) in receipt {
                response
                    .headers_mut()
                    .insert(HeaderName::from_static(name), value.parse().unwrap());
            }
        }
        Completion::Replace(parts) => return into_response(parts, Flavor::Dual),
    }
    let mut tokens = state.tokens.lock().unwrap();
    let token = format!("tok-{}", tokens.issued.len() + 1);
    tokens.issued.insert(token.clone(), TokenState::Valid);
    let h = response.headers_mut();
    h.insert("x402-entitlement", HeaderValue::from_str(&token).unwrap());
    h.insert(
        "x402-entitlement-scope",
        HeaderValue::from_static("/reports"),
    );
    h.insert(
        "set-cookie",
        HeaderValue::from_str(&format!("session={token}; Path=/reports")).unwrap(),
    );
    response
}

/// The entitlement server on loopback, and a client key funded on it.
async fn start() -> (
    String,
    Arc<AppState>,
    CountingSigner,
    tokio::task::JoinHandle<()>,
) {
    let gate = Gate::builder()
        .embedded_facilitator()
        .pay_to(support::PAY_TO)
        .build()
        .unwrap();
    let signer = CountingSigner::new();
    let network = gate.registry().network("base-sepolia").unwrap().clone();
    gate.dev_ledger().unwrap().fund(
        &network.caip2,
        network.default_asset.address,
        signer.address(),
        x402_protocol::U256::from(100 * CENT),
    );
    let state = Arc::new(AppState {
        gate,
        tokens: Mutex::default(),
    });
    let app = Router::new()
        .route("/reports/{id}", get(|| async { "report" }))
        .route("/other", get(|| async { "other" }))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            entitled,
        ));
    let (url, task) = support::server::serve_router(app).await;
    (url, state, signer, task)
}

#[tokio::test]
async fn tokens_are_reused_within_their_scope_and_dropped_when_refused() {
    let (url, state, signer, _task) = start().await;
    let x402 = builder(&signer).build().unwrap();
    let client = x402.client().unwrap();
    let get = |path: &str| client.get(format!("{url}{path}")).send();
    let set = |token: &str, to: TokenState| {
        state
            .tokens
            .lock()
            .unwrap()
            .issued
            .insert(token.to_owned(), to);
    };
    let last_seen = || state.tokens.lock().unwrap().seen.last().cloned().unwrap();

    // 1. Paid once; the token and the cookie come back.
    let response = get("/reports/1").await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(matches!(
        response.payment().unwrap().status,
        PaymentStatus::Settled { .. }
    ));
    assert_eq!(signer.signed(), 1);
    let origin = url.clone();
    assert_eq!(
        x402.entitlement_scopes(),
        vec![(origin.clone(), "/reports".to_owned())]
    );

    // 2. Another report: the token (and the cookie) are shown, nothing is paid.
    let response = get("/reports/2").await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.payment().is_none());
    assert_eq!(response.text().await.unwrap(), "report");
    let seen = last_seen();
    assert_eq!(seen.token.as_deref(), Some("tok-1"));
    assert_eq!(seen.cookie.as_deref(), Some("session=tok-1"));
    assert!(!seen.paid);
    assert_eq!(signer.signed(), 1);

    // 3. Outside the scope, neither is sent.
    let response = get("/other").await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.payment().is_none());
    let seen = last_seen();
    assert_eq!((seen.token, seen.cookie), (None, None));

    // 4. The token expires: the 402 says `entitlement_expired`; the client drops it and pays.
    set("tok-1", TokenState::Expired);
    let response = get("/reports/3").await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.payment().is_some());
    assert_eq!(signer.signed(), 2);
    let seen = last_seen();
    assert!(seen.paid);
    assert_eq!(
        seen.token, None,
        "the refused token is not sent with the payment"
    );
    assert_eq!(
        x402.entitlement_scopes(),
        vec![(origin.clone(), "/reports".to_owned())]
    );
    let response = get("/reports/4").await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(last_seen().token.as_deref(), Some("tok-2"));
    assert_eq!(signer.signed(), 2);

    // 5. Revoked with a 401: dropped, asked again without it, paid.
    set("tok-2", TokenState::Revoked);
    let response = get("/reports/5").await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.payment().is_some());
    assert_eq!(signer.signed(), 3);
    let seen: Vec<_> = state.tokens.lock().unwrap().seen.clone();
    let tail: Vec<_> = seen[seen.len() - 3..]
        .iter()
        .map(|s| (s.path.as_str(), s.token.as_deref(), s.paid))
        .collect();
    assert_eq!(
        tail,
        [
            ("/reports/5", Some("tok-2"), false),
            ("/reports/5", None, false),
            ("/reports/5", None, true),
        ]
    );
    let response = get("/reports/6").await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(last_seen().token.as_deref(), Some("tok-3"));
    assert_eq!(signer.signed(), 3);
    assert_eq!(state.gate.dev_ledger().unwrap().transfers().len(), 3);
}

#[tokio::test]
async fn entitlements_can_be_switched_off() {
    let (url, _state, signer, _task) = start().await;
    let x402 = builder(&signer).entitlements(false).build().unwrap();
    // No cookie store either: a plain reqwest client.
    let client = x402.wrap(reqwest::Client::new());
    for id in 1..=2 {
        let response = client
            .get(format!("{url}/reports/{id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    assert_eq!(signer.signed(), 2, "each request paid");
    assert!(x402.entitlement_scopes().is_empty());
}
