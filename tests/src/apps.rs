//! The app the scenario table runs against, once per framework: the same routes, the same
//! `#[paid(...)]` annotations and handler bodies; only the framework (and the `Payment` import)
//! changes.
//!
//! | route | price | handler |
//! | --- | --- | --- |
//! | `/weather` | 0.01 USDC on base-sepolia | `sunny` |
//! | `/cheap` | 0.001 USDC on base-sepolia | `cheap` |
//! | `/broken` | 0.01 USDC on base-sepolia | fails with 500 |
//! | `/dynamic?cents=N` | N cents on base-sepolia | the amount paid |
//! | `/multi` | $0.02 on base-sepolia or base | the network paid on |
//! | `/before` | 0.01 USDC, settled before the handler | the transaction |
//! | `/hourly` | 0.05 USDC for an hour of access | `hourly` |
//! | `/v1only`, `/v2only` | 0.01 USDC, one protocol generation only | `v1` / `v2` |
//! | `/sol/exact` | 0.01 USDC on Solana devnet | the payer |
//! | `/sol/either` | 0.01 USDC on base-sepolia or Solana devnet | the network paid on |

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use x402_runtime::{Price, PriceError, RequestView, X402Builder};

use crate::scenarios::{RunningServer, ServerConfig};

/// `/dynamic?cents=N` costs N cents.
pub fn cents(request: &dyn RequestView) -> Result<Price, PriceError> {
    let cents: u32 = request
        .path_and_query()
        .split_once("cents=")
        .and_then(|(_, n)| n.parse().ok())
        .unwrap_or(1);
    format!("${}.{:02}", cents / 100, cents % 100).parse()
}

fn builder<T: From<x402_runtime::Gate>>(config: &ServerConfig) -> X402Builder<T> {
    // Routes that sell reusable access need keys that outlive the process.
    let keys = x402_runtime::entitlement::EntitlementKeys::new("table", &[7; 32]);
    let builder = match &config.chain_checks {
        Some(chain) => X402Builder::new().chain_checks(chain.clone()),
        None => X402Builder::new(),
    };
    builder
        .entitlement_keys(keys.expect("a 32-byte key"))
        // A payer who lost its token signs in with its wallet instead (tests/siwx.rs).
        .sign_in_with_x(x402_runtime::siwx::SiwxVerifier::builder().build())
        .facilitator(config.facilitator_url.clone())
        .facilitator_timeout(config.facilitator_timeout)
        .pay_to(config.pay_to)
        // The `/chain/…` routes are paid on a local anvil chain (tests/tests/onchain.rs).
        .network(anvil_network())
        // The metered routes name the account that settles them; a test that does not pay
        // them names none and a placeholder keeps the routes valid.
        .upto_facilitator("base-sepolia", upto_facilitator(config))
        .upto_facilitator(ANVIL_NETWORK, upto_facilitator(config))
        // The `/sol/…` routes are paid on Solana devnet (settled on LiteSVM in
        // tests/tests/solana.rs); payers build their transaction around the facilitator's fee
        // payer, a placeholder when the test does not pay them.
        .pay_to(SOLANA_PAY_TO)
        .scheme(Arc::new(x402_svm::ExactSvm))
        .fee_payer(
            "solana-devnet",
            config
                .fee_payer
                .as_deref()
                .unwrap_or("9hSR6S7WPtxmTojgo6GG3k4yDPecgJY292j7xrsUGWBu"),
        )
}

/// The recipient of the `/sol/…` routes.
pub const SOLANA_PAY_TO: &str = "GyGKxMyg1p9SsHfm15MkNUu1u9TN2JtTspcdmrtGUdse";

fn upto_facilitator(config: &ServerConfig) -> &str {
    config
        .upto_facilitator
        .as_deref()
        .unwrap_or("0x000000000000000000000000000000000000f00d")
}

/// The local chain the `/chain/…` routes are paid on: anvil's default chain id.
pub const ANVIL_NETWORK: &str = "eip155:31337";

/// Where the workspace's test token lands on a fresh anvil: the first contract that dev
/// account 0 deploys (`Anvil::deploy_token` as a chain's first transaction).
pub const ANVIL_TOKEN: &str = "0x5FbDB2315678afecb367f032d93F642f64180aa3";

