//! One configuration file drives all three parties on a local anvil chain with the workspace's
//! test token: the facilitator (`x402ctl serve --config`: chain, RPC, signer, listen address,
//! caller tokens), the paid server (`X402Builder::config_file`: network, token, facilitator URL
//! and token, recipient, default network) and the client (`x402ctl pay --config`, or the chain
//! given inline with `--chain`). No network or token is written in code.

mod support;

use std::process::Output;
use std::time::Duration;

use serde_json::json;
use x402_protocol::U256;
use x402_protocol::eip3009::LocalSigner;
use x402_test_support::anvil::{TOKEN_NAME, TOKEN_VERSION};
use x402_test_support::free_port;

use support::{BIN, TOKEN_A, setup};

/// One cent of the test token (6 decimals).
const CENT: u64 = 10_000;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

async fn pay(args: &[&str], payer: &LocalSigner) -> Output {
    tokio::process::Command::new(BIN)
        .arg("pay")
        .args(args)
        .env("X402_PRIVATE_KEY", payer.secret_hex())
        .env_remove("X402_CONFIG")
        .env_remove("X402_CONFIG_TOML")
        .output()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_client_and_facilitator_take_a_local_chain_from_one_file() {
    let Some(setup) = setup(&[8], None, "") else {
        return;
    };
    let port = free_port();
    let pay_to = LocalSigner::random().address();
    let file = setup.dir.0.join("everything.toml");
    std::fs::write(
        &file,
        format!(
            r#"
[[network]]
name = "anvil"
chain_id = {chain_id}
rpc_url = "{rpc}"
signers = [{{ key_env = "X402_TEST_SIGNER_8" }}]

[[network.token]]
address = "{token}"
symbol = "USDC"
decimals = 6
eip712_name = "{TOKEN_NAME}"
eip712_version = "{TOKEN_VERSION}"
usd = true

[server]
facilitator = "http://127.0.0.1:{port}"
facilitator_token_file = "{server_token}"
pay_to = "{pay_to}"
networks = ["anvil"]

[facilitator]
listen = "127.0.0.1:{port}"
auth_tokens_file = "{caller_tokens}"
journal = "memory:"
"#,
            chain_id = setup.anvil.chain_id(),
            rpc = setup.anvil.url(),
            token = setup.token,
            server_token = setup.dir.0.join("server-token").display(),
            caller_tokens = setup.dir.0.join("caller-tokens").display(),
        ),
    )
    .unwrap();
    // Secrets live beside the file, never in it: the server's token for the facilitator, and
    // the facilitator's list of callers.
    std::fs::write(setup.dir.0.join("server-token"), format!("{TOKEN_A}\n")).unwrap();
    std::fs::write(
        setup.dir.0.join("caller-tokens"),
        format!("shop:{TOKEN_A}\n"),
    )
    .unwrap();

    // The facilitator, listening where the file says.
    let facilitator = setup.start_with(&[8], &file, false).await;
    assert_eq!(facilitator.url, format!("http://127.0.0.1:{port}"));

    // The server: everything from the same file. Its gate reports through the metrics
    // facade; this process records them.
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .unwrap();
    let x402 = x402_examples::seller::x402_from_config(&file).unwrap();
    assert!(x402.gate().registry().network("eip155:31337").is_ok());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/weather", listener.local_addr().unwrap());
    let app = x402_examples::seller::app(&x402);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    // The client: the same file.
    let payer = LocalSigner::random();
    setup
        .anvil
        .mint(setup.token, payer.address(), U256::from(3 * CENT));
    let file_arg = file.display().to_string();
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        pay(&["--config", &file_arg, &url], &payer),
    )
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}\nfacilitator:\n{}",
        text(&out.stdout),
        text(&out.stderr),
        facilitator.logs()
    );
    assert!(text(&out.stdout).contains("sunny"), "{}", text(&out.stdout));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("x402: paid 0.01 USDC on anvil"), "{stderr}");
    let transaction = stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix("transaction"))
        .map(str::trim)
        .expect("the receipt names the transaction");
    let receipt = setup
        .anvil
        .call("eth_getTransactionReceipt", json!([transaction]));
    assert_eq!(receipt["status"], "0x1");
    assert_eq!(setup.anvil.balance(setup.token, pay_to), U256::from(CENT));
    let rendered = metrics.render();
    for outcome in ["verified", "settled"] {
        assert!(
            rendered
                .lines()
                .any(|l| l.starts_with("x402_payments_total")
                    && l.contains("route=\"x402_examples::seller::weather\"")
                    && l.contains("network=\"eip155:31337\"")
                    && l.contains(&format!("outcome=\"{outcome}\""))
                    && l.ends_with(" 1")),
            "{rendered}"
        );
    }
    assert!(
        rendered.contains("x402_payment_settle_seconds"),
        "{rendered}"
    );

    // The same chain given inline, with --chain, instead of a file.
    let chain = format!(
        "{{ name = \"anvil\", chain_id = {}, token = [{{ address = \"{}\", symbol = \"USDC\", decimals = 6, eip712_name = \"{TOKEN_NAME}\", eip712_version = \"{TOKEN_VERSION}\", usd = true }}] }}",
        setup.anvil.chain_id(),
        setup.token
    );
    let out = pay(&["--chain", &chain, &url], &payer).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        setup.anvil.balance(setup.token, pay_to),
        U256::from(2 * CENT)
    );

    // Without either, the client does not know the chain, and says how to declare it.
    let out = pay(&[&url], &payer).await;
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("eip155:31337")
            && stderr.contains("[[network]]")
            && stderr.contains("--config"),
        "{stderr}"
    );
    assert_eq!(
        setup.anvil.balance(setup.token, pay_to),
        U256::from(2 * CENT)
    );

    // A mistake in --chain is a sentence naming the flag and the key.
    let out = pay(
        &["--chain", "{ name = \"anvil\", chainid = 1 }", &url],
        &payer,
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("--chain #1") && stderr.contains("chainid"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_facilitators_own_words_reach_the_client_bounded() {
    let Some(setup) = setup(&[9], None, "") else {
        return;
    };
    let facilitator = setup.start(&[9]).await;
    // A server whose facilitator token is wrong: the facilitator answers 401 with its reason.
    let file = setup.dir.0.join("server.toml");
    std::fs::write(
        setup.dir.0.join("wrong-token"),
        "wrong-token-wrong-token-wrong\n",
    )
    .unwrap();
    std::fs::write(
        &file,
        format!(
            "[[network]]\nname = \"anvil\"\nchain_id = {}\n[[network.token]]\naddress = \"{}\"\nsymbol = \"USDC\"\ndecimals = 6\neip712_name = \"{TOKEN_NAME}\"\neip712_version = \"{TOKEN_VERSION}\"\nusd = true\n[server]\nfacilitator = \"{}\"\nfacilitator_token_file = \"{}\"\npay_to = \"{}\"\nnetworks = \"anvil\"\n",
            setup.anvil.chain_id(),
            setup.token,
            facilitator.url,
            setup.dir.0.join("wrong-token").display(),
            LocalSigner::random().address(),
        ),
    )
    .unwrap();
    let x402 = x402_examples::seller::x402_from_config(&file).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/weather", listener.local_addr().unwrap());
    let app = x402_examples::seller::app(&x402);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let payer = LocalSigner::random();
    setup
        .anvil
        .mint(setup.token, payer.address(), U256::from(CENT));
    let config = file.display().to_string();
    let out = pay(&["--config", &config, &url], &payer).await;
    assert!(!out.status.success());
    let body = text(&out.stdout);
    assert!(
        body.contains("facilitator_unavailable") && body.contains("the bearer token is not valid"),
        "{body}"
    );
    // Nothing was paid.
    assert_eq!(
        setup.anvil.balance(setup.token, payer.address()),
        U256::from(CENT)
    );
}
