//! `x402ctl mcp call`, run as a process against the MCP example's server (a priced rmcp
//! tool behind the embedded facilitator) over streamable HTTP on loopback.

use std::process::Output;

use x402_examples::quickstart::{DEMO_PAYER_KEY, PAY_TO};
use x402_protocol::U256;

const BIN: &str = env!("CARGO_BIN_EXE_x402ctl");

async fn x402ctl(args: &[&str], key: Option<&str>) -> Output {
    let mut command = tokio::process::Command::new(BIN);
    command.args(args).env_remove("X402_PRIVATE_KEY");
    if let Some(key) = key {
        command.env("X402_PRIVATE_KEY", key);
    }
    command.output().await.expect("x402ctl runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_call_pays_a_priced_tool_and_says_what_it_paid() {
    let (paid, address, _server) = x402_examples::mcp::serve_http(([127, 0, 0, 1], 0).into())
        .await
        .unwrap();
    let url = format!("http://{address}/mcp");
    let ledger = paid.gate().dev_ledger().unwrap().clone();
    let network = paid
        .gate()
        .registry()
        .network("base-sepolia")
        .unwrap()
        .clone();
    let payee = || {
        ledger.balance(
            &network.caip2,
            network.default_asset.address,
            PAY_TO.parse::<x402_protocol::Address>().unwrap(),
        )
    };

    let output = x402ctl(
        &[
            "mcp",
            "call",
            &url,
            "forecast",
            "--args",
            r#"{"city": "Oslo"}"#,
        ],
        Some(DEMO_PAYER_KEY),
    )
    .await;
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert!(output.status.success(), "{stderr}");
    assert_eq!(
        stdout.trim(),
        "Oslo: sunny, 21 °C (paid 0.01 USDC by 0x70997970C51812dc3A010C7d01b50e0d17dc79C8)"
    );
    assert!(
        stderr.contains("paid 0.01 USDC on base-sepolia"),
        "{stderr}"
    );
    assert!(stderr.contains("mcp://tool/forecast"), "{stderr}");
    let transaction = ledger.transfers()[0].transaction.to_string();
    assert!(
        stderr.contains(&transaction),
        "names the transaction: {stderr}"
    );
    assert_eq!(payee(), U256::from(10_000u64));

    // --json: the whole result, receipt included.
    let output = x402ctl(
        &[
            "mcp",
            "call",
            &url,
            "forecast",
            "--args",
            r#"{"city": "Bergen"}"#,
            "--json",
        ],
        Some(DEMO_PAYER_KEY),
    )
    .await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    let result: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let receipt = &result["_meta"]["x402/payment-response"];
    assert_eq!(receipt["success"], true, "{result}");
    assert_eq!(
        receipt["transaction"],
        ledger.transfers()[1].transaction.to_string()
    );
    assert_eq!(payee(), U256::from(20_000u64));

    // A free tool: nothing paid.
    let output = x402ctl(&["mcp", "call", &url, "ping"], Some(DEMO_PAYER_KEY)).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout).trim(), "pong");
    assert!(text(&output.stderr).contains("no payment was needed"));

    // Over --max: refused before signing, exit 2, nothing moves.
    let output = x402ctl(
        &[
            "mcp",
            "call",
            &url,
            "forecast",
            "--args",
            r#"{"city": "Oslo"}"#,
            "--max",
            "0.001",
        ],
        Some(DEMO_PAYER_KEY),
    )
    .await;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("over the per-request cap of $0.001"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty());
    assert_eq!(ledger.transfers().len(), 2);
}

#[tokio::test]
async fn mcp_call_reports_usage_and_connection_mistakes() {
    let output = x402ctl(&["mcp", "call", "http://127.0.0.1:9/mcp", "forecast"], None).await;
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).contains("X402_PRIVATE_KEY is not set"),
        "{}",
        text(&output.stderr)
    );

    let output = x402ctl(
        &[
            "mcp",
            "call",
            "http://127.0.0.1:9/mcp",
            "forecast",
            "--args",
            "[1]",
        ],
        Some(DEMO_PAYER_KEY),
    )
    .await;
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("--args must be a JSON object"));

    // A stdio command that does not exist.
    let output = x402ctl(
        &["mcp", "call", "/nonexistent/mcp-server --stdio", "forecast"],
        Some(DEMO_PAYER_KEY),
    )
    .await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("starting \"/nonexistent/mcp-server --stdio\""),
        "{}",
        text(&output.stderr)
    );
}
