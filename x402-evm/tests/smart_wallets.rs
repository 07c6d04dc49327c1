//! Smart-wallet payers through the gate, the embedded facilitator and an [`EvmSettler`] on a
//! fresh anvil per test: a deployed ERC-1271 wallet pays with EIP-3009 and with Permit2; a
//! wallet that does not exist yet pays with an ERC-6492 signature and is deployed through an
//! allowlisted factory before the transfer; an unlisted factory, a non-owner's signature and a
//! gate without a chain (the dev ledger) are refused before the handler runs.

use std::sync::Arc;
use std::time::Duration;

use alloy_primitives::{B256, Bytes};
use alloy_sol_types::SolCall;
use serde_json::json;
use x402_evm::EvmSettler;
use x402_protocol::client::prepare_payment;
use x402_protocol::eip3009::LocalSigner;
use x402_protocol::facilitator::{PaymentRequirements, SettleResponse};
use x402_protocol::{
    Address, AssetInfo, NetworkInfo, NetworkRegistry, Reason, U256, codec, eip6492, headers, v2,
};
use x402_runtime::clock::ManualClock;
use x402_runtime::facilitator::{DevLedger, EmbeddedFacilitator};
use x402_runtime::scheme::TransferMethod;
use x402_runtime::{Completion, Decision, Gate, Rejection, RequestView, RouteSpec};
use x402_test_support::anvil::{
    Anvil, DEV_ADDRESSES, DEV_KEYS, PERMIT2, TOKEN_NAME, TOKEN_VERSION,
};

/// The facilitator's account: dev #1 (dev #0 deploys and mints).
const FACILITATOR: usize = 1;
/// $0.01 in 6-decimal units.
const PRICE: u64 = 10_000;

static EIP3009: RouteSpec = RouteSpec::fixed("$0.01").networks(&["anvil"]);
static PERMIT2_ROUTE: RouteSpec = RouteSpec::fixed("$0.01")
    .networks(&["anvil"])
    .transfers(&[TransferMethod::Permit2]);

mod wallet {
    #![allow(missing_docs)]
    alloy_sol_types::sol! {
        function deploy(address owner, bytes32 salt) external returns (address wallet);
        function walletAddress(address owner, bytes32 salt) external view returns (address);
        function execute(address target, bytes data) external returns (bytes);
        function approve(address spender, uint256 value) external returns (bool);
    }
}

struct Chain {
    anvil: Anvil,
    chain_id: u64,
    token: Address,
    network: NetworkInfo,
    factory: Address,
}

fn chain() -> Option<Chain> {
    let anvil = Anvil::start()?;
    anvil.install_permit2();
    let token = anvil.deploy_token();
    let chain_id = anvil.chain_id();
    let network = NetworkInfo::new(
        "anvil",
        chain_id,
        AssetInfo::usdc(token, TOKEN_NAME, TOKEN_VERSION),
    );
    let factory = deploy_factory(&anvil);
    Some(Chain {
        anvil,
        chain_id,
        token,
        network,
        factory,
    })
}

