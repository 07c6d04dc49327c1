//! Launching without the x402 fairing fails at launch, with a message that says how to fix it.
//!
//! Its own test binary: it installs a logger that records what Rocket and rocket-x402 log, and a
//! process has only one logger.

use std::net::Ipv4Addr;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rocket::config::{LogLevel, Shutdown};
use rocket::error::ErrorKind;
use rocket::http::Status;
use rocket::local::asynchronous::Client;
use rocket::request::{FromRequest, Outcome};
use rocket::{Build, Config, Request, Rocket, get, routes};
use rocket_x402::{PaidRoute, Payment, PaymentRejection, RouteSpec, X402};

const FIX: &str = "rocket::build().attach(x402.fairing())";

/// Records every log line.
struct Recorder(Mutex<Vec<String>>);

impl log::Log for Recorder {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(record.args().to_string());
    }
    fn flush(&self) {}
}

static RECORDER: Recorder = Recorder(Mutex::new(Vec::new()));

/// Installs the recorder (before any Rocket instance can install its own logger).
fn record_logs() {
    if log::set_logger(&RECORDER).is_ok() {
        log::set_max_level(log::LevelFilter::Trace);
    }
}

fn logged(needle: &str) -> Vec<String> {
    RECORDER
        .0
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .filter(|line| line.contains(needle))
        .cloned()
        .collect()
}

struct Weather;
impl PaidRoute for Weather {
    fn spec() -> &'static RouteSpec {
        static SPEC: RouteSpec = RouteSpec::fixed("0.01 USDC").networks(&["base-sepolia"]);
        &SPEC
    }
}

#[get("/weather")]
fn weather(payment: Payment<Weather>) -> String {
    payment.payer().to_string()
}
#[get("/maybe")]
fn maybe(payment: Option<Payment<Weather>>) -> &'static str {
    if payment.is_some() { "paid" } else { "free" }
}
#[get("/either")]
fn either(payment: Result<Payment<Weather>, PaymentRejection>) -> &'static str {
    if payment.is_ok() { "paid" } else { "free" }
}

/// A guard that reaches a `Payment` from inside, where no sentinel looks.
struct Indirect;

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Indirect {
    type Error = ();
    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, ()> {
        match request.guard::<Payment<Weather>>().await {
            Outcome::Success(_) => Outcome::Success(Indirect),
            Outcome::Error((status, _)) => Outcome::Error((status, ())),
            Outcome::Forward(status) => Outcome::Forward(status),
        }
    }
}

#[get("/indirect")]
fn indirect(_paid: Indirect) -> &'static str {
    "served"
}

fn x402() -> X402 {
    X402::builder()
        .embedded_facilitator()
        .pay_to("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC")
        .build()
        .unwrap()
}

fn rocket(routes: Vec<rocket::Route>) -> Rocket<Build> {
    let config = Config {
        address: Ipv4Addr::LOCALHOST.into(),
        port: 0,
        log_level: LogLevel::Normal,
        shutdown: Shutdown {
            ctrlc: false,
            ..Shutdown::default()
        },
        ..Config::debug_default()
    };
    rocket::custom(config).mount("/", routes)
}

#[tokio::test]
async fn launching_paid_routes_without_the_fairing_fails_and_says_how_to_fix_it() {
    record_logs();
    let x402 = x402();
    let apps = [
        rocket(routes![weather]),
        rocket(routes![maybe]),
        rocket(routes![either]),
        // Managing the configuration is not the setup: nothing would settle.
        rocket(routes![weather]).manage(x402.clone()),
    ];
    for app in apps {
        let error = tokio::time::timeout(Duration::from_secs(10), app.launch())
            .await
            .expect("launch must fail, not serve")
            .expect_err("launch must fail");
        let ErrorKind::SentinelAborts(sentries) = error.kind() else {
            panic!("not a sentinel abort: {error}");
        };
        assert!(
            sentries
                .iter()
                .any(|s| s.type_name.contains("rocket_x402::") && s.type_name.contains("Payment<")),
            "{:?}",
            sentries.iter().map(|s| s.type_name).collect::<Vec<_>>()
        );
    }
    // One error per aborted launch names the guard and the fix.
    let advice = logged("a route takes a `Payment` guard");
    assert_eq!(advice.len(), 4, "{advice:?}");
    assert!(advice.iter().all(|line| line.contains(FIX)), "{advice:?}");
}

#[tokio::test]
async fn with_the_fairing_attached_launch_proceeds() {
    record_logs();
    let x402 = x402();
    rocket(routes![weather, maybe, either])
        .attach(x402.fairing())
        .ignite()
        .await
        .expect("ignites");
    // Managing the configuration as well (for handlers that want it) does not clash.
    rocket(routes![weather])
        .manage(x402.clone())
        .attach(x402.fairing())
        .ignite()
        .await
        .expect("ignites");
    // A second x402 fairing replaces the first.
    rocket(routes![weather])
        .attach(x402.fairing())
        .attach(self::x402().fairing())
        .ignite()
        .await
        .expect("ignites");
}

#[tokio::test]
async fn a_payment_reached_past_the_sentinel_fails_closed() {
    record_logs();
    // No route names `Payment`, so nothing stops this launch.
    let client = Client::tracked(rocket(routes![indirect])).await.unwrap();
    let response = client.get("/indirect").dispatch().await;
    assert_eq!(response.status(), Status::InternalServerError);
    assert_ne!(response.into_string().await.as_deref(), Some("served"));
    assert!(
        logged("the x402 fairing is missing")
            .iter()
            .any(|line| line.contains(FIX)),
        "the failure is logged with its fix"
    );
}
