//! A real paid server on loopback: axum + the runtime's `Gate` with the embedded facilitator
//! and its dev ledger, through a small adapter (request view over axum's request parts,
//! evaluate → 402 or handler → finish). Flavors mimic v1-only and v2-only servers.
//!
//! Shared with the x402ctl tests (`#[path]`), so it depends only on axum, tokio, serde_json,
//! x402-protocol and x402-runtime.
#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use x402_protocol::{Address, ProtocolVersion, U256, headers};
use x402_runtime::facilitator::DevLedger;
use x402_runtime::{
    Completion, Decision, Gate, HandlerResponse, PaymentInfo, RequestView, ResponseParts,
    RouteSpec, X402Builder,
};

/// The recipient of every test route (the official vectors' `payTo`).
pub const PAY_TO: &str = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";

/// `/weather`: exactly the requirement of the official base-sepolia vectors.
pub static WEATHER: RouteSpec = RouteSpec::fixed("0.01 USDC")
    .networks(&["base-sepolia"])
    .description("Current weather")
    .mime_type("application/json");
/// `/multi`: the same price on two networks, base first.
pub static MULTI: RouteSpec = RouteSpec::fixed("$0.02").networks(&["base", "base-sepolia"]);
/// `/expensive`: over the client's default cap.
pub static EXPENSIVE: RouteSpec = RouteSpec::fixed("$5").networks(&["base-sepolia"]);
/// `/anywhere`: on the server's default networks.
pub static ANYWHERE: RouteSpec = RouteSpec::fixed("0.01 USDC");
/// `/broken`: paid, but the handler fails (so nothing is settled).
pub static BROKEN: RouteSpec = RouteSpec::fixed("0.01 USDC").networks(&["base-sepolia"]);

/// Which generations a server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// 402 with the v1 body and the v2 header; reads both payment headers.
    Dual,
    /// Like a legacy v1 server: no `PAYMENT-REQUIRED`, reads only `X-PAYMENT`.
    V1Only,
    /// Like a v2 reference server: body `{}`, reads only `PAYMENT-SIGNATURE`.
    V2Only,
}

impl Flavor {
    /// The generation a client should end up paying with.
    pub fn paid_version(self) -> ProtocolVersion {
        match self {
            Flavor::V1Only => ProtocolVersion::V1,
            Flavor::Dual | Flavor::V2Only => ProtocolVersion::V2,
        }
    }

    fn hides(self, header: &str) -> bool {
        match self {
            Flavor::Dual => false,
            Flavor::V1Only => header.eq_ignore_ascii_case(headers::PAYMENT_SIGNATURE),
            Flavor::V2Only => header.eq_ignore_ascii_case(headers::X_PAYMENT),
        }
    }
}

struct ServerState {
    gate: Arc<Gate>,
    flavor: Flavor,
    routes: HashMap<&'static str, &'static RouteSpec>,
    seen: Arc<Mutex<Vec<(String, String)>>>,
}

/// A running paid server.
pub struct PaidServer {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// Its gate (dev ledger, registry).
    pub gate: Arc<Gate>,
    /// Every payment header it received on a paid route: (lower-case name, value).
    pub seen: Arc<Mutex<Vec<(String, String)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for PaidServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl PaidServer {
    /// The dev ledger the embedded facilitator settles into.
    pub fn ledger(&self) -> &Arc<DevLedger> {
        self.gate.dev_ledger().expect("embedded facilitator")
    }

    /// `who`'s balance of the default token on `network`.
    pub fn balance(&self, network: &str, who: Address) -> U256 {
        let network = self
            .gate
            .registry()
            .network(network)
            .expect("known network");
        self.ledger()
            .balance(&network.caip2, network.default_asset.address, who)
    }

    /// Credits `who` with `atomic` units of the default token on every network.
    pub fn fund(&self, who: Address, atomic: u64) {
        for network in self.gate.registry().networks() {
            self.ledger().fund(
                &network.caip2,
                network.default_asset.address,
                who,
                U256::from(atomic),
            );
        }
    }

    /// The payment headers received so far.
    pub fn payments_seen(&self) -> Vec<(String, String)> {
        self.seen.lock().unwrap().clone()
    }
}

/// The runtime's view of an axum request, hiding the payment header a flavor does not read.
pub struct View<'a> {
    pub parts: &'a axum::http::request::Parts,
    pub flavor: Flavor,
}

