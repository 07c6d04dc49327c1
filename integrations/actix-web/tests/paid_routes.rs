//! actix-web apps with paid routes, driven through actix's test service (no socket). The
//! cross-framework scenario table in `x402-tests` runs the same behaviours over loopback.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{App, HttpResponse, test, web};
use actix_web_x402::{PaidRoute, Payment, RouteSpec, X402};
use x402_protocol::client::sign_payment;
use x402_protocol::eip3009::LocalSigner;
use x402_protocol::facilitator::{PaymentRequirements, SettleResponse};
use x402_protocol::{NetworkRegistry, U256, codec, v1, v2};
use x402_runtime::AccessSpec;

const PAY_TO: &str = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";
const OTHER_PAY_TO: &str = "0x90F79bf6EB2c4f870365E785982E1f101E93b906";

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
    RouteSpec::fixed("0.01 USDC").networks(&["base-sepolia"])
);
tag!(
    Hourly,
    RouteSpec::fixed("0.05 USDC")
        .networks(&["base-sepolia"])
        .access(AccessSpec {
            duration: Some(Duration::from_secs(3600)),
            uses: None,
            scope: None,
        })
);

async fn weather(payment: Payment<Weather>) -> String {
    format!("sunny for {}", payment.payer())
}
async fn broken(_payment: Payment<Weather>) -> HttpResponse {
    HttpResponse::InternalServerError().body("the handler failed")
}
async fn hourly(payment: Payment<Hourly>) -> HttpResponse {
    // The handler sets a cookie of its own; the grant's cookie must not replace it.
    HttpResponse::Ok()
        .append_header(("set-cookie", "theme=dark; Path=/"))
        .body(format!("{:?}", payment.access()))
}

fn x402(pay_to: &str) -> (X402, LocalSigner) {
    let x402 = X402::builder()
        .embedded_facilitator()
        .pay_to(pay_to)
        .build()
        .unwrap();
    let payer = LocalSigner::random();
    let network = x402.gate().registry().network("base-sepolia").unwrap();
    x402.gate().dev_ledger().unwrap().fund(
        &network.caip2,
        network.default_asset.address,
        payer.address(),
        U256::from(1_000_000u64),
    );
    (x402, payer)
}

/// Signs a payment for the 402 a test service just answered.
fn pay(
    response_headers: &actix_web::http::header::HeaderMap,
    body: &[u8],
    payer: &LocalSigner,
    v2: bool,
) -> (&'static str, String) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let registry = NetworkRegistry::builtin();
    if v2 {
        let header = response_headers
            .get("payment-required")
            .unwrap()
            .to_str()
            .unwrap();
        let required: v2::PaymentRequired = codec::decode(header, 1 << 16).unwrap();
        let entry = PaymentRequirements::V2(required.accepts[0].clone());
        let payment =
            sign_payment(&entry, required.resource.as_ref(), payer, &registry, now).unwrap();
        ("payment-signature", codec::encode(&payment))
    } else {
        let body: v1::PaymentRequired = serde_json::from_slice(body).unwrap();
        let entry = PaymentRequirements::V1(body.accepts[0].clone());
        (
            "x-payment",
            codec::encode(&sign_payment(&entry, None, payer, &registry, now).unwrap()),
        )
    }
}