fn deploy_factory(anvil: &Anvil) -> Address {
    let artifact: serde_json::Value = serde_json::from_str(include_str!(
        "../../contracts/out/X402TestWalletFactory.json"
    ))
    .unwrap();
    let receipt = anvil.transact(json!({"from": DEV_ADDRESSES[0], "data": artifact["bytecode"]}));
    receipt["contractAddress"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[derive(Clone)]
struct Get(Vec<(String, String)>);

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

fn get() -> Get {
    Get(vec![("host".into(), "api.test".into())])
}

fn rejected(decision: Decision) -> Rejection {
    match decision {
        Decision::Rejected(r) | Decision::Challenge(r) => r,
        Decision::Admitted(a) => panic!(
            "expected a rejection (the handler must not run), got a payment from {}",
            a.payment.payer()
        ),
    }
}

/// How the wallet's signature is written.
enum Sign<'a> {
    /// The owner's 65-byte ECDSA signature, which the wallet vouches for (ERC-1271).
    Owner(&'a LocalSigner),
    /// The same, wrapped for a wallet not deployed yet (ERC-6492) through `factory`.
    Counterfactual(&'a LocalSigner, Address, Bytes),
    /// The owner's signature with a byte more: not 65 bytes, not ERC-6492.
    Long(&'a LocalSigner),
}

impl Chain {
    fn registry(&self) -> NetworkRegistry {
        let mut registry = NetworkRegistry::builtin();
        registry.register_network(self.network.clone()).unwrap();
        registry
    }

    fn now(&self) -> u64 {
        let block = self
            .anvil
            .call("eth_getBlockByNumber", json!(["latest", false]));
        u64::from_str_radix(
            block["timestamp"]
                .as_str()
                .unwrap()
                .trim_start_matches("0x"),
            16,
        )
        .unwrap()
    }

    async fn settler(&self, factories: &[Address]) -> Arc<EvmSettler> {
        let mut builder = EvmSettler::builder(self.anvil.url())
            .private_key(DEV_KEYS[FACILITATOR])
            .chain_id(self.chain_id)
            .receipt_timeout(Duration::from_secs(30))
            .poll_interval(Duration::from_millis(50));
        for factory in factories {
            builder = builder.allow_eip6492_factory(*factory);
        }
        Arc::new(builder.connect().await.unwrap())
    }

    /// A gate whose embedded facilitator settles through `settler` (or, without one, into a
    /// dev ledger: no chain).
    fn gate(&self, settler: Option<Arc<EvmSettler>>, pay_to: Address) -> Gate {
        let clock = Arc::new(ManualClock::new(self.now()));
        let mut facilitator = EmbeddedFacilitator::builder()
            .registry(Arc::new(self.registry()))
            .clock(clock.clone());
        facilitator = match settler {
            Some(settler) => facilitator.settler(settler),
            None => facilitator.dev_ledger(Arc::new(DevLedger::new())),
        };
        Gate::builder()
            .embedded_facilitator_with(facilitator.build())
            .network(self.network.clone())
            .pay_to(pay_to.to_string())
            .clock(clock)
            .facilitator_timeout(Duration::from_secs(60))
            .build()
            .unwrap()
    }

    fn balance(&self, who: Address) -> U256 {
        self.anvil.balance(self.token, who)
    }

    fn code(&self, who: Address) -> usize {
        let code = self.anvil.call("eth_getCode", json!([who, "latest"]));
        code.as_str().unwrap().len().saturating_sub(2) / 2
    }

    /// Where the factory deploys `owner`'s wallet under `salt`, and the call that deploys it.
    fn wallet_address(&self, owner: Address, salt: B256) -> (Address, Bytes) {
        let call = wallet::walletAddressCall { owner, salt }.abi_encode();
        let out = self.anvil.call(
            "eth_call",
            json!([{"to": self.factory, "data": Bytes::from(call)}, "latest"]),
        );
        let bytes: Bytes = out.as_str().unwrap().parse().unwrap();
        let address = wallet::walletAddressCall::abi_decode_returns(&bytes).unwrap();
        let deploy = Bytes::from(wallet::deployCall { owner, salt }.abi_encode());
        (address, deploy)
    }

    /// `owner`'s wallet, deployed, funded with `funds`, and (when `permit2`) with Permit2
    /// approved by the wallet itself.
    fn deployed_wallet(&self, owner: &LocalSigner, funds: u64, permit2: bool) -> Address {
        let (wallet, deploy) = self.wallet_address(owner.address(), B256::repeat_byte(0x42));
        self.anvil
            .transact(json!({"from": DEV_ADDRESSES[0], "to": self.factory, "data": deploy}));
        assert!(self.code(wallet) > 0, "no wallet at {wallet}");
        self.anvil.mint(self.token, wallet, U256::from(funds));
        if permit2 {
            let approve = wallet::approveCall {
                spender: PERMIT2,
                value: U256::MAX,
            }
            .abi_encode();
            let execute = Bytes::from(
                wallet::executeCall {
                    target: self.token,
                    data: approve.into(),
                }
                .abi_encode(),
            );
            self.anvil.call(
                "anvil_setBalance",
                json!([owner.address(), "0xde0b6b3a7640000"]),
            );
            self.anvil
                .call("anvil_impersonateAccount", json!([owner.address()]));
            self.anvil
                .transact(json!({"from": owner.address(), "to": wallet, "data": execute}));
        }
        wallet
    }

    /// What a client does with the gate's 402: takes the v2 entry, prepares the payment from
    /// `wallet`, and signs its digest as `sign` says.
    async fn pay(
        &self,
        gate: &Gate,
        route: &'static RouteSpec,
        wallet: Address,
        sign: &Sign<'_>,
    ) -> Get {
        let Decision::Challenge(challenge) = gate.evaluate(&get(), route).await else {
            panic!("an unpaid request must be challenged");
        };
        let response = challenge.to_response();
        let required: v2::PaymentRequired =
            codec::decode(response.header(headers::PAYMENT_REQUIRED).unwrap(), 1 << 16).unwrap();
        let entry = required
            .accepts
            .into_iter()
            .find(|r| r.network.starts_with("eip155:"))
            .expect("anvil offered");
        let prepared = prepare_payment(
            &PaymentRequirements::V2(entry),
            required.resource.as_ref(),
            wallet,
            &self.registry(),
            self.now(),
        )
        .unwrap();
        let signature: Bytes = match sign {
            Sign::Owner(owner) => owner.sign_hash(&prepared.digest()).to_vec().into(),
            Sign::Counterfactual(owner, factory, calldata) => {
                eip6492::wrap(*factory, calldata, &owner.sign_hash(&prepared.digest()))
            }
            Sign::Long(owner) => [owner.sign_hash(&prepared.digest()).as_slice(), &[0]]
                .concat()
                .into(),
        };
        let payment = prepared.finish(signature);
        let mut request = get();
        request.0.push((
            headers::PAYMENT_SIGNATURE.to_owned(),
            codec::encode(&payment),
        ));
        request
    }

    /// Admits `request`, runs the "handler" (200) and returns the settlement receipt.
    async fn pay_through(
        &self,
        gate: &Gate,
        route: &'static RouteSpec,
        request: &Get,
    ) -> SettleResponse {
        let admission = gate
            .evaluate(request, route)
            .await
            .into_result()
            .unwrap_or_else(|r| panic!("refused: {r}"));
        let Completion::Deliver { headers: out, .. } = gate.finish(admission.pending, 200).await
        else {
            panic!("settlement failed")
        };
        let (_, receipt) = out
            .iter()
            .find(|(name, _)| *name == headers::PAYMENT_RESPONSE)
            .expect("a receipt header");
        let settled: SettleResponse = codec::decode(receipt, 4096).unwrap();
        assert!(settled.success, "{settled:?}");
        settled
    }
}

fn fresh_address() -> Address {
    LocalSigner::random().address()
}

#[tokio::test]
async fn a_deployed_erc1271_wallet_pays_with_eip3009_and_with_permit2() {
    let Some(chain) = chain() else { return };
    let owner = LocalSigner::random();
    let wallet = chain.deployed_wallet(&owner, 3 * PRICE, true);
    let pay_to = fresh_address();
    let gate = chain.gate(Some(chain.settler(&[]).await), pay_to);

    for (route, paid) in [(&EIP3009, 1u64), (&PERMIT2_ROUTE, 2)] {
        let request = chain.pay(&gate, route, wallet, &Sign::Owner(&owner)).await;
        let settled = chain.pay_through(&gate, route, &request).await;
        assert_eq!(
            settled.payer.as_deref(),
            Some(wallet.to_checksum(None).as_str())
        );
        assert!(!settled.transaction.is_empty());
        assert_eq!(chain.balance(pay_to), U256::from(paid * PRICE));
        assert_eq!(chain.balance(wallet), U256::from((3 - paid) * PRICE));
        // The same payment again is a replay.
        rejected(gate.evaluate(&request, route).await);
    }
}

#[tokio::test]
async fn a_signature_by_someone_other_than_the_wallets_owner_is_refused() {
    let Some(chain) = chain() else { return };
    let owner = LocalSigner::random();
    let wallet = chain.deployed_wallet(&owner, PRICE, true);
    let stranger = LocalSigner::random();
    let pay_to = fresh_address();
    let gate = chain.gate(Some(chain.settler(&[]).await), pay_to);

    for (route, reason) in [
        (&EIP3009, Reason::INVALID_SIGNATURE),
        (&PERMIT2_ROUTE, Reason::PERMIT2_INVALID_SIGNATURE),
    ] {
        let request = chain
            .pay(&gate, route, wallet, &Sign::Owner(&stranger))
            .await;
        let refusal = rejected(gate.evaluate(&request, route).await);
        assert_eq!(refusal.reason(), &reason, "{refusal}");
        assert!(refusal.message().contains("ERC-1271"), "{refusal}");
    }
    // A plain account's forged signature stays an invalid signature (it has no code).
    let victim = LocalSigner::random();
    chain
        .anvil
        .mint(chain.token, victim.address(), U256::from(PRICE));
    let request = chain
        .pay(&gate, &EIP3009, victim.address(), &Sign::Owner(&stranger))
        .await;
    let refusal = rejected(gate.evaluate(&request, &EIP3009).await);
    assert_eq!(refusal.reason(), &Reason::INVALID_SIGNATURE, "{refusal}");
    assert_eq!(chain.balance(pay_to), U256::ZERO);
    assert_eq!(chain.balance(wallet), U256::from(PRICE));
}

#[tokio::test]
async fn a_counterfactual_wallet_pays_with_erc6492_and_is_deployed_first() {
    let Some(chain) = chain() else { return };
    let owner = LocalSigner::random();
    let (wallet, deploy) = chain.wallet_address(owner.address(), B256::repeat_byte(7));
    chain.anvil.mint(chain.token, wallet, U256::from(PRICE));
    assert_eq!(chain.code(wallet), 0);
    let pay_to = fresh_address();
    let gate = chain.gate(Some(chain.settler(&[chain.factory]).await), pay_to);

    // A stranger's signature, wrapped the same way, is refused by the simulated deployment.
    let forged = chain
        .pay(
            &gate,
            &EIP3009,
            wallet,
            &Sign::Counterfactual(&LocalSigner::random(), chain.factory, deploy.clone()),
        )
        .await;
    let refusal = rejected(gate.evaluate(&forged, &EIP3009).await);
    assert_eq!(refusal.reason(), &Reason::INVALID_SIGNATURE, "{refusal}");
    assert_eq!(chain.code(wallet), 0, "a check deploys nothing");

    let request = chain
        .pay(
            &gate,
            &EIP3009,
            wallet,
            &Sign::Counterfactual(&owner, chain.factory, deploy),
        )
        .await;
    let admission = gate
        .evaluate(&request, &EIP3009)
        .await
        .into_result()
        .unwrap_or_else(|r| panic!("refused: {r}"));
    assert_eq!(chain.code(wallet), 0, "admitted, not deployed yet");
    let Completion::Deliver { headers: out, .. } = gate.finish(admission.pending, 200).await else {
        panic!("settlement failed")
    };
    let (_, receipt) = out
        .iter()
        .find(|(name, _)| *name == headers::PAYMENT_RESPONSE)
        .expect("a receipt header");
    let settled: SettleResponse = codec::decode(receipt, 4096).unwrap();
    assert!(settled.success, "{settled:?}");
    assert!(chain.code(wallet) > 0, "the wallet was deployed");
    assert_eq!(chain.balance(pay_to), U256::from(PRICE));
    assert_eq!(chain.balance(wallet), U256::ZERO);
}

#[tokio::test]
async fn an_erc6492_factory_off_the_allowlist_is_refused() {
    let Some(chain) = chain() else { return };
    let owner = LocalSigner::random();
    let (wallet, deploy) = chain.wallet_address(owner.address(), B256::repeat_byte(9));
    chain.anvil.mint(chain.token, wallet, U256::from(PRICE));
    let pay_to = fresh_address();
    let sign = Sign::Counterfactual(&owner, chain.factory, deploy);

    // The default allowlist is empty; a list without this factory is no better.
    for allowed in [vec![], vec![Address::repeat_byte(0x66)]] {
        let gate = chain.gate(Some(chain.settler(&allowed).await), pay_to);
        let request = chain.pay(&gate, &EIP3009, wallet, &sign).await;
        let refusal = rejected(gate.evaluate(&request, &EIP3009).await);
        assert_eq!(
            refusal.reason(),
            &Reason::EIP6492_FACTORY_NOT_ALLOWED,
            "{refusal}"
        );
    }
    assert_eq!(chain.code(wallet), 0);
    assert_eq!(chain.balance(pay_to), U256::ZERO);
}

#[tokio::test]
async fn without_a_chain_a_smart_wallet_payment_is_refused_before_the_handler() {
    let Some(chain) = chain() else { return };
    let owner = LocalSigner::random();
    let wallet = chain.deployed_wallet(&owner, PRICE, false);
    let (counterfactual, deploy) = chain.wallet_address(owner.address(), B256::repeat_byte(3));
    let gate = chain.gate(None, fresh_address());

    // An ERC-6492 (or any longer) signature can only be a contract wallet's: an RPC is needed.
    let request = chain
        .pay(
            &gate,
            &EIP3009,
            counterfactual,
            &Sign::Counterfactual(&owner, chain.factory, deploy.clone()),
        )
        .await;
    let refusal = rejected(gate.evaluate(&request, &EIP3009).await);
    assert_eq!(
        refusal.reason(),
        &Reason::SMART_WALLET_NEEDS_RPC,
        "{refusal}"
    );
    assert!(refusal.message().contains("RPC"), "{refusal}");

    // A deployed wallet signing with the wrapped form too.
    let request = chain
        .pay(
            &gate,
            &EIP3009,
            wallet,
            &Sign::Counterfactual(&owner, chain.factory, deploy),
        )
        .await;
    let refusal = rejected(gate.evaluate(&request, &EIP3009).await);
    assert_eq!(
        refusal.reason(),
        &Reason::SMART_WALLET_NEEDS_RPC,
        "{refusal}"
    );

    // Its owner's plain 65-byte signature cannot be told from a forgery without a chain: it
    // is refused as an invalid signature, as it always was.
    let request = chain
        .pay(&gate, &EIP3009, wallet, &Sign::Owner(&owner))
        .await;
    let refusal = rejected(gate.evaluate(&request, &EIP3009).await);
    assert_eq!(refusal.reason(), &Reason::INVALID_SIGNATURE, "{refusal}");
}

#[tokio::test]
async fn a_wallet_that_is_not_deployed_and_cannot_be_is_refused() {
    let Some(chain) = chain() else { return };
    let owner = LocalSigner::random();
    let (wallet, _) = chain.wallet_address(owner.address(), B256::repeat_byte(5));
    chain.anvil.mint(chain.token, wallet, U256::from(PRICE));
    let pay_to = fresh_address();
    let gate = chain.gate(Some(chain.settler(&[chain.factory]).await), pay_to);

    // No code and no ERC-6492 wrapping: nothing could deploy it.
    let request = chain
        .pay(&gate, &EIP3009, wallet, &Sign::Long(&owner))
        .await;
    let refusal = rejected(gate.evaluate(&request, &EIP3009).await);
    assert_eq!(
        refusal.reason(),
        &Reason::UNDEPLOYED_SMART_WALLET,
        "{refusal}"
    );

    // An allowed factory, but the calldata deploys someone else's wallet.
    let (_, elsewhere) =
        chain.wallet_address(LocalSigner::random().address(), B256::repeat_byte(5));
    let request = chain
        .pay(
            &gate,
            &EIP3009,
            wallet,
            &Sign::Counterfactual(&owner, chain.factory, elsewhere),
        )
        .await;
    let refusal = rejected(gate.evaluate(&request, &EIP3009).await);
    assert_eq!(
        refusal.reason(),
        &Reason::UNDEPLOYED_SMART_WALLET,
        "{refusal}"
    );
    assert!(refusal.message().contains("does not deploy"), "{refusal}");
    assert_eq!(chain.code(wallet), 0);
    assert_eq!(chain.balance(pay_to), U256::ZERO);
}
