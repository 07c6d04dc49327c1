//! Test support: paid servers on loopback, a signer that counts, and scenarios that take any
//! server's URL and dev ledger, so the same checks can run against the axum, actix-web and
//! Rocket integrations once they exist.
#![allow(dead_code, unreachable_pub, unused_imports)]

pub mod proxy;
pub mod server;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use reqwest_x402::{
    LocalSigner, PaymentResponseExt, PaymentSigner, PaymentStatus, SignerError, X402Middleware,
    X402MiddlewareBuilder,
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
    /// Chain id and token of the paid route's network.
    pub chain_id: u64,
    pub asset: Address,
}

impl Target<'_> {
    pub fn balance(&self, who: Address) -> U256 {
        self.ledger.balance(self.chain_id, self.asset, who)
    }
}

/// Scenario: a funded client GETs `path` (0.01 USDC) once; the server answers 200, the client
/// reports the settled receipt in the expected generation, and exactly 0.01 USDC moved.
pub async fn pays_once(target: &Target<'_>, path: &str, version: ProtocolVersion) {
    let signer = CountingSigner::new();
    target.ledger.fund(
        target.chain_id,
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
        .find(|t| t.nonce == payment.nonce)
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
