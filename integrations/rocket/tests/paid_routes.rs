//! Rocket apps with paid routes, driven socket-free (the local asynchronous client) and over a
//! real loopback socket (reqwest): every scenario runs on both transports.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rocket::config::{LogLevel, Shutdown};
use rocket::fairing::AdHoc;
use rocket::http::{Cookie, CookieJar, Header, Status};
use rocket::local::asynchronous::Client;
use rocket::request::{FromRequest, Outcome};
use rocket::{Build, Config, Request, Rocket, State, catch, catchers, get, routes};
use rocket_x402::{Access, PaidRoute, Payment, PaymentRejection, RouteSpec, SettleMode, X402};
use x402_protocol::client::sign_payment;
use x402_protocol::eip3009::LocalSigner;
use x402_protocol::facilitator::{PaymentRequirements, SettleResponse};
use x402_protocol::{NetworkRegistry, Price, PriceError, U256, codec, v1, v2};
use x402_runtime::{AccessSpec, RequestView};

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
    BrokenErr,
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
const PASSES: AccessSpec = AccessSpec {
    duration: Some(Duration::from_secs(3600)),
    uses: Some(3),
    scope: Some("passes"),
};
tag!(
    Pass,
    RouteSpec::fixed("0.05 USDC")
        .networks(&["base-sepolia"])
        .access(PASSES)
);
tag!(
    PassBroken,
    RouteSpec::fixed("0.05 USDC")
        .networks(&["base-sepolia"])
        .access(PASSES)
);
tag!(
    Members,
    RouteSpec::fixed("0.01 USDC").networks(&["base-sepolia"])
);
tag!(
    Club,
    RouteSpec::fixed("0.01 USDC").networks(&["base-sepolia"])
);
tag!(
    ClubGuest,
    RouteSpec::fixed("0.01 USDC").networks(&["base-sepolia"])
);
tag!(
    Preview,
    RouteSpec::fixed("0.01 USDC").networks(&["base-sepolia"])
);
tag!(
    Explicit,
    RouteSpec::fixed("0.01 USDC").networks(&["base-sepolia"])
);
tag!(Mars, RouteSpec::fixed("0.01 USDC").networks(&["mars"]));
tag!(
    Slow,
    RouteSpec::fixed("0.01 USDC").networks(&["base-sepolia"])
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

#[get("/weather")]
fn weather(payment: Payment<Weather>) -> String {
    format!("sunny for {}", payment.payer())
}
#[get("/broken")]
fn broken(_payment: Payment<Broken>) -> (Status, &'static str) {
    (Status::InternalServerError, "the handler failed")
}
#[get("/broken-err")]
fn broken_err(_payment: Payment<BrokenErr>) -> Result<String, Status> {
    Err(Status::InternalServerError)
}
#[get("/multi")]
fn multi(payment: Payment<Multi>) -> String {
    payment.network().name.to_string()
}
#[get("/dynamic")]
fn dynamic(payment: Payment<Dynamic>) -> String {
    payment.amount_display()
}
#[get("/before")]
async fn before(mut payment: Payment<Before>) -> Result<String, PaymentRejection> {
    payment.settle().await?;
    Ok(payment.transaction().unwrap_or("none").to_owned())
}
#[get("/pass")]
fn pass(payment: Payment<Pass>, cookies: &CookieJar<'_>) -> String {
    cookies.add(Cookie::new("theme", "dark"));
    match payment.access() {
        Access::Paid => "paid".to_owned(),
        Access::Entitlement(grant) => format!("entitled, {:?} left", grant.remaining),
        other => format!("{other:?}"),
    }
}
#[get("/pass/broken")]
fn pass_broken(_payment: Payment<PassBroken>) -> Result<String, Status> {
    Err(Status::ServiceUnavailable)
}
#[get("/free")]
fn free() -> &'static str {
    "free"
}

/// Forwards unless the request names a user.
struct Member;

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Member {
    type Error = ();
    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, ()> {
        match request.headers().get_one("x-user") {
            Some(_) => Outcome::Success(Member),
            None => Outcome::Forward(Status::Unauthorized),
        }
    }
}