/// The anvil network with the test token as its USDC.
pub fn anvil_network() -> x402_protocol::NetworkInfo {
    use x402_test_support::anvil::{TOKEN_NAME, TOKEN_VERSION};
    let token = ANVIL_TOKEN.parse().expect("an address");
    x402_protocol::NetworkInfo::new(
        "anvil",
        31337,
        x402_protocol::AssetInfo::usdc(token, TOKEN_NAME, TOKEN_VERSION),
    )
}

/// What the metered handlers do: charge `percent` of the payer's maximum and say how much.
pub fn meter(payment: &x402_runtime::PaymentInfo, percent: u64) -> String {
    let charge =
        payment.amount() * x402_protocol::U256::from(percent) / x402_protocol::U256::from(100u64);
    match payment.charge(charge) {
        Ok(()) => charge.to_string(),
        Err(error) => error.to_string(),
    }
}

/// Counts handler runs.
#[derive(Clone, Default)]
pub struct Hits(pub Arc<AtomicUsize>);

impl Hits {
    fn hit(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// The app on axum.
pub mod axum_app {
    use ::axum::extract::Extension;
    use ::axum::http::StatusCode;
    use ::axum::routing::get;
    use axum_x402::{Payment, X402, paid};

    use super::*;

    #[paid(price = "0.01 USDC", network = "base-sepolia", description = "Weather")]
    async fn weather(Extension(hits): Extension<Hits>, _: Payment) -> &'static str {
        hits.hit();
        "sunny"
    }
    #[paid(price = "0.001 USDC", network = "base-sepolia")]
    async fn cheap(Extension(hits): Extension<Hits>, _: Payment) -> &'static str {
        hits.hit();
        "cheap"
    }
    #[paid(price = "0.01 USDC", network = "base-sepolia")]
    async fn broken(Extension(hits): Extension<Hits>, _: Payment) -> (StatusCode, &'static str) {
        hits.hit();
        (StatusCode::INTERNAL_SERVER_ERROR, "the handler failed")
    }
    #[paid(price = crate::apps::cents, network = "base-sepolia")]
    async fn dynamic(Extension(hits): Extension<Hits>, payment: Payment) -> String {
        hits.hit();
        payment.amount_display()
    }
    #[paid(price = "$0.02", network = ["base-sepolia", "base"])]
    async fn multi(Extension(hits): Extension<Hits>, payment: Payment) -> String {
        hits.hit();
        payment.network().name.to_string()
    }
    #[paid(price = "0.01 USDC", network = "base-sepolia", settle = "before")]
    async fn before(Extension(hits): Extension<Hits>, payment: Payment) -> String {
        hits.hit();
        payment.transaction().unwrap_or_default().to_owned()
    }
    #[paid(price = "0.05 USDC", network = "base-sepolia", access = "1h")]
    async fn hourly(Extension(hits): Extension<Hits>, _: Payment) -> &'static str {
        hits.hit();
        "hourly"
    }
    #[paid(price = "0.01 USDC", network = "base-sepolia", protocol = "v1")]
    async fn v1only(Extension(hits): Extension<Hits>, _: Payment) -> &'static str {
        hits.hit();
        "v1"
    }
    #[paid(price = "0.01 USDC", network = "base-sepolia", protocol = "v2")]
    async fn v2only(Extension(hits): Extension<Hits>, _: Payment) -> &'static str {
        hits.hit();
        "v2"
    }

    #[paid(upto = "0.50 USDC", network = "base-sepolia")]
    async fn metered(Extension(hits): Extension<Hits>, payment: Payment) -> String {
        hits.hit();
        crate::apps::meter(&payment, 37)
    }
    #[paid(upto = "0.50 USDC", network = "base-sepolia")]
    async fn metered_free(Extension(hits): Extension<Hits>, payment: Payment) -> String {
        hits.hit();
        crate::apps::meter(&payment, 0)
    }
    #[paid(price = "0.01 USDC", network = "base-sepolia", transfer = "permit2")]
    async fn permit2(Extension(hits): Extension<Hits>, _: Payment) -> &'static str {
        hits.hit();
        "permit2"
    }
    #[paid(price = "0.01 USDC", network = "eip155:31337")]
    async fn chain_exact(Extension(hits): Extension<Hits>, _: Payment) -> &'static str {
        hits.hit();
        "exact"
    }
    #[paid(price = "0.01 USDC", network = "eip155:31337", transfer = "permit2")]
    async fn chain_permit2(Extension(hits): Extension<Hits>, _: Payment) -> &'static str {
        hits.hit();
        "permit2"
    }
    #[paid(upto = "0.50 USDC", network = "eip155:31337")]
    async fn chain_metered(Extension(hits): Extension<Hits>, payment: Payment) -> String {
        hits.hit();
        crate::apps::meter(&payment, 37)
    }
    #[paid(upto = "0.50 USDC", network = "eip155:31337")]
    async fn chain_metered_free(Extension(hits): Extension<Hits>, payment: Payment) -> String {
        hits.hit();
        crate::apps::meter(&payment, 0)
    }
    #[paid(price = "0.01 USDC", network = "solana-devnet")]
    async fn sol_exact(Extension(hits): Extension<Hits>, payment: Payment) -> String {
        hits.hit();
        payment.payer().to_string()
    }
    #[paid(price = "0.01 USDC", network = ["base-sepolia", "solana-devnet"])]
    async fn sol_either(Extension(hits): Extension<Hits>, payment: Payment) -> String {
        hits.hit();
        payment.network().name.to_string()
    }

    /// Launches the app on axum.
    pub fn launch(config: ServerConfig) -> BoxFuture<'static, RunningServer> {
        async move {
            let x402: X402 = builder(&config).build().expect("config");
            let hits = Hits::default();
            let app = ::axum::Router::new()
                .route("/weather", get(weather))
                .route("/cheap", get(cheap))
                .route("/broken", get(broken))
                .route("/dynamic", get(dynamic))
                .route("/multi", get(multi))
                .route("/before", get(before))
                .route("/hourly", get(hourly))
                .route("/v1only", get(v1only))
                .route("/v2only", get(v2only))
                .route("/metered", get(metered))
                .route("/metered-free", get(metered_free))
                .route("/permit2", get(permit2))
                .route("/chain/exact", get(chain_exact))
                .route("/chain/permit2", get(chain_permit2))
                .route("/chain/metered", get(chain_metered))
                .route("/chain/metered-free", get(chain_metered_free))
                .route("/sol/exact", get(sol_exact))
                .route("/sol/either", get(sol_either))
                .layer(Extension(hits.clone()))
                .layer(x402.layer());
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let base = format!("http://{}", listener.local_addr().expect("address"));
            let task = tokio::spawn(async move {
                let _ = ::axum::serve(listener, app).await;
            });
            RunningServer {
                base,
                hits: hits.0,
                guard: Box::new(AbortOnDrop(task)),
            }
        }
        .boxed()
    }

    struct AbortOnDrop(tokio::task::JoinHandle<()>);
    impl Drop for AbortOnDrop {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
}

