//! The browser paywall, paid by a person in a real browser.
//!
//! Headless Chromium (Debian's `chromium`, which `scripts/test` installs) opens a paid page
//! served by axum, actix-web and Rocket, each with the embedded facilitator and its dev ledger
//! on loopback. A test wallet injected before the page's scripts (`window.ethereum`) shares a
//! dev account and signs, in Rust, exactly the EIP-712 typed data the page asks for. The test
//! clicks the pay button like a mouse, and checks that the paid content replaces the page and
//! that the ledger moved by exactly the price. It also checks that the three frameworks serve
//! the same page, and that failures (no wallet, a declined signature or chain switch, too
//! little money) are told in words and charge nothing.
//!
//! Screenshots go to `target/paywall-test/`. Without Chromium the test is skipped, unless
//! `X402_REQUIRE_BACKENDS=1`.

use crate::browser;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy_primitives::{Address, B256, U256};
use browser::wallet::{Behaviour, TestWallet};
use browser::{Chromium, PAYWALL_ERROR};
use serde_json::{Value, json};
use x402_protocol::eip3009::LocalSigner;
use x402_protocol::{codec, headers};
use x402_runtime::Gate;
use x402_runtime::paywall::PaywallConfig;

/// What the page sells; every character HTML and scripts care about.
const DESCRIPTION: &str = "Premium report <Q3> & \"friends\" </script>";
const PAY_TO: &str = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";
/// Account 0 of the well-known development mnemonic (anvil, hardhat): public, never funded
/// anywhere real.
const DEV_KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
/// 0.01 USDC.
const PRICE: u64 = 10_000;
const FUNDS: u64 = 1_000_000;
const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
const BROWSER_AGENT: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36";
const STEP: Duration = Duration::from_secs(20);

fn look() -> PaywallConfig {
    PaywallConfig::new().app_name("x402 test shop")
}

fn paid_page(payer: impl std::fmt::Display) -> String {
    format!(
        "<!doctype html><html><head><title>Premium report</title></head>\
         <body><h1 id=\"paid\">Premium report</h1><p>Paid by <span id=\"payer\">{payer}</span></p></body></html>"
    )
}

/// A running app and its gate (for the dev ledger).
struct Server {
    base: String,
    gate: Arc<Gate>,
    _guard: Box<dyn std::any::Any>,
}

mod axum_app {
    use ::axum::Json;
    use ::axum::response::Html;
    use ::axum::routing::get;
    use axum_x402::{Payment, X402, paid};

    use super::*;

    #[paid(
        price = "0.01 USDC",
        network = "base-sepolia",
        description = "Premium report <Q3> & \"friends\" </script>"
    )]
    async fn report(payment: Payment) -> Html<String> {
        Html(paid_page(payment.payer()))
    }

    #[paid(
        price = "0.01 USDC",
        network = "base-sepolia",
        description = "Premium data"
    )]
    async fn data(payment: Payment) -> Json<Value> {
        Json(json!({ "paid": true, "payer": payment.payer().to_string() }))
    }

    #[paid(price = "0.05 USDC", network = "base-sepolia", access = "1h")]
    async fn hourly(payment: Payment) -> Html<String> {
        Html(paid_page(payment.payer()))
    }

    pub(crate) fn launch(runtime: &tokio::runtime::Runtime) -> Server {
        let x402: X402 = X402::builder()
            .embedded_facilitator()
            .pay_to(PAY_TO)
            .paywall(look())
            // This binary links the other test modules' routes too (Solana ones, chain ones on
            // anvil), which this server does not serve; its own are paid below.
            .route_check(x402_runtime::RouteCheck::Skip)
            .build()
            .expect("config");
        let gate = x402.gate().clone();
        let app = ::axum::Router::new()
            .route("/report", get(report))
            .route("/data", get(data))
            .route("/hourly", get(hourly))
            .layer(x402.layer());
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let task = runtime.spawn(async move {
            let _ = ::axum::serve(listener, app).await;
        });
        Server {
            base,
            gate,
            _guard: Box::new(AbortOnDrop(task)),
        }
    }

    struct AbortOnDrop(tokio::task::JoinHandle<()>);
    impl Drop for AbortOnDrop {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
}

