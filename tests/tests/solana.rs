//! Solana `exact` on every framework, settled on a real SVM: LiteSVM (the real SPL Token and
//! Associated Token Account programs) behind a JSON-RPC endpoint on loopback, a facilitator
//! over HTTP that co-signs as fee payer through `x402_svm::SvmSettler<RpcChain>`, and payers
//! that build their transaction against the same endpoint. USDC balances on the SVM move by
//! exactly the price, once.

use std::sync::Arc;
use std::time::Duration;

use reqwest_x402::{PaymentResponseExt, X402Middleware};
use solana_address::Address;
use solana_keypair::Keypair;
use solana_signer::Signer as _;
use x402_protocol::facilitator::{PaymentPayload, PaymentRequirements};
use x402_protocol::{NetworkRegistry, ProtocolVersion, codec, v2};
use x402_runtime::facilitator::{DevLedger, EmbeddedFacilitator};
use x402_runtime::scheme::Schemes;
use x402_svm::programs::TOKEN;
use x402_svm::{
    ExactSvm, LiteSvmChain, RpcChain, SolanaWallet, SvmChain, SvmSettler, SvmTerms, build_payment,
};
use x402_tests::apps::{SOLANA_PAY_TO, actix_app, axum_app, rocket_app};
use x402_tests::client::Challenge;
use x402_tests::facilitator::serve;
use x402_tests::scenarios::{FACILITATOR_TIMEOUT, Launch, ServerConfig};

const DEVNET: &str = "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1";
const USDC_DEVNET: &str = "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU";
const PRICE: u64 = 10_000;

/// A v2 payment for the Solana entry of the 402 `response` carried, built the way the
/// official client builds it, with the blockhash from `rpc`.
async fn solana_payment(
    response: reqwest::Response,
    payer: &Keypair,
    rpc: &RpcChain,
) -> (&'static str, String) {
    let header = response
        .headers()
        .get("payment-required")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response.bytes().await.unwrap();
    let challenge = Challenge::parse(header.as_deref(), &body);
    let required = challenge.v2.expect("a v2 challenge");
    let entry = required
        .accepts
        .iter()
        .find(|r| r.network == DEVNET)
        .expect("a Solana entry")
        .clone();
    let requirements = PaymentRequirements::V2(entry.clone());
    let terms = SvmTerms::resolve(&requirements, &NetworkRegistry::builtin()).unwrap();
    let blockhash = rpc.latest_blockhash().await.unwrap();
    let transaction = build_payment(&terms, payer, blockhash, None).unwrap();
    let payment = PaymentPayload::V2(v2::PaymentPayload {
        x402_version: Default::default(),
        resource: required.resource.clone(),
        accepted: entry,
        payload: x402_protocol::SvmPayload {
            transaction: x402_svm::wire::encode_transaction(&transaction),
        }
        .into(),
        extensions: None,
    });
    (
        ProtocolVersion::V2.payment_header(),
        codec::encode(&payment),
    )
}

