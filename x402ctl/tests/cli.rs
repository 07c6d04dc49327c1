//! The `x402ctl` binary, run as a process: `inspect` on the official client vectors and on
//! other x402 objects, `keygen`, and `pay` against a real paid server on loopback.

#[path = "../../integrations/reqwest/tests/support/server.rs"]
mod server;

use std::process::Output;

use serde::Deserialize;
use server::Flavor;
use x402_protocol::eip3009::LocalSigner;
use x402_protocol::{U256, codec};

const BIN: &str = env!("CARGO_BIN_EXE_x402ctl");

async fn x402ctl(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = tokio::process::Command::new(BIN);
    command.args(args).env_remove("X402_PRIVATE_KEY");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().await.expect("x402ctl runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[derive(Deserialize)]
struct Vectors {
    vectors: Vec<Vector>,
}

#[derive(Deserialize)]
struct Vector {
    producer: String,
    payer: String,
    header_name: String,
    header_value: String,
    payment_required: serde_json::Value,
}

fn vectors() -> Vec<Vector> {
    let file: Vectors = serde_json::from_str(include_str!(
        "../../x402-protocol/tests/data/official-clients.json"
    ))
    .unwrap();
    assert_eq!(file.vectors.len(), 5);
    file.vectors
}

#[tokio::test]
async fn inspect_explains_every_official_vector() {
    // Network and validity window of each vector, in order; dates computed independently
    // (Python's datetime) from the authorizations' validAfter / validBefore.
    let expected = [
        (
            "base (eip155:8453)",
            "1970-01-01 00:00:00 UTC",
            "2026-11-21 01:00:26 UTC",
        ),
        (
            "base-sepolia (eip155:84532)",
            "1970-01-01 00:00:00 UTC",
            "2026-11-21 01:00:26 UTC",
        ),
        (
            "base (eip155:8453)",
            "2026-11-21 00:45:27 UTC",
            "2026-11-21 01:00:27 UTC",
        ),
        (
            "base-sepolia (eip155:84532)",
            "2026-11-21 00:45:27 UTC",
            "2026-11-21 01:00:27 UTC",
        ),
        (
            "base (eip155:8453)",
            "1970-01-01 00:00:00 UTC",
            "2026-11-21 01:00:29 UTC",
        ),
    ];
    for (vector, (network, after, before)) in vectors().iter().zip(expected) {
        let output = x402ctl(&["inspect", &vector.header_value], &[]).await;
        let stdout = text(&output.stdout);
        let case = &vector.producer;
        assert!(
            output.status.success(),
            "{case}: {stdout}{}",
            text(&output.stderr)
        );
        let line = |name: &str| {
            stdout
                .lines()
                .find(|l| l.trim_start().starts_with(name))
                .unwrap_or_else(|| panic!("{case}: no {name:?} line in\n{stdout}"))
                .to_owned()
        };
        assert!(
            line("payer").contains(&format!("{} (recovered from the signature)", vector.payer)),
            "{case}: {stdout}"
        );
        assert!(
            line("signature").contains("valid: it recovers"),
            "{case}: {stdout}"
        );
        assert!(
            line("amount").contains("0.01 USDC (10000 atomic units)"),
            "{case}: {stdout}"
        );
        assert!(line("network").contains(network), "{case}: {stdout}");
        assert!(line("valid after").contains(after), "{case}: {stdout}");
        assert!(line("valid before").contains(before), "{case}: {stdout}");
        assert!(line("valid before").contains("expired"), "{case}: {stdout}");
        assert!(
            line("pay to").contains("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"),
            "{case}: {stdout}"
        );

        // As copied from a request: `Header-Name: value`.
        let copied = format!("{}: {}", vector.header_name, vector.header_value);
        let output = x402ctl(&["inspect", &copied], &[]).await;
        assert!(output.status.success(), "{case}");
        assert_eq!(text(&output.stdout), stdout, "{case}");

        // The 402 it answered, as JSON and as a v2 header.
        let challenge = vector.payment_required.to_string();
        let output = x402ctl(&["inspect", &challenge], &[]).await;
        let explained = text(&output.stdout);
        assert!(output.status.success(), "{case}: {explained}");
        assert!(explained.contains("payment challenge (402)"), "{explained}");
        assert!(
            explained.contains(&format!("1. 0.01 USDC on {network} to 0x3C44")),
            "{case}: {explained}"
        );
        let encoded = codec::encode(&vector.payment_required);
        let output = x402ctl(&["inspect", &encoded], &[]).await;
        assert_eq!(text(&output.stdout), explained, "{case}");
    }
}

#[tokio::test]
async fn inspect_reports_a_tampered_signature_and_explains_receipts() {
    let vector = &vectors()[0];
    let mut payment: serde_json::Value = codec::decode(&vector.header_value, 1 << 16).unwrap();
    // Pay someone else: the signature no longer covers the authorization.
    payment["payload"]["authorization"]["to"] =
        serde_json::json!("0x1111111111111111111111111111111111111111");
    let output = x402ctl(&["inspect", &codec::encode(&payment)], &[]).await;
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("signature    INVALID"), "{stdout}");
    assert!(
        !stdout.contains("(recovered from the signature)"),
        "{stdout}"
    );

    let receipt = codec::encode(&serde_json::json!({
        "success": false, "errorReason": "insufficient_funds", "transaction": "",
        "network": "eip155:84532", "payer": vector.payer
    }));
    let output = x402ctl(&["inspect", &format!("PAYMENT-RESPONSE: {receipt}")], &[]).await;
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("success      no"), "{stdout}");
    assert!(
        stdout.contains("error        insufficient_funds"),
        "{stdout}"
    );
    assert!(stdout.contains("base-sepolia (eip155:84532)"), "{stdout}");

    let output = x402ctl(&["inspect", "bm90IHg0MDI="], &[]).await;
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("not a URL, JSON, or an x402 header value"),
        "{stderr}"
    );
}

