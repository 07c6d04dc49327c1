//! axum apps with paid routes, driven socket-free (`oneshot`) and over a real loopback socket
//! (reqwest): every scenario runs on both transports.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::routing::get;
use axum_x402::{PaidRoute, Payment, PaymentRejection, RouteSpec, SettleMode, X402};
use http_body_util::BodyExt;
use tower::ServiceExt;
use x402_protocol::client::sign_payment;
use x402_protocol::eip3009::LocalSigner;
use x402_protocol::facilitator::{PaymentRequirements, SettleResponse};
use x402_protocol::{NetworkRegistry, Price, PriceError, U256, codec, v1, v2};
use x402_runtime::RequestView;

const PAY_TO: &str = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";

macro_rules! tag {
    ($name:ident, $spec:expr) => {
        struct $name;
        impl PaidRoute for $name {
            fn spec() -> &'static RouteSpec {
                static SPEC: RouteSpec = $spec;
                &SPEC
            }
        }
    };
}

tag!(
    Weather,
    RouteSpec::fixed("0.01 USDC")
        .networks(&["base-sepolia"])
        .description("Weather")
);
tag!(
    Broken,
    RouteSpec::fixed("0.01 USDC").networks(&["base-sepolia"])
);
tag!(
    Multi,
    RouteSpec::fixed("$0.02").networks(&["base", "base-sepolia"])
);
tag!(
    Dynamic,
    RouteSpec::dynamic(by_query).networks(&["base-sepolia"])
);
tag!(
    Before,
    RouteSpec::fixed("0.01 USDC")
        .networks(&["base-sepolia"])
        .settle(SettleMode::Before)
);

fn by_query(request: &dyn RequestView) -> Result<Price, PriceError> {
    match request.path_and_query().split_once("cents=") {
        Some((_, cents)) => {
            let cents: u32 = cents.parse().unwrap_or(1);
            format!("${}.{:02}", cents / 100, cents % 100).parse()
        }
        None => Price::usd("0.01"),
    }
}

async fn weather(payment: Payment<Weather>) -> String {
    format!("sunny for {}", payment.payer())
}
async fn broken(_payment: Payment<Broken>) -> (StatusCode, &'static str) {
    (StatusCode::INTERNAL_SERVER_ERROR, "the handler failed")
}
async fn multi(payment: Payment<Multi>) -> String {
    payment.network().name.to_string()
}
async fn dynamic(payment: Payment<Dynamic>) -> String {
    payment.amount_display()
}
async fn before(mut payment: Payment<Before>) -> Result<String, PaymentRejection> {
    payment.settle().await?;
    Ok(payment.transaction().unwrap_or("none").to_owned())
}

fn routes() -> Router {
    Router::new()
        .route("/weather", get(weather))
        .route("/broken", get(broken))
        .route("/multi", get(multi))
        .route("/dynamic", get(dynamic))
        .route("/before", get(before))
        .route("/free", get(|| async { "free" }))
}

struct Server {
    x402: X402,
    payer: LocalSigner,
}

fn server(
    configure: impl FnOnce(axum_x402::X402Builder<X402>) -> axum_x402::X402Builder<X402>,
) -> Server {
    let x402 = configure(X402::builder().pay_to(PAY_TO)).build().unwrap();
    let payer = LocalSigner::random();
    if let Some(ledger) = x402.gate().dev_ledger() {
        for network in x402.gate().registry().networks() {
            ledger.fund(
                &network.caip2,
                network.default_asset.address,
                payer.address(),
                U256::from(1_000_000u64),
            );
        }
    }
    Server { x402, payer }
}

fn embedded() -> Server {
    server(|b| b.embedded_facilitator())
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&self.body)))
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

#[derive(Clone, Copy, Debug)]
enum Transport {
    Oneshot,
    Socket,
}

const TRANSPORTS: [Transport; 2] = [Transport::Oneshot, Transport::Socket];

/// An app served on a transport.
struct App {
    router: Router,
    base: Option<String>,
    client: reqwest::Client,
}

