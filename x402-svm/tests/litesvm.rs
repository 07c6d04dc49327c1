//! Settlement on a real SVM: LiteSVM runs the real SPL Token and Associated Token Account
//! programs; the embedded facilitator verifies with `ExactSvm` and settles with `SvmSettler`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use serde_json::json;
use solana_address::Address;
use solana_hash::Hash;
use solana_keypair::Keypair;
use solana_signature::Signature;
use solana_signer::Signer as _;
use solana_transaction::versioned::VersionedTransaction;
use x402_protocol::facilitator::{FacilitatorRequest, PaymentPayload, PaymentRequirements};
use x402_protocol::verify::VerifiedPayment;
use x402_protocol::{NetworkRegistry, U256};
use x402_runtime::facilitator::{EmbeddedFacilitator, Facilitator, SettleOutcome, Settler};
use x402_runtime::scheme::{Scheme as _, Schemes};
use x402_svm::programs::TOKEN;
use x402_svm::{
    ChainError, ExactSvm, LiteSvmChain, MintInfo, SvmChain, SvmSettler, SvmTerms,
    TransactionStatus, build_payment,
};

const DEVNET: &str = "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1";
const USDC_DEVNET: &str = "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU";
const PRICE: u64 = 10_000;

struct World {
    chain: Arc<LiteSvmChain>,
    mint: Address,
    payer: Keypair,
    pay_to: Address,
    fee_payer: Keypair,
}

fn world() -> World {
    let chain = Arc::new(LiteSvmChain::new());
    let mint: Address = USDC_DEVNET.parse().unwrap();
    chain.install_mint(mint, 6, TOKEN);
    let payer = Keypair::new();
    let pay_to = Keypair::new().pubkey();
    let fee_payer = Keypair::new();
    chain.fund(&payer.pubkey(), &mint, 1_000_000).unwrap();
    // The recipient's token account exists (payers do not create it).
    chain.fund(&pay_to, &mint, 0).unwrap();
    chain.airdrop(&fee_payer.pubkey(), 1_000_000_000).unwrap();
    World {
        chain,
        mint,
        payer,
        pay_to,
        fee_payer,
    }
}

fn facilitator(settler: Arc<dyn Settler>) -> EmbeddedFacilitator {
    let mut schemes = Schemes::default();
    schemes.add(Arc::new(ExactSvm));
    EmbeddedFacilitator::builder()
        .schemes(schemes)
        .settler(settler)
        .build()
}

fn requirements(w: &World, fee_payer: &Address) -> PaymentRequirements {
    serde_json::from_value(json!({
        "scheme": "exact",
        "network": DEVNET,
        "amount": PRICE.to_string(),
        "asset": USDC_DEVNET,
        "payTo": w.pay_to.to_string(),
        "maxTimeoutSeconds": 60,
        "extra": {"feePayer": fee_payer.to_string()},
    }))
    .map(PaymentRequirements::V2)
    .unwrap()
}

fn request(w: &World, requirements: &PaymentRequirements, blockhash: Hash) -> FacilitatorRequest {
    let terms = SvmTerms::resolve(requirements, &NetworkRegistry::builtin()).unwrap();
    let transaction = build_payment(&terms, &w.payer, blockhash, None).unwrap();
    let PaymentRequirements::V2(entry) = requirements else {
        unreachable!()
    };
    let payload: PaymentPayload = serde_json::from_value(json!({
        "x402Version": 2,
        "accepted": entry,
        "payload": {"transaction": x402_svm::wire::encode_transaction(&transaction)},
    }))
    .unwrap();
    FacilitatorRequest::new(payload, requirements.clone())
}

#[tokio::test]
async fn a_payment_settles_on_litesvm_moving_exactly_the_price_once() {
    let w = world();
    let settler = SvmSettler::new(w.chain.clone(), DEVNET, w.fee_payer.insecure_clone());
    let facilitator = facilitator(Arc::new(settler));
    let requirements = requirements(&w, &w.fee_payer.pubkey());
    let blockhash = w.chain.latest_blockhash().await.unwrap();
    let request = request(&w, &requirements, blockhash);
    let fees_before = w.chain.lamports(&w.fee_payer.pubkey());

    let verified = facilitator.verify(&request).await.unwrap();
    assert!(verified.is_valid, "{verified:?}");
    assert_eq!(
        verified.payer.as_deref(),
        Some(&*w.payer.pubkey().to_string())
    );

    let settled = facilitator.settle(&request).await.unwrap();
    assert!(settled.success, "{settled:?}");
    let signature: Signature = settled.transaction.parse().unwrap();
    assert_eq!(
        w.chain.status(&signature).await.unwrap(),
        Some(TransactionStatus::Succeeded)
    );
    assert_eq!(
        w.chain.token_balance(&w.payer.pubkey(), &w.mint),
        Some(1_000_000 - PRICE)
    );
    assert_eq!(w.chain.token_balance(&w.pay_to, &w.mint), Some(PRICE));
    assert!(
        w.chain.lamports(&w.fee_payer.pubkey()) < fees_before,
        "the fee payer paid the fee"
    );

    // The same transaction again: the chain refuses to run it twice, and nothing moves.
    let again = facilitator.verify(&request).await.unwrap();
    assert!(!again.is_valid);
    assert_eq!(
        again.invalid_reason.as_deref(),
        Some(x402_svm::SIMULATION_FAILED)
    );
    let settled_again = facilitator.settle(&request).await.unwrap();
    assert!(!settled_again.success, "{settled_again:?}");
    assert_eq!(w.chain.token_balance(&w.pay_to, &w.mint), Some(PRICE));
    assert_eq!(
        w.chain.token_balance(&w.payer.pubkey(), &w.mint),
        Some(1_000_000 - PRICE)
    );
}

