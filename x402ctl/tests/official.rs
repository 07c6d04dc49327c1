//! The official x402 TypeScript packages (npm `@x402/express` 2.27 server, `@x402/fetch`
//! client with an `@x402/evm` signer) paying through `x402ctl serve`, on a real anvil chain:
//! the server is configured with this facilitator's URL and bearer token, the client pays a
//! 402, and the transfer is on chain.
//!
//! The npm packages come from `X402_INTEROP_DIR` (a directory with their `node_modules`;
//! `scripts/test` installs them into `.tools/interop`). Without them the test says it was
//! skipped, and fails under `X402_REQUIRE_BACKENDS=1`.

mod support;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};
use x402_protocol::U256;
use x402_protocol::eip3009::LocalSigner;
use x402_test_support::anvil::{TOKEN_NAME, TOKEN_VERSION};
use x402_test_support::{skip, unique_identifier};

use support::{PRICE, TOKEN_A, metric, setup};

const SCRIPT: &str = include_str!("interop/official.mjs");

/// The directory holding the npm packages, if installed.
fn interop_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("X402_INTEROP_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.tools/interop"));
    if dir.join("node_modules/@x402/express/package.json").exists() {
        Some(dir)
    } else {
        skip(
            "the official @x402 npm packages are not installed (scripts/test installs them into .tools/interop and sets X402_INTEROP_DIR)",
        );
        None
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_express_server_and_fetch_client_pay_through_this_facilitator() {
    let Some(dir) = interop_dir() else { return };
    let Some(setup) = setup(&[7], None, "") else {
        return;
    };
    let facilitator = setup.start(&[7]).await;
    let payer = LocalSigner::random();
    setup
        .anvil
        .mint(setup.token, payer.address(), U256::from(2 * PRICE));
    let pay_to = LocalSigner::random().address();

    // The script runs where its packages are.
    let script = dir.join(format!("{}.mjs", unique_identifier("official")));
    std::fs::write(&script, SCRIPT).unwrap();
    let run = tokio::process::Command::new("node")
        .arg(&script)
        .current_dir(&dir)
        .env("FACILITATOR_URL", &facilitator.url)
        .env("FACILITATOR_TOKEN", TOKEN_A)
        .env("NETWORK", setup.network.caip2.as_ref())
        .env("TOKEN", setup.token.to_checksum(None))
        .env("TOKEN_NAME", TOKEN_NAME)
        .env("TOKEN_VERSION", TOKEN_VERSION)
        .env("PRICE", PRICE.to_string())
        .env("PAY_TO", pay_to.to_checksum(None))
        .env("PAYER_KEY", payer.secret_hex())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(180), run).await;
    let _ = std::fs::remove_file(&script);
    let output = output
        .expect("the official client finishes")
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let result: Value = stdout
        .lines()
        .rev()
        .find_map(|line| serde_json::from_str(line).ok())
        .unwrap_or_else(|| {
            panic!(
                "no result from the official client\nstdout: {stdout}\nstderr: {stderr}\nfacilitator:\n{}",
                facilitator.logs()
            )
        });
    assert!(
        output.status.success() && result.get("error").is_none(),
        "{result}\nstderr: {stderr}\nfacilitator:\n{}",
        facilitator.logs()
    );

    // The official server answered 402 with a v2 challenge, then served the paid request.
    assert_eq!(result["unpaidStatus"], 402, "{result}");
    assert_eq!(result["challenge"], true, "{result}");
    assert_eq!(result["status"], 200, "{result}\n{}", facilitator.logs());
    assert_eq!(result["body"]["forecast"], "sunny");
    let settlement = &result["settlement"];
    assert_eq!(settlement["success"], true, "{result}");
    assert_eq!(settlement["network"], "eip155:31337");
    assert!(
        settlement["payer"]
            .as_str()
            .unwrap()
            .eq_ignore_ascii_case(&payer.address().to_string())
    );

    // The transfer is on chain, sent by the facilitator's signer.
    let transaction = settlement["transaction"].as_str().unwrap();
    let receipt = setup
        .anvil
        .call("eth_getTransactionReceipt", json!([transaction]));
    assert_eq!(receipt["status"], "0x1", "{receipt}");
    assert!(
        receipt["from"]
            .as_str()
            .unwrap()
            .eq_ignore_ascii_case(&setup.signers[0].to_string())
    );
    assert_eq!(setup.anvil.balance(setup.token, pay_to), U256::from(PRICE));
    assert_eq!(
        setup.anvil.balance(setup.token, payer.address()),
        U256::from(PRICE)
    );

    // The facilitator verified and settled once, for a caller with a valid token.
    let http = reqwest::Client::new();
    let metrics = facilitator.metrics(&http).await;
    assert_eq!(
        metric(
            &metrics,
            "x402_facilitator_verify_total",
            &["result=\"valid\""]
        ),
        1.0,
        "{metrics}"
    );
    assert_eq!(
        metric(
            &metrics,
            "x402_facilitator_settle_total",
            &["outcome=\"settled\""]
        ),
        1.0
    );
    assert_eq!(
        metric(
            &metrics,
            "x402_facilitator_auth_total",
            &["result=\"invalid\""]
        ),
        0.0
    );
}
