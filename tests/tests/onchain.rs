//! Permit2 `exact` and metered `upto` settled on a real chain (anvil, with the workspace's
//! Permit2, x402 proxies and EIP-3009 token) on every framework: the reqwest client pays, a
//! facilitator over HTTP settles through `x402-evm`, and the token balances on chain move by
//! exactly the price, or by exactly the handler's charge; a zero charge sends no transaction.
//! Smart-contract wallets pay too: a deployed ERC-1271 wallet with EIP-3009 and with Permit2,
//! and a counterfactual one (ERC-6492) that the facilitator deploys through an allowed factory
//! before settling.

use std::sync::Arc;
use std::time::Duration;

use alloy_primitives::{B256, Bytes};
use alloy_sol_types::{SolCall, sol};
use reqwest_x402::{PaymentResponseExt, SmartWalletSigner, X402Middleware};
use x402_evm::EvmSettler;
use x402_protocol::eip3009::LocalSigner;
use x402_protocol::{Address, NetworkRegistry, U256};
use x402_runtime::facilitator::{DevLedger, EmbeddedFacilitator};
use x402_test_support::anvil::{Anvil, DEV_ADDRESSES, DEV_KEYS, PERMIT2};
use x402_tests::apps::{ANVIL_TOKEN, actix_app, anvil_network, axum_app, rocket_app};
use x402_tests::facilitator::serve;
use x402_tests::scenarios::{FACILITATOR_TIMEOUT, Launch, ServerConfig};

const PAY_TO: &str = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";
/// The dev account the facilitator settles from.
const FACILITATOR: usize = 1;

sol! {
    function deploy(address owner, bytes32 salt) external returns (address wallet);
    function walletAddress(address owner, bytes32 salt) external view returns (address);
    function execute(address target, bytes data) external returns (bytes);
    function approve(address spender, uint256 value) external returns (bool);
}