#[get("/members")]
fn members(payment: Payment<Members>, _member: Member) -> String {
    format!("welcome, {}", payment.payer())
}
#[get("/members", rank = 2)]
fn members_login() -> &'static str {
    "log in first"
}
#[get("/club")]
fn club(_payment: Payment<Club>, _member: Member) -> &'static str {
    "the members' lounge"
}
#[get("/club", rank = 2)]
fn club_guest(_payment: Payment<ClubGuest>) -> &'static str {
    "the guest room"
}
#[get("/preview")]
fn preview(payment: Option<Payment<Preview>>) -> &'static str {
    match payment {
        Some(_) => "the full article",
        None => "the first paragraph",
    }
}
#[get("/explicit")]
fn explicit(
    payment: Result<Payment<Explicit>, PaymentRejection>,
) -> Result<String, PaymentRejection> {
    payment.map(|p| format!("paid by {}", p.payer()))
}
#[get("/mars")]
fn mars(_payment: Payment<Mars>) -> &'static str {
    "unreachable"
}
/// Tells when `/slow`'s handler has started, and lets it finish.
#[derive(Clone, Default)]
struct Release {
    started: Arc<tokio::sync::Notify>,
    finish: Arc<tokio::sync::Notify>,
}

#[get("/slow")]
async fn slow(
    _payment: Payment<Slow>,
    release: &State<Release>,
    cookies: &CookieJar<'_>,
) -> String {
    cookies.add(Cookie::new("session", "abc"));
    release.started.notify_one();
    release.finish.notified().await;
    "the slow answer".to_owned()
}
#[get("/own-402")]
fn own_402() -> Status {
    Status::PaymentRequired
}
#[get("/own-500")]
fn own_500() -> Result<&'static str, Status> {
    Err(Status::InternalServerError)
}

fn config() -> Config {
    Config {
        address: Ipv4Addr::LOCALHOST.into(),
        port: 0,
        log_level: LogLevel::Off,
        shutdown: Shutdown {
            ctrlc: false,
            ..Shutdown::default()
        },
        ..Config::debug_default()
    }
}

/// The app without x402.
fn routes() -> Rocket<Build> {
    rocket::custom(config())
        .mount(
            "/",
            routes![
                weather,
                broken,
                broken_err,
                multi,
                dynamic,
                before,
                pass,
                pass_broken,
                free,
                members,
                members_login,
                club,
                club_guest,
                preview,
                explicit,
                mars,
                own_402,
                own_500,
                slow,
            ],
        )
        .manage(Release::default())
}

fn app(x402: &X402) -> Rocket<Build> {
    routes().attach(x402.fairing())
}

struct Server {
    x402: X402,
    payer: LocalSigner,
}