async fn serve(router: Router, transport: Transport) -> App {
    let base = match transport {
        Transport::Oneshot => None,
        Transport::Socket => {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let address = listener.local_addr().unwrap();
            let app = router.clone();
            tokio::spawn(async move { axum::serve(listener, app).await });
            Some(format!("http://{address}"))
        }
    };
    App {
        router,
        base,
        client: reqwest::Client::new(),
    }
}

impl App {
    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        match &self.base {
            None => {
                let mut request = Request::get(path).header("host", "api.test");
                for (name, value) in headers {
                    request = request.header(*name, *value);
                }
                let response = self
                    .router
                    .clone()
                    .oneshot(request.body(Body::empty()).unwrap())
                    .await
                    .unwrap();
                let status = response.status();
                let headers = response.headers().clone();
                let body = response
                    .into_body()
                    .collect()
                    .await
                    .unwrap()
                    .to_bytes()
                    .to_vec();
                Reply {
                    status,
                    headers,
                    body,
                }
            }
            Some(base) => {
                let mut request = self.client.get(format!("{base}{path}"));
                for (name, value) in headers {
                    request = request.header(*name, *value);
                }
                let response = request.send().await.unwrap();
                let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
                let mut map = HeaderMap::new();
                for (name, value) in response.headers() {
                    map.append(
                        axum::http::HeaderName::from_bytes(name.as_str().as_bytes()).unwrap(),
                        axum::http::HeaderValue::from_bytes(value.as_bytes()).unwrap(),
                    );
                }
                let body = response.bytes().await.unwrap().to_vec();
                Reply {
                    status,
                    headers: map,
                    body,
                }
            }
        }
    }

    /// Requests `path`, reads the 402, signs the entry for `network` in the given generation and
    /// returns the header to pay with.
    async fn payment(
        &self,
        payer: &LocalSigner,
        path: &str,
        v2_network: Option<&str>,
        v1_network: Option<&str>,
    ) -> (&'static str, String) {
        let challenge = self.get(path, &[]).await;
        assert_eq!(
            challenge.status,
            StatusCode::PAYMENT_REQUIRED,
            "{}",
            challenge.text()
        );
        let registry = NetworkRegistry::builtin();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        if let Some(network) = v2_network {
            let required: v2::PaymentRequired =
                codec::decode(challenge.header("payment-required").unwrap(), 1 << 16).unwrap();
            let entry = required
                .accepts
                .iter()
                .find(|r| r.network == network)
                .unwrap()
                .clone();
            let payment = sign_payment(
                &PaymentRequirements::V2(entry),
                required.resource.as_ref(),
                payer,
                &registry,
                now,
            )
            .unwrap();
            ("payment-signature", codec::encode(&payment))
        } else {
            let body: v1::PaymentRequired = serde_json::from_slice(&challenge.body).unwrap();
            let entry = body
                .accepts
                .iter()
                .find(|r| Some(r.network.as_str()) == v1_network)
                .unwrap()
                .clone();
            let payment =
                sign_payment(&PaymentRequirements::V1(entry), None, payer, &registry, now).unwrap();
            ("x-payment", codec::encode(&payment))
        }
    }
}

fn balance(x402: &X402, who: x402_protocol::Address) -> U256 {
    let network = x402.gate().registry().network("base-sepolia").unwrap();
    x402.gate()
        .dev_ledger()
        .unwrap()
        .balance(&network.caip2, network.default_asset.address, who)
}

#[tokio::test]
async fn no_payment_gets_402_with_the_v1_body_and_the_v2_header() {
    for transport in TRANSPORTS {
        let s = embedded();
        let app = serve(routes().layer(s.x402.layer()), transport).await;
        let reply = app.get("/weather?city=Oslo", &[]).await;
        assert_eq!(reply.status, StatusCode::PAYMENT_REQUIRED, "{transport:?}");
        assert_eq!(reply.header("content-type"), Some("application/json"));
        let body: v1::PaymentRequired = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(body.accepts[0].max_amount_required, U256::from(10_000u64));
        assert!(
            body.accepts[0].resource.ends_with("/weather?city=Oslo"),
            "{}",
            body.accepts[0].resource
        );
        let required: v2::PaymentRequired =
            codec::decode(reply.header("payment-required").unwrap(), 1 << 16).unwrap();
        assert_eq!(required.accepts[0].network, "eip155:84532");
        assert_eq!(required.resource.unwrap().description, "Weather");
        // Unpaid routes behind the same layer are untouched.
        let free = app.get("/free", &[]).await;
        assert_eq!(
            (free.status, free.text().as_str()),
            (StatusCode::OK, "free")
        );
        assert!(free.header("payment-required").is_none());
    }
}