#[tokio::test]
async fn a_payer_without_funds_is_refused_by_simulation_before_anything_is_sent() {
    let w = world();
    let broke = Keypair::new();
    w.chain.fund(&broke.pubkey(), &w.mint, PRICE - 1).unwrap();
    let settler = SvmSettler::new(w.chain.clone(), DEVNET, w.fee_payer.insecure_clone());
    let facilitator = facilitator(Arc::new(settler));
    let requirements = requirements(&w, &w.fee_payer.pubkey());
    let w2 = World { payer: broke, ..w };
    let request = request(
        &w2,
        &requirements,
        w2.chain.latest_blockhash().await.unwrap(),
    );
    let verified = facilitator.verify(&request).await.unwrap();
    assert_eq!(
        verified.invalid_reason.as_deref(),
        Some(x402_svm::SIMULATION_FAILED)
    );
    let settled = facilitator.settle(&request).await.unwrap();
    assert!(!settled.success);
    assert_eq!(w2.chain.token_balance(&w2.pay_to, &w2.mint), Some(0));
}

#[tokio::test]
async fn a_fee_payer_this_facilitator_does_not_hold_is_refused() {
    let w = world();
    let settler = SvmSettler::new(w.chain.clone(), DEVNET, w.fee_payer.insecure_clone());
    let facilitator = facilitator(Arc::new(settler));
    let stranger = Keypair::new().pubkey();
    let requirements = requirements(&w, &stranger);
    let request = request(&w, &requirements, w.chain.latest_blockhash().await.unwrap());
    let verified = facilitator.verify(&request).await.unwrap();
    assert_eq!(
        verified.invalid_reason.as_deref(),
        Some(x402_svm::FEE_PAYER_NOT_MANAGED)
    );
}

/// A chain whose answers to `send` are lost: after sending (`deliver`) or before.
struct LossyChain {
    inner: Arc<LiteSvmChain>,
    deliver: AtomicBool,
}

#[async_trait]
impl SvmChain for LossyChain {
    async fn latest_blockhash(&self) -> Result<Hash, ChainError> {
        self.inner.latest_blockhash().await
    }
    async fn is_blockhash_valid(&self, blockhash: &Hash) -> Result<bool, ChainError> {
        self.inner.is_blockhash_valid(blockhash).await
    }
    async fn simulate(&self, transaction: &VersionedTransaction) -> Result<(), ChainError> {
        self.inner.simulate(transaction).await
    }
    async fn send(&self, transaction: &VersionedTransaction) -> Result<Signature, ChainError> {
        if self.deliver.load(Ordering::SeqCst) {
            self.inner.send(transaction).await?;
        }
        Err(ChainError::NoAnswer("connection reset".to_owned()))
    }
    async fn status(&self, signature: &Signature) -> Result<Option<TransactionStatus>, ChainError> {
        self.inner.status(signature).await
    }
    async fn mint(&self, mint: &Address) -> Result<Option<MintInfo>, ChainError> {
        self.inner.mint(mint).await
    }
}

/// A payment whose settlement was sent through a [`LossyChain`] and came back unknown.
struct Lost {
    w: World,
    settler: SvmSettler<LossyChain>,
    verified: VerifiedPayment,
    request: FacilitatorRequest,
    transaction: Option<String>,
}

impl Lost {
    async fn new(deliver: bool) -> Lost {
        let w = world();
        let lossy = LossyChain {
            inner: w.chain.clone(),
            deliver: AtomicBool::new(deliver),
        };
        let settler = SvmSettler::new(lossy, DEVNET, w.fee_payer.insecure_clone());
        let requirements = requirements(&w, &w.fee_payer.pubkey());
        let request = request(&w, &requirements, w.chain.latest_blockhash().await.unwrap());
        let verified = ExactSvm
            .verify(
                &request.payment_payload,
                &request.payment_requirements,
                &NetworkRegistry::builtin(),
                0,
            )
            .expect("the payment verifies");
        let outcome = settler
            .settle(&verified, &request.payment_payload, verified.amount)
            .await;
        let SettleOutcome::Unknown { transaction, .. } = outcome else {
            panic!("a send without an answer is unknown, not {outcome:?}");
        };
        assert!(
            transaction.is_some(),
            "the signature is known before sending"
        );
        Lost {
            w,
            settler,
            verified,
            request,
            transaction,
        }
    }

