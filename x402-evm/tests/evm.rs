//! Settlement on a real EVM chain: anvil, the workspace's own EIP-3009 token
//! (`contracts/out/X402TestToken.json`, deployed fresh for each test), the embedded facilitator
//! with an [`EvmSettler`], and the gate, driven with real signed payments.
//!
//! Needs `X402_ANVIL_URL` (`scripts/test` starts anvil and sets it). Without it each test says
//! it was skipped and passes, unless `X402_REQUIRE_BACKENDS=1`, which makes it fail.

use std::sync::Arc;
use std::time::Duration;

use alloy_network::{EthereumWallet, ReceiptResponse, TransactionBuilder};
use alloy_provider::{DynProvider, Provider, ProviderBuilder};
use alloy_rpc_types_eth::{
    BlockNumberOrTag, TransactionInput, TransactionReceipt, TransactionRequest,
};
use alloy_signer_local::PrivateKeySigner;
use alloy_sol_types::{SolCall, SolEvent, SolValue};
use tokio::sync::{Mutex, MutexGuard};
use x402_evm::{EvmSettler, EvmSettlerError};
use x402_protocol::client::sign_payment;
use x402_protocol::eip3009::{LocalSigner, TokenDomain, transfer_with_authorization_typehash};
use x402_protocol::exact::ExactEvmPayload;
use x402_protocol::facilitator::{PaymentPayload, PaymentRequirements, SettleResponse};
use x402_protocol::verify::InvalidPayment;
use x402_protocol::verify::{PaymentKey, SignatureCheck, VerifiedPayment};
use x402_protocol::{
    Address, AssetInfo, B256, Bytes, NetworkInfo, NetworkRegistry, ProtocolVersion, Reason, U256,
    codec, headers, v1, v2,
};
use x402_runtime::clock::ManualClock;
use x402_runtime::facilitator::{
    EmbeddedFacilitator, Facilitator, SettleOutcome, Settler, SettlerError,
};
use x402_runtime::{
    Completion, Decision, Gate, HandlerResponse, Rejection, RequestView, RouteSpec,
};

/// The payment-level refusal inside a settler error (a backend failure fails the test).
/// The refusal in a settlement that failed.
fn failure(outcome: SettleOutcome) -> InvalidPayment {
    match outcome {
        SettleOutcome::Failed(error) => refused(error),
        other => panic!("expected a failed settlement, got {other:?}"),
    }
}

fn refused(error: SettlerError) -> InvalidPayment {
    match error {
        SettlerError::Rejected(invalid) => invalid,
        other => panic!("expected the payment to be refused, got {other}"),
    }
}

/// Anvil dev account #0: deploys the token, owns its faucet, and is the facilitator.
const FACILITATOR_KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
/// Anvil dev account #1: a third party that submits authorizations itself.
const BYSTANDER_KEY: &str = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";

const ARTIFACT: &str = include_str!("../../contracts/out/X402TestToken.json");
const SOURCE: &str = include_str!("../../contracts/src/X402TestToken.sol");

const TOKEN_NAME: &str = "X402 Test USD";
const TOKEN_SYMBOL: &str = "USDC";
const TOKEN_VERSION: &str = "2";
const PRICE: u64 = 10_000; // $0.01 in 6-decimal units

static PAID: RouteSpec = RouteSpec::fixed("$0.01").networks(&["anvil"]);

mod token {
    #![allow(missing_docs)]
    alloy_sol_types::sol! {
        #[sol(all_derives)]
        interface X402TestToken {
            event Transfer(address indexed from, address indexed to, uint256 value);
            event AuthorizationUsed(address indexed authorizer, bytes32 indexed nonce);
            function name() external view returns (string);
            function version() external view returns (string);
            function decimals() external view returns (uint8);
            function DOMAIN_SEPARATOR() external view returns (bytes32);
            function TRANSFER_WITH_AUTHORIZATION_TYPEHASH() external view returns (bytes32);
            function mint(address to, uint256 value) external;
            function balanceOf(address account) external view returns (uint256);
            function authorizationState(address authorizer, bytes32 nonce) external view returns (bool);
            function transferWithAuthorization(address from, address to, uint256 value, uint256 validAfter, uint256 validBefore, bytes32 nonce, uint8 v, bytes32 r, bytes32 s) external;
            function transferWithAuthorization(address from, address to, uint256 value, uint256 validAfter, uint256 validBefore, bytes32 nonce, bytes signature) external;
        }
    }
}
use token::X402TestToken as T;

/// Tests share anvil's account #0, so they take turns: one chain user at a time.
static CHAIN: Mutex<()> = Mutex::const_new(());

fn anvil_url() -> Option<String> {
    match std::env::var("X402_ANVIL_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("X402_REQUIRE_BACKENDS").as_deref() != Ok("1"),
                "X402_REQUIRE_BACKENDS=1 but X402_ANVIL_URL is not set"
            );
            eprintln!("skipped: X402_ANVIL_URL not set (scripts/test starts anvil)");
            None
        }
    }
}

