//! Never pay twice for one logical request: a loopback proxy in front of a real paid server
//! forwards the paid request, lets the server answer (and settle), then drops the connection
//! before the client reads the answer. Whoever retries (the caller, or a retry middleware
//! before or after the x402 one), the same authorization is sent again: one signature, one
//! charge.
//!
//! The second answer is the server's 402 `invalid_exact_evm_nonce_already_used`: the runtime
//! remembers every settled authorization (replay store, and the ledger's used nonces), so the
//! retried copy is refused rather than served. The client reports it as a rejected payment
//! and does not pay again.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use reqwest_middleware::ClientBuilder;
use reqwest_retry::RetryTransientMiddleware;
use reqwest_retry::policies::ExponentialBackoff;
use reqwest_x402::{PaymentResponseExt, PaymentSigner, PaymentStatus, payment_error};
use support::{CENT, CountingSigner, Flavor, builder, decode_payment};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use x402_protocol::U256;

/// An HTTP/1.1 proxy, one request per connection, that swallows the first `drops` answers to
/// paid requests: it forwards them, reads the server's whole answer, then closes the client's
/// connection without writing anything.
struct DropProxy {
    url: String,
    dropped: Arc<AtomicUsize>,
    _task: tokio::task::JoinHandle<()>,
}

async fn read_request(client: &mut TcpStream) -> Option<Vec<u8>> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = client.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap());
    while buffer.len() < head_end + length {
        let n = client.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    // One request per upstream connection: ask the server to close when done.
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut rewritten: String = head
        .trim_end()
        .lines()
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .map(|l| format!("{l}\r\n"))
        .collect();
    rewritten.push_str("connection: close\r\n\r\n");
    let mut out = rewritten.into_bytes();
    out.extend_from_slice(&buffer[head_end..]);
    Some(out)
}

async fn spawn_drop_proxy(upstream: SocketAddr, drops: usize) -> DropProxy {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let dropped = Arc::new(AtomicUsize::new(0));
    let remaining = Arc::new(AtomicUsize::new(drops));
    let task = tokio::spawn({
        let dropped = dropped.clone();
        async move {
            loop {
                let (mut client, _) = listener.accept().await.unwrap();
                let (dropped, remaining) = (dropped.clone(), remaining.clone());
                tokio::spawn(async move {
                    let Some(request) = read_request(&mut client).await else {
                        return;
                    };
                    let lower = String::from_utf8_lossy(&request).to_ascii_lowercase();
                    let paid = lower.contains("\r\npayment-signature:")
                        || lower.contains("\r\nx-payment:");
                    let mut server = TcpStream::connect(upstream).await.unwrap();
                    server.write_all(&request).await.unwrap();
                    let mut answer = Vec::new();
                    server.read_to_end(&mut answer).await.unwrap();
                    let drop_this = paid
                        && remaining
                            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                            .is_ok();
                    if drop_this {
                        dropped.fetch_add(1, Ordering::SeqCst);
                        return; // the server answered; the client never hears it
                    }
                    let _ = client.write_all(&answer).await;
                    let _ = client.shutdown().await;
                });
            }
        }
    });
    DropProxy {
        url,
        dropped,
        _task: task,
    }
}

#[derive(Debug, Clone, Copy)]
enum Retrier {
    /// The caller sends the same request again.
    Caller,
    /// reqwest-retry before the x402 middleware: its retry passes through x402 again.
    LayerOutside,
    /// reqwest-retry after the x402 middleware: it resends the paid request itself.
    LayerInside,
}

fn retry_layer() -> RetryTransientMiddleware<ExponentialBackoff> {
    RetryTransientMiddleware::new_with_policy(
        ExponentialBackoff::builder()
            .retry_bounds(Duration::from_millis(10), Duration::from_millis(50))
            .build_with_max_retries(2),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_a_dropped_connection_reuses_the_signed_authorization() {
    for retrier in [Retrier::Caller, Retrier::LayerOutside, Retrier::LayerInside] {
        for flavor in [Flavor::Dual, Flavor::V1Only] {
            let server = support::spawn(flavor).await;
            let upstream: SocketAddr = server.url.trim_start_matches("http://").parse().unwrap();
            let proxy = spawn_drop_proxy(upstream, 1).await;
            let signer = CountingSigner::new();
            server.fund(signer.address(), 100 * CENT);
            let x402 = builder(&signer).build().unwrap();
            let inner = reqwest::Client::new();
            let client = match retrier {
                Retrier::Caller => x402.wrap(inner),
                Retrier::LayerOutside => ClientBuilder::new(inner)
                    .with(retry_layer())
                    .with(x402.clone())
                    .build(),
                Retrier::LayerInside => ClientBuilder::new(inner)
                    .with(x402.clone())
                    .with(retry_layer())
                    .build(),
            };
            let url = format!("{}/weather", proxy.url);
            let case = format!("{retrier:?} / {flavor:?}");

            let response = match retrier {
                Retrier::Caller => {
                    let error = client.get(&url).send().await.expect_err(&case);
                    assert!(
                        payment_error(&error).is_none(),
                        "{case}: a transport error: {error}"
                    );
                    // The payment is recorded as sent, fate unknown.
                    assert_eq!(x402.history()[0].status, PaymentStatus::Sent, "{case}");
                    client.get(&url).send().await.unwrap()
                }
                Retrier::LayerOutside | Retrier::LayerInside => {
                    client.get(&url).send().await.unwrap()
                }
            };
            assert_eq!(proxy.dropped.load(Ordering::SeqCst), 1, "{case}");

            // The server saw the identical authorization twice.
            let seen = server.payments_seen();
            assert_eq!(seen.len(), 2, "{case}");
            assert_eq!(seen[0], seen[1], "{case}");
            let nonce = decode_payment(&seen[0].1).exact().authorization.nonce;
            assert_eq!(seen[0].0, flavor.paid_version().payment_header(), "{case}");
            // Signed once, charged once.
            assert_eq!(signer.signed(), 1, "{case}");
            let transfers = server.ledger().transfers();
            assert_eq!(transfers.len(), 1, "{case}");
            assert_eq!(transfers[0].nonce, nonce, "{case}");
            assert_eq!(
                server.balance("base-sepolia", signer.address()),
                U256::from(99 * CENT),
                "{case}"
            );

            // The second answer: the server refuses the replayed copy.
            assert_eq!(response.status(), 402, "{case}");
            let payment = response.payment().cloned().expect("payment record");
            assert_eq!(payment.nonce, nonce, "{case}");
            let PaymentStatus::Rejected { reason, message } = &payment.status else {
                panic!("{case}: {}", payment.status)
            };
            assert_eq!(reason, "invalid_exact_evm_nonce_already_used", "{case}");
            if flavor == Flavor::V1Only {
                // The v1 body carries the server's explanation too.
                let message = message.as_deref().unwrap_or_default();
                assert!(message.contains("already used"), "{case}: {message}");
            }
            if let Retrier::Caller | Retrier::LayerOutside = retrier {
                assert_eq!(payment.attempts, 2, "{case}");
            }
            assert_eq!(x402.history().len(), 1, "{case}");
        }
    }
}
