//! The reqwest client pays the workspace's own servers: every framework, dual, v1-only and
//! v2-only routes, through a facilitator over HTTP.

use reqwest_x402::{PaymentResponseExt, PaymentStatus, X402Middleware};
use x402_protocol::eip3009::LocalSigner;
use x402_protocol::{NetworkRegistry, ProtocolVersion, U256};
use x402_tests::apps::{actix_app, axum_app, rocket_app};
use x402_tests::facilitator::{Mode, start};
use x402_tests::scenarios::{FACILITATOR_TIMEOUT, Launch, ServerConfig};

const PAY_TO: &str = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_pays_every_framework_in_every_generation() {
    let frameworks: [(&str, Launch); 3] = [
        ("axum", axum_app::launch),
        ("actix-web", actix_app::launch),
        ("rocket", rocket_app::launch),
    ];
    for (framework, launch) in frameworks {
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
            upto_facilitator: None,
            fee_payer: None,
            chain_checks: None,
        })
        .await;
        let x402 = X402Middleware::builder(payer.clone()).build().unwrap();
        let client = x402.client().unwrap();

        for (path, body, version) in [
            ("/weather", "sunny", ProtocolVersion::V2),
            ("/v1only", "v1", ProtocolVersion::V1),
            ("/v2only", "v2", ProtocolVersion::V2),
        ] {
            let settled_before = facilitator.ledger.transfers().len();
            let response = client
                .get(format!("{}{path}", server.base))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status().as_u16(), 200, "{framework} {path}");
            let record = response
                .payment()
                .cloned()
                .unwrap_or_else(|| panic!("{framework} {path}: paid"));
            assert_eq!(
                record.version, version,
                "{framework} {path}: paid in the route's generation"
            );
            assert!(
                matches!(record.status, PaymentStatus::Settled { .. }),
                "{framework} {path}: {:?}",
                record.status
            );
            let receipt = response.settlement().cloned().unwrap();
            assert_eq!(response.text().await.unwrap(), body);
            let transfers = facilitator.ledger.transfers();
            assert_eq!(
                transfers.len(),
                settled_before + 1,
                "{framework} {path}: settled once"
            );
            assert_eq!(
                transfers.last().unwrap().transaction.to_string(),
                receipt.transaction
            );
            assert_eq!(transfers.last().unwrap().from, payer.address());
        }
        assert_eq!(
            x402.history().len(),
            3,
            "{framework}: three payments recorded"
        );
    }
}