mod actix_app {
    use ::actix_web::{App, HttpResponse, HttpServer, web};
    use actix_web_x402::{Payment, X402, paid};

    use super::*;

    #[paid(
        price = "0.01 USDC",
        network = "base-sepolia",
        description = "Premium report <Q3> & \"friends\" </script>"
    )]
    async fn report(payment: Payment) -> HttpResponse {
        HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .body(paid_page(payment.payer()))
    }

    pub(crate) fn launch() -> Server {
        let x402: X402 = X402::builder()
            .embedded_facilitator()
            .pay_to(PAY_TO)
            .paywall(look())
            // This binary links the other test modules' routes too (Solana ones, chain ones on
            // anvil), which this server does not serve; its own are paid below.
            .route_check(x402_runtime::RouteCheck::Skip)
            .build()
            .expect("config");
        let gate = x402.gate().clone();
        let (ready, address) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            ::actix_web::rt::System::new().block_on(async move {
                let server = HttpServer::new(move || {
                    App::new()
                        .wrap(x402.middleware())
                        .route("/report", web::get().to(report))
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
        Server {
            base: format!("http://{bound}"),
            gate,
            _guard: Box::new(StopOnDrop(handle)),
        }
    }

    struct StopOnDrop(::actix_web::dev::ServerHandle);
    impl Drop for StopOnDrop {
        fn drop(&mut self) {
            drop(self.0.stop(false));
        }
    }
}

mod rocket_app {
    use std::net::Ipv4Addr;

    use ::rocket::config::{LogLevel, Shutdown as ShutdownConfig};
    use ::rocket::fairing::AdHoc;
    use ::rocket::response::content::RawHtml;
    use ::rocket::{Config, Shutdown, get, routes};
    use rocket_x402::{Payment, X402, paid};

    use super::*;

    #[paid(
        price = "0.01 USDC",
        network = "base-sepolia",
        description = "Premium report <Q3> & \"friends\" </script>"
    )]
    #[get("/report")]
    fn report(payment: Payment) -> RawHtml<String> {
        RawHtml(paid_page(payment.payer()))
    }

    pub(crate) fn launch(runtime: &tokio::runtime::Runtime) -> Server {
        let x402: X402 = X402::builder()
            .embedded_facilitator()
            .pay_to(PAY_TO)
            .paywall(look())
            // This binary links the other test modules' routes too (Solana ones, chain ones on
            // anvil), which this server does not serve; its own are paid below.
            .route_check(x402_runtime::RouteCheck::Skip)
            .build()
            .expect("config");
        let gate = x402.gate().clone();
        let config = Config {
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
        let rocket = ::rocket::custom(config)
            .mount("/", routes![report])
            .attach(x402.fairing())
            .attach(AdHoc::on_liftoff("report the port", move |rocket| {
                let bound = (rocket.config().port, rocket.shutdown());
                Box::pin(async move {
                    let _ = lifted.send(bound);
                })
            }));
        runtime.spawn(async move {
            if let Err(error) = rocket.launch().await {
                eprintln!("the Rocket app failed to launch: {error:?}");
            }
        });
        let (port, shutdown) = runtime.block_on(bound).expect("the Rocket app launches");
        Server {
            base: format!("http://127.0.0.1:{port}"),
            gate,
            _guard: Box::new(StopOnDrop(shutdown)),
        }
    }

    struct StopOnDrop(Shutdown);
    impl Drop for StopOnDrop {
        fn drop(&mut self) {
            self.0.clone().notify();
        }
    }
}

/// Where screenshots go: `<target>/paywall-test/`.
fn output_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("paywall-test")
}

/// The dev ledger's view of one account's USDC on Base Sepolia.
struct Ledger<'a>(&'a Gate);