impl RequestView for View<'_> {
    fn method(&self) -> &str {
        self.parts.method.as_str()
    }
    fn path_and_query(&self) -> &str {
        self.parts.uri.path_and_query().map_or("/", |p| p.as_str())
    }
    fn header(&self, name: &str) -> Option<&str> {
        if self.flavor.hides(name) {
            return None;
        }
        self.parts.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The runtime's response parts as an axum response, shaped by the flavor.
pub fn into_response(parts: ResponseParts, flavor: Flavor) -> Response {
    let body = if flavor == Flavor::V2Only && parts.status == 402 {
        Body::from("{}")
    } else {
        Body::from(parts.body)
    };
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::from_u16(parts.status).unwrap();
    for (name, value) in parts.headers {
        if flavor == Flavor::V1Only && name.eq_ignore_ascii_case(headers::PAYMENT_REQUIRED) {
            continue;
        }
        response.headers_mut().insert(
            HeaderName::try_from(name.as_ref()).unwrap(),
            HeaderValue::from_str(&value).unwrap(),
        );
    }
    response
}

async fn x402(
    State(state): State<Arc<ServerState>>,
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    let Some(spec) = state.routes.get(request.uri().path()).copied() else {
        return next.run(request).await;
    };
    let (mut parts, body) = request.into_parts();
    for name in [headers::X_PAYMENT, headers::PAYMENT_SIGNATURE] {
        if let Some(value) = parts.headers.get(name) {
            state.seen.lock().unwrap().push((
                name.to_owned(),
                value.to_str().unwrap_or_default().to_owned(),
            ));
        }
    }
    let decision = {
        let view = View {
            parts: &parts,
            flavor: state.flavor,
        };
        state.gate.evaluate(&view, spec)
    }
    .await;
    let admission = match decision {
        Decision::Admitted(admission) => admission,
        Decision::Challenge(rejection) | Decision::Rejected(rejection) => {
            return into_response(rejection.to_response(), state.flavor);
        }
    };
    parts.extensions.insert(admission.payment.clone());
    let response = next.run(Request::from_parts(parts, body)).await;
    // The handler's whole answer goes to the gate, which keeps it for a resend of the payment.
    let (head, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    let kept = HandlerResponse {
        status: head.status.as_u16(),
        headers: head
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    v.to_str().unwrap_or_default().to_owned(),
                )
            })
            .collect(),
        body: Some(bytes.clone()),
    };
    let mut response = Response::from_parts(head, Body::from(bytes));
    match state.gate.finish_with(admission.pending, kept).await {
        Completion::Deliver { headers, .. } => {
            for (name, value) in headers {
                response.headers_mut().insert(
                    HeaderName::from_static(name),
                    HeaderValue::from_str(&value).unwrap(),
                );
            }
            response
        }
        Completion::Replace(parts) => into_response(parts, state.flavor),
    }
}

async fn paid_handler(payment: Option<axum::Extension<PaymentInfo>>) -> Response {
    let payer = payment.map(|p| p.payer().to_string());
    axum::Json(serde_json::json!({"report": "sunny", "payer": payer})).into_response()
}

async fn broken_handler() -> Response {
    (StatusCode::INTERNAL_SERVER_ERROR, "the handler failed").into_response()
}

/// Starts a paid server with the embedded facilitator; `configure` may change the gate.
pub async fn spawn_with(
    flavor: Flavor,
    configure: impl FnOnce(X402Builder) -> X402Builder,
) -> PaidServer {
    // Solana too: programs that include this server may link `#[paid]` Solana routes (the
    // quickstart's, in x402ctl's tests), which every gate checks at build.
    let gate = configure(
        Gate::builder()
            .embedded_facilitator()
            .scheme(Arc::new(x402_svm::ExactSvm))
            .pay_to(PAY_TO),
    )
    .build()
    .expect("test gate");
    let gate = Arc::new(gate);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let routes = HashMap::from([
        ("/weather", &WEATHER),
        ("/multi", &MULTI),
        ("/expensive", &EXPENSIVE),
        ("/broken", &BROKEN),
        ("/anywhere", &ANYWHERE),
    ]);
    let state = Arc::new(ServerState {
        gate: gate.clone(),
        flavor,
        routes,
        seen: seen.clone(),
    });
    let app = Router::new()
        .route("/weather", get(paid_handler).post(paid_handler))
        .route("/multi", get(paid_handler))
        .route("/expensive", get(paid_handler))
        .route("/broken", get(broken_handler))
        .route("/anywhere", get(paid_handler))
        .route("/free", get(|| async { "free" }))
        .layer(axum::middleware::from_fn_with_state(state, x402));
    serve(app, gate, seen).await
}

/// Starts a paid server with default settings.
pub async fn spawn(flavor: Flavor) -> PaidServer {
    spawn_with(flavor, |b| b).await
}

async fn serve(
    app: Router,
    gate: Arc<Gate>,
    seen: Arc<Mutex<Vec<(String, String)>>>,
) -> PaidServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    PaidServer {
        url,
        gate,
        seen,
        task,
    }
}

/// Serves any axum router on loopback; returns its base URL and the task.
pub async fn serve_router(app: Router) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (url, task)
}