/// Deploys the workspace's ERC-1271 wallet factory (`contracts/`) from dev account 0.
fn deploy_factory(anvil: &Anvil) -> Address {
    let artifact: serde_json::Value = serde_json::from_str(include_str!(
        "../../contracts/out/X402TestWalletFactory.json"
    ))
    .unwrap();
    let receipt =
        anvil.transact(serde_json::json!({"from": DEV_ADDRESSES[0], "data": artifact["bytecode"]}));
    receipt["contractAddress"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// Where `factory` deploys `owner`'s wallet under `salt`, and the call that deploys it.
fn wallet_address(anvil: &Anvil, factory: Address, owner: Address, salt: B256) -> (Address, Bytes) {
    let call = walletAddressCall { owner, salt }.abi_encode();
    let out = anvil.call(
        "eth_call",
        serde_json::json!([{"to": factory, "data": alloy_primitives::hex::encode_prefixed(call)}, "latest"]),
    );
    let bytes = alloy_primitives::hex::decode(out.as_str().unwrap()).unwrap();
    let address = walletAddressCall::abi_decode_returns(&bytes).unwrap();
    (
        address,
        Bytes::from(deployCall { owner, salt }.abi_encode()),
    )
}

/// `owner`'s wallet, deployed, holding `funds`, with Permit2 approved by the wallet itself.
fn deployed_wallet(
    anvil: &Anvil,
    factory: Address,
    token: Address,
    owner: &LocalSigner,
    funds: u64,
) -> Address {
    let (wallet, deploy) = wallet_address(anvil, factory, owner.address(), B256::repeat_byte(0x42));
    anvil.transact(serde_json::json!({"from": DEV_ADDRESSES[0], "to": factory, "data": deploy}));
    anvil.mint(token, wallet, U256::from(funds));
    let approve = approveCall {
        spender: PERMIT2,
        value: U256::MAX,
    }
    .abi_encode();
    let execute = Bytes::from(
        executeCall {
            target: token,
            data: approve.into(),
        }
        .abi_encode(),
    );
    anvil.call(
        "anvil_setBalance",
        serde_json::json!([owner.address(), "0xde0b6b3a7640000"]),
    );
    anvil.call(
        "anvil_impersonateAccount",
        serde_json::json!([owner.address()]),
    );
    anvil.transact(serde_json::json!({"from": owner.address(), "to": wallet, "data": execute}));
    wallet
}

/// Whether `who` has code.
fn has_code(anvil: &Anvil, who: Address) -> bool {
    let code = anvil.call("eth_getCode", serde_json::json!([who, "latest"]));
    code.as_str().is_some_and(|c| c.len() > 2)
}

async fn check(framework: &str, launch: Launch) {
    let Some(anvil) = Anvil::start() else {
        x402_test_support::skip("no anvil binary (scripts/test installs one)");
        return;
    };
    anvil.install_permit2();
    let token = anvil.deploy_token();
    assert_eq!(
        token,
        ANVIL_TOKEN.parse::<Address>().unwrap(),
        "the apps expect the token at the first deployment's address"
    );
    let payer = LocalSigner::random();
    anvil.mint(token, payer.address(), U256::from(1_000_000u64));
    let pay_to: Address = PAY_TO.parse().unwrap();
    let settler_address: Address = DEV_ADDRESSES[FACILITATOR].parse().unwrap();

    let factory = deploy_factory(&anvil);
    let settler = EvmSettler::builder(anvil.url())
        .private_key(DEV_KEYS[FACILITATOR])
        .allow_eip6492_factory(factory)
        .chain_id(anvil.chain_id())
        .receipt_timeout(Duration::from_secs(30))
        .poll_interval(Duration::from_millis(50))
        .connect()
        .await
        .unwrap();
    let mut registry = NetworkRegistry::builtin();
    registry.register_network(anvil_network()).unwrap();
    let ledger = Arc::new(DevLedger::new());
    let inner = EmbeddedFacilitator::builder()
        .registry(Arc::new(registry))
        .settler(Arc::new(settler))
        .dev_ledger(ledger.clone())
        .build();
    let facilitator = serve(inner, ledger).await;
    let server = launch(ServerConfig {
        facilitator_url: facilitator.url.clone(),
        facilitator_timeout: FACILITATOR_TIMEOUT,
        pay_to: PAY_TO,
        upto_facilitator: Some(settler_address.to_string()),
        fee_payer: None,
        // The server checks contract wallets' signatures on the chain itself before asking the
        // facilitator (a 65-byte owner signature cannot be told from a forgery offline).
        chain_checks: Some(Arc::new(
            EvmSettler::builder(anvil.url())
                .private_key(DEV_KEYS[2])
                .chain_id(anvil.chain_id())
                .allow_eip6492_factory(factory)
                .connect()
                .await
                .unwrap(),
        )),
    })
    .await;
    let x402 = X402Middleware::builder(payer.clone())
        .network(anvil_network())
        .max_per_request("1 USDC")
        .build()
        .unwrap();
    let client = x402.client().unwrap();
    let get = |path: &str| client.get(format!("{}{path}", server.base)).send();
    let hits = || server.hits.load(std::sync::atomic::Ordering::SeqCst);

    // Permit2 before the payer approved it: 412, nothing runs, nothing moves.
    let response = get("/chain/permit2").await.unwrap();
    assert_eq!(response.status().as_u16(), 412, "{framework}: no allowance");
    assert_eq!(hits(), 0);
    assert_eq!(anvil.balance(token, pay_to), U256::ZERO);

    // Approved once: paid on chain, exactly the price.
    anvil.approve(token, payer.address(), PERMIT2, U256::MAX);
    let response = get("/chain/permit2").await.unwrap();
    assert_eq!(response.status().as_u16(), 200, "{framework}: Permit2 paid");
    let receipt = response.settlement().cloned().expect("a receipt");
    assert_eq!(response.text().await.unwrap(), "permit2");
    let mined = anvil.call(
        "eth_getTransactionReceipt",
        serde_json::json!([receipt.transaction]),
    );
    assert_eq!(
        mined["status"], "0x1",
        "{framework}: the settlement was mined"
    );
    assert_eq!(anvil.balance(token, pay_to), U256::from(10_000u64));
    assert_eq!(
        anvil.balance(token, payer.address()),
        U256::from(1_000_000u64 - 10_000)
    );

    // Metered: 37% of the 0.50 USDC maximum, and exactly that, moves on chain.
    let response = get("/chain/metered").await.unwrap();
    assert_eq!(response.status().as_u16(), 200, "{framework}: metered");
    let receipt = response.settlement().cloned().expect("a receipt");
    assert_eq!(response.text().await.unwrap(), "185000");
    assert_eq!(receipt.amount.as_deref(), Some("185000"), "{framework}");
    let mined = anvil.call(
        "eth_getTransactionReceipt",
        serde_json::json!([receipt.transaction]),
    );
    assert_eq!(mined["status"], "0x1");
    assert_eq!(
        mined["from"].as_str().map(str::to_ascii_lowercase),
        Some(settler_address.to_string().to_ascii_lowercase()),
        "{framework}: sent by the facilitator the payer named"
    );
    assert_eq!(
        anvil.balance(token, pay_to),
        U256::from(10_000u64 + 185_000)
    );

    // A zero charge: served, no transaction sent, nothing moves.
    let sent = anvil.nonce(settler_address);
    let response = get("/chain/metered-free").await.unwrap();
    assert_eq!(
        response.status().as_u16(),
        200,
        "{framework}: metered, free"
    );
    let receipt = response.settlement().cloned().expect("a receipt");
    assert_eq!(receipt.transaction, "");
    assert_eq!(response.text().await.unwrap(), "0");
    assert_eq!(
        anvil.nonce(settler_address),
        sent,
        "{framework}: no transaction"
    );
    assert_eq!(
        anvil.balance(token, pay_to),
        U256::from(10_000u64 + 185_000)
    );
    assert_eq!(hits(), 3);

    // A deployed ERC-1271 wallet pays with EIP-3009 and with Permit2: the wallet is the payer,
    // its owner signs, the chain checks the signature.
    let owner = LocalSigner::random();
    let wallet = deployed_wallet(&anvil, factory, token, &owner, 100_000);
    let wallet_client = X402Middleware::builder(SmartWalletSigner::new(wallet, owner.clone()))
        .network(anvil_network())
        .build()
        .unwrap()
        .client()
        .unwrap();
    let before = anvil.balance(token, pay_to);
    for path in ["/chain/exact", "/chain/permit2"] {
        let response = wallet_client
            .get(format!("{}{path}", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status().as_u16(),
            200,
            "{framework}: a 1271 wallet pays {path}"
        );
        let receipt = response.settlement().cloned().expect("a receipt");
        assert!(
            receipt
                .payer
                .as_deref()
                .is_some_and(|p| p.eq_ignore_ascii_case(&wallet.to_string())),
            "{framework}: the wallet paid"
        );
    }
    assert_eq!(
        anvil.balance(token, wallet),
        U256::from(100_000u64 - 2 * 10_000)
    );
    assert_eq!(
        anvil.balance(token, pay_to),
        before + U256::from(2 * 10_000u64)
    );

    // A wallet that does not exist yet pays with an ERC-6492 signature; the facilitator deploys
    // it through the allowed factory, then settles.
    let owner = LocalSigner::random();
    let (wallet, deploy) = wallet_address(&anvil, factory, owner.address(), B256::repeat_byte(7));
    anvil.mint(token, wallet, U256::from(50_000u64));
    assert!(!has_code(&anvil, wallet));
    let signer = SmartWalletSigner::new(wallet, owner).counterfactual(factory, deploy.to_vec());
    let response = X402Middleware::builder(signer)
        .network(anvil_network())
        .build()
        .unwrap()
        .client()
        .unwrap()
        .get(format!("{}/chain/exact", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status().as_u16(),
        200,
        "{framework}: a 6492 wallet pays"
    );
    assert!(
        has_code(&anvil, wallet),
        "{framework}: deployed before settling"
    );
    assert_eq!(anvil.balance(token, wallet), U256::from(40_000u64));
    assert_eq!(hits(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permit2_and_upto_settle_on_chain_through_axum() {
    check("axum", axum_app::launch).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permit2_and_upto_settle_on_chain_through_actix_web() {
    check("actix-web", actix_app::launch).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permit2_and_upto_settle_on_chain_through_rocket() {
    check("rocket", rocket_app::launch).await;
}
