//! `x402ctl serve` settling Solana: a `[[network]]` for solana-devnet with an `rpc_url` and a
//! fee payer key is settled through `x402-svm` (co-signed, sent, confirmed). The RPC node is a
//! JSON-RPC endpoint over an in-process LiteSVM (the real SPL programs); a paid axum server
//! uses the process as its facilitator, and reqwest-x402 pays with a Solana key.

mod support;

use std::process::Stdio;
use std::sync::Arc;

use reqwest_x402::{PaymentResponseExt, X402Middleware};
use solana_keypair::Keypair;
use solana_signer::Signer as _;
use support::TempDir;
use tokio::io::{AsyncBufReadExt, BufReader};
use x402_svm::programs::TOKEN;
use x402_svm::{LiteSvmChain, RpcChain, SolanaWallet};
use x402_tests::apps::{SOLANA_PAY_TO, axum_app};
use x402_tests::scenarios::{FACILITATOR_TIMEOUT, ServerConfig};

const USDC_DEVNET: &str = "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_settles_solana_payments_as_the_configured_fee_payer() {
    let chain = Arc::new(LiteSvmChain::new());
    let mint = USDC_DEVNET.parse().unwrap();
    chain.install_mint(mint, 6, TOKEN);
    let pay_to = SOLANA_PAY_TO.parse().unwrap();
    chain.fund(&pay_to, &mint, 0).unwrap();
    let payer = Keypair::new();
    chain.fund(&payer.pubkey(), &mint, 1_000_000).unwrap();
    let fee_payer = Keypair::new();
    chain.airdrop(&fee_payer.pubkey(), 1_000_000_000).unwrap();
    let rpc = x402_tests::solana::serve(chain.clone()).await;

    let dir = TempDir::new("serve-solana");
    let config = dir.0.join("x402.toml");
    std::fs::write(
        &config,
        format!(
            "[[network]]\nname = \"solana-devnet\"\nrpc_url = \"{}\"\nsigners = [{{ key_env = \"X402_TEST_FEE_PAYER\" }}]\n[network.settlement]\npoll_interval = \"20ms\"\n[facilitator]\njournal = \"memory:\"\n",
            rpc.url
        ),
    )
    .unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_x402ctl"))
        .args(["serve", "--port", "0", "--no-auth", "--config"])
        .arg(&config)
        .env("X402_TEST_FEE_PAYER", fee_payer.to_base58_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = tokio::time::timeout(std::time::Duration::from_secs(30), lines.next_line())
        .await
        .expect("serve prints its URL")
        .unwrap()
        .expect("serve started (see its stderr for the configuration error)");

    // /supported offers Solana `exact` around the configured fee payer.
    let supported: serde_json::Value = reqwest::get(format!("{url}/supported"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kind = supported["kinds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| {
            k["network"] == "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1" && k["x402Version"] == 2
        })
        .unwrap_or_else(|| panic!("solana-devnet is listed: {supported}"));
    assert_eq!(kind["extra"]["feePayer"], fee_payer.pubkey().to_string());

    let server = axum_app::launch(ServerConfig {
        facilitator_url: url.clone(),
        facilitator_timeout: FACILITATOR_TIMEOUT,
        pay_to: "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
        upto_facilitator: None,
        fee_payer: Some(fee_payer.pubkey().to_string()),
        chain_checks: None,
    })
    .await;
    let wallet = SolanaWallet::new(payer.insecure_clone(), Arc::new(RpcChain::new(&rpc.url)));
    let client = X402Middleware::solana_builder(wallet)
        .max_per_request("1 USDC")
        .build()
        .unwrap()
        .client()
        .unwrap();
    let fees_before = chain.lamports(&fee_payer.pubkey());
    let paid = client
        .get(format!("{}/sol/exact", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(paid.status().as_u16(), 200);
    let receipt = paid.settlement().cloned().expect("a receipt");
    assert!(receipt.success);
    assert_eq!(chain.token_balance(&pay_to, &mint), Some(10_000));
    assert_eq!(chain.token_balance(&payer.pubkey(), &mint), Some(990_000));
    assert!(
        chain.lamports(&fee_payer.pubkey()) < fees_before,
        "the configured fee payer paid the fee"
    );
    let _ = child.start_kill();
}