async fn check(framework: &str, launch: Launch) {
    let chain = Arc::new(LiteSvmChain::new());
    let mint: Address = USDC_DEVNET.parse().unwrap();
    chain.install_mint(mint, 6, TOKEN);
    let pay_to: Address = SOLANA_PAY_TO.parse().unwrap();
    // The recipient's token account exists before anyone pays (payers do not create it).
    chain.fund(&pay_to, &mint, 0).unwrap();
    let payer = Keypair::new();
    chain.fund(&payer.pubkey(), &mint, 1_000_000).unwrap();
    let fee_payer = Keypair::new();
    chain.airdrop(&fee_payer.pubkey(), 1_000_000_000).unwrap();
    let rpc = x402_tests::solana::serve(chain.clone()).await;

    // The facilitator settles Solana on the SVM through JSON-RPC, EVM networks in its dev
    // ledger.
    let settler = SvmSettler::new(RpcChain::new(&rpc.url), DEVNET, fee_payer.insecure_clone())
        .poll_interval(Duration::from_millis(20));
    let mut schemes = Schemes::default();
    schemes.add(Arc::new(ExactSvm));
    let ledger = Arc::new(DevLedger::new());
    let inner = EmbeddedFacilitator::builder()
        .schemes(schemes)
        .settler(Arc::new(settler))
        .dev_ledger(ledger.clone())
        .build();
    let facilitator = serve(inner, ledger).await;
    let server = launch(ServerConfig {
        facilitator_url: facilitator.url.clone(),
        facilitator_timeout: FACILITATOR_TIMEOUT,
        pay_to: "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
        upto_facilitator: None,
        fee_payer: Some(fee_payer.pubkey().to_string()),
        chain_checks: None,
    })
    .await;
    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", server.base);
    let hits = || server.hits.load(std::sync::atomic::Ordering::SeqCst);
    let client_rpc = RpcChain::new(&rpc.url);

    // reqwest-x402 with a Solana key pays: the wallet asks the endpoint for a blockhash.
    let wallet = SolanaWallet::new(payer.insecure_clone(), Arc::new(RpcChain::new(&rpc.url)));
    let x402 = X402Middleware::solana_builder(wallet)
        .max_per_request("1 USDC")
        .build()
        .unwrap();
    let client = x402.client().unwrap();
    let paid = client.get(url("/sol/exact")).send().await.unwrap();
    assert_eq!(paid.status().as_u16(), 200, "{framework}: paid on Solana");
    let receipt = paid.settlement().cloned().expect("a receipt");
    assert_eq!(paid.text().await.unwrap(), payer.pubkey().to_string());
    let signature: solana_signature::Signature = receipt.transaction.parse().unwrap();
    assert_eq!(
        chain.status(&signature).await.unwrap(),
        Some(x402_svm::TransactionStatus::Succeeded),
        "{framework}: the receipt names the transaction that landed"
    );
    assert_eq!(hits(), 1);
    assert_eq!(
        chain.token_balance(&pay_to, &mint),
        Some(PRICE),
        "{framework}"
    );
    assert_eq!(
        chain.token_balance(&payer.pubkey(), &mint),
        Some(1_000_000 - PRICE),
        "{framework}"
    );

    // A payment built by hand, sent twice.
    let response = http.get(url("/sol/exact")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 402, "{framework}");
    let (name, value) = solana_payment(response, &payer, &client_rpc).await;
    let paid = http
        .get(url("/sol/exact"))
        .header(name, &value)
        .send()
        .await
        .unwrap();
    assert_eq!(paid.status().as_u16(), 200, "{framework}");
    assert_eq!(hits(), 2);
    assert_eq!(
        chain.token_balance(&pay_to, &mint),
        Some(2 * PRICE),
        "{framework}"
    );

    // The same payment again: the handler does not run again and nothing moves again.
    let replay = http
        .get(url("/sol/exact"))
        .header(name, &value)
        .send()
        .await
        .unwrap();
    let status = replay.status().as_u16();
    let body = replay.text().await.unwrap();
    // The answer it paid for, from the journal (a client whose 200 was lost), charged once.
    assert_eq!(status, 200, "{framework}: {body}");
    assert_eq!(body, payer.pubkey().to_string());
    assert_eq!(hits(), 2, "{framework}: a replay runs nothing");
    assert_eq!(
        chain.token_balance(&pay_to, &mint),
        Some(2 * PRICE),
        "{framework}"
    );
    // The same payment for another route is refused: it bought one request, already served.
    let elsewhere = http
        .get(url("/sol/either"))
        .header(name, &value)
        .send()
        .await
        .unwrap();
    let status = elsewhere.status().as_u16();
    assert!(
        (400..500).contains(&status),
        "{framework}: {status} {}",
        elsewhere.text().await.unwrap()
    );
    assert_eq!(hits(), 2, "{framework}: a replay elsewhere runs nothing");
    assert_eq!(
        chain.token_balance(&pay_to, &mint),
        Some(2 * PRICE),
        "{framework}"
    );

    // A route on Base and Solana lists both, and Solana pays it.
    let response = http.get(url("/sol/either")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 402);
    let header = response
        .headers()
        .get("payment-required")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let challenge = Challenge::parse(header.as_deref(), b"");
    let networks: Vec<String> = challenge.v2_accepts().into_iter().map(|(n, _)| n).collect();
    assert_eq!(networks, ["eip155:84532", DEVNET], "{framework}");
    let paid = client.get(url("/sol/either")).send().await.unwrap();
    assert_eq!(paid.status().as_u16(), 200, "{framework}");
    assert_eq!(paid.text().await.unwrap(), "solana-devnet");
    assert_eq!(
        chain.token_balance(&pay_to, &mint),
        Some(3 * PRICE),
        "{framework}"
    );

    // ... and an EVM key pays it on Base Sepolia (settled in the facilitator's dev ledger).
    let evm = x402_protocol::eip3009::LocalSigner::random();
    facilitator.fund_everywhere(evm.address());
    let evm_client = X402Middleware::builder(evm)
        .max_per_request("1 USDC")
        .build()
        .unwrap()
        .client()
        .unwrap();
    let paid = evm_client.get(url("/sol/either")).send().await.unwrap();
    assert_eq!(paid.status().as_u16(), 200, "{framework}");
    assert_eq!(paid.text().await.unwrap(), "base-sepolia");
    assert_eq!(
        chain.token_balance(&pay_to, &mint),
        Some(3 * PRICE),
        "{framework}"
    );
}

