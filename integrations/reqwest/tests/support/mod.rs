//! Test support: paid servers on loopback, a signer that counts, and scenarios that take any
//! server's URL and dev ledger, so the same checks can run against the axum, actix-web and
//! Rocket integrations once they exist.
#![allow(dead_code, unreachable_pub, unused_imports)]

pub mod proxy;
pub mod server;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use reqwest_middleware::ClientBuilder;
use reqwest_retry::RetryTransientMiddleware;
use reqwest_retry::policies::ExponentialBackoff;

use reqwest_x402::{
    LocalSigner, PaymentResponseExt, PaymentSigner, PaymentStatus, SignerError, X402Middleware,
    X402MiddlewareBuilder, payment_error,
};
use x402_protocol::{Address, B256, ProtocolVersion, U256, codec, facilitator::PaymentPayload};
use x402_runtime::facilitator::DevLedger;

pub use server::{Flavor, PAY_TO, PaidServer, spawn, spawn_with};

/// A real local key that counts how often it signs.
#[derive(Debug, Clone)]
pub struct CountingSigner {
    key: LocalSigner,
    count: Arc<AtomicUsize>,
}

impl CountingSigner {
    pub fn new() -> Self {
        CountingSigner {
            key: LocalSigner::random(),
            count: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Signatures made so far.
    pub fn signed(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl PaymentSigner for CountingSigner {
    fn address(&self) -> Address {
        self.key.address()
    }

    async fn sign_digest(&self, digest: B256) -> Result<[u8; 65], SignerError> {
        self.count.fetch_add(1, Ordering::SeqCst);
        self.key.sign_digest(digest).await
    }
}

/// 0.01 USDC in atomic units.
pub const CENT: u64 = 10_000;

pub fn pay_to() -> Address {
    PAY_TO.parse().unwrap()
}

/// A middleware builder paying from `signer`.
pub fn builder(signer: &CountingSigner) -> X402MiddlewareBuilder {
    X402Middleware::builder(signer.clone())
}

/// Decodes a payment header value the way a server does.
pub fn decode_payment(value: &str) -> PaymentPayload {
    codec::decode(value, codec::DEFAULT_MAX_HEADER_BYTES).unwrap()
}

/// Any server under test: where it is and the dev ledger it settles into.
pub struct Target<'a> {
    /// Base URL, no trailing slash.
    pub url: &'a str,
    /// The ledger its embedded facilitator settles into.
    pub ledger: &'a DevLedger,
    /// CAIP-2 id and token of the paid route's network.
    pub caip2: String,
    pub asset: Address,
}

impl Target<'_> {
    pub fn balance(&self, who: Address) -> U256 {
        self.ledger.balance(&self.caip2, self.asset, who)
    }
}

/// Scenario: a funded client GETs `path` (0.01 USDC) once; the server answers 200, the client
/// reports the settled receipt in the expected generation, and exactly 0.01 USDC moved.
pub async fn pays_once(target: &Target<'_>, path: &str, version: ProtocolVersion) {
    let signer = CountingSigner::new();
    target.ledger.fund(
        &target.caip2,
        target.asset,
        signer.address(),
        U256::from(CENT * 100),
    );
    let x402 = builder(&signer).build().unwrap();
    let client = x402.client().unwrap();
    let payee_before = target.balance(pay_to());

    let response = client
        .get(format!("{}{path}", target.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{path}");
    let payment = response.payment().cloned().expect("a payment record");
    let receipt = response
        .settlement()
        .cloned()
        .expect("a settlement receipt");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["report"], "sunny");

    assert_eq!(payment.version, version);
    assert_eq!(payment.payer, signer.address());
    assert_eq!(payment.amount, U256::from(CENT));
    assert_eq!(payment.amount_display(), "0.01 USDC");
    assert_eq!(payment.attempts, 1);
    let PaymentStatus::Settled { transaction } = &payment.status else {
        panic!("not settled: {}", payment.status)
    };
    assert!(receipt.success);
    assert_eq!(&receipt.transaction, transaction);
    let transfers = target.ledger.transfers();
    let transfer = transfers
        .iter()
        .find(|t| t.key.as_str().ends_with(&format!("/{:x}", payment.nonce)))
        .expect("the ledger settled this authorization");
    assert_eq!(transfer.transaction.to_string(), *transaction);
    assert_eq!(transfer.from, signer.address());

    assert_eq!(signer.signed(), 1);
    assert_eq!(target.balance(signer.address()), U256::from(CENT * 99));
    assert_eq!(target.balance(pay_to()), payee_before + U256::from(CENT));
    let history = x402.history();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].nonce, payment.nonce);
    assert_eq!(history[0].status, payment.status);
}

/// Who sends the request again after the answer was lost.
#[derive(Debug, Clone, Copy)]
pub enum Retrier {
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
/// should pay with.
pub async fn lost_answer_then_retry(
    target: &Target<'_>,
    path: &str,
    version: ProtocolVersion,
    retrier: Retrier,
) {
    let upstream = target.url.trim_start_matches("http://").parse().unwrap();
    let proxy = proxy::spawn_drop_proxy(upstream, 1).await;
    let signer = CountingSigner::new();
    target.ledger.fund(
        &target.caip2,
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
    let nonce = decode_payment(&forwarded[0].1)
        .payload()
        .as_eip3009()
        .unwrap()
        .authorization
        .nonce;
    // Signed once, charged once.
    assert_eq!(signer.signed(), 1, "{case}");
    let charged: Vec<_> = target
        .ledger
        .transfers()
        .into_iter()
        .filter(|t| t.from == signer.address())
        .collect();
    assert_eq!(charged.len(), 1, "{case}");
    assert!(
        charged[0].key.as_str().ends_with(&format!("/{nonce:x}")),
        "{case}"
    );
    assert_eq!(
        target.balance(signer.address()),
        U256::from(99 * CENT),
        "{case}"
    );

    // The second answer: the server recognises the settled authorization and sends the kept
    // answer with its receipt; the client does not pay again.
    assert_eq!(response.status(), 200, "{case}");
    let payment = response.payment().cloned().expect("payment record");
    assert_eq!(payment.nonce, nonce, "{case}");
    let PaymentStatus::Settled { transaction } = &payment.status else {
        panic!("{case}: {}", payment.status)
    };
    assert_eq!(*transaction, charged[0].transaction.to_string(), "{case}");
    assert!(response.text().await.unwrap().contains("sunny"), "{case}");
    if let Retrier::Caller | Retrier::LayerOutside = retrier {
        assert_eq!(payment.attempts, 2, "{case}");
    }
    assert_eq!(x402.history().len(), 1, "{case}");
}
