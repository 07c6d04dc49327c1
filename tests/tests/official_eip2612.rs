//! The official x402 TypeScript client (@x402/fetch 2.27 with @x402/evm's `exact` and `upto`
//! schemes, its viem signer able to `readContract` from anvil) pays this workspace's Permit2
//! and metered routes on a real chain with the `eip2612GasSponsoring` extension: the payer has
//! tokens but neither a Permit2 allowance nor ETH. It reads our 402's declaration, signs an
//! EIP-2612 permit at the token's nonce, and the facilitator (x402-evm over HTTP) settles
//! through the proxies' `settleWithPermit`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use x402_evm::EvmSettler;
use x402_protocol::eip3009::LocalSigner;
use x402_protocol::{Address, NetworkRegistry, U256};
use x402_runtime::facilitator::{DevLedger, EmbeddedFacilitator};
use x402_test_support::anvil::{Anvil, DEV_ADDRESSES, DEV_KEYS, PERMIT2};
use x402_test_support::skip;
use x402_tests::apps::{ANVIL_NETWORK, ANVIL_TOKEN, anvil_network, axum_app};
use x402_tests::facilitator::serve;
use x402_tests::scenarios::{FACILITATOR_TIMEOUT, ServerConfig};

const SCRIPT: &str = include_str!("interop/pay_permit2.mjs");
const PAY_TO: &str = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";
/// The dev account the facilitator settles from.
const FACILITATOR: usize = 1;

/// The directory holding the official npm packages' `node_modules`, if installed.
fn node_modules() -> Option<PathBuf> {
    let dir = std::env::var_os("X402_INTEROP_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.tools/interop"));
    let modules = dir.join("node_modules");
    if modules.join("@x402/evm/package.json").exists() {
        Some(modules)
    } else {
        skip(
            "the official @x402 npm packages are not installed (scripts/test installs them into .tools/interop and sets X402_INTEROP_DIR)",
        );
        None
    }
}

/// The token's EIP-2612 `nonces(owner)` (selector `0x7ecebe00`).
fn token_nonce(anvil: &Anvil, token: Address, owner: Address) -> U256 {
    let data = format!("0x7ecebe00{:0>64}", alloy_hex(owner));
    let out = anvil.call("eth_call", json!([{"to": token, "data": data}, "latest"]));
    out.as_str().unwrap().parse().unwrap()
}

fn alloy_hex(address: Address) -> String {
    address.to_string()[2..].to_ascii_lowercase()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_client_pays_with_an_eip2612_permit_when_the_payer_has_no_allowance() {
    let Some(modules) = node_modules() else {
        return;
    };
    let Some(anvil) = Anvil::start() else {
        skip("no anvil binary (scripts/test installs one)");
        return;
    };
    anvil.install_permit2();
    let token = anvil.deploy_token();
    assert_eq!(token, ANVIL_TOKEN.parse::<Address>().unwrap());
    let payer = LocalSigner::random();
    anvil.mint(token, payer.address(), U256::from(1_000_000u64));
    let pay_to: Address = PAY_TO.parse().unwrap();
    let settler_address: Address = DEV_ADDRESSES[FACILITATOR].parse().unwrap();
    assert_eq!(anvil.allowance(token, payer.address(), PERMIT2), U256::ZERO);

    let settler = EvmSettler::builder(anvil.url())
        .private_key(DEV_KEYS[FACILITATOR])
        .chain_id(anvil.chain_id())
        .receipt_timeout(Duration::from_secs(30))
        .poll_interval(Duration::from_millis(50))
        .connect()
        .await
        .unwrap();
    let mut registry = NetworkRegistry::builtin();
    registry.register_network(anvil_network()).unwrap();
    let ledger = Arc::new(DevLedger::new());
    let inner = EmbeddedFacilitator::builder()
        .registry(Arc::new(registry))
        .settler(Arc::new(settler))
        .dev_ledger(ledger.clone())
        .build();
    let facilitator = serve(inner, ledger).await;
    let server = axum_app::launch(ServerConfig {
        facilitator_url: facilitator.url.clone(),
        facilitator_timeout: FACILITATOR_TIMEOUT,
        pay_to: PAY_TO,
        upto_facilitator: Some(settler_address.to_string()),
        fee_payer: None,
        chain_checks: None,
    })
    .await;
    let urls: Vec<String> = ["/chain/permit2", "/chain/metered"]
        .iter()
        .map(|path| format!("{}{path}", server.base))
        .collect();

    // Node resolves the packages from the script's directory: a private one whose
    // node_modules is a link to the installed packages.
    let dir = std::env::temp_dir().join(format!("x402-official-eip2612-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let link = dir.join("node_modules");
    if !link.exists() {
        std::os::unix::fs::symlink(&modules, &link).unwrap();
    }
    let script = dir.join("pay_permit2.mjs");
    std::fs::write(&script, SCRIPT).unwrap();
    let mut command = std::process::Command::new("node");
    command
        .arg(&script)
        .current_dir(&dir)
        .env("URLS", serde_json::to_string(&urls).unwrap())
        .env("PAYER_KEY", payer.secret_hex())
        .env("NETWORK", ANVIL_NETWORK)
        .env("TOKEN", ANVIL_TOKEN)
        .env("MAX", "1000000")
        .env("RPC_URL", anvil.url());
    let run = tokio::task::spawn_blocking(move || command.output());
    let output = tokio::time::timeout(Duration::from_secs(120), run).await;
    let _ = std::fs::remove_dir_all(&dir);
    let output = output
        .expect("the official client finishes")
        .expect("the node thread ends")
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let results: Vec<Value> = stdout
        .lines()
        .rev()
        .find_map(|line| serde_json::from_str(line).ok())
        .unwrap_or_else(|| panic!("no result\nstdout: {stdout}\nstderr: {stderr}"));
    let [permit2, metered] = results.as_slice() else {
        panic!("two results expected: {results:?}\nstderr: {stderr}")
    };
    for result in [permit2, metered] {
        assert!(result.get("error").is_none(), "{result}");
        assert_eq!(result["status"], 200, "{result}");
        assert_eq!(result["settlement"]["success"], true, "{result}");
    }
    assert_eq!(permit2["body"], "permit2");
    assert_eq!(metered["settlement"]["amount"], "185000");

    // Both went out as settleWithPermit, each consuming one token nonce.
    let exact = anvil.call(
        "eth_getTransactionByHash",
        json!([permit2["settlement"]["transaction"]]),
    );
    assert!(
        exact["input"].as_str().unwrap().starts_with("0xfa340378"),
        "{exact}"
    );
    let upto = anvil.call(
        "eth_getTransactionByHash",
        json!([metered["settlement"]["transaction"]]),
    );
    assert!(
        upto["input"].as_str().unwrap().starts_with("0x016c1748"),
        "{upto}"
    );
    assert_eq!(
        token_nonce(&anvil, token, payer.address()),
        U256::from(2u64)
    );
    // Exactly the price and the charge moved; the upto permit approved the maximum, of which
    // the charge was spent; the payer never had ETH.
    assert_eq!(
        anvil.balance(token, pay_to),
        U256::from(10_000u64 + 185_000)
    );
    assert_eq!(
        anvil.balance(token, payer.address()),
        U256::from(1_000_000u64 - 10_000 - 185_000)
    );
    assert_eq!(
        anvil.allowance(token, payer.address(), PERMIT2),
        U256::from(500_000u64 - 185_000)
    );
    assert_eq!(
        anvil.call("eth_getBalance", json!([payer.address(), "latest"])),
        json!("0x0")
    );
}