fn provider(url: &str, key: &str) -> DynProvider {
    let signer: PrivateKeySigner = key.parse().unwrap();
    // The node's pending nonce every time: the settler sends from the same account.
    ProviderBuilder::default()
        .with_gas_estimation()
        .with_simple_nonce_management()
        .fetch_chain_id()
        .wallet(EthereumWallet::from(signer))
        .connect_http(url.parse().unwrap())
        .erased()
}

/// A chain with a freshly deployed token, held for the whole test.
struct Chain {
    _turn: MutexGuard<'static, ()>,
    url: String,
    rpc: DynProvider,
    chain_id: u64,
    token: Address,
    network: NetworkInfo,
}

async fn chain() -> Option<Chain> {
    let url = anvil_url()?;
    let turn = CHAIN.lock().await;
    let rpc = provider(&url, FACILITATOR_KEY);
    let chain_id = rpc.get_chain_id().await.unwrap();

    let artifact: serde_json::Value = serde_json::from_str(ARTIFACT).unwrap();
    let mut code: Vec<u8> = artifact["bytecode"]
        .as_str()
        .unwrap()
        .parse::<Bytes>()
        .unwrap()
        .to_vec();
    code.extend((TOKEN_NAME, TOKEN_SYMBOL, TOKEN_VERSION).abi_encode_params());
    let receipt = send(&rpc, TransactionRequest::default().with_deploy_code(code)).await;
    let token = receipt
        .contract_address()
        .expect("a deployment creates a contract");

    let network = NetworkInfo::new(
        "anvil",
        chain_id,
        AssetInfo::usdc(token, TOKEN_NAME, TOKEN_VERSION),
    );
    Some(Chain {
        _turn: turn,
        url,
        rpc,
        chain_id,
        token,
        network,
    })
}

async fn send(rpc: &DynProvider, tx: TransactionRequest) -> TransactionReceipt {
    let receipt = rpc
        .send_transaction(tx)
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(
        receipt.status(),
        "transaction {} reverted",
        receipt.transaction_hash
    );
    receipt
}

impl Chain {
    async fn settler(&self) -> Arc<EvmSettler> {
        Arc::new(
            EvmSettler::builder(&self.url)
                .private_key(FACILITATOR_KEY)
                .chain_id(self.chain_id)
                .receipt_timeout(Duration::from_secs(20))
                .connect()
                .await
                .unwrap(),
        )
    }

    fn registry(&self) -> NetworkRegistry {
        let mut registry = NetworkRegistry::builtin();
        registry.register_network(self.network.clone()).unwrap();
        registry
    }

    /// A gate whose embedded facilitator settles through `settler`, on a clock set to the
    /// chain's time.
    async fn gate(&self, settler: Arc<EvmSettler>, pay_to: Address) -> Gate {
        let clock = Arc::new(ManualClock::new(self.now().await));
        self.gate_with_clock(settler, pay_to, clock)
    }

    fn gate_with_clock(
        &self,
        settler: Arc<EvmSettler>,
        pay_to: Address,
        clock: Arc<ManualClock>,
    ) -> Gate {
        let facilitator = EmbeddedFacilitator::builder()
            .registry(Arc::new(self.registry()))
            .clock(clock.clone())
            .settler(settler)
            .build();
        Gate::builder()
            .embedded_facilitator_with(facilitator)
            .network(self.network.clone())
            .pay_to(pay_to.to_string())
            .clock(clock)
            .facilitator_timeout(Duration::from_secs(60))
            .build()
            .unwrap()
    }

    /// The latest block's timestamp.
    async fn now(&self) -> u64 {
        self.rpc
            .get_block_by_number(BlockNumberOrTag::Latest)
            .await
            .unwrap()
            .unwrap()
            .header
            .timestamp
    }

    async fn read<C: SolCall>(&self, call: C) -> C::Return {
        let tx = TransactionRequest::default()
            .to(self.token)
            .input(TransactionInput::new(call.abi_encode().into()));
        C::abi_decode_returns(&self.rpc.call(tx).await.unwrap()).unwrap()
    }

    /// `eth_call` of `call` on the token; `Err` holds the node's error text.
    async fn try_call(&self, data: Vec<u8>) -> Result<Bytes, String> {
        let tx = TransactionRequest::default()
            .to(self.token)
            .input(TransactionInput::new(data.into()));
        self.rpc.call(tx).await.map_err(|e| e.to_string())
    }

    async fn balance(&self, who: Address) -> U256 {
        self.read(T::balanceOfCall { account: who }).await
    }

    async fn used(&self, payload: &ExactEvmPayload) -> bool {
        let auth = &payload.authorization;
        self.read(T::authorizationStateCall {
            authorizer: auth.from,
            nonce: auth.nonce,
        })
        .await
    }

    async fn mint(&self, to: Address, value: u64) {
        let call = T::mintCall {
            to,
            value: U256::from(value),
        };
        send(
            &self.rpc,
            TransactionRequest::default()
                .to(self.token)
                .input(TransactionInput::new(call.abi_encode().into())),
        )
        .await;
    }

    /// A payer holding `funds` atomic units.
    async fn payer(&self, funds: u64) -> LocalSigner {
        let payer = LocalSigner::random();
        if funds > 0 {
            self.mint(payer.address(), funds).await;
        }
        payer
    }