#[tokio::test]
async fn axum_routes_are_paid_on_solana() {
    check("axum", axum_app::launch).await;
}

#[tokio::test]
async fn actix_web_routes_are_paid_on_solana() {
    check("actix-web", actix_app::launch).await;
}

#[tokio::test]
async fn rocket_routes_are_paid_on_solana() {
    check("rocket", rocket_app::launch).await;
}

mod offline {
    use axum_x402::{Payment, X402, paid};
    use x402_protocol::{ChainAddress, SolanaAddress, U256};

    use super::*;

    #[paid(price = "0.01 USDC", network = "solana-devnet", settle = "before")]
    async fn report(payment: Payment) -> String {
        payment.transaction().unwrap_or_default().to_owned()
    }

    /// With the embedded facilitator and nothing installed, a Solana route is verified in
    /// process (the payer's signature, every layout rule) and settled into the dev ledger.
    #[tokio::test]
    async fn the_dev_ledger_settles_solana_offline() {
        let x402 = X402::builder()
            // This binary links the shared apps' routes too, which this server does not serve.
            .route_check(x402_runtime::RouteCheck::Skip)
            .embedded_facilitator()
            .pay_to(SOLANA_PAY_TO)
            .build()
            .unwrap();
        let ledger = x402.gate().dev_ledger().unwrap().clone();
        let payer = Keypair::new();
        let usdc = ChainAddress::Solana(SolanaAddress::from_base58_const(USDC_DEVNET));
        let payer_address = ChainAddress::Solana(SolanaAddress(payer.pubkey().to_bytes()));
        ledger.fund(DEVNET, usdc, payer_address, U256::from(1_000_000u64));
        let app = ::axum::Router::new()
            .route("/report", ::axum::routing::get(report))
            .layer(x402.layer());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { ::axum::serve(listener, app).await });
        let http = reqwest::Client::new();

        let response = http.get(format!("{base}/report")).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 402);
        let (name, value) = {
            let header = response
                .headers()
                .get("payment-required")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let challenge = Challenge::parse(header.as_deref(), b"");
            let required = challenge.v2.expect("v2");
            let entry = required.accepts[0].clone();
            assert_eq!(
                entry.extra.as_ref().unwrap()["feePayer"],
                ledger.fee_payer().to_string(),
                "the 402 names the dev ledger's fee payer"
            );
            // No chain: the 402 carries the dev ledger's own blockhash, so the payer needs no
            // node.
            let blockhash = entry.extra.as_ref().unwrap()["recentBlockhash"]
                .as_str()
                .expect("the dev ledger's blockhash")
                .parse()
                .unwrap();
            let requirements = PaymentRequirements::V2(entry.clone());
            let terms = SvmTerms::resolve(&requirements, &NetworkRegistry::builtin()).unwrap();
            let transaction = build_payment(&terms, &payer, blockhash, None).unwrap();
            let payment = PaymentPayload::V2(v2::PaymentPayload {
                x402_version: Default::default(),
                resource: required.resource.clone(),
                accepted: entry,
                payload: x402_protocol::SvmPayload {
                    transaction: x402_svm::wire::encode_transaction(&transaction),
                }
                .into(),
                extensions: None,
            });
            (
                ProtocolVersion::V2.payment_header(),
                codec::encode(&payment),
            )
        };
        let paid = http
            .get(format!("{base}/report"))
            .header(name, value)
            .send()
            .await
            .unwrap();
        assert_eq!(paid.status().as_u16(), 200);
        let transaction = paid.text().await.unwrap();
        assert_eq!(
            bs58::decode(&transaction).into_vec().unwrap().len(),
            64,
            "a Solana transaction id is a base58 signature: {transaction}"
        );
        let pay_to = ChainAddress::Solana(SolanaAddress::from_base58_const(SOLANA_PAY_TO));
        assert_eq!(ledger.balance(DEVNET, usdc, pay_to), U256::from(PRICE));
        assert_eq!(
            ledger.balance(DEVNET, usdc, payer_address),
            U256::from(1_000_000 - PRICE)
        );
    }
}

mod pending {
    use std::sync::atomic::{AtomicBool, Ordering};

    use async_trait::async_trait;
    use axum_x402::{Payment, X402, paid};
    use solana_hash::Hash;
    use solana_signature::Signature;
    use solana_transaction::versioned::VersionedTransaction;
    use x402_svm::{ChainError, MintInfo, TransactionStatus};