#[tokio::test]
async fn valid_v1_and_v2_payments_get_200_and_a_receipt() {
    for transport in TRANSPORTS {
        let s = embedded();
        let app = serve(routes().layer(s.x402.layer()), transport).await;
        for (v2, v1, receipt_header, network) in [
            (
                Some("eip155:84532"),
                None,
                "payment-response",
                "eip155:84532",
            ),
            (
                None,
                Some("base-sepolia"),
                "x-payment-response",
                "base-sepolia",
            ),
        ] {
            let payee_before = balance(&s.x402, PAY_TO.parse().unwrap());
            let (name, value) = app.payment(&s.payer, "/weather", v2, v1).await;
            let reply = app.get("/weather", &[(name, &value)]).await;
            assert_eq!(
                reply.status,
                StatusCode::OK,
                "{transport:?} {name}: {}",
                reply.text()
            );
            assert_eq!(reply.text(), format!("sunny for {}", s.payer.address()));
            let receipt: SettleResponse =
                codec::decode(reply.header(receipt_header).unwrap(), 4096).unwrap();
            assert!(receipt.success);
            assert_eq!(receipt.network, network);
            assert_eq!(
                balance(&s.x402, PAY_TO.parse().unwrap()),
                payee_before + U256::from(10_000u64)
            );

            // The same header again (a client whose answer was lost) gets the kept answer
            // and receipt, and is not charged again.
            let again = app.get("/weather", &[(name, &value)]).await;
            assert_eq!(again.status, StatusCode::OK, "{}", again.text());
            assert_eq!(again.text(), reply.text());
            let kept: SettleResponse =
                codec::decode(again.header(receipt_header).unwrap(), 4096).unwrap();
            assert_eq!(kept.transaction, receipt.transaction);

            // On another route at the same price it is a replay like any other.
            let replay = app.get("/before", &[(name, &value)]).await;
            assert_eq!(replay.status, StatusCode::PAYMENT_REQUIRED);
            assert_eq!(
                replay.json()["error"],
                "invalid_exact_evm_nonce_already_used"
            );
            assert!(replay.header("payment-required").is_some());
            assert_eq!(
                balance(&s.x402, PAY_TO.parse().unwrap()),
                payee_before + U256::from(10_000u64)
            );
        }
    }
}

#[tokio::test]
async fn malformed_headers_get_a_4xx_with_a_reason() {
    for transport in TRANSPORTS {
        let s = embedded();
        let app = serve(routes().layer(s.x402.layer()), transport).await;
        let not_json = codec::encode_bytes(b"{not json");
        let huge = "A".repeat(9000);
        for (name, value, status) in [
            ("payment-signature", "***", 400),
            ("x-payment", not_json.as_str(), 400),
            ("x-payment", huge.as_str(), 431),
        ] {
            let reply = app.get("/weather", &[(name, value)]).await;
            assert_eq!(
                reply.status.as_u16(),
                status,
                "{transport:?} {name}: {}",
                reply.text()
            );
            let body = reply.json();
            assert!(
                body["error"].is_string() && body["message"].is_string(),
                "{body}"
            );
        }
    }
}

#[tokio::test]
async fn a_failing_handler_settles_nothing() {
    for transport in TRANSPORTS {
        let s = embedded();
        let app = serve(routes().layer(s.x402.layer()), transport).await;
        let (name, value) = app
            .payment(&s.payer, "/broken", Some("eip155:84532"), None)
            .await;
        let reply = app.get("/broken", &[(name, &value)]).await;
        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(reply.text(), "the handler failed");
        assert!(reply.header("payment-response").is_none());
        assert!(
            s.x402.gate().dev_ledger().unwrap().transfers().is_empty(),
            "ledger unchanged"
        );
        assert_eq!(balance(&s.x402, PAY_TO.parse().unwrap()), U256::ZERO);
    }
}