    async fn facilitator_nonce(&self) -> u64 {
        let address: PrivateKeySigner = FACILITATOR_KEY.parse().unwrap();
        self.rpc
            .get_transaction_count(address.address())
            .await
            .unwrap()
    }

    fn verified(&self, payload: &ExactEvmPayload) -> VerifiedPayment {
        VerifiedPayment {
            payer: payload.authorization.from.into(),
            network: self.network.clone(),
            asset: self.token.into(),
            pay_to: payload.authorization.to.into(),
            amount: payload.authorization.value,
            key: PaymentKey::eip3009(self.chain_id, self.token, payload),
            expires_at: Some(payload.authorization.valid_before.to()),
            signature: SignatureCheck::Recovered,
        }
    }

    /// `payload` as the payment a settler is handed (a v2 payment for this chain's token).
    fn payment(&self, payload: &ExactEvmPayload) -> PaymentPayload {
        PaymentPayload::V2(v2::PaymentPayload {
            x402_version: Default::default(),
            resource: None,
            accepted: v2::PaymentRequirements {
                scheme: "exact".into(),
                network: self.network.caip2.to_string(),
                amount: payload.authorization.value,
                asset: self.token.to_string(),
                pay_to: payload.authorization.to.to_string(),
                max_timeout_seconds: 300,
                extra: None,
            },
            payload: payload.clone().into(),
            extensions: None,
        })
    }
}

#[derive(Clone)]
struct Get(Vec<(String, String)>);

impl Get {
    fn new() -> Self {
        Get(vec![("host".into(), "api.test".into())])
    }
    fn with(mut self, header: (&str, String)) -> Self {
        self.0.push((header.0.to_owned(), header.1));
        self
    }
}

