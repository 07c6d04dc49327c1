//! Interop with the official Python SDK (PyPI `x402` 2.25, `x402.mcp`, with the `mcp`
//! package): its paying client pays a tool served by this crate, and this crate's client
//! pays a tool served by its payment wrapper, which settles through `x402ctl serve`.
//!
//! Needs `X402_PYTHON` (a Python with `x402==2.25.*` and `mcp<2`) and `X402CTL_BIN` (the
//! `x402ctl` binary); `scripts/test` installs the virtualenv into `.tools/` and sets both.
//! Without them the tests are skipped, unless `X402_REQUIRE_BACKENDS=1`.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, RequestMetaObject};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp_x402::{McpPayError, PAYMENT_META_KEY, X402Client, payment_required_in};
use serde_json::{Value, json};
use support::{CENT, PAY_TO, Server, pay_to, serve_http};
use tokio::io::AsyncBufReadExt;
use tokio::process::{Child, Command};
use x402_client::{Challenge, LocalSigner, Payer, PaymentStatus, RefusalReason, X402Error};
use x402_protocol::U256;

/// The Python interpreter and the x402ctl binary, or `None` after `skip`.
fn tools() -> Option<(PathBuf, PathBuf)> {
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    match (var("X402_PYTHON"), var("X402CTL_BIN")) {
        (Some(python), Some(x402ctl)) => Some((python, x402ctl)),
        _ => {
            x402_test_support::skip(
                "X402_PYTHON and X402CTL_BIN are not set (scripts/test installs the official Python SDK and builds x402ctl)",
            );
            None
        }
    }
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/python")
        .join(name)
}

fn call(name: &'static str, arguments: Value) -> CallToolRequestParams {
    let mut params = CallToolRequestParams::new(name);
    params.arguments = arguments.as_object().cloned();
    params
}