    async fn resolve(&self) -> SettleOutcome {
        self.settler
            .resolve(
                &self.verified,
                &self.request.payment_payload,
                self.transaction.as_deref(),
            )
            .await
    }
}

#[tokio::test]
async fn a_lost_answer_after_sending_is_unknown_then_resolved_as_settled() {
    let lost = Lost::new(true).await;
    let resolved = lost.resolve().await;
    assert!(
        matches!(&resolved, SettleOutcome::Settled { amount, transaction } if *amount == U256::from(PRICE) && Some(transaction) == lost.transaction.as_ref()),
        "{resolved:?}"
    );
    assert_eq!(
        lost.w.chain.token_balance(&lost.w.pay_to, &lost.w.mint),
        Some(PRICE)
    );
}

#[tokio::test]
async fn a_transaction_that_never_landed_stays_unknown_until_its_blockhash_expires() {
    let lost = Lost::new(false).await;
    let resolved = lost.resolve().await;
    assert!(
        matches!(resolved, SettleOutcome::Unknown { .. }),
        "the blockhash is still valid, so it may still land: {resolved:?}"
    );
    lost.w.chain.with(|svm| svm.expire_blockhash());
    let resolved = lost.resolve().await;
    assert!(
        matches!(resolved, SettleOutcome::Failed(_)),
        "expired and unknown to the chain: it can never land, {resolved:?}"
    );
    assert_eq!(
        lost.w.chain.token_balance(&lost.w.pay_to, &lost.w.mint),
        Some(0)
    );
}

/// A token registered by its operator, under Token-2022 with 9 decimals: the price resolves
/// to its mint and decimals, and the real Token-2022 program moves it.
#[tokio::test]
async fn a_registered_token_2022_mint_is_paid_and_moved_by_the_token_2022_program() {
    use x402_protocol::{AssetInfo, Price, SolanaAddress};
    use x402_svm::programs::TOKEN_2022;

    let w = world();
    let mint = Keypair::new().pubkey();
    w.chain.install_mint(mint, 9, TOKEN_2022);
    w.chain
        .fund(&w.payer.pubkey(), &mint, 5_000_000_000)
        .unwrap();
    w.chain.fund(&w.pay_to, &mint, 0).unwrap();
    let mut registry = NetworkRegistry::builtin();
    registry
        .register_asset(
            "solana-devnet",
            AssetInfo::spl(
                SolanaAddress(mint.to_bytes()),
                "PYX",
                9,
                SolanaAddress(TOKEN_2022.to_bytes()),
                false,
            ),
        )
        .unwrap();
    let network = registry.network("solana-devnet").unwrap().clone();
    let price: Price = "1.5 PYX".parse().unwrap();
    let resolved = registry.resolve_price(&price, &network, None).unwrap();
    assert_eq!(resolved.amount, U256::from(1_500_000_000u64), "9 decimals");
    assert_eq!(resolved.asset.address.to_string(), mint.to_string());

    let mut schemes = Schemes::default();
    schemes.add(Arc::new(ExactSvm));
    let registry = Arc::new(registry);
    let facilitator = EmbeddedFacilitator::builder()
        .registry(registry.clone())
        .schemes(schemes)
        .settler(Arc::new(SvmSettler::new(
            w.chain.clone(),
            DEVNET,
            w.fee_payer.insecure_clone(),
        )))
        .build();
    let requirements: PaymentRequirements = serde_json::from_value(json!({
        "scheme": "exact",
        "network": DEVNET,
        "amount": "1500000000",
        "asset": mint.to_string(),
        "payTo": w.pay_to.to_string(),
        "maxTimeoutSeconds": 60,
        "extra": {"feePayer": w.fee_payer.pubkey().to_string()},
    }))
    .map(PaymentRequirements::V2)
    .unwrap();
    let terms = SvmTerms::resolve(&requirements, &registry).unwrap();
    assert_eq!((terms.token_program, terms.decimals), (TOKEN_2022, 9));
    let transaction = build_payment(
        &terms,
        &w.payer,
        w.chain.latest_blockhash().await.unwrap(),
        None,
    )
    .unwrap();
    let PaymentRequirements::V2(entry) = &requirements else {
        unreachable!()
    };
    let payload: PaymentPayload = serde_json::from_value(json!({
        "x402Version": 2,
        "accepted": entry,
        "payload": {"transaction": x402_svm::wire::encode_transaction(&transaction)},
    }))
    .unwrap();
    let request = FacilitatorRequest::new(payload, requirements);
    let settled = facilitator.settle(&request).await.unwrap();
    assert!(settled.success, "{settled:?}");
    assert_eq!(w.chain.token_balance(&w.pay_to, &mint), Some(1_500_000_000));
    assert_eq!(
        w.chain.token_balance(&w.payer.pubkey(), &mint),
        Some(3_500_000_000)
    );
}
