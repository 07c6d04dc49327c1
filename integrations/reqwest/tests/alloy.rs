//! Any alloy signer pays through `AlloySigner`; a signer that signs for another address is
//! caught before anything is sent.

use crate::support;

use alloy_signer_local::PrivateKeySigner;
use reqwest_x402::{
    AlloySigner, PaymentResponseExt, PaymentSigner, PaymentStatus, X402Error, X402Middleware,
    payment_error,
};
use support::{CENT, Flavor};
use x402_protocol::{Address, B256, U256};

#[tokio::test]
async fn an_alloy_signer_pays() {
    let server = support::spawn(Flavor::Dual).await;
    let wallet = PrivateKeySigner::random();
    let payer = wallet.address();
    server.fund(payer, 100 * CENT);
    let x402 = X402Middleware::builder(AlloySigner(wallet))
        .build()
        .unwrap();
    assert_eq!(x402.address(), payer);
    let response = x402
        .client()
        .unwrap()
        .get(format!("{}/weather", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let payment = response.payment().unwrap();
    assert!(matches!(payment.status, PaymentStatus::Settled { .. }));
    assert_eq!(payment.payer, payer);
    assert_eq!(server.balance("base-sepolia", payer), U256::from(99 * CENT));
}

/// Claims one address, signs with another key.
struct Impostor {
    claimed: Address,
    key: PrivateKeySigner,
}

#[async_trait::async_trait]
impl PaymentSigner for Impostor {
    fn address(&self) -> Address {
        self.claimed
    }
    async fn sign_digest(&self, digest: B256) -> Result<[u8; 65], reqwest_x402::SignerError> {
        AlloySigner(self.key.clone()).sign_digest(digest).await
    }
}

#[tokio::test]
async fn a_signature_for_someone_else_is_not_sent() {
    let server = support::spawn(Flavor::Dual).await;
    let signer = Impostor {
        claimed: Address::repeat_byte(7),
        key: PrivateKeySigner::random(),
    };
    let client = X402Middleware::builder(signer)
        .build()
        .unwrap()
        .client()
        .unwrap();
    let error = client
        .get(format!("{}/weather", server.url))
        .send()
        .await
        .unwrap_err();
    assert!(
        matches!(payment_error(&error), Some(X402Error::BadSignature { .. })),
        "{error}"
    );
    assert!(server.payments_seen().is_empty());
}