/// The app on actix-web.
pub mod actix_app {
    use ::actix_web::{App, HttpResponse, HttpServer, web};
    use actix_web_x402::{Payment, X402, paid};

    use super::*;

    #[paid(price = "0.01 USDC", network = "base-sepolia", description = "Weather")]
    async fn weather(hits: web::Data<Hits>, _: Payment) -> &'static str {
        hits.hit();
        "sunny"
    }
    #[paid(price = "0.001 USDC", network = "base-sepolia")]
    async fn cheap(hits: web::Data<Hits>, _: Payment) -> &'static str {
        hits.hit();
        "cheap"
    }
    #[paid(price = "0.01 USDC", network = "base-sepolia")]
    async fn broken(hits: web::Data<Hits>, _: Payment) -> HttpResponse {
        hits.hit();
        HttpResponse::InternalServerError().body("the handler failed")
    }
    #[paid(price = crate::apps::cents, network = "base-sepolia")]
    async fn dynamic(hits: web::Data<Hits>, payment: Payment) -> String {
        hits.hit();
        payment.amount_display()
    }
    #[paid(price = "$0.02", network = ["base-sepolia", "base"])]
    async fn multi(hits: web::Data<Hits>, payment: Payment) -> String {
        hits.hit();
        payment.network().name.to_string()
    }
    #[paid(price = "0.01 USDC", network = "base-sepolia", settle = "before")]
    async fn before(hits: web::Data<Hits>, payment: Payment) -> String {
        hits.hit();
        payment.transaction().unwrap_or_default().to_owned()
    }
    #[paid(price = "0.05 USDC", network = "base-sepolia", access = "1h")]
    async fn hourly(hits: web::Data<Hits>, _: Payment) -> &'static str {
        hits.hit();
        "hourly"
    }
    #[paid(price = "0.01 USDC", network = "base-sepolia", protocol = "v1")]
    async fn v1only(hits: web::Data<Hits>, _: Payment) -> &'static str {
        hits.hit();
        "v1"
    }
    #[paid(price = "0.01 USDC", network = "base-sepolia", protocol = "v2")]
    async fn v2only(hits: web::Data<Hits>, _: Payment) -> &'static str {
        hits.hit();
        "v2"
    }

    #[paid(upto = "0.50 USDC", network = "base-sepolia")]
    async fn metered(hits: web::Data<Hits>, payment: Payment) -> String {
        hits.hit();
        crate::apps::meter(&payment, 37)
    }
    #[paid(upto = "0.50 USDC", network = "base-sepolia")]
    async fn metered_free(hits: web::Data<Hits>, payment: Payment) -> String {
        hits.hit();
        crate::apps::meter(&payment, 0)
    }
    #[paid(price = "0.01 USDC", network = "base-sepolia", transfer = "permit2")]
    async fn permit2(hits: web::Data<Hits>, _: Payment) -> &'static str {
        hits.hit();
        "permit2"
    }
    #[paid(price = "0.01 USDC", network = "eip155:31337")]
    async fn chain_exact(hits: web::Data<Hits>, _: Payment) -> &'static str {
        hits.hit();
        "exact"
    }
    #[paid(price = "0.01 USDC", network = "eip155:31337", transfer = "permit2")]
    async fn chain_permit2(hits: web::Data<Hits>, _: Payment) -> &'static str {
        hits.hit();
        "permit2"
    }
    #[paid(upto = "0.50 USDC", network = "eip155:31337")]
    async fn chain_metered(hits: web::Data<Hits>, payment: Payment) -> String {
        hits.hit();
        crate::apps::meter(&payment, 37)
    }
    #[paid(upto = "0.50 USDC", network = "eip155:31337")]
    async fn chain_metered_free(hits: web::Data<Hits>, payment: Payment) -> String {
        hits.hit();
        crate::apps::meter(&payment, 0)
    }
    #[paid(price = "0.01 USDC", network = "solana-devnet")]
    async fn sol_exact(hits: web::Data<Hits>, payment: Payment) -> String {
        hits.hit();
        payment.payer().to_string()
    }
    #[paid(price = "0.01 USDC", network = ["base-sepolia", "solana-devnet"])]
    async fn sol_either(hits: web::Data<Hits>, payment: Payment) -> String {
        hits.hit();
        payment.network().name.to_string()
    }

    /// Launches the app on actix-web, in a thread with its own actix system.
    pub fn launch(config: ServerConfig) -> BoxFuture<'static, RunningServer> {
        async move {
            let x402: X402 = builder(&config).build().expect("config");
            let hits = Hits::default();
            let app_hits = hits.clone();
            let (ready, address) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let system = ::actix_web::rt::System::new();
                system.block_on(async move {
                    let server = HttpServer::new(move || {
                        App::new()
                            .app_data(web::Data::new(app_hits.clone()))
                            .wrap(x402.middleware())
                            .route("/weather", web::get().to(weather))
                            .route("/cheap", web::get().to(cheap))
                            .route("/broken", web::get().to(broken))
                            .route("/dynamic", web::get().to(dynamic))
                            .route("/multi", web::get().to(multi))
                            .route("/before", web::get().to(before))
                            .route("/hourly", web::get().to(hourly))
                            .route("/v1only", web::get().to(v1only))
                            .route("/v2only", web::get().to(v2only))
                            .route("/metered", web::get().to(metered))
                            .route("/metered-free", web::get().to(metered_free))
                            .route("/permit2", web::get().to(permit2))
                            .route("/chain/exact", web::get().to(chain_exact))
                            .route("/chain/permit2", web::get().to(chain_permit2))
                            .route("/chain/metered", web::get().to(chain_metered))
                            .route("/chain/metered-free", web::get().to(chain_metered_free))
                            .route("/sol/exact", web::get().to(sol_exact))
                            .route("/sol/either", web::get().to(sol_either))
                    })
                    .workers(1)
                    .disable_signals()
                    .bind(("127.0.0.1", 0))
                    .expect("bind");
                    let bound = server.addrs()[0];
                    let server = server.run();
                    let _ = ready.send((bound, server.handle()));
                    let _ = server.await;
                });
            });
            let (bound, handle) = address.recv().expect("the actix server starts");
            RunningServer {
                base: format!("http://{bound}"),
                hits: hits.0,
                guard: Box::new(StopOnDrop(handle)),
            }
        }
        .boxed()
    }

    struct StopOnDrop(::actix_web::dev::ServerHandle);
    impl Drop for StopOnDrop {
        fn drop(&mut self) {
            // Stopping is asynchronous; fire and forget.
            drop(self.0.stop(false));
        }
    }
}

