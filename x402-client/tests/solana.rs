//! The payer's side of Solana offers with a stand-in signer (no transaction is built here:
//! x402-svm's tests pay with the real `SolanaWallet` and verify with `ExactSvm`): which key
//! pays which offer, the approval hook and the record naming Solana addresses, the payload's
//! shape in v1 and v2, and a signer that fails giving the budget back.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};
use x402_client::{
    Approval, Challenge, LocalSigner, Payer, PaymentProposal, RefusalReason, SignerError,
    SolanaPaymentSigner, SolanaSignedPayment, X402Error,
};
use x402_protocol::facilitator::PaymentRequirements;
use x402_protocol::{B256, ChainAddress, Family, NetworkRegistry, SolanaAddress, SvmPayload};

const PAYER: SolanaAddress =
    SolanaAddress::from_base58_const("AKnL4NNf3DGWZJS6cPknBuEGnVsV4A4m5tgebLHaRSZ9");
const PAY_TO: &str = "GyGKxMyg1p9SsHfm15MkNUu1u9TN2JtTspcdmrtGUdse";

/// Signs nothing real: answers a fixed payload, or fails, and counts calls.
struct StandIn {
    calls: AtomicUsize,
    fail: bool,
}

impl StandIn {
    fn new(fail: bool) -> Arc<Self> {
        Arc::new(StandIn {
            calls: AtomicUsize::new(0),
            fail,
        })
    }
}

#[async_trait::async_trait]
impl SolanaPaymentSigner for StandIn {
    fn address(&self) -> SolanaAddress {
        PAYER
    }

    async fn sign_payment(
        &self,
        requirements: &PaymentRequirements,
        _registry: &NetworkRegistry,
    ) -> Result<SolanaSignedPayment, SignerError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.fail {
            return Err(SignerError("the RPC node is down".into()));
        }
        Ok(SolanaSignedPayment {
            payload: SvmPayload {
                transaction: format!("tx-for-{}", requirements.amount()),
            },
            id: B256::repeat_byte(7),
        })
    }
}

fn svm_entry(amount: &str) -> Value {
    json!({
        "scheme": "exact", "network": "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1",
        "amount": amount, "asset": "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU",
        "payTo": PAY_TO, "maxTimeoutSeconds": 300,
        "extra": { "feePayer": "9hSR6S7WPtxmTojgo6GG3k4yDPecgJY292j7xrsUGWBu", "future": [1, 2] }
    })
}

fn evm_entry(amount: &str) -> Value {
    json!({
        "scheme": "exact", "network": "eip155:84532", "amount": amount,
        "asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
        "payTo": "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC", "maxTimeoutSeconds": 300,
        "extra": { "name": "USDC", "version": "2" }
    })
}

fn v2(accepts: Vec<Value>) -> Challenge {
    Challenge::from_json(&json!({
        "x402Version": 2, "resource": { "url": "https://a.test/r" }, "accepts": accepts
    }))
    .unwrap()
}

#[tokio::test]
async fn the_solana_key_pays_solana_offers_and_the_evm_key_evm_ones() {
    let signer = StandIn::new(false);
    let solana_only = Payer::solana_builder(signer.clone()).build().unwrap();
    let evm_only = Payer::builder(LocalSigner::random()).build().unwrap();
    let both = Payer::builder(LocalSigner::random())
        .solana(signer.clone())
        .build()
        .unwrap();
    let offers = v2(vec![evm_entry("5000"), svm_entry("10000")]);

    let paid = solana_only
        .pay("GET", "https://a.test/r", &offers)
        .await
        .unwrap();
    assert_eq!(paid.payload()["accepted"], svm_entry("10000"));
    assert_eq!(
        paid.payload()["payload"],
        json!({"transaction": "tx-for-10000"})
    );
    assert_eq!(paid.record.payer, ChainAddress::Solana(PAYER));
    assert_eq!(paid.record.nonce, B256::repeat_byte(7));

    let paid = evm_only
        .pay("GET", "https://a.test/r", &offers)
        .await
        .unwrap();
    assert_eq!(paid.payload()["accepted"]["network"], "eip155:84532");

    // Both keys: the cheaper (EVM) offer, then the Solana one when it is cheaper.
    let paid = both.pay("GET", "https://a.test/r", &offers).await.unwrap();
    assert_eq!(paid.payload()["accepted"]["network"], "eip155:84532");
    let cheaper_on_solana = v2(vec![evm_entry("50000"), svm_entry("10000")]);
    let paid = both
        .pay("GET", "https://a.test/r", &cheaper_on_solana)
        .await
        .unwrap();
    assert_eq!(paid.record.payer, ChainAddress::Solana(PAYER));
    assert_eq!(signer.calls.load(Ordering::SeqCst), 2);

    let error = evm_only
        .pay("GET", "https://a.test/r", &v2(vec![svm_entry("1")]))
        .await
        .unwrap_err();
    let X402Error::NoPayableOffer { refusals, .. } = error else {
        panic!("paid");
    };
    assert_eq!(refusals[0].reason, RefusalReason::NoSigner(Family::Solana));
}

#[tokio::test]
async fn the_hook_sees_solana_addresses_and_v1_payloads_carry_the_transaction() {
    let payer = Payer::solana_builder(StandIn::new(false))
        .approve(|proposal: PaymentProposal| async move {
            if proposal.pay_to.to_string() == PAY_TO && proposal.amount_display() == "0.01 USDC" {
                Approval::Approve
            } else {
                Approval::Refuse(format!("unexpected {}", proposal.pay_to))
            }
        })
        .build()
        .unwrap();
    let mut entry = svm_entry("10000");
    entry["network"] = json!("solana-devnet");
    entry["maxAmountRequired"] = entry["amount"].take();
    entry["resource"] = json!("https://a.test/r");
    entry["description"] = json!("");
    entry["mimeType"] = json!("text/plain");
    let challenge = Challenge::from_json(&json!({"x402Version": 1, "accepts": [entry]})).unwrap();
    let paid = payer
        .pay("GET", "https://a.test/r", &challenge)
        .await
        .unwrap();
    assert_eq!(paid.header_name(), "x-payment");
    assert_eq!(
        paid.payload(),
        &json!({
            "x402Version": 1, "scheme": "exact", "network": "solana-devnet",
            "payload": {"transaction": "tx-for-10000"}
        })
    );
    assert_eq!(paid.record.pay_to.to_string(), PAY_TO);
    assert!(paid.record.valid_before <= x402_client::unix_now() + 60);
}

#[tokio::test]
async fn a_failing_solana_signer_gives_the_budget_back() {
    let payer = Payer::solana_builder(StandIn::new(true))
        .budget("$0.05")
        .build()
        .unwrap();
    let error = payer
        .pay("GET", "https://a.test/r", &v2(vec![svm_entry("10000")]))
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("the RPC node is down"),
        "{error}"
    );
    assert_eq!(payer.remaining_budget()[0].1, "$0.05");
    assert!(payer.history().is_empty());
}
