//! `x402ctl keygen --solana` and `x402ctl pay` with a Solana key: a keypair that loads back,
//! the argument mistakes (each refused with exit 2, never echoing a key), and a payment of a
//! Solana offer that the server verifies with `ExactSvm` (offline: the 402 carries its
//! blockhash).

use std::process::Output;

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use solana_signer::Signer as _;
use x402_protocol::facilitator::{PaymentPayload, PaymentRequirements};
use x402_protocol::{NetworkRegistry, codec, headers};
use x402_runtime::scheme::Scheme;
use x402_svm::ExactSvm;
use x402_svm::wallet::keypair_from_base58;

const BIN: &str = env!("CARGO_BIN_EXE_x402ctl");

async fn x402ctl(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = tokio::process::Command::new(BIN);
    command
        .args(args)
        .env_remove("X402_PRIVATE_KEY")
        .env_remove("X402_SOLANA_KEY")
        .env_remove("X402_SOLANA_RPC");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().await.expect("x402ctl runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn keygen_solana_prints_a_keypair_and_its_address() {
    let output = x402ctl(&["keygen", "--solana"], &[]).await;
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
    let keypair = keypair_from_base58(&field("secret key")).unwrap();
    assert_eq!(keypair.pubkey().to_string(), field("address"));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("development keypair"), "{stderr}");
    assert!(stderr.contains("X402_SOLANA_KEY"), "{stderr}");

    let output = x402ctl(&["keygen", "--solana", "--json"], &[]).await;
    assert!(output.status.success());
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    let keypair = keypair_from_base58(json["secretKey"].as_str().unwrap()).unwrap();
    assert_eq!(json["address"], keypair.pubkey().to_string());
}

#[tokio::test]
async fn pay_refuses_bad_solana_arguments_without_echoing_keys() {
    let url = "http://127.0.0.1:9/never-reached";
    let secret_looking = "3xNotAKeyButSecretLooking0OIl";

    // A malformed key, by flag or by environment: named, never echoed.
    for (args, env) in [
        (vec!["pay", url, "--solana-key", secret_looking], vec![]),
        (vec!["pay", url], vec![("X402_SOLANA_KEY", secret_looking)]),
    ] {
        let output = x402ctl(&args, &env).await;
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("--solana-key"), "{stderr}");
        assert!(stderr.contains("not base58"), "{stderr}");
        assert!(!stderr.contains(secret_looking), "{stderr}");
    }

    // Base58 of the wrong length, and a key file that is not there.
    let output = x402ctl(&["pay", url, "--solana-key", "3yZe7d"], &[]).await;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("a Solana keypair is 64"), "{stderr}");
    let slashed = "/no/such/dir/id.json";
    let output = x402ctl(&["pay", url, "--solana-key", slashed], &[]).await;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("names no file"), "{stderr}");
    assert!(
        !stderr.contains(slashed),
        "a mistyped key may hold '/': {stderr}"
    );
    let output = x402ctl(&["pay", url, "--solana-key", "/"], &[]).await;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("cannot read the key file /"), "{stderr}");

    // An RPC node without a Solana key, and an RPC "URL" that is none.
    let output = x402ctl(&["pay", url, "--solana-rpc", "http://127.0.0.1:8899"], &[]).await;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("give the payer's Solana key too"),
        "{stderr}"
    );
    let key = solana_keypair::Keypair::new().to_base58_string();
    let output = x402ctl(
        &["pay", url, "--solana-key", &key, "--solana-rpc", "devnet"],
        &[],
    )
    .await;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("is not an http(s) URL"), "{stderr}");
    assert!(!stderr.contains(&key), "{stderr}");

    // `mcp call` takes the same keys, and refuses the same mistakes before connecting.
    let output = x402ctl(
        &[
            "mcp",
            "call",
            "http://127.0.0.1:9/mcp",
            "tool",
            "--solana-key",
            secret_looking,
        ],
        &[],
    )
    .await;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--solana-key"), "{stderr}");
    assert!(!stderr.contains(secret_looking), "{stderr}");

    // No key at all: both ways to give one are named.
    let output = x402ctl(&["pay", url], &[]).await;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("X402_PRIVATE_KEY is not set"), "{stderr}");
    assert!(stderr.contains("--solana-key"), "{stderr}");
}

/// The Solana offer of the test server: devnet USDC, with the blockhash in `extra`.
fn offer() -> Value {
    json!({
        "scheme": "exact",
        "network": "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1",
        "amount": "10000",
        "asset": "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU",
        "payTo": "GyGKxMyg1p9SsHfm15MkNUu1u9TN2JtTspcdmrtGUdse",
        "maxTimeoutSeconds": 300,
        "extra": {
            "feePayer": "9hSR6S7WPtxmTojgo6GG3k4yDPecgJY292j7xrsUGWBu",
            "recentBlockhash": "78mPnfMuFcvcJMbiYbC3DLKy5x5pYkZfM6TfWYVbNCAC",
            "lastValidBlockHeight": "376543210"
        }
    })
}

/// A paid route: 402 with the Solana offer (and an EVM one) until a payment `ExactSvm`
/// accepts arrives, then the payer's address (no settlement: nothing to settle on).
async fn paid(request_headers: HeaderMap) -> Response {
    let Some(header) = request_headers
        .get(headers::PAYMENT_SIGNATURE)
        .and_then(|v| v.to_str().ok())
    else {
        let challenge = json!({
            "x402Version": 2,
            "resource": {"url": "http://127.0.0.1/data"},
            "accepts": [
                {"scheme": "exact", "network": "eip155:84532", "amount": "1000",
                 "asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
                 "payTo": "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
                 "maxTimeoutSeconds": 300, "extra": {"name": "USDC", "version": "2"}},
                offer()
            ]
        });
        return (
            StatusCode::PAYMENT_REQUIRED,
            [(headers::PAYMENT_REQUIRED, codec::encode(&challenge))],
            "{}",
        )
            .into_response();
    };
    let checked = codec::decode::<PaymentPayload>(header, 64 * 1024)
        .map_err(|e| e.to_string())
        .and_then(|payment| {
            let requirements: PaymentRequirements =
                serde_json::from_value(offer()).map_err(|e| e.to_string())?;
            ExactSvm
                .verify(&payment, &requirements, &NetworkRegistry::builtin(), 0)
                .map_err(|e| e.to_string())
        });
    match checked {
        Ok(verified) => format!("paid by {}", verified.payer).into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, e).into_response(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pay_pays_a_solana_offer_with_an_id_json_key() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let app = axum::Router::new().route("/data", axum::routing::get(paid));
    tokio::spawn(async move { axum::serve(listener, app).await });

    let keypair = solana_keypair::Keypair::new();
    let dir = std::env::temp_dir().join(format!(
        "x402ctl_solana_{}_{}",
        std::process::id(),
        address.port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("id.json");
    std::fs::write(
        &path,
        serde_json::to_string(&keypair.to_bytes().to_vec()).unwrap(),
    )
    .unwrap();

    let url = format!("http://{address}/data");
    let output = x402ctl(&["pay", &url, "--solana-key", path.to_str().unwrap()], &[]).await;
    let _ = std::fs::remove_dir_all(&dir);
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(
        text(&output.stdout),
        format!("paid by {}", keypair.pubkey())
    );
    assert!(stderr.contains("0.01 USDC on solana-devnet"), "{stderr}");
    assert!(stderr.contains(&keypair.pubkey().to_string()), "{stderr}");
}