impl Ledger<'_> {
    fn token(&self) -> (u64, Address) {
        let network = self.0.registry().network("base-sepolia").expect("network");
        let chain_id = network.chain_id().expect("an EVM network");
        let token = network
            .default_asset
            .address
            .as_evm()
            .expect("an EVM token");
        (chain_id, token)
    }
    /// The ledger files balances under the network's CAIP-2 id.
    fn network(&self) -> String {
        let (chain_id, _) = self.token();
        format!("eip155:{chain_id}")
    }
    fn ledger(&self) -> &x402_runtime::facilitator::DevLedger {
        self.0
            .dev_ledger()
            .expect("the embedded facilitator's dev ledger")
    }
    fn fund(&self, who: Address) {
        let (_, token) = self.token();
        self.ledger()
            .fund(&self.network(), token, who, U256::from(FUNDS));
    }
    fn balance(&self, who: Address) -> U256 {
        let (_, token) = self.token();
        self.ledger().balance(&self.network(), token, who)
    }
    fn transfers(&self) -> usize {
        self.ledger().transfers().len()
    }
}

/// The paywall as a browser receives it, with the server's origin replaced by `ORIGIN`.
fn fetch_page(runtime: &tokio::runtime::Runtime, server: &Server) -> (String, Value) {
    runtime.block_on(async {
        let response = reqwest::Client::new()
            .get(format!("{}/report", server.base))
            .header("accept", BROWSER_ACCEPT)
            .header("user-agent", BROWSER_AGENT)
            .send()
            .await
            .expect("GET /report");
        assert_eq!(response.status().as_u16(), 402);
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        assert_eq!(
            header("content-type").as_deref(),
            Some("text/html; charset=utf-8")
        );
        assert_eq!(header("cache-control").as_deref(), Some("no-store"));
        let required = header(headers::PAYMENT_REQUIRED).expect("PAYMENT-REQUIRED header");
        let required: Value = codec::decode(&required, 1 << 16).expect("PAYMENT-REQUIRED");
        let required = required.to_string().replace(&server.base, "ORIGIN");
        let page = response.text().await.expect("page body");
        (
            page.replace(&server.base, "ORIGIN"),
            serde_json::from_str(&required).expect("JSON"),
        )
    })
}

fn text(chrome: &mut Chromium, page: &browser::Page, id: &str) -> String {
    let value = chrome.eval(
        page,
        &format!(
            "(document.getElementById({}) || {{}}).textContent",
            json!(id)
        ),
    );
    value.as_str().unwrap_or_default().to_owned()
}

