//! Permit2 `exact` and metered `upto` on every framework, paid by the reqwest client through a
//! facilitator over HTTP: the metered handler charges 37% of the maximum and exactly that
//! moves; a zero charge moves nothing; a Permit2 payment needs the payer's Permit2 allowance
//! (412 without it) and then settles the price once.

use reqwest_x402::{PaymentResponseExt, X402Middleware};
use x402_protocol::eip3009::LocalSigner;
use x402_protocol::{ChainAddress, NetworkRegistry, U256};
use x402_tests::apps::{actix_app, axum_app, rocket_app};
use x402_tests::facilitator::{Mode, TestFacilitator, start};
use x402_tests::scenarios::{FACILITATOR_TIMEOUT, Launch, RunningServer, ServerConfig};

const PAY_TO: &str = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";
/// 0.50 USDC, the metered routes' maximum.
const MAXIMUM: u64 = 500_000;

struct Setup {
    facilitator: TestFacilitator,
    server: RunningServer,
    payer: LocalSigner,
    network: x402_protocol::NetworkInfo,
}

impl Setup {
    async fn new(launch: Launch) -> Setup {
        let facilitator = start(Mode::Honest).await;
        let payer = LocalSigner::random();
        let network = NetworkRegistry::builtin()
            .network("base-sepolia")
            .unwrap()
            .clone();
        facilitator.ledger.fund(
            &network.caip2,
            network.default_asset.address,
            payer.address(),
            U256::from(1_000_000u64),
        );
        let server = launch(ServerConfig {
            facilitator_url: facilitator.url.clone(),
            facilitator_timeout: FACILITATOR_TIMEOUT,
            pay_to: PAY_TO,
            upto_facilitator: Some(facilitator.ledger.address().to_string()),
            fee_payer: None,
            chain_checks: None,
        })
        .await;
        Setup {
            facilitator,
            server,
            payer,
            network,
        }
    }

    fn balance(&self, who: impl Into<ChainAddress>) -> U256 {
        self.facilitator.ledger.balance(
            &self.network.caip2,
            self.network.default_asset.address,
            who,
        )
    }

    fn approve(&self) {
        self.facilitator.ledger.approve_permit2(
            &self.network.caip2,
            self.network.default_asset.address,
            self.payer.address(),
            U256::MAX,
        );
    }

    fn hits(&self) -> usize {
        self.server.hits.load(std::sync::atomic::Ordering::SeqCst)
    }
}