fn server(
    configure: impl FnOnce(rocket_x402::X402Builder<X402>) -> rocket_x402::X402Builder<X402>,
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
    status: u16,
    /// Every header line, names lower-cased, in order.
    headers: Vec<(String, String)>,
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
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
    fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

#[derive(Clone, Copy, Debug)]
enum Transport {
    Local,
    Socket,
}

const TRANSPORTS: [Transport; 2] = [Transport::Local, Transport::Socket];

/// An app served on a transport.
enum App {
    Local(Box<Client>),
    Socket {
        base: String,
        client: reqwest::Client,
        /// The served instance's `Release`, taken before launch.
        release: Release,
    },
}

async fn serve(rocket: Rocket<Build>, transport: Transport) -> App {
    match transport {
        Transport::Local => App::Local(Box::new(Client::tracked(rocket).await.unwrap())),
        Transport::Socket => {
            let release = rocket.state::<Release>().unwrap().clone();
            let (port_tx, port_rx) = tokio::sync::oneshot::channel();
            let rocket = rocket.attach(AdHoc::on_liftoff("report the port", move |rocket| {
                let port = rocket.config().port;
                Box::pin(async move {
                    let _ = port_tx.send(port);
                })
            }));
            tokio::spawn(async move {
                if let Err(error) = rocket.launch().await {
                    panic!("launch failed: {error:?}");
                }
            });
            let port = port_rx.await.expect("the server launched");
            App::Socket {
                base: format!("http://127.0.0.1:{port}"),
                client: reqwest::Client::new(),
                release,
            }
        }
    }
}

impl App {
    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        match self {
            App::Local(client) => {
                let mut request = client
                    .get(path.to_owned())
                    .header(Header::new("host", "api.test"));
                for (name, value) in headers {
                    request = request.header(Header::new(name.to_string(), value.to_string()));
                }
                let response = request.dispatch().await;
                let status = response.status().code;
                let headers = response
                    .headers()
                    .iter()
                    .map(|h| (h.name().as_str().to_ascii_lowercase(), h.value().to_owned()))
                    .collect();
                let body = response.into_bytes().await.unwrap_or_default();
                Reply {
                    status,
                    headers,
                    body,
                }
            }
            App::Socket { base, client, .. } => {
                let mut request = client.get(format!("{base}{path}"));
                for (name, value) in headers {
                    request = request.header(*name, *value);
                }
                let response = request.send().await.unwrap();
                let status = response.status().as_u16();
                let headers = response
                    .headers()
                    .iter()
                    .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap().to_owned()))
                    .collect();
                let body = response.bytes().await.unwrap().to_vec();
                Reply {
                    status,
                    headers,
                    body,
                }
            }
        }
    }

    /// The `/slow` handler's signals.
    fn slow(&self) -> &Release {
        match self {
            App::Local(client) => client.rocket().state::<Release>().unwrap(),
            App::Socket { release, .. } => release,
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
        assert_eq!(challenge.status, 402, "{}", challenge.text());
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

fn transfers(x402: &X402) -> usize {
    x402.gate().dev_ledger().unwrap().transfers().len()
}

#[tokio::test]
async fn no_payment_gets_402_with_the_v1_body_and_the_v2_header() {
    for transport in TRANSPORTS {
        let s = embedded();
        let app = serve(app(&s.x402), transport).await;
        let reply = app.get("/weather?city=Oslo", &[]).await;
        assert_eq!(reply.status, 402, "{transport:?}");
        assert_eq!(reply.all("content-type"), ["application/json"]);
        let body: v1::PaymentRequired = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(body.error, "payment_required");
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
        assert!(reply.header("access-control-expose-headers").is_some());
        // Unpaid routes on the same instance are untouched.
        let free = app.get("/free", &[]).await;
        assert_eq!((free.status, free.text().as_str()), (200, "free"));
        assert!(free.header("payment-required").is_none());
    }
}

#[tokio::test]
async fn valid_v1_and_v2_payments_get_200_and_a_receipt() {
    for transport in TRANSPORTS {
        let s = embedded();
        let app = serve(app(&s.x402), transport).await;
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
            assert_eq!(reply.status, 200, "{transport:?} {name}: {}", reply.text());
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
            assert_eq!(again.status, 200, "{}", again.text());
            assert_eq!(again.text(), reply.text());
            let kept: SettleResponse =
                codec::decode(again.header(receipt_header).unwrap(), 4096).unwrap();
            assert_eq!(kept.transaction, receipt.transaction);

            // On another route at the same price it is a replay like any other.
            let replay = app.get("/before", &[(name, &value)]).await;
            assert_eq!(replay.status, 402);
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
        let app = serve(app(&s.x402), transport).await;
        let not_json = codec::encode_bytes(b"{not json");
        let huge = "A".repeat(9000);
        for (name, value, status, reason) in [
            ("payment-signature", "***", 400, "invalid_payload"),
            ("x-payment", not_json.as_str(), 400, "invalid_payload"),
            ("x-payment", huge.as_str(), 431, "payment_header_too_large"),
        ] {
            let reply = app.get("/weather", &[(name, value)]).await;
            assert_eq!(
                reply.status,
                status,
                "{transport:?} {name}: {}",
                reply.text()
            );
            // The runtime's JSON, not Rocket's error page.
            assert_eq!(reply.all("content-type"), ["application/json"]);
            let body = reply.json();
            assert_eq!(body["error"], reason, "{body}");
            assert!(body["message"].is_string(), "{body}");
        }
    }
}

#[tokio::test]
async fn a_failing_handler_settles_nothing() {
    for transport in TRANSPORTS {
        let s = embedded();
        let app = serve(app(&s.x402), transport).await;
        // A status the handler sets itself, and an `Err` that a catcher answers.
        for (path, body) in [
            ("/broken", Some("the handler failed")),
            ("/broken-err", None),
        ] {
            let (name, value) = app
                .payment(&s.payer, path, Some("eip155:84532"), None)
                .await;
            let reply = app.get(path, &[(name, &value)]).await;
            assert_eq!(reply.status, 500, "{transport:?} {path}");
            if let Some(body) = body {
                assert_eq!(reply.text(), body);
            }
            assert!(reply.header("payment-response").is_none());
            assert_eq!(transfers(&s.x402), 0, "ledger unchanged");
            assert_eq!(balance(&s.x402, PAY_TO.parse().unwrap()), U256::ZERO);
            // The authorization was released: the client is not charged and may retry it.
            let retry = app.get(path, &[(name, &value)]).await;
            assert_eq!(retry.status, 500, "{transport:?} {path}: {}", retry.text());
        }
    }
}

#[tokio::test]
async fn settle_before_routes_hand_the_transaction_to_the_handler() {
    for transport in TRANSPORTS {
        let s = embedded();
        let app = serve(app(&s.x402), transport).await;
        let (name, value) = app
            .payment(&s.payer, "/before", Some("eip155:84532"), None)
            .await;
        let reply = app.get("/before", &[(name, &value)]).await;
        assert_eq!(reply.status, 200, "{transport:?}");
        let receipt: SettleResponse =
            codec::decode(reply.header("payment-response").unwrap(), 4096).unwrap();
        assert_eq!(reply.text(), receipt.transaction);
        assert_eq!(transfers(&s.x402), 1);
    }
}

#[tokio::test]
async fn dynamic_price_and_multi_network_routes_offer_the_right_accepts() {
    for transport in TRANSPORTS {
        let s = embedded();
        let app = serve(app(&s.x402), transport).await;
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
        let signing_app = serve(app(&payer_source.x402), transport).await;
        let (name, value) = signing_app
            .payment(&payer_source.payer, "/weather", Some("eip155:84532"), None)
            .await;

        let down = server(|b| b.facilitator(unreachable.clone()));
        let app_down = serve(app(&down.x402), transport).await;
        let reply = app_down.get("/weather", &[(name, &value)]).await;
        assert_eq!(reply.status, 502, "{transport:?}");
        assert_eq!(reply.all("content-type"), ["application/json"]);
        assert_eq!(reply.json()["error"], "facilitator_unavailable");

        let slow = server(|b| {
            b.facilitator(silent_url.clone())
                .facilitator_timeout(timeout)
        });
        let app_slow = serve(app(&slow.x402), transport).await;
        let started = Instant::now();
        let reply = app_slow.get("/weather", &[(name, &value)]).await;
        let elapsed = started.elapsed();
        assert_eq!(reply.status, 504, "{transport:?}");
        assert_eq!(reply.json()["error"], "facilitator_timeout");
        assert!(
            elapsed >= timeout && elapsed < timeout + Duration::from_secs(2),
            "{elapsed:?}"
        );
    }
}

#[tokio::test]
async fn an_entitlement_is_issued_with_the_receipt_and_reused_without_paying() {
    for transport in TRANSPORTS {
        let s = embedded();
        let app = serve(app(&s.x402), transport).await;
        let (name, value) = app
            .payment(&s.payer, "/pass", Some("eip155:84532"), None)
            .await;
        let bought = app.get("/pass", &[(name, &value)]).await;
        assert_eq!(bought.status, 200, "{transport:?}: {}", bought.text());
        assert_eq!(bought.text(), "paid");
        assert!(bought.header("payment-response").is_some());
        let token = bought.header("x402-entitlement").unwrap().to_owned();
        assert_eq!(bought.header("x402-entitlement-scope"), Some("/"));
        // The handler's cookie and the entitlement cookie both arrive.
        let cookies = bought.all("set-cookie");
        assert_eq!(cookies.len(), 2, "{cookies:?}");
        assert!(cookies.iter().any(|c| c.starts_with("theme=dark")));
        let x402_cookie = cookies
            .iter()
            .find(|c| c.contains(&token))
            .expect("the entitlement cookie")
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        assert_eq!(transfers(&s.x402), 1);

        // Three uses in all, the paying request being the first. A failing handler gives its
        // use back.
        let failed = app
            .get("/pass/broken", &[("x402-entitlement", &token)])
            .await;
        assert_eq!(failed.status, 503, "{transport:?}");
        let reused = app.get("/pass", &[("x402-entitlement", &token)]).await;
        assert_eq!(
            (reused.status, reused.text().as_str()),
            (200, "entitled, Some(1) left")
        );
        assert!(reused.header("payment-response").is_none());
        let by_cookie = app.get("/pass", &[("cookie", &x402_cookie)]).await;
        assert_eq!(
            (by_cookie.status, by_cookie.text().as_str()),
            (200, "entitled, Some(0) left")
        );
        let spent = app.get("/pass", &[("x402-entitlement", &token)]).await;
        assert_eq!(spent.status, 402);
        assert_eq!(spent.json()["error"], "entitlement_exhausted");
        assert!(spent.header("payment-required").is_some());
        assert_eq!(transfers(&s.x402), 1, "nothing more was charged");
    }
}

#[tokio::test]
async fn a_paid_route_that_forwards_settles_nothing_and_frees_the_payment() {
    for transport in TRANSPORTS {
        let s = embedded();
        let app = serve(app(&s.x402), transport).await;
        let (name, value) = app
            .payment(&s.payer, "/members", Some("eip155:84532"), None)
            .await;
        // The paid route admits the payment, then its `Member` guard forwards to the login
        // route, which answers 200: that answer is not what was paid for.
        let login = app.get("/members", &[(name, &value)]).await;
        assert_eq!((login.status, login.text().as_str()), (200, "log in first"));
        assert!(login.header("payment-response").is_none());
        assert_eq!(transfers(&s.x402), 0, "{transport:?}: nothing settled");
        // The authorization was released, so the same payment works once the client logs in.
        let served = app
            .get("/members", &[(name, &value), ("x-user", "ada")])
            .await;
        assert_eq!(served.status, 200, "{transport:?}: {}", served.text());
        assert!(served.header("payment-response").is_some());
        assert_eq!(transfers(&s.x402), 1);
    }
}

#[tokio::test]
async fn a_payment_forwarded_to_another_paid_route_is_judged_there_afresh() {
    for transport in TRANSPORTS {
        let s = embedded();
        let app = serve(app(&s.x402), transport).await;
        let (name, value) = app
            .payment(&s.payer, "/club", Some("eip155:84532"), None)
            .await;
        // The members' route admits the payment, then forwards; the guest route, at the same
        // price, must not see it as a replay.
        let guest = app.get("/club", &[(name, &value)]).await;
        assert_eq!(
            (guest.status, guest.text().as_str()),
            (200, "the guest room"),
            "{transport:?}"
        );
        assert!(guest.header("payment-response").is_some());
        assert_eq!(transfers(&s.x402), 1);
    }
}

#[tokio::test]
async fn handlers_that_take_the_rejection_decide_the_response() {
    for transport in TRANSPORTS {
        let s = embedded();
        let app = serve(app(&s.x402), transport).await;
        // `Option<Payment>`: the handler answers for itself; its 200 is left alone.
        let preview = app.get("/preview", &[]).await;
        assert_eq!(
            (preview.status, preview.text().as_str()),
            (200, "the first paragraph")
        );
        assert!(preview.header("payment-required").is_none());
        let (name, value) = app
            .payment(&s.payer, "/explicit", Some("eip155:84532"), None)
            .await;
        // `Result<Payment, PaymentRejection>`: the rejection is a responder with the runtime's
        // response.
        let refused = app.get("/explicit", &[]).await;
        assert_eq!(refused.status, 402, "{transport:?}");
        assert_eq!(refused.json()["error"], "payment_required");
        assert!(refused.header("payment-required").is_some());
        let paid = app.get("/explicit", &[(name, &value)]).await;
        assert_eq!(paid.status, 200);
        assert_eq!(paid.text(), format!("paid by {}", s.payer.address()));
        assert!(paid.header("payment-response").is_some());
    }
}

#[tokio::test]
async fn a_failed_settlement_withdraws_the_handlers_response() {
    for transport in TRANSPORTS {
        // Enough for one payment only.
        let x402 = X402::builder()
            .pay_to(PAY_TO)
            .embedded_facilitator()
            .build()
            .unwrap();
        let payer = LocalSigner::random();
        let network = x402.gate().registry().network("base-sepolia").unwrap();
        x402.gate().dev_ledger().unwrap().fund(
            &network.caip2,
            network.default_asset.address,
            payer.address(),
            U256::from(10_000u64),
        );
        let app = serve(app(&x402), transport).await;
        let (slow_name, slow_value) = app
            .payment(&payer, "/slow", Some("eip155:84532"), None)
            .await;
        let (name, value) = app
            .payment(&payer, "/weather", Some("eip155:84532"), None)
            .await;
        // Both payments verify against the same balance; `/weather` settles first and spends
        // it while `/slow`'s handler is still running, so `/slow` cannot settle.
        let slow_headers = [(slow_name, slow_value.as_str())];
        let (slow_reply, weather_reply) = tokio::join!(app.get("/slow", &slow_headers), async {
            app.slow().started.notified().await;
            let reply = app.get("/weather", &[(name, &value)]).await;
            app.slow().finish.notify_one();
            reply
        });
        assert_eq!(weather_reply.status, 200, "{transport:?}");
        assert_eq!(
            slow_reply.status,
            402,
            "{transport:?}: {}",
            slow_reply.text()
        );
        assert_eq!(slow_reply.json()["error"], "insufficient_funds");
        assert!(slow_reply.header("payment-required").is_some());
        let receipt: SettleResponse =
            codec::decode(slow_reply.header("payment-response").unwrap(), 4096).unwrap();
        assert!(!receipt.success);
        // Nothing of the handler's answer survives: neither its body nor its cookie.
        assert!(!slow_reply.text().contains("slow answer"));
        assert!(
            slow_reply.all("set-cookie").is_empty(),
            "{:?}",
            slow_reply.headers
        );
        assert_eq!(transfers(&x402), 1);
    }
}

#[tokio::test]
async fn fairings_attached_before_x402_see_the_challenge_the_catcher_rendered() {
    for transport in TRANSPORTS {
        let s = embedded();
        let observer = AdHoc::on_response("observer", |_, response| {
            Box::pin(async move {
                if let Some(seen) = response.headers().get_one("content-type") {
                    let seen = seen.to_owned();
                    response.set_raw_header("x-seen-content-type", seen);
                }
            })
        });
        let app = serve(
            routes().attach(observer).attach(s.x402.fairing()),
            transport,
        )
        .await;
        let challenge = app.get("/weather", &[]).await;
        assert_eq!(challenge.status, 402);
        assert_eq!(
            challenge.header("x-seen-content-type"),
            Some("application/json"),
            "{transport:?}"
        );
        // Other refusals are rendered by the x402 fairing, after the fairings attached before
        // it have seen Rocket's error page: attach x402 first.
        let malformed = app.get("/weather", &[("x-payment", "***")]).await;
        assert_eq!(malformed.status, 400);
        assert_eq!(malformed.all("content-type"), ["application/json"]);
        assert_ne!(
            malformed.header("x-seen-content-type"),
            Some("application/json"),
            "{transport:?}"
        );
    }
}

#[catch(400)]
fn app_400() -> &'static str {
    "the app's 400"
}
#[catch(402)]
fn app_402() -> &'static str {
    "the app's 402 catcher"
}
#[catch(500)]
fn app_500() -> &'static str {
    "the app's 500"
}
#[catch(default)]
fn app_default(status: Status, _request: &Request<'_>) -> String {
    format!("the app's {}", status.code)
}