#[tokio::test]
async fn keygen_prints_a_key_and_its_address() {
    let output = x402ctl(&["keygen"], &[]).await;
    assert!(output.status.success());
    let stdout = text(&output.stdout);
    let field = |name: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
            .unwrap_or_else(|| panic!("no {name} in {stdout}"))
            .to_owned()
    };
    let key = LocalSigner::from_hex(&field("private key")).unwrap();
    assert_eq!(key.address().to_checksum(None), field("address"));
    assert!(text(&output.stderr).contains("development key"));

    let output = x402ctl(&["keygen", "--json"], &[]).await;
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let key = LocalSigner::from_hex(json["privateKey"].as_str().unwrap()).unwrap();
    assert_eq!(json["address"], key.address().to_checksum(None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pay_prints_the_body_and_what_was_paid() {
    for flavor in [Flavor::Dual, Flavor::V1Only] {
        let server = server::spawn(flavor).await;
        let key = LocalSigner::random();
        server.fund(key.address(), 100_000);
        let secret = key.secret_hex();
        let url = format!("{}/weather", server.url);
        let output = x402ctl(
            &[
                "pay",
                &url,
                "-X",
                "POST",
                "-d",
                "city=Oslo",
                "-H",
                "Accept: application/json",
            ],
            &[("X402_PRIVATE_KEY", &secret)],
        )
        .await;
        let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
        assert!(output.status.success(), "{flavor:?}: {stdout}\n{stderr}");
        let body: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(body["report"], "sunny");
        assert_eq!(body["payer"], key.address().to_checksum(None));
        assert!(
            stderr.contains("x402: paid 0.01 USDC on base-sepolia (eip155:84532)"),
            "{stderr}"
        );
        let transfer = server.ledger().transfers().pop().expect("settled");
        assert!(
            stderr.contains(&format!("transaction  {}", transfer.transaction)),
            "{stderr}"
        );
        assert!(
            stderr.contains(&format!("to           {}", server::PAY_TO)),
            "{stderr}"
        );
        let version = if flavor == Flavor::V1Only {
            "x402 v1"
        } else {
            "x402 v2"
        };
        assert!(stderr.contains(version), "{stderr}");
        assert!(!stderr.contains(&secret[2..]), "the key is never printed");
        assert_eq!(
            server.balance("base-sepolia", key.address()),
            U256::from(90_000u64)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pay_explains_why_it_did_not_pay() {
    let server = server::spawn(Flavor::Dual).await;
    let url = format!("{}/weather", server.url);
    let key = LocalSigner::random();
    let secret = key.secret_hex();
    let env = [("X402_PRIVATE_KEY", secret.as_str())];

    // Over the cap: refused before signing, with what the server accepts.
    let output = x402ctl(&["pay", &url, "--max", "0.001"], &env).await;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no acceptable way to pay"), "{stderr}");
    assert!(
        stderr.contains("0.01 USDC on base-sepolia (eip155:84532)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("over the per-request cap of $0.001"),
        "{stderr}"
    );

    // Not on an allowed network.
    let output = x402ctl(&["pay", &url, "--network", "base"], &env).await;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("not among the allowed networks"),
        "{stderr}"
    );
    assert!(server.payments_seen().is_empty(), "nothing was sent");

    // Unfunded: the facilitator's answer, and what the server accepts.
    let output = x402ctl(&["pay", &url], &env).await;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("refused the payment of 0.01 USDC"),
        "{stderr}"
    );
    assert!(stderr.contains("insufficient funds"), "{stderr}");
    assert!(stderr.contains("the server accepts:"), "{stderr}");

    // No key, or a malformed one that is never echoed.
    let output = x402ctl(&["pay", &url], &[]).await;
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("X402_PRIVATE_KEY is not set"));
    let bad = "0xnot-a-key-but-secret-looking-0123456789";
    let output = x402ctl(&["pay", &url, "--key-env", "MY_KEY"], &[("MY_KEY", bad)]).await;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr.contains("MY_KEY does not hold a usable private key"),
        "{stderr}"
    );
    assert!(!stderr.contains("secret-looking"), "{stderr}");

    // A free route: nothing paid.
    let output = x402ctl(&["pay", &format!("{}/free", server.url)], &env).await;
    assert!(output.status.success());
    assert_eq!(text(&output.stdout), "free");
    assert!(text(&output.stderr).contains("no payment was needed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspect_fetches_and_explains_a_url() {
    let server = server::spawn(Flavor::Dual).await;
    let output = x402ctl(&["inspect", &format!("{}/weather", server.url)], &[]).await;
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("HTTP 402"), "{stdout}");
    assert!(
        stdout.contains("x402 v2 payment challenge (402), from the v2 PAYMENT-REQUIRED header"),
        "{stdout}"
    );
    assert!(stdout.contains("description  Current weather"), "{stdout}");
    assert!(
        stdout.contains("1. 0.01 USDC on base-sepolia (eip155:84532)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("the body also carries the v1 challenge"),
        "{stdout}"
    );
    assert!(server.payments_seen().is_empty(), "inspect never pays");
}

/// Issue acceptance: `x402ctl pay` against the quickstart's own server prints the paid
/// response and what was paid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pay_against_the_quickstart_server_prints_the_paid_response() {
    use x402_examples::quickstart::{self, DEMO_PAYER_KEY, PAY_TO};
    let (x402, address, _server) = quickstart::serve(([127, 0, 0, 1], 0).into()).await.unwrap();
    let url = format!("http://{address}/weather");
    let output = x402ctl(&["pay", &url], &[("X402_PRIVATE_KEY", DEMO_PAYER_KEY)]).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    let body: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(body["forecast"], "sunny, 21 °C");
    assert_eq!(body["amount"], "0.01 USDC");
    let summary = text(&output.stderr);
    assert!(
        summary.contains("paid 0.01 USDC on base-sepolia"),
        "{summary}"
    );
    assert!(summary.contains(PAY_TO), "{summary}");
    let network = x402.gate().registry().network("base-sepolia").unwrap();
    let ledger = x402.gate().dev_ledger().unwrap();
    assert_eq!(
        ledger.balance(
            &network.caip2,
            network.default_asset.address,
            PAY_TO.parse::<x402_protocol::Address>().unwrap()
        ),
        U256::from(10_000u64)
    );
    let transaction = ledger.transfers()[0].transaction.to_string();
    assert!(
        summary.contains(&transaction),
        "the summary names the transaction: {summary}"
    );
}

/// Issue acceptance (Solana): `x402ctl pay` with the quickstart's Solana demo key pays its
/// Solana route with nothing installed: the dev ledger's 402 carries the blockhash, so no
/// `--solana-rpc` is needed, and the dev ledger moves exactly the price.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pay_with_a_solana_key_against_the_quickstart_server_needs_no_node() {
    use x402_examples::quickstart::{self, SOLANA_PAY_TO};
    use x402_protocol::{ChainAddress, SolanaAddress};
    let (x402, address, _server) = quickstart::serve(([127, 0, 0, 1], 0).into()).await.unwrap();
    let url = format!("http://{address}/weather-sol");
    let key = quickstart::demo_solana_payer().to_base58_string();
    let output = x402ctl(&["pay", &url], &[("X402_SOLANA_KEY", key.as_str())]).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    let body: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        body["paid_by"],
        "AKnL4NNf3DGWZJS6cPknBuEGnVsV4A4m5tgebLHaRSZ9"
    );
    let summary = text(&output.stderr);
    assert!(
        summary.contains("paid 0.01 USDC on solana-devnet"),
        "{summary}"
    );
    let network = x402.gate().registry().network("solana-devnet").unwrap();
    let ledger = x402.gate().dev_ledger().unwrap();
    let pay_to = ChainAddress::Solana(SolanaAddress::from_base58_const(SOLANA_PAY_TO));
    assert_eq!(
        ledger.balance(&network.caip2, network.default_asset.address, pay_to),
        U256::from(10_000u64)
    );
}
