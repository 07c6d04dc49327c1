//! The official x402 TypeScript client (@x402/fetch 2.27 with @x402/evm's `exact` and `upto`
//! schemes) pays this workspace's Permit2 and metered routes on every framework: it reads our
//! `extra.assetTransferMethod` and `extra.facilitatorAddress`, signs, and is served; the dev
//! ledger behind the facilitator moves exactly the price and exactly the handler's charge.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;
use x402_protocol::eip3009::LocalSigner;
use x402_protocol::{NetworkRegistry, U256};
use x402_test_support::skip;
use x402_tests::apps::{actix_app, axum_app, rocket_app};
use x402_tests::facilitator::{Mode, start};
use x402_tests::scenarios::{FACILITATOR_TIMEOUT, Launch, ServerConfig};

const SCRIPT: &str = include_str!("interop/pay_permit2.mjs");
const PAY_TO: &str = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";

/// The directory holding the official npm packages, if installed.
fn interop_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("X402_INTEROP_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.tools/interop"));
    if dir.join("node_modules/@x402/evm/package.json").exists() {
        Some(dir)
    } else {
        skip(
            "the official @x402 npm packages are not installed (scripts/test installs them into .tools/interop and sets X402_INTEROP_DIR)",
        );
        None
    }
}

async fn check(framework: &str, launch: Launch, dir: &std::path::Path) {
    let facilitator = start(Mode::Honest).await;
    let network = NetworkRegistry::builtin()
        .network("base-sepolia")
        .unwrap()
        .clone();
    let usdc = network.default_asset.address;
    let payer = LocalSigner::random();
    let ledger = &facilitator.ledger;
    ledger.fund(
        &network.caip2,
        usdc,
        payer.address(),
        U256::from(1_000_000u64),
    );
    ledger.approve_permit2(&network.caip2, usdc, payer.address(), U256::MAX);
    let server = launch(ServerConfig {
        facilitator_url: facilitator.url.clone(),
        facilitator_timeout: FACILITATOR_TIMEOUT,
        pay_to: PAY_TO,
        upto_facilitator: Some(ledger.address().to_string()),
        fee_payer: None,
        chain_checks: None,
    })
    .await;
    let urls: Vec<String> = ["/permit2", "/metered", "/metered-free"]
        .iter()
        .map(|path| format!("{}{path}", server.base))
        .collect();

    let script = dir.join(format!(
        "pay-permit2-{}-{framework}.mjs",
        std::process::id()
    ));
    std::fs::write(&script, SCRIPT).unwrap();
    let mut command = std::process::Command::new("node");
    command
        .arg(&script)
        .current_dir(dir)
        .env("URLS", serde_json::to_string(&urls).unwrap())
        .env("PAYER_KEY", payer.secret_hex())
        .env("NETWORK", network.caip2.as_ref())
        .env("TOKEN", usdc.to_string())
        .env("MAX", "1000000");
    // The servers answer on this runtime while node runs on a blocking thread.
    let run = tokio::task::spawn_blocking(move || command.output());
    let output = tokio::time::timeout(Duration::from_secs(120), run).await;
    let _ = std::fs::remove_file(&script);
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
        .unwrap_or_else(|| panic!("{framework}: no result\nstdout: {stdout}\nstderr: {stderr}"));
    let [permit2, metered, free] = results.as_slice() else {
        panic!("{framework}: three results expected: {results:?}\nstderr: {stderr}")
    };
    for result in [permit2, metered, free] {
        assert!(result.get("error").is_none(), "{framework}: {result}");
        assert_eq!(result["status"], 200, "{framework}: {result}");
        assert_eq!(
            result["settlement"]["success"], true,
            "{framework}: {result}"
        );
    }
    assert_eq!(permit2["body"], "permit2");
    assert_eq!(metered["body"], "185000", "{framework}: 37% of 0.50 USDC");
    assert_eq!(metered["settlement"]["amount"], "185000", "{framework}");
    assert_eq!(free["body"], "0");
    assert_eq!(free["settlement"]["transaction"], "", "{framework}");

    // The ledger moved the price once and the charge once; the free request moved nothing.
    let transfers = ledger.transfers();
    let values: Vec<U256> = transfers.iter().map(|t| t.value).collect();
    assert_eq!(
        values,
        [U256::from(10_000u64), U256::from(185_000u64)],
        "{framework}"
    );
    assert!(
        transfers
            .iter()
            .all(|t| t.key.as_str().contains("/permit2/"))
    );
    assert_eq!(
        ledger.balance(&network.caip2, usdc, payer.address()),
        U256::from(1_000_000u64 - 10_000 - 185_000)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_client_pays_permit2_and_upto_routes_on_every_framework() {
    let Some(dir) = interop_dir() else { return };
    let frameworks: [(&str, Launch); 3] = [
        ("axum", axum_app::launch),
        ("actix-web", actix_app::launch),
        ("rocket", rocket_app::launch),
    ];
    for (framework, launch) in frameworks {
        check(framework, launch, &dir).await;
    }
}