#[tokio::test]
async fn x402_answers_its_own_refusals_and_the_apps_catchers_answer_the_rest() {
    for transport in TRANSPORTS {
        for own_402_catcher in [false, true] {
            let s = embedded();
            let mut rocket = app(&s.x402).register("/", catchers![app_400, app_500, app_default]);
            if own_402_catcher {
                rocket = rocket.register("/", catchers![app_402]);
            }
            let app = serve(rocket, transport).await;
            let case = format!("{transport:?}, own 402 catcher: {own_402_catcher}");

            // x402's refusals carry the runtime's response, whatever catchers the app has.
            let challenge = app.get("/weather", &[]).await;
            assert_eq!(challenge.status, 402, "{case}");
            assert_eq!(challenge.json()["error"], "payment_required", "{case}");
            assert!(challenge.header("payment-required").is_some(), "{case}");
            let malformed = app.get("/weather", &[("x-payment", "***")]).await;
            assert_eq!(malformed.status, 400, "{case}");
            assert_eq!(malformed.json()["error"], "invalid_payload", "{case}");
            let misconfigured = app.get("/mars", &[]).await;
            assert_eq!(misconfigured.status, 500, "{case}");
            assert_eq!(
                misconfigured.json()["error"],
                "x402_not_configured",
                "{case}"
            );

            // Everything else reaches the app's catchers.
            let own = app.get("/own-402", &[]).await;
            // Without its own 402 catcher, the app's default catcher answers (x402's 402
            // catcher hands it over).
            let expected = if own_402_catcher {
                "the app's 402 catcher"
            } else {
                "the app's 402"
            };
            assert_eq!((own.status, own.text().as_str()), (402, expected), "{case}");
            assert!(own.header("payment-required").is_none(), "{case}");
            let own = app.get("/own-500", &[]).await;
            assert_eq!(
                (own.status, own.text().as_str()),
                (500, "the app's 500"),
                "{case}"
            );
            let (name, value) = app
                .payment(&s.payer, "/broken-err", Some("eip155:84532"), None)
                .await;
            let failed = app.get("/broken-err", &[(name, &value)]).await;
            assert_eq!(
                (failed.status, failed.text().as_str()),
                (500, "the app's 500"),
                "{case}"
            );
            assert_eq!(transfers(&s.x402), 0, "{case}");
            let missing = app.get("/nowhere", &[]).await;
            assert_eq!(
                (missing.status, missing.text().as_str()),
                (404, "the app's 404"),
                "{case}"
            );
        }
    }
}