async fn check(framework: &str, launch: Launch) {
    let s = Setup::new(launch).await;
    let pay_to: x402_protocol::Address = PAY_TO.parse().unwrap();
    // The default cap ($0.10) is below the metered maximum (0.50 USDC): raise it.
    let x402 = X402Middleware::builder(s.payer.clone())
        .max_per_request("1 USDC")
        .build()
        .unwrap();
    let client = x402.client().unwrap();

    // Permit2 without the payer's allowance: 412, the handler does not run, nothing moves.
    let response = client
        .get(format!("{}/permit2", s.server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 412, "{framework}: no allowance");
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("permit2_allowance_required"),
        "{framework}: the 412 says why"
    );
    assert_eq!(s.hits(), 0, "{framework}: the handler did not run");
    assert!(s.facilitator.ledger.transfers().is_empty());

    // Approved: paid once, exactly the price.
    s.approve();
    let before = (s.balance(s.payer.address()), s.balance(pay_to));
    let response = client
        .get(format!("{}/permit2", s.server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200, "{framework}: Permit2 paid");
    let receipt = response.settlement().cloned().expect("a receipt");
    assert_eq!(response.text().await.unwrap(), "permit2");
    let transfers = s.facilitator.ledger.transfers();
    let [transfer] = transfers.as_slice() else {
        panic!("{framework}: one transfer, got {transfers:?}")
    };
    assert!(transfer.key.as_str().contains("/permit2/"), "{framework}");
    assert_eq!(transfer.transaction.to_string(), receipt.transaction);
    let price = U256::from(10_000u64);
    assert_eq!(s.balance(s.payer.address()), before.0 - price);
    assert_eq!(s.balance(pay_to), before.1 + price);

    // Metered: the handler charges 37% of the maximum, and exactly that moves.
    let before = (s.balance(s.payer.address()), s.balance(pay_to));
    let response = client
        .get(format!("{}/metered", s.server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200, "{framework}: metered");
    let receipt = response.settlement().cloned().expect("a receipt");
    let charge = U256::from(MAXIMUM * 37 / 100);
    assert_eq!(response.text().await.unwrap(), charge.to_string());
    assert_eq!(receipt.amount.as_deref(), Some("185000"), "{framework}");
    assert_eq!(
        s.balance(s.payer.address()),
        before.0 - charge,
        "{framework}"
    );
    assert_eq!(s.balance(pay_to), before.1 + charge, "{framework}");
    let last = s.facilitator.ledger.transfers().pop().unwrap();
    assert_eq!(last.value, charge);
    assert_eq!(last.transaction.to_string(), receipt.transaction);

    // Metered with a zero charge: served, no transaction, nothing moves.
    let transfers = s.facilitator.ledger.transfers().len();
    let before = s.balance(s.payer.address());
    let response = client
        .get(format!("{}/metered-free", s.server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status().as_u16(),
        200,
        "{framework}: metered, free"
    );
    let receipt = response.settlement().cloned().expect("a receipt");
    assert_eq!(receipt.transaction, "", "{framework}: no transaction");
    assert_eq!(receipt.amount.as_deref(), Some("0"));
    assert_eq!(response.text().await.unwrap(), "0");
    assert_eq!(s.facilitator.ledger.transfers().len(), transfers);
    assert_eq!(s.balance(s.payer.address()), before);
    assert_eq!(s.hits(), 3, "{framework}: three handler runs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permit2_and_metered_routes_on_axum() {
    check("axum", axum_app::launch).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permit2_and_metered_routes_on_actix_web() {
    check("actix-web", actix_app::launch).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permit2_and_metered_routes_on_rocket() {
    check("rocket", rocket_app::launch).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_cap_below_the_maximum_refuses_a_metered_route() {
    let s = Setup::new(axum_app::launch).await;
    s.approve();
    // The cap is judged against the maximum the payer would authorize, not the likely charge.
    let x402 = X402Middleware::builder(s.payer.clone())
        .max_per_request("0.25 USDC")
        .build()
        .unwrap();
    let response = x402
        .client()
        .unwrap()
        .get(format!("{}/metered", s.server.base))
        .send()
        .await;
    assert!(response.is_err() || response.unwrap().status().as_u16() == 402);
    assert!(s.facilitator.ledger.transfers().is_empty());
    assert_eq!(s.hits(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_can_approve_permit2_does_so_on_412_and_sends_the_same_payment() {
    let s = Setup::new(axum_app::launch).await;
    let ledger = s.facilitator.ledger.clone();
    let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = asked.clone();
    let x402 = X402Middleware::builder(s.payer.clone())
        .approve_permit2(move |needed: reqwest_x402::hooks::Permit2Allowance| {
            // The payer's approval, as a wallet would send it (here: into the dev ledger).
            ledger.approve_permit2(&needed.network.caip2, needed.token, needed.owner, U256::MAX);
            seen.lock().unwrap().push(needed);
            async { Ok::<(), String>(()) }
        })
        .build()
        .unwrap();
    let response = x402
        .client()
        .unwrap()
        .get(format!("{}/permit2", s.server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let asked = asked.lock().unwrap().clone();
    let [needed] = asked.as_slice() else {
        panic!("asked once: {asked:?}")
    };
    assert_eq!(needed.owner, s.payer.address());
    assert_eq!(
        needed.token,
        s.network.default_asset.address.as_evm().unwrap()
    );
    assert_eq!(needed.spender, x402_protocol::permit2::PERMIT2_ADDRESS);
    assert_eq!(needed.amount, U256::from(10_000u64));
    // One payment, signed once and settled once.
    assert_eq!(x402.history().len(), 1);
    assert_eq!(s.facilitator.ledger.transfers().len(), 1);
    assert_eq!(s.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permit2_hook_that_fails_leaves_the_412() {
    let s = Setup::new(axum_app::launch).await;
    let x402 = X402Middleware::builder(s.payer.clone())
        .approve_permit2(|_: reqwest_x402::hooks::Permit2Allowance| async {
            Err::<(), String>("no gas".to_owned())
        })
        .build()
        .unwrap();
    let response = x402
        .client()
        .unwrap()
        .get(format!("{}/permit2", s.server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 412);
    assert!(s.facilitator.ledger.transfers().is_empty());
    assert_eq!(s.hits(), 0);
}
