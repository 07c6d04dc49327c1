//! `x402ctl pay --approve-permit2` against a Permit2 route on anvil: the server answers 412
//! `permit2_allowance_required`, x402ctl sends the payer's `approve(Permit2, …)` through the
//! RPC node, sends the same payment again, and the price moves on chain once.

use std::sync::Arc;
use std::time::Duration;

use x402_evm::EvmSettler;
use x402_protocol::eip3009::LocalSigner;
use x402_protocol::{Address, NetworkRegistry, U256};
use x402_runtime::facilitator::{DevLedger, EmbeddedFacilitator};
use x402_test_support::anvil::{
    Anvil, DEV_ADDRESSES, DEV_KEYS, PERMIT2, TOKEN_NAME, TOKEN_VERSION,
};
use x402_tests::apps::{ANVIL_TOKEN, anvil_network, axum_app};
use x402_tests::facilitator::serve;
use x402_tests::scenarios::{FACILITATOR_TIMEOUT, ServerConfig};

const BIN: &str = env!("CARGO_BIN_EXE_x402ctl");
const PAY_TO: &str = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pay_approves_permit2_on_412_and_pays_the_same_payment() {
    let Some(anvil) = Anvil::start() else {
        x402_test_support::skip("no anvil binary (scripts/test installs one)");
        return;
    };
    anvil.install_permit2();
    let token = anvil.deploy_token();
    assert_eq!(token, ANVIL_TOKEN.parse::<Address>().unwrap());
    let payer = LocalSigner::random();
    anvil.mint(token, payer.address(), U256::from(100_000u64));
    // Gas for the approval.
    anvil.call(
        "anvil_setBalance",
        serde_json::json!([payer.address(), "0xde0b6b3a7640000"]),
    );
    let settler = EvmSettler::builder(anvil.url())
        .private_key(DEV_KEYS[1])
        .chain_id(anvil.chain_id())
        .receipt_timeout(Duration::from_secs(30))
        .poll_interval(Duration::from_millis(50))
        .connect()
        .await
        .unwrap();
    let mut registry = NetworkRegistry::builtin();
    registry.register_network(anvil_network()).unwrap();
    let ledger = Arc::new(DevLedger::new());
    let facilitator = serve(
        EmbeddedFacilitator::builder()
            .registry(Arc::new(registry))
            .settler(Arc::new(settler))
            .dev_ledger(ledger.clone())
            .build(),
        ledger,
    )
    .await;
    let server = axum_app::launch(ServerConfig {
        facilitator_url: facilitator.url.clone(),
        facilitator_timeout: FACILITATOR_TIMEOUT,
        pay_to: PAY_TO,
        upto_facilitator: Some(DEV_ADDRESSES[1].to_owned()),
        fee_payer: None,
        chain_checks: None,
    })
    .await;
    let chain = format!(
        "{{ name = \"anvil\", chain_id = 31337, token = [{{ address = \"{ANVIL_TOKEN}\", symbol = \"USDC\", decimals = 6, eip712_name = \"{TOKEN_NAME}\", eip712_version = \"{TOKEN_VERSION}\", usd = true }}] }}"
    );
    let url = format!("{}/chain/permit2", server.base);
    let run = |approve: bool| {
        let mut command = tokio::process::Command::new(BIN);
        command
            .args(["pay", &url, "--chain", &chain])
            .env("X402_PRIVATE_KEY", payer.secret_hex());
        if approve {
            command.args(["--approve-permit2", &anvil.url()]);
        }
        command.output()
    };

    // Without the flag: the 412 is the answer, nothing moves.
    let output = run(false).await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("412"), "{stderr}");
    assert_eq!(anvil.allowance(token, payer.address(), PERMIT2), U256::ZERO);

    let output = run(true).await.unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert_eq!(stdout.trim(), "permit2");
    assert!(stderr.contains("approving Permit2"), "{stderr}");
    // An unlimited allowance, which the token does not spend down.
    assert_eq!(anvil.allowance(token, payer.address(), PERMIT2), U256::MAX);
    assert_eq!(anvil.balance(token, payer.address()), U256::from(90_000u64));
    let pay_to: Address = PAY_TO.parse().unwrap();
    assert_eq!(anvil.balance(token, pay_to), U256::from(10_000u64));
}