#[tokio::test]
async fn without_app_catchers_other_402s_get_rockets_default_page() {
    for transport in TRANSPORTS {
        let s = embedded();
        let app = serve(app(&s.x402), transport).await;
        let own = app.get("/own-402", &[("accept", "text/html")]).await;
        assert_eq!(own.status, 402, "{transport:?}");
        assert!(
            own.header("content-type").unwrap().starts_with("text/html"),
            "{:?}",
            own.headers
        );
        assert!(own.text().contains("402"), "{}", own.text());
        assert!(own.header("payment-required").is_none());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_copies_of_a_payment_are_served_once() {
    let s = embedded();
    let app = Arc::new(serve(app(&s.x402), Transport::Socket).await);
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
            200 => served.push(text),
            409 => assert!(text.contains("payment_in_progress"), "{text}"),
            402 => assert!(text.contains("nonce_already_used"), "{text}"),
            504 => assert!(text.contains("settlement_pending"), "{text}"),
            other => panic!("a copy got {other}: {text}"),
        }
    }
    assert!(!served.is_empty());
    assert!(served.iter().all(|t| *t == served[0]), "{served:?}");
    assert_eq!(transfers(&s.x402), 1);
}

tag!(
    Guarded,
    RouteSpec::fixed("0.01 USDC").networks(&["base-sepolia"])
);