/// Runs the official Python paying client against an MCP endpoint.
async fn python_pays(python: &Path, url: &str, key: &LocalSigner, twice: bool) -> Value {
    let output = tokio::time::timeout(
        Duration::from_secs(120),
        Command::new(python)
            .arg(script("pay_tool.py"))
            .args([url, "forecast", r#"{"city": "Oslo"}"#])
            .env("X402_PRIVATE_KEY", key.secret_hex())
            .env("X402_CALL_TWICE", if twice { "1" } else { "0" })
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the Python client finishes in time")
    .expect("the Python client runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the Python client failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

#[tokio::test]
async fn the_official_python_client_pays_a_tool_served_here() {
    let Some((python, _)) = tools() else { return };
    let server = Server::new();
    let key = LocalSigner::random();
    server.fund(key.address(), 100);
    let (url, task) = serve_http(&server).await;

    let out = python_pays(&python, &url, &key, true).await;
    for (n, call) in [&out, &out["second"]].into_iter().enumerate() {
        assert_eq!(call["isError"], false, "call {n}: {out}");
        assert_eq!(call["paymentMade"], true, "call {n}: {out}");
        assert_eq!(
            call["texts"][0],
            format!("Oslo: sunny (paid 0.01 USDC by {})", key.address()),
            "call {n}: {out}"
        );
        let receipt = &call["paymentResponse"];
        assert_eq!(receipt["success"], true, "call {n}: {out}");
        assert_eq!(receipt["network"], "eip155:84532", "call {n}: {out}");
    }
    // Each call paid once, and the receipts name the ledger's transfers.
    let transfers = server.ledger.transfers();
    assert_eq!(transfers.len(), 2, "{out}");
    assert_ne!(transfers[0].key, transfers[1].key);
    for (transfer, call) in transfers.iter().zip([&out, &out["second"]]) {
        assert_eq!(transfer.from, key.address());
        assert_eq!(transfer.to, pay_to());
        assert_eq!(
            call["paymentResponse"]["transaction"],
            transfer.transaction.to_string()
        );
    }
    assert_eq!(server.balance(key.address()), U256::from(98 * CENT));
    assert_eq!(server.runs(), 2);

    // An unfunded payer: the gate refuses the payment with the spec's result shape, which
    // the Python client hands back as an error result; the tool does not run.
    let broke = LocalSigner::random();
    let out = python_pays(&python, &url, &broke, false).await;
    assert_eq!(out["isError"], true, "{out}");
    assert_eq!(out["paymentMade"], true, "{out}");
    let refused: Value = serde_json::from_str(out["texts"][0].as_str().unwrap()).unwrap();
    assert_eq!(refused["x402Version"], 2, "{out}");
    assert_eq!(refused["accepts"][0]["amount"], "10000", "{out}");
    assert!(
        refused["error"].as_str().unwrap().contains("insufficient"),
        "{out}"
    );
    assert_eq!(server.runs(), 2);
    task.abort();
}

/// A child process killed when dropped, with its stderr in a file for failure messages.
struct Process {
    child: Child,
    log: PathBuf,
}

impl Process {
    fn spawn(command: &mut Command, name: &str) -> (Self, Option<tokio::process::ChildStdout>) {
        let log = std::env::temp_dir().join(format!(
            "rmcp-x402-{name}-{}-{}.log",
            std::process::id(),
            x402_test_support::free_port()
        ));
        let stderr = std::fs::File::create(&log).unwrap();
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let stdout = child.stdout.take();
        (Process { child, log }, stdout)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// `x402ctl serve` on a free port, crediting `fund` with 1 USDC on base-sepolia.
async fn facilitator(x402ctl: &Path, fund: &LocalSigner) -> (Process, String) {
    let (process, stdout) = Process::spawn(
        Command::new(x402ctl).args([
            "serve",
            "--port",
            "0",
            "--fund",
            &format!("{}=1@base-sepolia", fund.address()),
        ]),
        "facilitator",
    );
    let mut lines = tokio::io::BufReader::new(stdout.unwrap()).lines();
    let url = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("x402ctl serve prints its URL")
        .unwrap()
        .unwrap_or_else(|| panic!("x402ctl serve exited: {}", process.log()));
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    (process, url)
}

/// The official Python payment wrapper serving `forecast` over streamable HTTP.
async fn python_server(python: &Path, facilitator: &str) -> (Process, String) {
    let port = x402_test_support::free_port();
    let (mut process, _) = Process::spawn(
        Command::new(python).arg(script("paid_server.py")).args([
            facilitator,
            PAY_TO,
            &port.to_string(),
        ]),
        "python-server",
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            break;
        }
        if let Ok(Some(status)) = process.child.try_wait() {
            panic!("the Python server exited ({status}):\n{}", process.log());
        }
        assert!(
            Instant::now() < deadline,
            "the Python server did not listen:\n{}",
            process.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (process, format!("http://127.0.0.1:{port}/mcp"))
}

#[tokio::test]
async fn this_client_pays_a_tool_served_by_the_official_python_wrapper() {
    let Some((python, x402ctl)) = tools() else {
        return;
    };
    let key = LocalSigner::random();
    let (facilitator_process, facilitator_url) = facilitator(&x402ctl, &key).await;
    let (server_process, url) = python_server(&python, &facilitator_url).await;
    let connection = tokio::time::timeout(
        Duration::from_secs(30),
        ().serve(StreamableHttpClientTransport::from_uri(url.clone())),
    )
    .await
    .expect("connects in time")
    .unwrap_or_else(|e| panic!("cannot connect to {url}: {e}\n{}", server_process.log()));
    let payer = Payer::builder(key.clone())
        .budget("$0.025")
        .build()
        .unwrap();
    let tools = X402Client::new(connection.peer().clone(), payer.clone());

    let paid = tools
        .call_tool(call("forecast", json!({"city": "Oslo"})))
        .await
        .unwrap();
    assert!(
        !paid.is_error(),
        "{:?}\n{}",
        paid.result,
        server_process.log()
    );
    assert_eq!(paid.text(), "Oslo: sunny (served by python)");
    let payment = paid.payment.clone().unwrap();
    let PaymentStatus::Settled { transaction } = &payment.status else {
        panic!(
            "not settled: {}\n{}",
            payment.status,
            facilitator_process.log()
        );
    };
    assert_eq!(payment.resource, "mcp://tool/forecast");
    let receipt = paid.settlement().unwrap();
    assert!(receipt.success);
    assert_eq!(&receipt.transaction, transaction);
    assert_eq!(receipt.network, "eip155:84532");
    assert_eq!(
        receipt.payer.as_deref().map(str::to_ascii_lowercase),
        Some(key.address().to_string().to_ascii_lowercase())
    );

    // A free tool: no payment.
    let free = tools.call_tool(call("ping", json!({}))).await.unwrap();
    assert_eq!(free.text(), "pong");
    assert!(free.payment.is_none());

    // A payment sent twice by hand: the second copy is refused (the facilitator's ledger
    // knows the nonce) and the tool's output is not given.
    let params = call("forecast", json!({"city": "Bergen"}));
    let unpaid = connection.peer().call_tool(params.clone()).await.unwrap();
    let required = payment_required_in(&unpaid).expect("the Python server asks for payment");
    assert_eq!(required["resource"]["url"], "mcp://tool/forecast");
    let signed = payer
        .pay(
            "tools/call",
            "mcp://tool/forecast",
            &Challenge::from_json(&required).unwrap(),
        )
        .await
        .unwrap();
    let mut by_hand = params;
    by_hand
        .meta
        .get_or_insert_with(RequestMetaObject::new)
        .0
        .0
        .insert(PAYMENT_META_KEY.to_owned(), signed.payload().clone());
    let first = connection.peer().call_tool(by_hand.clone()).await.unwrap();
    assert_ne!(first.is_error, Some(true), "{first:?}");
    let replay = connection.peer().call_tool(by_hand).await.unwrap();
    assert_eq!(replay.is_error, Some(true), "{replay:?}");
    assert!(payment_required_in(&replay).is_some(), "{replay:?}");
    assert!(
        !format!("{:?}", replay.content).contains("sunny"),
        "{replay:?}"
    );

    // $0.02 of the $0.025 budget is spent: the next call is refused before signing.
    let error = tools
        .call_tool(call("forecast", json!({"city": "Tromsø"})))
        .await
        .unwrap_err();
    let McpPayError::Payment(X402Error::NoPayableOffer { refusals, .. }) = &error else {
        panic!("not a refusal: {error}");
    };
    assert!(
        matches!(&refusals[..], [r] if matches!(r.reason, RefusalReason::OverBudget { .. })),
        "{error}"
    );
    assert_eq!(
        payer.history().len(),
        2,
        "nothing signed for the refused call"
    );

    drop(connection);
    drop(server_process);
    drop(facilitator_process);
}
