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

use std::sync::atomic::Ordering;
use std::time::Duration;

use reqwest_middleware::ClientBuilder;
use reqwest_retry::RetryTransientMiddleware;
use reqwest_retry::policies::ExponentialBackoff;
use reqwest_x402::{PaymentResponseExt, PaymentSigner, PaymentStatus, payment_error};
use support::proxy::spawn_drop_proxy;
use support::{CENT, CountingSigner, Flavor, Target, builder, decode_payment};
use x402_protocol::{ProtocolVersion, U256};

/// Who sends the request again after the answer was lost.
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

/// The scenario, against any paid server: `target.url` + `path` costs 0.01 USDC on the
/// target's chain and settles into `target.ledger`; `version` is the generation the client
/// should pay with, `explains` whether the server's 402 body carries a `message`.
async fn lost_answer_then_retry(
    target: &Target<'_>,
    path: &str,
    version: ProtocolVersion,
    explains: bool,
    retrier: Retrier,
) {
    let upstream = target.url.trim_start_matches("http://").parse().unwrap();
    let proxy = spawn_drop_proxy(upstream, 1).await;
    let signer = CountingSigner::new();
    target.ledger.fund(
        target.chain_id,
        target.asset,
        signer.address(),
        U256::from(100 * CENT),
    );
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
    let url = format!("{}{path}", proxy.url);
    let case = format!("{retrier:?} / {version} / {url}");

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
        Retrier::LayerOutside | Retrier::LayerInside => client.get(&url).send().await.unwrap(),
    };
    assert_eq!(proxy.dropped.load(Ordering::SeqCst), 1, "{case}");

    // The server received the identical authorization twice.
    let forwarded = proxy.forwarded.lock().unwrap().clone();
    assert_eq!(forwarded.len(), 2, "{case}");
    assert_eq!(forwarded[0], forwarded[1], "{case}");
    assert_eq!(forwarded[0].0, version.payment_header(), "{case}");
    let nonce = decode_payment(&forwarded[0].1).exact().authorization.nonce;
    // Signed once, charged once.
    assert_eq!(signer.signed(), 1, "{case}");
    let charged: Vec<_> = target
        .ledger
        .transfers()
        .into_iter()
        .filter(|t| t.from == signer.address())
        .collect();
    assert_eq!(charged.len(), 1, "{case}");
    assert_eq!(charged[0].nonce, nonce, "{case}");
    assert_eq!(
        target.balance(signer.address()),
        U256::from(99 * CENT),
        "{case}"
    );

    // The second answer: the server refuses the replayed copy, and the client does not pay
    // again.
    assert_eq!(response.status(), 402, "{case}");
    let payment = response.payment().cloned().expect("payment record");
    assert_eq!(payment.nonce, nonce, "{case}");
    let PaymentStatus::Rejected { reason, message } = &payment.status else {
        panic!("{case}: {}", payment.status)
    };
    assert_eq!(reason, "invalid_exact_evm_nonce_already_used", "{case}");
    if explains {
        let message = message.as_deref().unwrap_or_default();
        assert!(message.contains("already used"), "{case}: {message}");
    }
    if let Retrier::Caller | Retrier::LayerOutside = retrier {
        assert_eq!(payment.attempts, 2, "{case}");
    }
    assert_eq!(x402.history().len(), 1, "{case}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_a_dropped_connection_reuses_the_signed_authorization() {
    for retrier in [Retrier::Caller, Retrier::LayerOutside, Retrier::LayerInside] {
        for flavor in [Flavor::Dual, Flavor::V1Only, Flavor::V2Only] {
            let server = support::spawn(flavor).await;
            let network = server.gate.registry().network("base-sepolia").unwrap();
            let target = Target {
                url: &server.url,
                ledger: server.ledger(),
                chain_id: network.chain_id,
                asset: network.default_asset.address,
            };
            let explains = flavor != Flavor::V2Only; // a v2 402 body is `{}`
            lost_answer_then_retry(
                &target,
                "/weather",
                flavor.paid_version(),
                explains,
                retrier,
            )
            .await;
            // The server's own log agrees with the proxy's.
            let seen = server.payments_seen();
            assert_eq!(seen.len(), 2);
            assert_eq!(seen[0], seen[1]);
        }
    }
}