/// How often the handler behind the hooked route ran.
static GUARDED_CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

#[get("/guarded")]
fn guarded(_payment: Payment<Guarded>) -> &'static str {
    GUARDED_CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    "served"
}

#[tokio::test]
async fn a_hook_refusing_after_verify_or_failing_stops_the_handler_and_the_settlement() {
    use x402_runtime::hooks::{Abort, FnHooks, HookContext, Verdict};
    let cases: Vec<(FnHooks, u16, &str)> = vec![
        (
            FnHooks::new().after_verify(|_: HookContext| async {
                Ok(Verdict::Abort(Abort::new(
                    403,
                    x402_protocol::Reason::new("payer_blocked"),
                    "this payer is blocked",
                )))
            }),
            403,
            "payer_blocked",
        ),
        (
            FnHooks::new().after_verify(|_: HookContext| async { panic!("hook bug") }),
            500,
            "hook_failed",
        ),
        (
            FnHooks::new().before_verify(|_: HookContext| async { Err("crm down".into()) }),
            500,
            "hook_failed",
        ),
    ];
    for (transport, (hooks, status, reason)) in TRANSPORTS.into_iter().cycle().zip(cases) {
        let s = server(|b| b.embedded_facilitator().hooks(hooks));
        let rocket = rocket::custom(config())
            .mount("/", routes![guarded])
            .manage(Release::default())
            .attach(s.x402.fairing());
        let app = serve(rocket, transport).await;
        let (name, value) = app
            .payment(&s.payer, "/guarded", Some("eip155:84532"), None)
            .await;
        let before = GUARDED_CALLS.load(std::sync::atomic::Ordering::SeqCst);
        let reply = app.get("/guarded", &[(name, &value)]).await;
        assert_eq!(
            reply.status,
            status,
            "{transport:?} {reason}: {}",
            reply.text()
        );
        assert_eq!(reply.json()["error"], reason);
        assert_eq!(
            GUARDED_CALLS.load(std::sync::atomic::Ordering::SeqCst),
            before,
            "{reason}: the handler must not run"
        );
        assert_eq!(transfers(&s.x402), 0, "{reason}: nothing settled");
        assert_eq!(
            balance(&s.x402, s.payer.address()),
            U256::from(1_000_000u64)
        );
    }
}
