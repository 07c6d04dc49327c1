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

use support::{Flavor, Retrier, Target, lost_answer_then_retry};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_a_dropped_connection_reuses_the_signed_authorization() {
    for retrier in [Retrier::Caller, Retrier::LayerOutside, Retrier::LayerInside] {
        for flavor in [Flavor::Dual, Flavor::V1Only, Flavor::V2Only] {
            let server = support::spawn(flavor).await;
            let network = server.gate.registry().network("base-sepolia").unwrap();
            let target = Target {
                url: &server.url,
                ledger: server.ledger(),
                caip2: network.caip2.to_string(),
                asset: network.default_asset.address.as_evm().unwrap(),
            };
            lost_answer_then_retry(&target, "/weather", flavor.paid_version(), retrier).await;
            // The server's own log agrees with the proxy's.
            let seen = server.payments_seen();
            assert_eq!(seen.len(), 2);
            assert_eq!(seen[0], seen[1]);
        }
    }
}