/// Opens the paywall, pays with a cooperative wallet, and checks what the person and the
/// ledger see.
fn pay_in_browser(chrome: &mut Chromium, framework: &str, server: &Server) {
    let out = output_dir();
    let ledger = Ledger(&server.gate);
    let wallet = TestWallet::new(
        LocalSigner::from_hex(DEV_KEY).expect("dev key"),
        Behaviour::Cooperative,
    );
    let payer = wallet.address();
    let pay_to: Address = PAY_TO.parse().expect("address");
    ledger.fund(payer);
    let before = (ledger.balance(payer), ledger.balance(pay_to));
    let transfers = ledger.transfers();

    let page = chrome.open(&format!("{}/report", server.base), Some(&wallet));
    // What the person sees before paying; the description is text, not markup.
    assert_eq!(text(chrome, &page, "x402-description"), DESCRIPTION);
    assert_eq!(chrome.eval(&page, "document.title"), json!(DESCRIPTION));
    assert_eq!(text(chrome, &page, "x402-price"), "0.01 USDC");
    assert_eq!(text(chrome, &page, "x402-network"), "Base Sepolia");
    assert_eq!(text(chrome, &page, "x402-status"), "");
    assert_eq!(
        chrome.eval(&page, "document.querySelectorAll('script').length"),
        json!(2)
    );
    chrome.screenshot(&page, &out.join(format!("{framework}-paywall.png")));

    chrome.click(&page, "x402-pay");
    let shown = chrome.drive_until(
        &page,
        Some(&wallet),
        "document.getElementById('paid') && document.getElementById('payer').textContent",
        false,
        STEP,
    );
    assert_eq!(shown, json!(payer.to_checksum(None)), "{framework}");
    chrome.screenshot(&page, &out.join(format!("{framework}-paid.png")));

    // The wallet was asked what a wallet should be asked, in order.
    let methods = chrome.eval(&page, "window.__x402TestWallet.calls.map((c) => c.method)");
    assert_eq!(
        methods,
        json!([
            "eth_requestAccounts",
            "eth_chainId",
            "wallet_switchEthereumChain",
            "eth_chainId",
            "eth_signTypedData_v4"
        ]),
        "{framework}"
    );
    let switched = chrome.eval(&page, "window.__x402TestWallet.calls[2].params");
    assert_eq!(switched, json!([{ "chainId": "0x14a34" }]));

    // It signed one EIP-3009 authorization for exactly the price, to the seller.
    let signed = wallet.signed();
    assert_eq!(signed.len(), 1, "{framework}");
    let typed = &signed[0];
    assert_eq!(typed["primaryType"], "TransferWithAuthorization");
    let (chain, token) = ledger.token();
    assert_eq!(typed["domain"]["name"], "USDC");
    assert_eq!(typed["domain"]["version"], "2");
    assert_eq!(typed["domain"]["chainId"], chain);
    assert_eq!(
        typed["domain"]["verifyingContract"],
        token.to_checksum(None)
    );
    let message = &typed["message"];
    assert_eq!(message["from"], payer.to_checksum(None));
    assert_eq!(message["to"], PAY_TO);
    assert_eq!(message["value"], PRICE.to_string());
    let after: u64 = message["validAfter"].as_str().unwrap().parse().unwrap();
    let before_deadline: u64 = message["validBefore"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        before_deadline - after,
        600 + 300,
        "now-600 .. now+maxTimeoutSeconds"
    );

    // The ledger moved by exactly the price, once.
    assert_eq!(ledger.transfers(), transfers + 1, "{framework}");
    assert_eq!(ledger.balance(payer), before.0 - U256::from(PRICE));
    assert_eq!(ledger.balance(pay_to), before.1 + U256::from(PRICE));
    let nonce = message["nonce"].as_str().unwrap().to_owned();
    let transfer = ledger.ledger().transfers().pop().unwrap();
    // The ledger files the transfer under its payment key, which ends with the nonce.
    let key_nonce = transfer.key.as_str().rsplit('/').next().unwrap_or_default();
    assert_eq!(
        key_nonce.parse::<B256>().unwrap(),
        nonce.parse::<B256>().unwrap(),
        "{}",
        transfer.key
    );
    assert_eq!(transfer.from, payer);
    chrome.close(page);
}