impl RequestView for Get {
    fn method(&self) -> &str {
        "GET"
    }
    fn path_and_query(&self) -> &str {
        "/paid"
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What a client does with the gate's 402: pick the anvil entry of `version`, sign it at `now`,
/// and return the header to retry with plus the signed authorization.
async fn pay(
    gate: &Gate,
    registry: &NetworkRegistry,
    payer: &LocalSigner,
    version: ProtocolVersion,
    now: u64,
) -> ((&'static str, String), ExactEvmPayload) {
    let Decision::Challenge(challenge) = gate.evaluate(&Get::new(), &PAID).await else {
        panic!("an unpaid request must be challenged");
    };
    let response = challenge.to_response();
    let payment = match version {
        ProtocolVersion::V1 => {
            let body: v1::PaymentRequired = serde_json::from_slice(&response.body).unwrap();
            let entry = body
                .accepts
                .into_iter()
                .find(|r| r.network == "anvil")
                .expect("anvil offered to v1");
            sign_payment(&PaymentRequirements::V1(entry), None, payer, registry, now).unwrap()
        }
        ProtocolVersion::V2 => {
            let required: v2::PaymentRequired =
                codec::decode(response.header(headers::PAYMENT_REQUIRED).unwrap(), 1 << 16)
                    .unwrap();
            let entry = required
                .accepts
                .into_iter()
                .find(|r| r.network.starts_with("eip155:"))
                .expect("anvil offered to v2");
            sign_payment(
                &PaymentRequirements::V2(entry),
                required.resource.as_ref(),
                payer,
                registry,
                now,
            )
            .unwrap()
        }
    };
    (
        (version.payment_header(), codec::encode(&payment)),
        payment.payload().as_eip3009().unwrap().clone(),
    )
}

/// An address nobody has used: the recipient of one test.
fn fresh_address() -> Address {
    LocalSigner::random().address()
}

fn rejected(decision: Decision) -> Rejection {
    match decision {
        Decision::Rejected(r) | Decision::Challenge(r) => r,
        Decision::Admitted(a) => panic!(
            "expected a rejection, got a payment from {}",
            a.payment.payer()
        ),
    }
}

/// `s → n − s` and the recovery bit flipped: a second valid-looking signature by the same key.
fn malleate(payload: &ExactEvmPayload) -> ExactEvmPayload {
    const N: U256 = alloy_primitives::uint!(
        0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141_U256
    );
    let mut signature = payload.signature.to_vec();
    let s = U256::from_be_slice(&signature[32..64]);
    signature[32..64].copy_from_slice(&(N - s).to_be_bytes::<32>());
    signature[64] = if signature[64] == 27 { 28 } else { 27 };
    ExactEvmPayload {
        signature: signature.into(),
        authorization: payload.authorization.clone(),
    }
}

fn transfer_vrs(payload: &ExactEvmPayload) -> T::transferWithAuthorization_0Call {
    let (auth, sig) = (&payload.authorization, &payload.signature);
    T::transferWithAuthorization_0Call {
        from: auth.from,
        to: auth.to,
        value: auth.value,
        validAfter: auth.valid_after,
        validBefore: auth.valid_before,
        nonce: auth.nonce,
        v: sig[64],
        r: B256::from_slice(&sig[..32]),
        s: B256::from_slice(&sig[32..64]),
    }
}

fn transfer_bytes(payload: &ExactEvmPayload) -> T::transferWithAuthorization_1Call {
    let auth = &payload.authorization;
    T::transferWithAuthorization_1Call {
        from: auth.from,
        to: auth.to,
        value: auth.value,
        validAfter: auth.valid_after,
        validBefore: auth.valid_before,
        nonce: auth.nonce,
        signature: payload.signature.clone(),
    }
}

#[test]
fn the_committed_artifact_was_built_from_the_committed_source() {
    let artifact: serde_json::Value = serde_json::from_str(ARTIFACT).unwrap();
    assert_eq!(
        artifact["sourceKeccak256"].as_str().unwrap(),
        alloy_primitives::keccak256(SOURCE).to_string(),
        "contracts/src/X402TestToken.sol changed: run contracts/build.sh and commit the artifact"
    );
    assert!(artifact["bytecode"].as_str().unwrap().len() > 1000);
}

#[tokio::test]
async fn the_contract_hashes_eip712_exactly_like_x402_protocol() {
    let Some(chain) = chain().await else { return };
    let ours = TokenDomain {
        name: TOKEN_NAME,
        version: TOKEN_VERSION,
        chain_id: chain.chain_id,
        verifying_contract: chain.token,
    };
    assert_eq!(
        chain.read(T::DOMAIN_SEPARATORCall {}).await,
        ours.separator()
    );
    assert_eq!(
        chain
            .read(T::TRANSFER_WITH_AUTHORIZATION_TYPEHASHCall {})
            .await,
        transfer_with_authorization_typehash()
    );
    assert_eq!(chain.read(T::nameCall {}).await, TOKEN_NAME);
    assert_eq!(chain.read(T::versionCall {}).await, TOKEN_VERSION);
    assert_eq!(chain.read(T::decimalsCall {}).await, 6);
    // Another token (other address) has another domain, so signatures do not carry over.
    let other = TokenDomain {
        verifying_contract: Address::repeat_byte(1),
        ..ours
    };
    assert_ne!(
        chain.read(T::DOMAIN_SEPARATORCall {}).await,
        other.separator()
    );
}

#[tokio::test]
async fn valid_v1_and_v2_payments_settle_on_chain() {
    let Some(chain) = chain().await else { return };
    let settler = chain.settler().await;
    let pay_to = fresh_address();
    let gate = chain.gate(settler.clone(), pay_to).await;
    let registry = chain.registry();
    let payer = chain.payer(1_000_000).await;

    for version in [ProtocolVersion::V1, ProtocolVersion::V2] {
        let before = (
            chain.balance(payer.address()).await,
            chain.balance(pay_to).await,
        );
        let (header, payload) = pay(&gate, &registry, &payer, version, chain.now().await).await;
        let admission = gate
            .evaluate(&Get::new().with(header), &PAID)
            .await
            .into_result()
            .unwrap_or_else(|r| panic!("{version}: {r}"));
        assert_eq!(admission.payment.payer(), payer.address());
        assert_eq!(admission.payment.amount(), U256::from(PRICE));
        // Verified only: nothing moved yet.
        assert_eq!(chain.balance(pay_to).await, before.1);
        assert!(!chain.used(&payload).await);

        let Completion::Deliver { headers, .. } = gate.finish(admission.pending, 200).await else {
            panic!("{version}: settlement failed")
        };
        let (_, receipt) = headers
            .iter()
            .find(|(name, _)| *name == version.settlement_header())
            .unwrap_or_else(|| panic!("{version}: no receipt header"));
        let settled: SettleResponse = codec::decode(receipt, 4096).unwrap();
        assert!(settled.success, "{settled:?}");
        assert_eq!(
            settled.payer.as_deref(),
            Some(payer.address().to_checksum(None).as_str())
        );

        // The header names the mined transaction: our settler sent it to the token, it
        // succeeded, and it moved exactly the price from the payer to the recipient.
        let hash: B256 = settled.transaction.parse().unwrap();
        let mined = chain
            .rpc
            .get_transaction_receipt(hash)
            .await
            .unwrap()
            .expect("mined");
        assert!(mined.status());
        assert_eq!(mined.from, settler.address());
        assert_eq!(mined.to, Some(chain.token));
        let logs = mined.inner.logs();
        let transfer = logs
            .iter()
            .find_map(|l| T::Transfer::decode_log_data(l.data()).ok())
            .expect("Transfer event");
        assert_eq!(
            (transfer.from, transfer.to, transfer.value),
            (payer.address(), pay_to, U256::from(PRICE))
        );
        let used = logs
            .iter()
            .find_map(|l| T::AuthorizationUsed::decode_log_data(l.data()).ok())
            .expect("AuthorizationUsed event");
        assert_eq!(
            (used.authorizer, used.nonce),
            (payer.address(), payload.authorization.nonce)
        );

        assert_eq!(
            chain.balance(payer.address()).await,
            before.0 - U256::from(PRICE)
        );
        assert_eq!(chain.balance(pay_to).await, before.1 + U256::from(PRICE));
        assert!(chain.used(&payload).await);
    }
}

#[tokio::test]
async fn a_failing_handler_puts_nothing_on_chain() {
    let Some(chain) = chain().await else { return };
    let pay_to = fresh_address();
    let gate = chain.gate(chain.settler().await, pay_to).await;
    let payer = chain.payer(1_000_000).await;
    let (header, payload) = pay(
        &gate,
        &chain.registry(),
        &payer,
        ProtocolVersion::V2,
        chain.now().await,
    )
    .await;
    let sent_before = chain.facilitator_nonce().await;

    let admission = gate
        .evaluate(&Get::new().with(header.clone()), &PAID)
        .await
        .into_result()
        .unwrap();
    let Completion::Deliver { headers, .. } = gate.finish(admission.pending, 500).await else {
        panic!("a failed handler's response goes out as it is")
    };
    assert!(
        headers.is_empty(),
        "no receipt without settlement: {headers:?}"
    );
    assert_eq!(
        chain.facilitator_nonce().await,
        sent_before,
        "no transaction was sent"
    );
    assert_eq!(chain.balance(pay_to).await, U256::ZERO);
    assert_eq!(
        chain.balance(payer.address()).await,
        U256::from(1_000_000u64)
    );
    assert!(!chain.used(&payload).await);

    // The authorization was released, so the same header pays once the handler works.
    let admission = gate
        .evaluate(&Get::new().with(header), &PAID)
        .await
        .into_result()
        .unwrap();
    assert!(matches!(
        gate.finish(admission.pending, 200).await,
        Completion::Deliver { .. }
    ));
    assert_eq!(chain.balance(pay_to).await, U256::from(PRICE));
    assert_eq!(chain.facilitator_nonce().await, sent_before + 1);
}

#[tokio::test]
async fn a_replay_is_stopped_by_the_store_and_then_by_the_chain() {
    let Some(chain) = chain().await else { return };
    let settler = chain.settler().await;
    let pay_to = fresh_address();
    let gate = chain.gate(settler.clone(), pay_to).await;
    let payer = chain.payer(1_000_000).await;
    let (header, payload) = pay(
        &gate,
        &chain.registry(),
        &payer,
        ProtocolVersion::V2,
        chain.now().await,
    )
    .await;
    let request = Get::new().with(header);
    let admission = gate.evaluate(&request, &PAID).await.into_result().unwrap();

    // While the first copy is admitted but not yet settled, the chain still calls the
    // authorization unused: only the gate (its replay store, then its journal, which says the
    // payment is being served) stops the second copy.
    let copy = rejected(gate.evaluate(&request, &PAID).await);
    assert_eq!(copy.reason(), &Reason::PAYMENT_IN_PROGRESS);
    assert_eq!(copy.status(), 409);
    assert!(!chain.used(&payload).await);

    assert!(matches!(
        gate.finish(admission.pending, 200).await,
        Completion::Deliver { .. }
    ));
    assert_eq!(chain.balance(pay_to).await, U256::from(PRICE));
    assert!(chain.used(&payload).await);

    // The first gate's journal knows it settled (its answer was not kept here: the test
    // passed only a status); another replica with an empty replay store and journal asks the
    // chain, which knows the nonce is spent.
    let again = rejected(gate.evaluate(&request, &PAID).await);
    assert_eq!(again.reason(), &Reason::PAYMENT_ALREADY_SETTLED);
    assert_eq!(again.status(), 409);
    let fresh = chain.gate(settler, pay_to).await;
    let again = rejected(fresh.evaluate(&request, &PAID).await);
    assert_eq!(again.reason(), &Reason::NONCE_ALREADY_USED);
    assert!(
        again.message().contains("already used on chain"),
        "{}",
        again.message()
    );
    assert_eq!(again.status(), 402);
    assert_eq!(chain.balance(pay_to).await, U256::from(PRICE), "paid once");
}

#[tokio::test]
async fn an_unfunded_payer_gets_insufficient_funds() {
    let Some(chain) = chain().await else { return };
    let gate = chain.gate(chain.settler().await, fresh_address()).await;
    let sent_before = chain.facilitator_nonce().await;
    for funds in [0, PRICE - 1] {
        let payer = chain.payer(funds).await;
        let (header, _) = pay(
            &gate,
            &chain.registry(),
            &payer,
            ProtocolVersion::V2,
            chain.now().await,
        )
        .await;
        let rejection = rejected(gate.evaluate(&Get::new().with(header), &PAID).await);
        assert_eq!(
            rejection.reason(),
            &Reason::INSUFFICIENT_FUNDS,
            "{funds}: {rejection}"
        );
        assert_eq!(rejection.status(), 402);
    }
    // Minting is the only thing the facilitator's account did meanwhile.
    assert_eq!(chain.facilitator_nonce().await, sent_before + 1);
}

#[tokio::test]
async fn expired_authorizations_are_refused_by_the_facilitator_and_by_the_contract() {
    let Some(chain) = chain().await else { return };
    let settler = chain.settler().await;
    let pay_to = fresh_address();
    let payer = chain.payer(1_000_000).await;
    let registry = chain.registry();
    let now = chain.now().await;

    // Signed 1000 s ago for 300 s: the facilitator's own clock check refuses it.
    let gate = chain.gate(settler.clone(), pay_to).await;
    let (header, _) = pay(&gate, &registry, &payer, ProtocolVersion::V2, now - 1000).await;
    let rejection = rejected(gate.evaluate(&Get::new().with(header.clone()), &PAID).await);
    assert_eq!(rejection.reason(), &Reason::VALID_BEFORE);

    // A facilitator whose clock is wrong (still 1000 s ago) lets it through its own checks,
    // but the on-chain simulation refuses it, and nothing is sent.
    let sent_before = chain.facilitator_nonce().await;
    let behind = chain.gate_with_clock(settler, pay_to, Arc::new(ManualClock::new(now - 1000)));
    let rejection = rejected(behind.evaluate(&Get::new().with(header), &PAID).await);
    assert_eq!(
        rejection.reason(),
        &Reason::SIMULATION_FAILED,
        "{rejection}"
    );
    assert!(
        rejection.message().contains("AuthorizationExpired"),
        "{}",
        rejection.message()
    );
    assert_eq!(chain.facilitator_nonce().await, sent_before);
    assert_eq!(chain.balance(pay_to).await, U256::ZERO);
}

#[tokio::test]
async fn the_contract_refuses_malleated_and_malformed_signatures() {
    let Some(chain) = chain().await else { return };
    let settler = chain.settler().await;
    let gate = chain.gate(settler.clone(), fresh_address()).await;
    let payer = chain.payer(1_000_000).await;
    let (_, payload) = pay(
        &gate,
        &chain.registry(),
        &payer,
        ProtocolVersion::V2,
        chain.now().await,
    )
    .await;
    let verified = chain.verified(&payload);

    // The genuine signature passes every on-chain check, in both calling forms.
    settler
        .check(&verified, &chain.payment(&payload))
        .await
        .unwrap();
    chain
        .try_call(transfer_vrs(&payload).abi_encode())
        .await
        .unwrap();
    chain
        .try_call(transfer_bytes(&payload).abi_encode())
        .await
        .unwrap();

    // Its high-s twin recovers to the same payer with plain ecrecover; the contract refuses it
    // anyway, as x402-protocol does off chain.
    let twin = malleate(&payload);
    let domain = TokenDomain {
        name: TOKEN_NAME,
        version: TOKEN_VERSION,
        chain_id: chain.chain_id,
        verifying_contract: chain.token,
    };
    let digest = domain.signing_hash(&payload.authorization);
    let mut precompile_input = digest.to_vec();
    precompile_input.extend(U256::from(twin.signature[64]).to_be_bytes::<32>());
    precompile_input.extend_from_slice(&twin.signature[..64]);
    let recovered = chain
        .rpc
        .call(
            TransactionRequest::default()
                .to(Address::with_last_byte(1))
                .input(TransactionInput::new(precompile_input.into())),
        )
        .await
        .unwrap();
    assert_eq!(Address::from_slice(&recovered[12..]), payer.address());
    let error = refused(
        settler
            .check(&verified, &chain.payment(&twin))
            .await
            .unwrap_err(),
    );
    assert_eq!(error.reason, Reason::SIMULATION_FAILED);
    assert!(
        error.message.contains("InvalidSignatureS"),
        "{}",
        error.message
    );
    for data in [
        transfer_vrs(&twin).abi_encode(),
        transfer_bytes(&twin).abi_encode(),
    ] {
        let error = chain.try_call(data).await.unwrap_err();
        assert!(error.contains("revert"), "{error}");
    }

    // A recovery byte other than 27/28, and a signature by someone else.
    let mut bad_v = payload.clone();
    let mut signature = bad_v.signature.to_vec();
    signature[64] = 29;
    bad_v.signature = signature.into();
    let error = refused(
        settler
            .check(&verified, &chain.payment(&bad_v))
            .await
            .unwrap_err(),
    );
    assert!(
        error.message.contains("InvalidSignatureV"),
        "{}",
        error.message
    );

    let mut forged = payload.clone();
    let other = LocalSigner::random();
    forged.signature = other.sign_authorization(&payload.authorization, &domain);
    let error = refused(
        settler
            .check(&verified, &chain.payment(&forged))
            .await
            .unwrap_err(),
    );
    assert!(error.message.contains("WrongSigner"), "{}", error.message);

    // Nothing above was spent.
    assert!(!chain.used(&payload).await);
}

#[tokio::test]
async fn signatures_that_are_not_65_bytes_go_to_the_bytes_overload() {
    let Some(chain) = chain().await else { return };
    let settler = chain.settler().await;
    let gate = chain.gate(settler.clone(), fresh_address()).await;
    let payer = chain.payer(1_000_000).await;
    let (_, payload) = pay(
        &gate,
        &chain.registry(),
        &payer,
        ProtocolVersion::V2,
        chain.now().await,
    )
    .await;
    let mut long = payload.clone();
    long.signature = [payload.signature.as_ref(), &[0u8]].concat().into();
    let sent_before = chain.facilitator_nonce().await;

    // Our token only takes 65-byte signatures in the bytes form, so the contract's own error
    // shows that the settler called that form (the v/r/s form cannot even encode 66 bytes).
    let error = failure(
        settler
            .settle(
                &chain.verified(&long),
                &chain.payment(&long),
                U256::from(PRICE),
            )
            .await,
    );
    assert_eq!(error.reason, Reason::SIMULATION_FAILED);
    assert!(
        error.message.contains("InvalidSignatureLength"),
        "{}",
        error.message
    );
    assert_eq!(
        chain.facilitator_nonce().await,
        sent_before,
        "refused before sending"
    );
}

#[tokio::test]
async fn a_transfer_that_reverts_on_chain_is_invalid_transaction_state() {
    let Some(chain) = chain().await else { return };
    let settler = chain.settler().await;
    let pay_to = fresh_address();
    let gate = chain.gate(settler.clone(), pay_to).await;
    let payer = chain.payer(1_000_000).await;
    let (_, payload) = pay(
        &gate,
        &chain.registry(),
        &payer,
        ProtocolVersion::V2,
        chain.now().await,
    )
    .await;
    let bystander = provider(&chain.url, BYSTANDER_KEY);

    // With automatic mining off, the settler submits (its simulation passes: the authorization
    // is unused), then a bystander submits the same authorization with a higher tip and a
    // fixed gas limit (no simulation). Both land in the next block, the bystander's first, so
    // the settler's transaction is mined and reverts: the race a real chain can produce.
    let _: serde_json::Value = chain
        .rpc
        .raw_request("evm_setAutomine".into(), (false,))
        .await
        .unwrap();
    let outcome = async {
        let sent_before = chain.facilitator_nonce().await;
        let settle = {
            let (settler, verified, payment) = (
                settler.clone(),
                chain.verified(&payload),
                chain.payment(&payload),
            );
            tokio::spawn(async move { settler.settle(&verified, &payment, verified.amount).await })
        };
        let mut waited = 0;
        while chain
            .rpc
            .get_transaction_count(settler.address())
            .pending()
            .await
            .map_err(|e| e.to_string())?
            == sent_before
        {
            if settle.is_finished() {
                return Err(format!(
                    "the settler gave up before sending: {:?}",
                    settle.await
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            waited += 1;
            if waited > 200 {
                return Err("the settler never submitted".to_owned());
            }
        }
        let front = TransactionRequest::default()
            .to(chain.token)
            .input(TransactionInput::new(
                transfer_vrs(&payload).abi_encode().into(),
            ))
            .gas_limit(200_000)
            .max_priority_fee_per_gas(100_000_000_000)
            .max_fee_per_gas(1_000_000_000_000);
        let front = bystander
            .send_transaction(front)
            .await
            .map_err(|e| e.to_string())?;
        let _: serde_json::Value = chain
            .rpc
            .raw_request("evm_mine".into(), ())
            .await
            .map_err(|e| e.to_string())?;
        let settled = settle.await.map_err(|e| e.to_string())?;
        Ok::<_, String>((settled, *front.tx_hash()))
    }
    .await;
    let _: serde_json::Value = chain
        .rpc
        .raw_request("evm_setAutomine".into(), (true,))
        .await
        .unwrap();

    let (settled, front) = outcome.unwrap();
    let error = failure(settled);
    assert_eq!(
        error.reason,
        Reason::INVALID_TRANSACTION_STATE,
        "{}",
        error.message
    );
    assert!(error.message.contains("reverted"), "{}", error.message);
    let front = chain
        .rpc
        .get_transaction_receipt(front)
        .await
        .unwrap()
        .unwrap();
    assert!(front.status(), "the bystander's copy went first");
    // Paid once, by the bystander's transaction.
    assert_eq!(chain.balance(pay_to).await, U256::from(PRICE));
}

#[tokio::test]
async fn the_settler_stays_on_its_chain_and_keeps_its_key() {
    let Some(chain) = chain().await else { return };
    let settler = chain.settler().await;
    let facilitator: PrivateKeySigner = FACILITATOR_KEY.parse().unwrap();
    assert_eq!(settler.chain_id(), chain.chain_id);
    assert_eq!(
        settler.signers(),
        vec![x402_protocol::ChainAddress::Evm(facilitator.address())]
    );
    let debug = format!("{settler:?}");
    assert!(!debug.contains(&FACILITATOR_KEY[2..18]), "{debug}");
    assert!(
        debug
            .to_lowercase()
            .contains(&facilitator.address().to_string().to_lowercase()),
        "{debug}"
    );

    // `/supported` lists the settler's account as the signer.
    let embedded = EmbeddedFacilitator::builder()
        .registry(Arc::new(chain.registry()))
        .settler(settler.clone())
        .build();
    let supported = embedded.supported().await.unwrap();
    assert_eq!(
        supported.signers["eip155:*"],
        serde_json::json!([facilitator.address().to_checksum(None)])
    );

    // A payment for another chain is refused before any call.
    let gate = chain.gate(settler.clone(), fresh_address()).await;
    let payer = chain.payer(1_000_000).await;
    let (_, payload) = pay(
        &gate,
        &chain.registry(),
        &payer,
        ProtocolVersion::V2,
        chain.now().await,
    )
    .await;
    let mut elsewhere = chain.verified(&payload);
    elsewhere.network = NetworkRegistry::builtin().network("base").unwrap().clone();
    assert_eq!(
        refused(
            settler
                .check(&elsewhere, &chain.payment(&payload))
                .await
                .unwrap_err()
        )
        .reason,
        Reason::INVALID_NETWORK
    );
    assert_eq!(
        failure(
            settler
                .settle(&elsewhere, &chain.payment(&payload), U256::from(PRICE))
                .await
        )
        .reason,
        Reason::INVALID_NETWORK
    );

    // Connecting checks the node's chain and the configuration.
    let wrong = EvmSettler::builder(&chain.url)
        .private_key(FACILITATOR_KEY)
        .chain_id(chain.chain_id + 1)
        .connect()
        .await;
    assert_eq!(
        wrong.unwrap_err(),
        EvmSettlerError::ChainMismatch {
            expected: chain.chain_id + 1,
            found: chain.chain_id
        }
    );
    assert_eq!(
        EvmSettler::builder(&chain.url).connect().await.unwrap_err(),
        EvmSettlerError::MissingKey
    );
    assert_eq!(
        EvmSettler::builder(&chain.url)
            .private_key("0x1234")
            .connect()
            .await
            .unwrap_err(),
        EvmSettlerError::InvalidKey
    );
    assert_eq!(
        EvmSettler::builder("ftp://x")
            .private_key(FACILITATOR_KEY)
            .connect()
            .await
            .unwrap_err(),
        EvmSettlerError::InvalidUrl
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nobody = format!("http://{}/secret-path", closed.local_addr().unwrap());
    drop(closed);
    let error = EvmSettler::builder(&nobody)
        .private_key(FACILITATOR_KEY)
        .call_timeout(Duration::from_secs(2))
        .connect()
        .await
        .unwrap_err();
    assert!(
        matches!(error, EvmSettlerError::Rpc(_) | EvmSettlerError::Timeout(_)),
        "{error:?}"
    );
    assert!(!error.to_string().contains("secret-path"), "{error}");
}

/// Issue 9's lost-receipt case: the settler submits, no block is mined before its receipt
/// timeout, so the outcome is unknown. The client gets 504 `settlement_pending` (not a new
/// challenge, which would make it sign again); once the chain mines, the same payment sent
/// again is resolved from the chain and answered with the kept response and its receipt. The
/// payer is charged exactly once.
#[tokio::test]
async fn a_receipt_that_does_not_arrive_is_pending_then_the_retry_is_served() {
    let Some(chain) = chain().await else { return };
    let settler = Arc::new(
        EvmSettler::builder(&chain.url)
            .private_key(FACILITATOR_KEY)
            .chain_id(chain.chain_id)
            .receipt_timeout(Duration::from_secs(2))
            .connect()
            .await
            .unwrap(),
    );
    let pay_to = fresh_address();
    let gate = chain.gate(settler, pay_to).await;
    let payer = chain.payer(1_000_000).await;
    let ((name, value), payload) = pay(
        &gate,
        &chain.registry(),
        &payer,
        ProtocolVersion::V2,
        chain.now().await,
    )
    .await;
    let request = Get::new().with((name, value));

    let block_before = chain.rpc.get_block_number().await.unwrap();
    let _: serde_json::Value = chain
        .rpc
        .raw_request("evm_setAutomine".into(), (false,))
        .await
        .unwrap();
    let first = async {
        let admission = gate.evaluate(&request, &PAID).await.into_result().unwrap();
        let answer = HandlerResponse {
            status: 200,
            headers: vec![("content-type".into(), "text/plain".into())],
            body: Some("the report".into()),
        };
        gate.finish_with(admission.pending, answer).await
    }
    .await;
    let unmined = chain.rpc.get_block_number().await.unwrap() == block_before;
    let _: serde_json::Value = chain
        .rpc
        .raw_request("evm_setAutomine".into(), (true,))
        .await
        .unwrap();
    let _: serde_json::Value = chain.rpc.raw_request("evm_mine".into(), ()).await.unwrap();

    let Completion::Replace(pending) = first else {
        panic!("an unknown outcome must not deliver the handler's answer")
    };
    assert_eq!(pending.status, 504);
    let body: serde_json::Value = serde_json::from_slice(&pending.body).unwrap();
    assert_eq!(body["error"], "settlement_pending");
    assert!(
        pending.header("payment-required").is_none(),
        "no new challenge"
    );
    let receipt: SettleResponse =
        codec::decode(pending.header("payment-response").unwrap(), 4096).unwrap();
    assert!(!receipt.success);
    assert_eq!(receipt.error_reason.as_deref(), Some("settlement_pending"));
    assert!(unmined, "no block was mined while automine was off");

    // Mined now: the same payment again gets the kept answer and a successful receipt.
    assert!(chain.used(&payload).await);
    let again = rejected(gate.evaluate(&request, &PAID).await);
    assert!(again.is_answer(), "{:?}", again.reason());
    let served = again.to_response();
    assert_eq!(served.status, 200);
    assert_eq!(&served.body[..], b"the report");
    let receipt: SettleResponse =
        codec::decode(served.header("payment-response").unwrap(), 4096).unwrap();
    assert!(receipt.success);
    assert!(receipt.transaction.starts_with("0x") && receipt.transaction.len() == 66);
    assert_eq!(
        chain.balance(pay_to).await,
        U256::from(PRICE),
        "charged once"
    );
    assert_eq!(
        chain.balance(payer.address()).await,
        U256::from(1_000_000 - PRICE)
    );
}