#[tokio::test]
async fn settle_before_routes_hand_the_transaction_to_the_handler() {
    let s = embedded();
    let app = serve(routes().layer(s.x402.layer()), Transport::Socket).await;
    let (name, value) = app
        .payment(&s.payer, "/before", Some("eip155:84532"), None)
        .await;
    let reply = app.get("/before", &[(name, &value)]).await;
    assert_eq!(reply.status, StatusCode::OK);
    let receipt: SettleResponse =
        codec::decode(reply.header("payment-response").unwrap(), 4096).unwrap();
    assert_eq!(reply.text(), receipt.transaction);
}

#[tokio::test]
async fn dynamic_price_and_multi_network_routes_offer_the_right_accepts() {
    for transport in TRANSPORTS {
        let s = embedded();
        let app = serve(routes().layer(s.x402.layer()), transport).await;
        let reply = app.get("/dynamic?cents=7", &[]).await;
        let required: v2::PaymentRequired =
            codec::decode(reply.header("payment-required").unwrap(), 1 << 16).unwrap();
        assert_eq!(required.accepts[0].amount, U256::from(70_000u64));
        let (name, value) = app
            .payment(&s.payer, "/dynamic?cents=7", Some("eip155:84532"), None)
            .await;
        let paid = app.get("/dynamic?cents=7", &[(name, &value)]).await;
        assert_eq!(paid.text(), "0.07 USDC");

        let reply = app.get("/multi", &[]).await;
        let required: v2::PaymentRequired =
            codec::decode(reply.header("payment-required").unwrap(), 1 << 16).unwrap();
        let networks: Vec<_> = required
            .accepts
            .iter()
            .map(|r| (r.network.as_str(), r.amount))
            .collect();
        assert_eq!(
            networks,
            [
                ("eip155:8453", U256::from(20_000u64)),
                ("eip155:84532", U256::from(20_000u64))
            ]
        );
        let (name, value) = app
            .payment(&s.payer, "/multi", Some("eip155:8453"), None)
            .await;
        assert_eq!(app.get("/multi", &[(name, &value)]).await.text(), "base");
    }
}

#[tokio::test]
async fn facilitator_unreachable_gets_502_and_too_slow_gets_504_within_the_timeout() {
    // Nothing listens here.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let unreachable = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    // This one accepts connections and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_url = format!("http://{}", silent.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let timeout = Duration::from_millis(400);
    for transport in TRANSPORTS {
        let payer_source = embedded();
        let signing_app = serve(routes().layer(payer_source.x402.layer()), transport).await;
        let (name, value) = signing_app
            .payment(&payer_source.payer, "/weather", Some("eip155:84532"), None)
            .await;

        let down = server(|b| b.facilitator(unreachable.clone()));
        let app = serve(routes().layer(down.x402.layer()), transport).await;
        let reply = app.get("/weather", &[(name, &value)]).await;
        assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{transport:?}");
        assert_eq!(reply.json()["error"], "facilitator_unavailable");

        let slow = server(|b| {
            b.facilitator(silent_url.clone())
                .facilitator_timeout(timeout)
        });
        let app = serve(routes().layer(slow.x402.layer()), transport).await;
        let started = Instant::now();
        let reply = app.get("/weather", &[(name, &value)]).await;
        let elapsed = started.elapsed();
        assert_eq!(reply.status, StatusCode::GATEWAY_TIMEOUT, "{transport:?}");
        assert_eq!(reply.json()["error"], "facilitator_timeout");
        assert!(
            elapsed >= timeout && elapsed < timeout + Duration::from_secs(2),
            "{elapsed:?}"
        );
    }
}