/// Every way paying can fail is said in words, and costs nothing.
fn failures_in_words(chrome: &mut Chromium, server: &Server) {
    let out = output_dir();
    let ledger = Ledger(&server.gate);
    let url = format!("{}/report", server.base);
    let transfers = ledger.transfers();
    let funded =
        |behaviour| TestWallet::new(LocalSigner::from_hex(DEV_KEY).expect("key"), behaviour);

    let page = chrome.open(&url, None);
    chrome.click(&page, "x402-pay");
    let said = chrome.drive_until(&page, None, PAYWALL_ERROR, true, STEP);
    assert!(
        said.as_str()
            .unwrap()
            .starts_with("No browser wallet was found."),
        "{said}"
    );
    chrome.close(page);

    let wallet = funded(Behaviour::RejectsSignature);
    let page = chrome.open(&url, Some(&wallet));
    chrome.click(&page, "x402-pay");
    let said = chrome.drive_until(&page, Some(&wallet), PAYWALL_ERROR, true, STEP);
    assert_eq!(
        said,
        json!("You declined to sign the payment. Nothing was paid.")
    );
    assert_eq!(text(chrome, &page, "x402-pay"), "Try again");
    chrome.close(page);

    let wallet = funded(Behaviour::RefusesToSwitch);
    let page = chrome.open(&url, Some(&wallet));
    chrome.click(&page, "x402-pay");
    let said = chrome.drive_until(&page, Some(&wallet), PAYWALL_ERROR, true, STEP);
    assert_eq!(
        said,
        json!("You declined to switch networks. This payment is on Base Sepolia.")
    );
    chrome.close(page);

    // A wallet with no USDC: the facilitator refuses, and the page says why with the code.
    let broke = TestWallet::new(LocalSigner::random(), Behaviour::Cooperative);
    let page = chrome.open(&url, Some(&broke));
    chrome.click(&page, "x402-pay");
    let said = chrome.drive_until(&page, Some(&broke), PAYWALL_ERROR, true, STEP);
    let said = said.as_str().unwrap();
    assert!(
        said.starts_with(
            "Your wallet does not hold enough USDC on Base Sepolia to pay 0.01 USDC. Nothing was charged. ("
        ) && said.contains("insufficient"),
        "{said}"
    );
    assert_eq!(broke.signed().len(), 1, "it did sign; the server refused");
    chrome.screenshot(&page, &out.join("axum-insufficient-funds.png"));
    chrome.close(page);
    assert_eq!(ledger.transfers(), transfers, "no failure moved money");

    // Access bought earlier that no longer works: the page says so before anyone clicks.
    let page = chrome.open("about:blank", None);
    chrome.call(page.session(), "Network.enable", json!({}));
    chrome.call(
        page.session(),
        "Network.setExtraHTTPHeaders",
        json!({ "headers": { "x402-entitlement": "x402e1.forged.token" } }),
    );
    chrome.navigate(&page, &format!("{}/hourly", server.base));
    let said = text(chrome, &page, "x402-status");
    assert!(
        said.starts_with(
            "Your earlier access was not accepted. Pay again to continue. (entitlement_"
        ),
        "{said}"
    );
    chrome.close(page);

    // Content that is not HTML is shown in the page.
    let wallet = funded(Behaviour::Cooperative);
    let page = chrome.open(&format!("{}/data", server.base), Some(&wallet));
    chrome.screenshot(&page, &out.join("axum-data-paywall.png"));
    chrome.click(&page, "x402-pay");
    let shown = chrome.drive_until(
        &page,
        Some(&wallet),
        "(document.querySelector('#x402-content pre') || {}).textContent",
        false,
        STEP,
    );
    let shown: Value = serde_json::from_str(shown.as_str().unwrap()).expect("the JSON it bought");
    assert_eq!(
        shown,
        json!({ "paid": true, "payer": wallet.address().to_checksum(None) })
    );
    let status = text(chrome, &page, "x402-status");
    assert!(status.starts_with("Paid (transaction 0x"), "{status}");
    chrome.screenshot(&page, &out.join("axum-paid-json.png"));
    chrome.close(page);
    assert_eq!(ledger.transfers(), transfers + 1);
}

#[test]
fn a_person_pays_through_the_paywall_in_chromium_on_every_framework() {
    let started = Instant::now();
    let Some(mut chrome) = Chromium::launch() else {
        return;
    };
    let version = chrome.version();
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let servers = [
        ("axum", axum_app::launch(&runtime)),
        ("actix-web", actix_app::launch()),
        ("rocket", rocket_app::launch(&runtime)),
    ];

    // The three frameworks serve the same page, byte for byte but for the origin.
    let (axum_page, axum_required) = fetch_page(&runtime, &servers[0].1);
    for (framework, server) in &servers[1..] {
        let (page, required) = fetch_page(&runtime, server);
        assert_eq!(required, axum_required, "{framework}'s PAYMENT-REQUIRED");
        assert!(
            page == axum_page,
            "{framework} serves another page than axum"
        );
    }

    for (framework, server) in &servers {
        pay_in_browser(&mut chrome, framework, server);
    }
    failures_in_words(&mut chrome, &servers[0].1);

    eprintln!(
        "paywall in {version}: {} bytes; paid on {} frameworks; 4 failures, a lapsed grant and JSON content on axum; {:.1} s; screenshots in {}",
        axum_page.len(),
        servers.len(),
        started.elapsed().as_secs_f64(),
        output_dir().display()
    );
}
