//! Load benchmark on loopback: requests per second for an unpaid route, the 402 challenge of a
//! paid route, and paid requests verified and settled by the embedded facilitator, in one run,
//! with ratios against the unpaid route.
//!
//! ```sh
//! cargo run --release -p x402-examples --bin loadtest
//! cargo run --release -p x402-examples --features secp256k1 --bin loadtest -- --seconds 10
//! ```
//!
//! The server and the load generator run in separate tokio runtimes of `--server-threads` and
//! `--client-threads` workers (1 each by default, so on a 2-core machine each has a core).
//! Paid requests use authorizations signed before the clock starts, so the client's signing
//! cost is not measured.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::{Json, Router, routing::get};
use axum_x402::{Payment, X402, paid};
use serde_json::{Value, json};
use x402_protocol::client::sign_payment;
use x402_protocol::eip3009::LocalSigner;
use x402_protocol::facilitator::PaymentRequirements;
use x402_protocol::{NetworkRegistry, U256, codec, v2};

type Error = Box<dyn std::error::Error + Send + Sync>;

#[paid(
    price = "0.01 USDC",
    network = "base-sepolia",
    description = "Current weather"
)]
async fn weather(payment: Payment) -> Json<Value> {
    Json(json!({"forecast": "sunny", "paid_by": payment.payer().to_string()}))
}

async fn free() -> Json<Value> {
    Json(json!({"forecast": "sunny", "paid_by": null}))
}

struct Options {
    seconds: f64,
    connections: usize,
    server_threads: usize,
    client_threads: usize,
    paid_requests: usize,
}

fn options() -> Result<Options, Error> {
    let mut options = Options {
        seconds: 5.0,
        connections: 32,
        server_threads: 1,
        client_threads: 1,
        paid_requests: 4_000,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--seconds" => options.seconds = value.parse()?,
            "--connections" => options.connections = value.parse()?,
            "--server-threads" => options.server_threads = value.parse()?,
            "--client-threads" => options.client_threads = value.parse()?,
            "--paid-requests" => options.paid_requests = value.parse()?,
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    Ok(options)
}

/// Sends requests from `connections` concurrent workers; each worker takes the next header
/// from `headers` (if any) and stops at `deadline` or when headers run out. Returns the number
/// of answers with `expect` status and the elapsed time.
async fn load(
    client: reqwest::Client,
    url: String,
    expect: u16,
    connections: usize,
    deadline: Duration,
    headers: Option<Arc<Vec<String>>>,
) -> Result<(usize, Duration), Error> {
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..connections)
        .map(|_| {
            let (client, url, next, done, headers) = (
                client.clone(),
                url.clone(),
                next.clone(),
                done.clone(),
                headers.clone(),
            );
            tokio::spawn(async move {
                while started.elapsed() < deadline {
                    let mut request = client.get(&url);
                    if let Some(headers) = &headers {
                        let Some(header) = headers.get(next.fetch_add(1, Ordering::Relaxed)) else {
                            break;
                        };
                        request = request.header("payment-signature", header);
                    }
                    let response = request.send().await?;
                    let status = response.status().as_u16();
                    response.bytes().await?;
                    if status != expect {
                        return Err::<(), Error>(
                            format!("{url}: expected {expect}, got {status}").into(),
                        );
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            })
        })
        .collect();
    for worker in workers {
        worker.await??;
    }
    Ok((done.load(Ordering::Relaxed), started.elapsed()))
}

fn main() -> Result<(), Error> {
    let options = options()?;
    let server = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(options.server_threads)
        .enable_all()
        .build()?;
    let client_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(options.client_threads)
        .enable_all()
        .build()?;

    // The server: embedded facilitator, the payer funded for every paid request.
    let payer = LocalSigner::random();
    let x402: X402 = X402::builder()
        .embedded_facilitator()
        .pay_to("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC")
        .build()?;
    let registry = NetworkRegistry::builtin();
    let network = registry.network("base-sepolia")?;
    if let Some(ledger) = x402.gate().dev_ledger() {
        ledger.fund(
            &network.caip2,
            network.default_asset.address,
            payer.address(),
            U256::from(u64::MAX),
        );
    }
    let app = Router::new()
        .route("/free", get(free))
        .route("/weather", get(weather))
        .layer(x402.layer());
    let listener = server.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let base = format!("http://{}", listener.local_addr()?);
    server.spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    client_runtime.block_on(async {
        let client = reqwest::Client::builder().pool_max_idle_per_host(options.connections).build()?;
        let deadline = Duration::from_secs_f64(options.seconds);
        let warmup = Duration::from_millis(500);

        // Pre-sign the paid requests against the route's real challenge.
        let challenge = client.get(format!("{base}/weather")).send().await?;
        let header = challenge.headers().get("payment-required").ok_or("no PAYMENT-REQUIRED")?.to_str()?.to_owned();
        let required: v2::PaymentRequired = codec::decode(&header, codec::DEFAULT_MAX_HEADER_BYTES)?;
        let requirement = PaymentRequirements::V2(required.accepts[0].clone());
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
        let headers: Vec<String> = (0..options.paid_requests)
            .map(|_| sign_payment(&requirement, required.resource.as_ref(), &payer, &registry, now).map(|p| codec::encode(&p)))
            .collect::<Result<_, _>>()?;
        let headers = Arc::new(headers);

        println!(
            "loopback load: {} connections, server {} thread(s), client {} thread(s), {} s per phase, signature backend {:?}",
            options.connections,
            options.server_threads,
            options.client_threads,
            options.seconds,
            x402_protocol::eip3009::RecoveryBackend::default()
        );
        let mut rows = Vec::new();
        for (name, path, expect, paid) in [
            ("unpaid route", "/free", 200, false),
            ("402 challenge", "/weather", 402, false),
            ("paid (verify + settle)", "/weather", 200, true),
        ] {
            let url = format!("{base}{path}");
            if !paid {
                load(client.clone(), url.clone(), expect, options.connections, warmup, None).await?;
            }
            let (count, elapsed) = load(
                client.clone(),
                url,
                expect,
                options.connections,
                deadline,
                paid.then(|| headers.clone()),
            )
            .await?;
            rows.push((name, count, elapsed, count as f64 / elapsed.as_secs_f64()));
        }
        let baseline = rows[0].3;
        println!("{:<24} {:>9} {:>9} {:>10} {:>8}", "scenario", "requests", "seconds", "req/s", "ratio");
        for (name, count, elapsed, rate) in &rows {
            println!(
                "{name:<24} {count:>9} {:>9.2} {rate:>10.0} {:>8.3}",
                elapsed.as_secs_f64(),
                rate / baseline
            );
        }
        Ok::<(), Error>(())
    })?;
    Ok(())
}