#[actix_web::test]
async fn unpaid_paid_and_replayed_requests() {
    let (x402, payer) = x402(PAY_TO);
    let app = test::init_service(
        App::new()
            .wrap(x402.middleware())
            .route("/weather", web::get().to(weather)),
    )
    .await;

    for v2 in [true, false] {
        let challenge =
            test::call_service(&app, test::TestRequest::get().uri("/weather").to_request()).await;
        assert_eq!(challenge.status(), StatusCode::PAYMENT_REQUIRED);
        assert!(challenge.headers().contains_key("payment-required"));
        let headers = challenge.headers().clone();
        let body = test::read_body(challenge).await;
        let parsed: v1::PaymentRequired = serde_json::from_slice(&body).unwrap();
        assert_eq!(parsed.accepts[0].max_amount_required, U256::from(10_000u64));

        let (name, value) = pay(&headers, &body, &payer, v2);
        let paid = test::call_service(
            &app,
            test::TestRequest::get()
                .uri("/weather")
                .insert_header((name, value.clone()))
                .to_request(),
        )
        .await;
        assert_eq!(paid.status(), StatusCode::OK);
        let receipt_header = if v2 {
            "payment-response"
        } else {
            "x-payment-response"
        };
        let receipt: SettleResponse = codec::decode(
            paid.headers()
                .get(receipt_header)
                .unwrap()
                .to_str()
                .unwrap(),
            4096,
        )
        .unwrap();
        assert!(receipt.success);
        assert_eq!(
            test::read_body(paid).await,
            format!("sunny for {}", payer.address()).as_bytes()
        );

        let replay = test::call_service(
            &app,
            test::TestRequest::get()
                .uri("/weather")
                .insert_header((name, value))
                .to_request(),
        )
        .await;
        // A resend of a settled authorization (the client lost its answer) gets the stored
        // answer and receipt again; the ledger below shows it was not charged twice.
        assert_eq!(replay.status(), StatusCode::OK);
        let replayed: SettleResponse = codec::decode(
            replay
                .headers()
                .get(receipt_header)
                .unwrap()
                .to_str()
                .unwrap(),
            4096,
        )
        .unwrap();
        assert_eq!(replayed.transaction, receipt.transaction);
        assert_eq!(
            test::read_body(replay).await,
            format!("sunny for {}", payer.address()).as_bytes()
        );
    }
    assert_eq!(x402.gate().dev_ledger().unwrap().transfers().len(), 2);
}

#[actix_web::test]
async fn a_failing_handler_settles_nothing() {
    let (x402, payer) = x402(PAY_TO);
    let app = test::init_service(
        App::new()
            .wrap(x402.middleware())
            .route("/broken", web::get().to(broken)),
    )
    .await;
    let challenge =
        test::call_service(&app, test::TestRequest::get().uri("/broken").to_request()).await;
    let headers = challenge.headers().clone();
    let (name, value) = pay(&headers, &test::read_body(challenge).await, &payer, true);
    let response = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/broken")
            .insert_header((name, value))
            .to_request(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(!response.headers().contains_key("payment-response"));
    assert!(x402.gate().dev_ledger().unwrap().transfers().is_empty());
}

#[actix_web::test]
async fn a_missing_middleware_is_reported_with_the_fix() {
    let app = test::init_service(App::new().route("/weather", web::get().to(weather))).await;
    let response =
        test::call_service(&app, test::TestRequest::get().uri("/weather").to_request()).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body: serde_json::Value = test::read_body_json(response).await;
    assert_eq!(body["error"], "x402_not_configured");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains(".wrap(x402.middleware())"),
        "{body}"
    );
}

#[actix_web::test]
async fn grant_cookies_are_added_beside_the_handlers_own() {
    let (x402, payer) = x402(PAY_TO);
    let app = test::init_service(
        App::new()
            .wrap(x402.middleware())
            .route("/hourly", web::get().to(hourly)),
    )
    .await;
    let challenge =
        test::call_service(&app, test::TestRequest::get().uri("/hourly").to_request()).await;
    let headers = challenge.headers().clone();
    let (name, value) = pay(&headers, &test::read_body(challenge).await, &payer, true);
    let paid = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/hourly")
            .insert_header((name, value))
            .to_request(),
    )
    .await;
    assert_eq!(paid.status(), StatusCode::OK);
    let cookies: Vec<_> = paid
        .headers()
        .get_all("set-cookie")
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert_eq!(cookies.len(), 2, "{cookies:?}");
    assert!(cookies.iter().any(|c| c.starts_with("theme=dark")));
    let token = paid
        .headers()
        .get("x402-entitlement")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();

    let reused = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/hourly")
            .insert_header(("x402-entitlement", token))
            .to_request(),
    )
    .await;
    assert_eq!(reused.status(), StatusCode::OK);
    assert!(String::from_utf8_lossy(&test::read_body(reused).await).starts_with("Entitlement("));
}