/// The app on Rocket.
pub mod rocket_app {
    use std::net::Ipv4Addr;

    use ::rocket::config::{LogLevel, Shutdown as ShutdownConfig};
    use ::rocket::fairing::AdHoc;
    use ::rocket::http::Status;
    use ::rocket::{Config, Shutdown, State, get, routes};
    use rocket_x402::{Payment, X402, paid};

    use super::*;

    #[paid(price = "0.01 USDC", network = "base-sepolia", description = "Weather")]
    #[get("/weather")]
    fn weather(hits: &State<Hits>, _payment: Payment) -> &'static str {
        hits.hit();
        "sunny"
    }
    #[paid(price = "0.001 USDC", network = "base-sepolia")]
    #[get("/cheap")]
    fn cheap(hits: &State<Hits>, _payment: Payment) -> &'static str {
        hits.hit();
        "cheap"
    }
    #[paid(price = "0.01 USDC", network = "base-sepolia")]
    #[get("/broken")]
    fn broken(hits: &State<Hits>, _payment: Payment) -> (Status, &'static str) {
        hits.hit();
        (Status::InternalServerError, "the handler failed")
    }
    #[paid(price = crate::apps::cents, network = "base-sepolia")]
    #[get("/dynamic")]
    fn dynamic(hits: &State<Hits>, payment: Payment) -> String {
        hits.hit();
        payment.amount_display()
    }
    #[paid(price = "$0.02", network = ["base-sepolia", "base"])]
    #[get("/multi")]
    fn multi(hits: &State<Hits>, payment: Payment) -> String {
        hits.hit();
        payment.network().name.to_string()
    }
    #[paid(price = "0.01 USDC", network = "base-sepolia", settle = "before")]
    #[get("/before")]
    fn before(hits: &State<Hits>, payment: Payment) -> String {
        hits.hit();
        payment.transaction().unwrap_or_default().to_owned()
    }
    #[paid(price = "0.05 USDC", network = "base-sepolia", access = "1h")]
    #[get("/hourly")]
    fn hourly(hits: &State<Hits>, _payment: Payment) -> &'static str {
        hits.hit();
        "hourly"
    }
    #[paid(price = "0.01 USDC", network = "base-sepolia", protocol = "v1")]
    #[get("/v1only")]
    fn v1only(hits: &State<Hits>, _payment: Payment) -> &'static str {
        hits.hit();
        "v1"
    }
    #[paid(price = "0.01 USDC", network = "base-sepolia", protocol = "v2")]
    #[get("/v2only")]
    fn v2only(hits: &State<Hits>, _payment: Payment) -> &'static str {
        hits.hit();
        "v2"
    }

    #[paid(upto = "0.50 USDC", network = "base-sepolia")]
    #[get("/metered")]
    fn metered(hits: &State<Hits>, payment: Payment) -> String {
        hits.hit();
        crate::apps::meter(&payment, 37)
    }
    #[paid(upto = "0.50 USDC", network = "base-sepolia")]
    #[get("/metered-free")]
    fn metered_free(hits: &State<Hits>, payment: Payment) -> String {
        hits.hit();
        crate::apps::meter(&payment, 0)
    }
    #[paid(price = "0.01 USDC", network = "base-sepolia", transfer = "permit2")]
    #[get("/permit2")]
    fn permit2(hits: &State<Hits>, _payment: Payment) -> &'static str {
        hits.hit();
        "permit2"
    }
    #[paid(price = "0.01 USDC", network = "eip155:31337")]
    #[get("/chain/exact")]
    fn chain_exact(hits: &State<Hits>, _payment: Payment) -> &'static str {
        hits.hit();
        "exact"
    }
    #[paid(price = "0.01 USDC", network = "eip155:31337", transfer = "permit2")]
    #[get("/chain/permit2")]
    fn chain_permit2(hits: &State<Hits>, _payment: Payment) -> &'static str {
        hits.hit();
        "permit2"
    }
    #[paid(upto = "0.50 USDC", network = "eip155:31337")]
    #[get("/chain/metered")]
    fn chain_metered(hits: &State<Hits>, payment: Payment) -> String {
        hits.hit();
        crate::apps::meter(&payment, 37)
    }
    #[paid(upto = "0.50 USDC", network = "eip155:31337")]
    #[get("/chain/metered-free")]
    fn chain_metered_free(hits: &State<Hits>, payment: Payment) -> String {
        hits.hit();
        crate::apps::meter(&payment, 0)
    }
    #[paid(price = "0.01 USDC", network = "solana-devnet")]
    #[get("/sol/exact")]
    fn sol_exact(hits: &State<Hits>, payment: Payment) -> String {
        hits.hit();
        payment.payer().to_string()
    }
    #[paid(price = "0.01 USDC", network = ["base-sepolia", "solana-devnet"])]
    #[get("/sol/either")]
    fn sol_either(hits: &State<Hits>, payment: Payment) -> String {
        hits.hit();
        payment.network().name.to_string()
    }

    /// Launches the app on Rocket, on a free loopback port.
    pub fn launch(config: ServerConfig) -> BoxFuture<'static, RunningServer> {
        async move {
            let x402: X402 = builder(&config).build().expect("config");
            let hits = Hits::default();
            let rocket_config = Config {
                address: Ipv4Addr::LOCALHOST.into(),
                port: 0,
                log_level: LogLevel::Off,
                shutdown: ShutdownConfig {
                    ctrlc: false,
                    ..ShutdownConfig::default()
                },
                ..Config::debug_default()
            };
            let (lifted, bound) = tokio::sync::oneshot::channel();
            let rocket = ::rocket::custom(rocket_config)
                .mount(
                    "/",
                    routes![
                        weather,
                        cheap,
                        broken,
                        dynamic,
                        multi,
                        before,
                        hourly,
                        v1only,
                        v2only,
                        metered,
                        metered_free,
                        permit2,
                        chain_exact,
                        chain_permit2,
                        chain_metered,
                        chain_metered_free,
                        sol_exact,
                        sol_either
                    ],
                )
                .manage(hits.clone())
                .attach(x402.fairing())
                .attach(AdHoc::on_liftoff("report the port", move |rocket| {
                    let bound = (rocket.config().port, rocket.shutdown());
                    Box::pin(async move {
                        let _ = lifted.send(bound);
                    })
                }));
            tokio::spawn(async move {
                if let Err(error) = rocket.launch().await {
                    // Debug marks Rocket's error as handled, so dropping it does not panic.
                    eprintln!("the Rocket app failed to launch: {error:?}");
                }
            });
            let (port, shutdown) = bound.await.expect("the Rocket app launches");
            RunningServer {
                base: format!("http://127.0.0.1:{port}"),
                hits: hits.0,
                guard: Box::new(StopOnDrop(shutdown)),
            }
        }
        .boxed()
    }

    struct StopOnDrop(Shutdown);
    impl Drop for StopOnDrop {
        fn drop(&mut self) {
            self.0.clone().notify();
        }
    }
}
