//! Cost of the HTTP facilitator client per payment: `verify` then `settle` against a minimal
//! keep-alive HTTP/1.1 server on loopback that answers at once (its own cost is a few
//! microseconds), next to the JSON work alone (encoding the request, decoding both answers).
//! The difference is the client's transport: request building, headers, connection pool,
//! timers, reading the body.
//!
//! The server counts the connections it accepted; the bench prints them, so a client that
//! stops reusing connections shows up.
//!
//! `cargo bench -p x402-runtime --bench http_facilitator`

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use x402_protocol::client::prepare_payment;
use x402_protocol::eip3009::LocalSigner;
use x402_protocol::facilitator::{
    FacilitatorRequest, PaymentRequirements, SettleResponse, VerifyResponse,
};
use x402_protocol::{NetworkRegistry, U256, v2};
use x402_runtime::Facilitator as _;
use x402_runtime::facilitator::HttpFacilitator;

const PAYER: &str = "0x90F79bf6EB2c4f870365E785982E1f101E93b906";

fn verify_body() -> String {
    format!(r#"{{"isValid":true,"payer":"{PAYER}"}}"#)
}

fn settle_body() -> String {
    format!(
        r#"{{"success":true,"payer":"{PAYER}","transaction":"0x{}","network":"eip155:84532"}}"#,
        "ab".repeat(32)
    )
}

/// Answers `POST /verify` and `POST /settle` with fixed bodies, keeping connections open.
async fn serve(listener: tokio::net::TcpListener, connections: Arc<AtomicU64>) {
    let verify = verify_body();
    let settle = settle_body();
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            return;
        };
        connections.fetch_add(1, Ordering::Relaxed);
        let (verify, settle) = (verify.clone(), settle.clone());
        tokio::spawn(async move {
            let mut buffer = Vec::with_capacity(8192);
            let mut chunk = [0u8; 8192];
            loop {
                // Read one request: headers, then Content-Length bytes of body.
                let (head_end, length) = loop {
                    if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
                        let length = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        break (end + 4, length);
                    }
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                    }
                };
                while buffer.len() < head_end + length {
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                    }
                }
                let body = if buffer.starts_with(b"POST /settle") {
                    &settle
                } else {
                    &verify
                };
                buffer.drain(..head_end + length);
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
                if stream.write_all(response.as_bytes()).await.is_err() {
                    return;
                }
            }
        });
    }
}

fn request() -> FacilitatorRequest {
    let requirement = PaymentRequirements::V2(v2::PaymentRequirements {
        scheme: "exact".into(),
        network: "eip155:84532".into(),
        amount: U256::from(10_000u64),
        asset: "0x036CbD53842c5426634e7929541eC2318f3dCF7e".into(),
        pay_to: "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC".into(),
        max_timeout_seconds: 300,
        extra: Some(serde_json::json!({"name": "USDC", "version": "2"})),
    });
    let registry = NetworkRegistry::builtin();
    let payer = LocalSigner::random();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let prepared =
        prepare_payment(&requirement, None, payer.address(), &registry, now).expect("prepare");
    let signature = payer.sign_hash(&prepared.digest());
    FacilitatorRequest::new(prepared.finish(signature.to_vec()), requirement)
}

fn http_facilitator(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let connections = Arc::new(AtomicU64::new(0));
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    runtime.spawn(serve(listener, connections.clone()));
    let facilitator = HttpFacilitator::new(base).expect("client");
    let request = request();
    let (verify, settle) = (verify_body(), settle_body());

    let mut group = c.benchmark_group("http_facilitator");
    group.bench_function("json_only", |b| {
        b.iter(|| {
            let body = serde_json::to_vec(black_box(&request)).expect("encode");
            let verified: VerifyResponse =
                serde_json::from_str(black_box(&verify)).expect("verify answer");
            let body2 = serde_json::to_vec(black_box(&request)).expect("encode");
            let settled: SettleResponse =
                serde_json::from_str(black_box(&settle)).expect("settle answer");
            black_box((body, verified, body2, settled))
        });
    });
    // Each iteration is a new payment: a fresh request, whose JSON is not written yet (the
    // client writes it once, for both calls).
    group.bench_function("verify_then_settle", |b| {
        b.iter_batched(
            || {
                FacilitatorRequest::new(
                    request.payment_payload.clone(),
                    request.payment_requirements.clone(),
                )
            },
            |request| {
                runtime.block_on(async {
                    let verified = facilitator.verify(&request).await.expect("verify");
                    assert!(verified.is_valid);
                    let settled = facilitator.settle(&request).await.expect("settle");
                    assert!(settled.success);
                    black_box(settled)
                })
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();
    eprintln!(
        "http_facilitator: the loopback facilitator accepted {} connection(s) in all",
        connections.load(Ordering::Relaxed)
    );
}

criterion_group!(benches, http_facilitator);
criterion_main!(benches);