    use super::*;

    #[paid(price = "0.01 USDC", network = "solana-devnet")]
    async fn report(_payment: Payment) -> &'static str {
        "the report"
    }

    /// A chain that executes what it is sent but, while `hold` is set, does not say so yet:
    /// a confirmation that does not arrive in time.
    struct Slow {
        inner: Arc<LiteSvmChain>,
        hold: AtomicBool,
    }

    #[async_trait]
    impl SvmChain for Slow {
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
            self.inner.send(transaction).await
        }
        async fn status(
            &self,
            signature: &Signature,
        ) -> Result<Option<TransactionStatus>, ChainError> {
            if self.hold.load(Ordering::SeqCst) {
                return Ok(None);
            }
            self.inner.status(signature).await
        }
        async fn mint(&self, mint: &Address) -> Result<Option<MintInfo>, ChainError> {
            self.inner.mint(mint).await
        }
    }

    /// Issue 9's rule on Solana: a confirmation that does not arrive in time is 504
    /// `settlement_pending` (no new challenge, no handler answer); once the chain answers, the
    /// same payment sent again gets the kept answer and its receipt, charged once.
    #[tokio::test]
    async fn an_unconfirmed_settlement_is_pending_then_the_retry_is_served() {
        let chain = Arc::new(LiteSvmChain::new());
        let mint: Address = USDC_DEVNET.parse().unwrap();
        chain.install_mint(mint, 6, TOKEN);
        let pay_to: Address = SOLANA_PAY_TO.parse().unwrap();
        chain.fund(&pay_to, &mint, 0).unwrap();
        let payer = Keypair::new();
        chain.fund(&payer.pubkey(), &mint, 1_000_000).unwrap();
        let fee_payer = Keypair::new();
        chain.airdrop(&fee_payer.pubkey(), 1_000_000_000).unwrap();
        let slow = Arc::new(Slow {
            inner: chain.clone(),
            hold: AtomicBool::new(true),
        });
        let settler = SvmSettler::new(slow.clone(), DEVNET, fee_payer.insecure_clone())
            .confirm_timeout(Duration::from_millis(300))
            .poll_interval(Duration::from_millis(20));
        let mut schemes = Schemes::default();
        schemes.add(Arc::new(ExactSvm));
        let facilitator = EmbeddedFacilitator::builder()
            .schemes(schemes)
            .settler(Arc::new(settler))
            .build();
        let x402 = X402::builder()
            .route_check(x402_runtime::RouteCheck::Skip)
            .embedded_facilitator_with(facilitator)
            .pay_to(SOLANA_PAY_TO)
            .build()
            .unwrap();
        let app = ::axum::Router::new()
            .route("/report", ::axum::routing::get(report))
            .layer(x402.layer());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { ::axum::serve(listener, app).await });
        let http = reqwest::Client::new();
        let rpc = x402_tests::solana::serve(chain.clone()).await;

        let response = http.get(format!("{base}/report")).send().await.unwrap();
        let (name, value) = solana_payment(response, &payer, &RpcChain::new(&rpc.url)).await;
        let first = http
            .get(format!("{base}/report"))
            .header(name, &value)
            .send()
            .await
            .unwrap();
        assert_eq!(first.status().as_u16(), 504);
        assert!(
            first.headers().get("payment-required").is_none(),
            "no new challenge"
        );
        let body: serde_json::Value = first.json().await.unwrap();
        assert_eq!(body["error"], "settlement_pending");
        // It did land: the chain just has not said so.
        assert_eq!(chain.token_balance(&pay_to, &mint), Some(PRICE));

        slow.hold.store(false, Ordering::SeqCst);
        let again = http
            .get(format!("{base}/report"))
            .header(name, &value)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status().as_u16(), 200);
        let receipt: x402_protocol::facilitator::SettleResponse = codec::decode(
            again.headers()["payment-response"].to_str().unwrap(),
            codec::DEFAULT_MAX_HEADER_BYTES,
        )
        .unwrap();
        assert!(receipt.success, "{receipt:?}");
        let signature: Signature = receipt.transaction.parse().unwrap();
        assert_eq!(
            chain.status(&signature).await.unwrap(),
            Some(TransactionStatus::Succeeded)
        );
        assert_eq!(again.text().await.unwrap(), "the report");
        assert_eq!(
            chain.token_balance(&pay_to, &mint),
            Some(PRICE),
            "charged once"
        );
        assert_eq!(
            chain.token_balance(&payer.pubkey(), &mint),
            Some(1_000_000 - PRICE)
        );
    }
}