#[tokio::test]
async fn a_missing_layer_is_reported_not_a_bare_500() {
    for transport in TRANSPORTS {
        let app = serve(routes(), transport).await;
        let reply = app.get("/weather", &[]).await;
        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
        let body = reply.json();
        assert_eq!(body["error"], "x402_not_configured");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains(".layer(x402.layer())"),
            "{body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_copies_of_a_payment_are_served_once() {
    let s = embedded();
    let app = Arc::new(serve(routes().layer(s.x402.layer()), Transport::Socket).await);
    let (name, value) = app
        .payment(&s.payer, "/weather", Some("eip155:84532"), None)
        .await;
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (app, value) = (app.clone(), value.clone());
            tokio::spawn(async move {
                let reply = app.get("/weather", &[(name, &value)]).await;
                (reply.status, reply.text())
            })
        })
        .collect();
    // The handler runs once; copies that arrive later get its kept answer, copies that arrive
    // while it runs are told to retry, and a copy that finds the payment reserved before its
    // journal record is written can only be refused as a replay.
    let mut served = Vec::new();
    for task in tasks {
        let (status, text) = task.await.unwrap();
        match status {
            StatusCode::OK => served.push(text),
            StatusCode::CONFLICT => assert!(text.contains("payment_in_progress"), "{text}"),
            StatusCode::PAYMENT_REQUIRED => {
                assert!(text.contains("nonce_already_used"), "{text}")
            }
            StatusCode::GATEWAY_TIMEOUT => assert!(text.contains("settlement_pending"), "{text}"),
            other => panic!("a copy got {other}: {text}"),
        }
    }
    assert!(!served.is_empty());
    assert!(served.iter().all(|t| *t == served[0]), "{served:?}");
    assert_eq!(s.x402.gate().dev_ledger().unwrap().transfers().len(), 1);
}

tag!(
    Guarded,
    RouteSpec::fixed("0.01 USDC").networks(&["base-sepolia"])
);

/// How often the handler behind the hooked route ran.
static GUARDED_CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

async fn guarded(_payment: Payment<Guarded>) -> &'static str {
    GUARDED_CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    "served"
}

#[tokio::test]
async fn a_hook_refusing_after_verify_or_failing_stops_the_handler_and_the_settlement() {
    use x402_runtime::hooks::{Abort, FnHooks, HookContext, Verdict};
    let cases: Vec<(FnHooks, StatusCode, &str)> = vec![
        (
            FnHooks::new().after_verify(|_: HookContext| async {
                Ok(Verdict::Abort(Abort::new(
                    403,
                    x402_protocol::Reason::new("payer_blocked"),
                    "this payer is blocked",
                )))
            }),
            StatusCode::FORBIDDEN,
            "payer_blocked",
        ),
        (
            FnHooks::new().after_verify(|_: HookContext| async { panic!("hook bug") }),
            StatusCode::INTERNAL_SERVER_ERROR,
            "hook_failed",
        ),
        (
            FnHooks::new().before_verify(|_: HookContext| async { Err("crm down".into()) }),
            StatusCode::INTERNAL_SERVER_ERROR,
            "hook_failed",
        ),
    ];
    for (transport, (hooks, status, reason)) in TRANSPORTS.into_iter().cycle().zip(cases) {
        let s = server(|b| b.embedded_facilitator().hooks(hooks));
        let router = Router::new()
            .route("/guarded", get(guarded))
            .layer(s.x402.layer());
        let app = serve(router, transport).await;
        let (name, value) = app
            .payment(&s.payer, "/guarded", Some("eip155:84532"), None)
            .await;
        let before = GUARDED_CALLS.load(std::sync::atomic::Ordering::SeqCst);
        let reply = app.get("/guarded", &[(name, &value)]).await;
        assert_eq!(reply.status, status, "{reason}: {}", reply.text());
        assert_eq!(reply.json()["error"], reason);
        assert_ne!(reply.text(), "served");
        assert_eq!(
            GUARDED_CALLS.load(std::sync::atomic::Ordering::SeqCst),
            before,
            "{reason}: the handler must not run"
        );
        assert!(s.x402.gate().dev_ledger().unwrap().transfers().is_empty());
        assert_eq!(
            balance(&s.x402, s.payer.address()),
            U256::from(1_000_000u64)
        );
    }
}