#[actix_web::test]
async fn a_scope_can_carry_its_own_configuration_in_app_data() {
    let (main_x402, payer) = x402(PAY_TO);
    let (eu_x402, _) = x402(OTHER_PAY_TO);
    // The EU scope's ledger must know the payer too.
    let network = eu_x402.gate().registry().network("base-sepolia").unwrap();
    eu_x402.gate().dev_ledger().unwrap().fund(
        &network.caip2,
        network.default_asset.address,
        payer.address(),
        U256::from(1_000_000u64),
    );
    let app = test::init_service(
        App::new().wrap(main_x402.middleware()).service(
            web::scope("/eu")
                .app_data(eu_x402.clone())
                .route("/weather", web::get().to(weather)),
        ),
    )
    .await;
    let challenge = test::call_service(
        &app,
        test::TestRequest::get().uri("/eu/weather").to_request(),
    )
    .await;
    let headers = challenge.headers().clone();
    let body = test::read_body(challenge).await;
    let parsed: v1::PaymentRequired = serde_json::from_slice(&body).unwrap();
    assert_eq!(parsed.accepts[0].pay_to, OTHER_PAY_TO);
    let (name, value) = pay(&headers, &body, &payer, true);
    let paid = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/eu/weather")
            .insert_header((name, value))
            .to_request(),
    )
    .await;
    assert_eq!(paid.status(), StatusCode::OK);
    // Settled through the scope's own facilitator and ledger.
    assert_eq!(eu_x402.gate().dev_ledger().unwrap().transfers().len(), 1);
    assert!(
        main_x402
            .gate()
            .dev_ledger()
            .unwrap()
            .transfers()
            .is_empty()
    );
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

#[actix_web::test]
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
    for (hooks, status, reason) in cases {
        let x402 = X402::builder()
            .embedded_facilitator()
            .pay_to(PAY_TO)
            .hooks(hooks)
            .build()
            .unwrap();
        let payer = LocalSigner::random();
        let network = x402.gate().registry().network("base-sepolia").unwrap();
        let ledger = x402.gate().dev_ledger().unwrap().clone();
        ledger.fund(
            &network.caip2,
            network.default_asset.address,
            payer.address(),
            U256::from(1_000_000u64),
        );
        let app = test::init_service(
            App::new()
                .wrap(x402.middleware())
                .route("/guarded", web::get().to(guarded)),
        )
        .await;
        let challenge =
            test::call_service(&app, test::TestRequest::get().uri("/guarded").to_request()).await;
        let headers = challenge.headers().clone();
        let body = test::read_body(challenge).await;
        let (name, value) = pay(&headers, &body, &payer, true);

        let before = GUARDED_CALLS.load(std::sync::atomic::Ordering::SeqCst);
        let refused = test::call_service(
            &app,
            test::TestRequest::get()
                .uri("/guarded")
                .insert_header((name, value))
                .to_request(),
        )
        .await;
        assert_eq!(refused.status(), status, "{reason}");
        let body: serde_json::Value =
            serde_json::from_slice(&test::read_body(refused).await).unwrap();
        assert_eq!(body["error"], reason);
        assert_eq!(
            GUARDED_CALLS.load(std::sync::atomic::Ordering::SeqCst),
            before,
            "{reason}: the handler must not run"
        );
        assert!(ledger.transfers().is_empty(), "{reason}: nothing settled");
        assert_eq!(
            ledger.balance(
                &network.caip2,
                network.default_asset.address,
                payer.address()
            ),
            U256::from(1_000_000u64)
        );
    }
}
