//! Permit2 settlement on a real EVM chain: each test runs its own anvil
//! (`x402_test_support::anvil`) with the workspace's test token deployed and the workspace's
//! own Permit2 and x402 exact and upto proxies (`contracts/`) installed at their canonical
//! addresses, and drives an [`EvmSettler`] with payloads signed by `x402_protocol::permit2`.

use std::sync::Arc;
use std::time::Duration;

use alloy_primitives::{B256, Bytes, keccak256};
use alloy_sol_types::SolCall;
use serde_json::json;
use x402_evm::EvmSettler;
use x402_protocol::eip2612::Eip2612GasSponsoring;
use x402_protocol::eip3009::{LocalSigner, TokenDomain};
use x402_protocol::facilitator::PaymentPayload;
use x402_protocol::permit2::{
    self, EXACT_PERMIT2_PROXY, ExactPermit2Payload, ExactPermit2Terms, PERMIT2_ADDRESS,
    Permit2Payload, UPTO_PERMIT2_PROXY, UptoPermit2Payload, UptoTerms, Witness,
};
use x402_protocol::verify::{InvalidPayment, PaymentKey, SignatureCheck, VerifiedPayment};
use x402_protocol::{
    Address, AssetInfo, ChainAddress, NetworkInfo, Reason, SchemePayload, U256, V2, v2,
};
use x402_runtime::facilitator::{SettleOutcome, Settler, SettlerError};
use x402_test_support::anvil::{
    self, Anvil, DEV_ADDRESSES, DEV_KEYS, PERMIT2, TOKEN_NAME, TOKEN_VERSION,
};

/// The facilitator's account: dev #1 (dev #0 deploys and mints, with its own nonces).
const FACILITATOR: usize = 1;
/// A maximum or price: $1 in 6-decimal units.
const PRICE: u64 = 1_000_000;

mod onchain {
    #![allow(missing_docs)]
    alloy_sol_types::sol! {
        struct TokenPermissions { address token; uint256 amount; }
        struct PermitTransferFrom { TokenPermissions permitted; uint256 nonce; uint256 deadline; }

        function DOMAIN_SEPARATOR() external view returns (bytes32);
        function hashPermitWitnessTransferFrom(PermitTransferFrom permit, address spender, bytes32 witness, string witnessTypeString) external view returns (bytes32);
        function PERMIT2() external view returns (address);
        function WITNESS_TYPEHASH() external view returns (bytes32);
        function WITNESS_TYPE_STRING() external view returns (string);

        function deploy(address owner, bytes32 salt) external returns (address wallet);
        function walletAddress(address owner, bytes32 salt) external view returns (address);
        function execute(address target, bytes data) external returns (bytes);
        function approve(address spender, uint256 value) external returns (bool);
        function isValidSignature(bytes32 hash, bytes signature) external view returns (bytes4);
        function nonces(address owner) external view returns (uint256);
    }
}

struct Chain {
    anvil: Anvil,
    chain_id: u64,
    token: Address,
    network: NetworkInfo,
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
    Some(Chain {
        anvil,
        chain_id,
        token,
        network,
    })
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn facilitator() -> Address {
    DEV_ADDRESSES[FACILITATOR].parse().unwrap()
}

fn settled(outcome: SettleOutcome) -> (String, U256) {
    match outcome {
        SettleOutcome::Settled {
            transaction,
            amount,
        } => (transaction, amount),
        other => panic!("expected a settlement, got {other:?}"),
    }
}

fn refused(error: SettlerError) -> InvalidPayment {
    match error {
        SettlerError::Rejected(invalid) => invalid,
        other => panic!("expected the payment to be refused, got {other}"),
    }
}

fn failure(outcome: SettleOutcome) -> InvalidPayment {
    match outcome {
        SettleOutcome::Failed(error) => refused(error),
        other => panic!("expected a failed settlement, got {other:?}"),
    }
}

impl Chain {
    async fn settler(&self) -> Arc<EvmSettler> {
        self.settler_waiting(Duration::from_secs(30)).await
    }

    /// A settler that waits `receipt_timeout` for a receipt (and never re-prices within a
    /// test, so a transaction keeps its hash).
    async fn settler_waiting(&self, receipt_timeout: Duration) -> Arc<EvmSettler> {
        Arc::new(
            EvmSettler::builder(self.anvil.url())
                .private_key(DEV_KEYS[FACILITATOR])
                .chain_id(self.chain_id)
                .receipt_timeout(receipt_timeout)
                .bump_after(Duration::from_secs(600))
                .poll_interval(Duration::from_millis(50))
                .connect()
                .await
                .unwrap(),
        )
    }

    /// A payer holding `funds` that approved Permit2 for `allowance`.
    fn payer(&self, funds: u64, allowance: U256) -> LocalSigner {
        let payer = LocalSigner::random();
        self.anvil
            .mint(self.token, payer.address(), U256::from(funds));
        if !allowance.is_zero() {
            self.anvil
                .approve(self.token, payer.address(), PERMIT2, allowance);
        }
        payer
    }

    fn exact_terms(&self, pay_to: Address, amount: u64) -> ExactPermit2Terms {
        ExactPermit2Terms {
            chain_id: self.chain_id,
            token: self.token,
            pay_to,
            amount: U256::from(amount),
        }
    }

    fn exact(&self, payer: &LocalSigner, pay_to: Address, amount: u64) -> ExactPermit2Payload {
        let terms = self.exact_terms(pay_to, amount);
        let payload = permit2::authorize_exact(payer, &terms, now(), 300);
        assert_eq!(
            permit2::verify_exact(&payload, &terms, now()).unwrap(),
            payer.address()
        );
        payload
    }

    fn upto(
        &self,
        payer: &LocalSigner,
        pay_to: Address,
        maximum: u64,
        facilitator: Address,
    ) -> UptoPermit2Payload {
        let facilitators = [facilitator];
        let terms = UptoTerms {
            chain_id: self.chain_id,
            token: self.token,
            pay_to,
            amount: U256::from(maximum),
            facilitators: &facilitators,
        };
        let payload = permit2::authorize_upto(payer, &terms, facilitator, now(), 300);
        assert_eq!(
            permit2::verify_upto(&payload, &terms, now()).unwrap(),
            payer.address()
        );
        payload
    }

    /// The payment as the facilitator hands it to the settler after verifying it.
    fn verified<W: Witness>(
        &self,
        payload: &Permit2Payload<W>,
        scheme: &str,
    ) -> (VerifiedPayment, PaymentPayload)
    where
        Permit2Payload<W>: Clone + Into<SchemePayload>,
    {
        let auth = &payload.permit2_authorization;
        let mut extra =
            json!({"assetTransferMethod": "permit2", "name": TOKEN_NAME, "version": TOKEN_VERSION});
        if scheme == permit2::UPTO {
            extra["facilitatorAddress"] = json!(facilitator().to_checksum(None));
        }
        let accepted = v2::PaymentRequirements {
            scheme: scheme.into(),
            network: self.network.caip2.to_string(),
            amount: auth.permitted.amount,
            asset: self.token.to_string(),
            pay_to: auth.witness.to().to_string(),
            max_timeout_seconds: 300,
            extra: Some(extra),
        };
        let wire = PaymentPayload::V2(v2::PaymentPayload {
            x402_version: V2::default(),
            resource: None,
            accepted,
            payload: Permit2Payload::clone(payload).into(),
            extensions: None,
        });
        let verified = VerifiedPayment {
            payer: ChainAddress::Evm(auth.from),
            network: self.network.clone(),
            asset: ChainAddress::Evm(self.token),
            pay_to: ChainAddress::Evm(auth.witness.to()),
            amount: auth.permitted.amount,
            key: PaymentKey::permit2(self.chain_id, auth.from, auth.nonce),
            expires_at: Some(auth.deadline.to::<u64>()),
            signature: SignatureCheck::Recovered,
        };
        (verified, wire)
    }

    fn eth_call<C: SolCall>(&self, to: Address, call: &C) -> C::Return {
        let out = self.anvil.call(
            "eth_call",
            json!([{"to": to, "data": Bytes::from(call.abi_encode())}, "latest"]),
        );
        let bytes: Bytes = out.as_str().unwrap().parse().unwrap();
        C::abi_decode_returns(&bytes).unwrap()
    }

    /// Revert data of a call that must revert, sent from `from`.
    fn revert_of(&self, from: Address, to: Address, data: &[u8]) -> String {
        let error = anvil::rpc(
            &self.anvil.url(),
            "eth_call",
            json!([{"from": from, "to": to, "data": Bytes::copy_from_slice(data)}, "latest"]),
        )
        .expect_err("the call reverts");
        error.to_string()
    }
}

fn selector(signature: &str) -> String {
    alloy_primitives::hex::encode(&keccak256(signature)[..4])
}

#[test]
fn the_committed_artifacts_were_built_from_the_committed_sources() {
    for (artifact, source, name) in [
        (
            include_str!("../../contracts/out/Permit2SignatureTransfer.json"),
            include_str!("../../contracts/src/Permit2SignatureTransfer.sol"),
            "Permit2SignatureTransfer",
        ),
        (
            include_str!("../../contracts/out/X402ExactPermit2Proxy.json"),
            include_str!("../../contracts/src/X402ExactPermit2Proxy.sol"),
            "X402ExactPermit2Proxy",
        ),
        (
            include_str!("../../contracts/out/X402UptoPermit2Proxy.json"),
            include_str!("../../contracts/src/X402UptoPermit2Proxy.sol"),
            "X402UptoPermit2Proxy",
        ),
        (
            include_str!("../../contracts/out/X402TestWallet.json"),
            include_str!("../../contracts/src/X402TestWallet.sol"),
            "X402TestWallet",
        ),
        (
            include_str!("../../contracts/out/X402TestWalletFactory.json"),
            include_str!("../../contracts/src/X402TestWallet.sol"),
            "X402TestWalletFactory",
        ),
        (
            include_str!("../../contracts/out/X402Erc6492Validator.json"),
            include_str!("../../contracts/src/X402Erc6492Validator.sol"),
            "X402Erc6492Validator",
        ),
    ] {
        let artifact: serde_json::Value = serde_json::from_str(artifact).unwrap();
        assert_eq!(artifact["contractName"], name);
        assert_eq!(
            artifact["sourceKeccak256"].as_str().unwrap(),
            keccak256(source).to_string(),
            "the source of {name} changed: run contracts/build.sh and commit the artifacts"
        );
        // The validator is never deployed (its constructor answers instead): its creation code
        // is what runs.
        let code = if name == "X402Erc6492Validator" {
            "bytecode"
        } else {
            "deployedBytecode"
        };
        assert!(artifact[code].as_str().unwrap().len() > 100, "{name}");
    }
}

#[tokio::test]
async fn the_onchain_permit2_and_proxies_hash_exactly_like_x402_protocol() {
    let Some(chain) = chain() else { return };
    assert_eq!(
        chain.eth_call(PERMIT2_ADDRESS, &onchain::DOMAIN_SEPARATORCall {}),
        permit2::domain_separator(chain.chain_id)
    );
    for proxy in [EXACT_PERMIT2_PROXY, UPTO_PERMIT2_PROXY] {
        assert_eq!(
            chain.eth_call(proxy, &onchain::PERMIT2Call {}),
            PERMIT2_ADDRESS
        );
    }
    assert_eq!(
        chain.eth_call(EXACT_PERMIT2_PROXY, &onchain::WITNESS_TYPEHASHCall {}),
        permit2::exact_witness_typehash()
    );
    assert_eq!(
        chain.eth_call(UPTO_PERMIT2_PROXY, &onchain::WITNESS_TYPEHASHCall {}),
        permit2::upto_witness_typehash()
    );

    // The digest Permit2 checks, for the witness type string each proxy passes, is the one
    // the payer signed.
    let payer = LocalSigner::random();
    let exact = chain.exact(&payer, Address::repeat_byte(7), 12_345);
    let upto = chain.upto(&payer, Address::repeat_byte(7), 54_321, facilitator());
    for (proxy, auth_digest, permitted, nonce, deadline, witness) in [
        (
            EXACT_PERMIT2_PROXY,
            exact.permit2_authorization.signing_hash(chain.chain_id),
            exact.permit2_authorization.permitted,
            exact.permit2_authorization.nonce,
            exact.permit2_authorization.deadline,
            exact.permit2_authorization.witness.hash_struct(),
        ),
        (
            UPTO_PERMIT2_PROXY,
            upto.permit2_authorization.signing_hash(chain.chain_id),
            upto.permit2_authorization.permitted,
            upto.permit2_authorization.nonce,
            upto.permit2_authorization.deadline,
            upto.permit2_authorization.witness.hash_struct(),
        ),
    ] {
        let type_string = chain.eth_call(proxy, &onchain::WITNESS_TYPE_STRINGCall {});
        let onchain = chain.eth_call(
            PERMIT2_ADDRESS,
            &onchain::hashPermitWitnessTransferFromCall {
                permit: onchain::PermitTransferFrom {
                    permitted: onchain::TokenPermissions {
                        token: permitted.token,
                        amount: permitted.amount,
                    },
                    nonce,
                    deadline,
                },
                spender: proxy,
                witness,
                witnessTypeString: type_string,
            },
        );
        assert_eq!(onchain, auth_digest, "proxy {proxy}");
    }

    // The proxies answer at the reference's selectors.
    assert_eq!(
        selector("settle(((address,uint256),uint256,uint256),address,(address,uint256),bytes)"),
        "13cd3b53"
    );
    assert_eq!(
        selector(
            "settle(((address,uint256),uint256,uint256),uint256,address,(address,address,uint256),bytes)"
        ),
        "ff11e7b4"
    );
}

#[tokio::test]
async fn the_proxies_and_permit2_refuse_what_the_reference_refuses() {
    let Some(chain) = chain() else { return };
    let settler = chain.settler().await;
    let payer = chain.payer(PRICE * 10, U256::MAX);
    let pay_to = LocalSigner::random().address();
    let good = chain.exact(&payer, pay_to, PRICE);
    let me = facilitator();
    let reverts = |to: Address, call: Vec<u8>, error: &str| {
        let revert = chain.revert_of(me, to, &call);
        assert!(revert.contains(&selector(error)), "{error}: {revert}");
    };

    // The exact proxy, before Permit2 is asked.
    let mut zero = good.clone();
    zero.permit2_authorization.permitted.amount = U256::ZERO;
    reverts(
        EXACT_PERMIT2_PROXY,
        x402_evm_calls::exact(&zero),
        "InvalidAmount()",
    );
    let mut no_owner = good.clone();
    no_owner.permit2_authorization.from = Address::ZERO;
    reverts(
        EXACT_PERMIT2_PROXY,
        x402_evm_calls::exact(&no_owner),
        "InvalidOwner()",
    );
    let mut nowhere = good.clone();
    nowhere.permit2_authorization.witness.to = Address::ZERO;
    reverts(
        EXACT_PERMIT2_PROXY,
        x402_evm_calls::exact(&nowhere),
        "InvalidDestination()",
    );
    let mut early = good.clone();
    early.permit2_authorization.witness.valid_after = U256::from(now() + 3_600);
    reverts(
        EXACT_PERMIT2_PROXY,
        x402_evm_calls::exact(&early),
        "PaymentTooEarly()",
    );

    // Permit2: another signer, a changed field, a short signature, a passed deadline.
    let stranger = LocalSigner::random();
    let mut forged =
        permit2::authorize_exact(&stranger, &chain.exact_terms(pay_to, PRICE), now(), 300);
    forged.permit2_authorization.from = payer.address();
    let forged = permit2::sign(&stranger, forged.permit2_authorization, chain.chain_id);
    reverts(
        EXACT_PERMIT2_PROXY,
        x402_evm_calls::exact(&forged),
        "InvalidSigner()",
    );
    let mut raised = good.clone();
    raised.permit2_authorization.permitted.amount = U256::from(PRICE * 2);
    reverts(
        EXACT_PERMIT2_PROXY,
        x402_evm_calls::exact(&raised),
        "InvalidSigner()",
    );
    let mut short = good.clone();
    short.signature = Bytes::from(vec![1u8; 64]);
    reverts(
        EXACT_PERMIT2_PROXY,
        x402_evm_calls::exact(&short),
        "InvalidSignatureLength()",
    );
    let expired = permit2::authorize_exact(
        &payer,
        &chain.exact_terms(pay_to, PRICE),
        now() - 3_600,
        300,
    );
    reverts(
        EXACT_PERMIT2_PROXY,
        x402_evm_calls::exact(&expired),
        "SignatureExpired(uint256)",
    );
    // The caller is the signed spender: the payload cannot be taken to Permit2 directly, and
    // more than permitted is refused first.
    let type_string: String =
        chain.eth_call(EXACT_PERMIT2_PROXY, &onchain::WITNESS_TYPE_STRINGCall {});
    reverts(
        PERMIT2_ADDRESS,
        x402_evm_calls::permit2_direct(&good, U256::from(PRICE), type_string.clone()),
        "InvalidSigner()",
    );
    reverts(
        PERMIT2_ADDRESS,
        x402_evm_calls::permit2_direct(&good, U256::from(PRICE + 1), type_string),
        "InvalidAmount(uint256)",
    );

    // The upto proxy: zero and above the maximum.
    let upto = chain.upto(&payer, pay_to, PRICE, me);
    reverts(
        UPTO_PERMIT2_PROXY,
        x402_evm_calls::upto(&upto, U256::ZERO),
        "InvalidAmount()",
    );
    reverts(
        UPTO_PERMIT2_PROXY,
        x402_evm_calls::upto(&upto, U256::from(PRICE + 1)),
        "AmountExceedsPermitted()",
    );

    // The settler's check names the revert in words.
    let (verified, wire) = chain.verified(&forged, "exact");
    let refusal = refused(settler.check(&verified, &wire).await.unwrap_err());
    assert_eq!(refusal.reason, Reason::SIMULATION_FAILED);
    assert!(
        refusal.message.contains("InvalidSigner"),
        "{}",
        refusal.message
    );

    // Nothing of the above moved a token; the good payment still settles.
    assert_eq!(chain.anvil.balance(chain.token, pay_to), U256::ZERO);
    let (verified, wire) = chain.verified(&good, "exact");
    settled(settler.settle(&verified, &wire, verified.amount).await);
    assert_eq!(chain.anvil.balance(chain.token, pay_to), U256::from(PRICE));
}

#[tokio::test]
async fn an_exact_permit2_payment_settles_once_and_moves_exactly_the_amount() {
    let Some(chain) = chain() else { return };
    let settler = chain.settler().await;
    let payer = chain.payer(PRICE * 3, U256::MAX);
    let pay_to = LocalSigner::random().address();
    let payload = chain.exact(&payer, pay_to, PRICE);
    let (verified, wire) = chain.verified(&payload, "exact");
    let nonce = payload.permit2_authorization.nonce;

    settler.check(&verified, &wire).await.unwrap();
    assert!(!chain.anvil.permit2_nonce_used(payer.address(), nonce));
    let (transaction, amount) = settled(settler.settle(&verified, &wire, verified.amount).await);
    assert!(
        transaction.starts_with("0x") && transaction.len() == 66,
        "{transaction}"
    );
    assert_eq!(amount, U256::from(PRICE));
    assert_eq!(
        chain.anvil.balance(chain.token, payer.address()),
        U256::from(PRICE * 2)
    );
    assert_eq!(chain.anvil.balance(chain.token, pay_to), U256::from(PRICE));
    assert!(chain.anvil.permit2_nonce_used(payer.address(), nonce));
    // The facilitator paid the gas, not a cent of the token.
    assert_eq!(chain.anvil.balance(chain.token, facilitator()), U256::ZERO);

    // A replay: the check sees the used nonce, and a settlement cannot get past Permit2.
    assert_eq!(
        refused(settler.check(&verified, &wire).await.unwrap_err()).reason,
        Reason::NONCE_ALREADY_USED
    );
    let replay = failure(settler.settle(&verified, &wire, verified.amount).await);
    assert_eq!(replay.reason, Reason::SIMULATION_FAILED);
    assert!(
        replay.message.contains("InvalidNonce"),
        "{}",
        replay.message
    );
    assert_eq!(chain.anvil.balance(chain.token, pay_to), U256::from(PRICE));

    // resolve: by receipt, and without the hash by the nonce bitmap and the Transfer log.
    assert_eq!(
        settled(settler.resolve(&verified, &wire, Some(&transaction)).await),
        (transaction.clone(), U256::from(PRICE))
    );
    assert_eq!(
        settled(settler.resolve(&verified, &wire, None).await),
        (transaction, U256::from(PRICE))
    );
}

#[tokio::test]
async fn upto_charges_what_was_used_and_only_from_the_named_facilitator() {
    let Some(chain) = chain() else { return };
    let settler = chain.settler().await;
    let payer = chain.payer(PRICE * 2, U256::MAX);
    let pay_to = LocalSigner::random().address();
    let payload = chain.upto(&payer, pay_to, PRICE, facilitator());
    let (verified, wire) = chain.verified(&payload, permit2::UPTO);
    let nonce = payload.permit2_authorization.nonce;
    settler.check(&verified, &wire).await.unwrap();

    // Above the maximum: refused before anything is sent.
    let before = chain.anvil.nonce(facilitator());
    assert_eq!(
        failure(
            settler
                .settle(&verified, &wire, U256::from(PRICE + 1))
                .await
        )
        .reason,
        Reason::UPTO_SETTLEMENT_EXCEEDS_AMOUNT
    );
    assert_eq!(chain.anvil.nonce(facilitator()), before);

    // 37% of the maximum moves exactly that.
    let charge = U256::from(PRICE * 37 / 100);
    let (transaction, amount) = settled(settler.settle(&verified, &wire, charge).await);
    assert_eq!(amount, charge);
    assert_eq!(chain.anvil.balance(chain.token, pay_to), charge);
    assert_eq!(
        chain.anvil.balance(chain.token, payer.address()),
        U256::from(PRICE * 2) - charge
    );
    assert!(chain.anvil.permit2_nonce_used(payer.address(), nonce));
    assert_eq!(chain.anvil.nonce(facilitator()), before + 1);

    // The charge is read back from the transaction when resolving without it.
    assert_eq!(
        settled(settler.resolve(&verified, &wire, None).await),
        (transaction.clone(), charge)
    );
    assert_eq!(
        settled(settler.resolve(&verified, &wire, Some(&transaction)).await),
        (transaction, charge)
    );
    assert_eq!(
        refused(settler.check(&verified, &wire).await.unwrap_err()).reason,
        Reason::NONCE_ALREADY_USED
    );

    // A payment naming another facilitator: this settler may not send it, and the proxy
    // refuses anyone but the named one.
    let other = LocalSigner::random().address();
    let elsewhere = chain.upto(&payer, pay_to, PRICE, other);
    let (verified, wire) = chain.verified(&elsewhere, permit2::UPTO);
    assert_eq!(
        refused(settler.check(&verified, &wire).await.unwrap_err()).reason,
        Reason::UPTO_FACILITATOR_MISMATCH
    );
    assert_eq!(
        failure(settler.settle(&verified, &wire, charge).await).reason,
        Reason::UPTO_FACILITATOR_MISMATCH
    );
    let auth = &elsewhere.permit2_authorization;
    let call = x402_evm_calls::upto(&elsewhere, charge);
    let revert = chain.revert_of(facilitator(), UPTO_PERMIT2_PROXY, &call);
    assert!(
        revert.contains(&selector("UnauthorizedFacilitator()")),
        "{revert}"
    );
    assert!(!chain.anvil.permit2_nonce_used(payer.address(), auth.nonce));
}

#[tokio::test]
async fn upto_charging_zero_sends_nothing_and_leaves_the_nonce_unused() {
    let Some(chain) = chain() else { return };
    let settler = chain.settler().await;
    let payer = chain.payer(PRICE, U256::MAX);
    let pay_to = LocalSigner::random().address();
    let payload = chain.upto(&payer, pay_to, PRICE, facilitator());
    let (verified, wire) = chain.verified(&payload, permit2::UPTO);
    let before = chain.anvil.nonce(facilitator());
    let block = chain.anvil.call("eth_blockNumber", json!([]));

    assert_eq!(
        settled(settler.settle(&verified, &wire, U256::ZERO).await),
        (String::new(), U256::ZERO)
    );
    assert_eq!(chain.anvil.nonce(facilitator()), before);
    assert_eq!(chain.anvil.call("eth_blockNumber", json!([])), block);
    assert!(
        !chain
            .anvil
            .permit2_nonce_used(payer.address(), payload.permit2_authorization.nonce)
    );
    assert_eq!(
        chain.anvil.balance(chain.token, payer.address()),
        U256::from(PRICE)
    );
    // The permit is still good for a later charge.
    settler.check(&verified, &wire).await.unwrap();
}

#[tokio::test]
async fn a_payer_without_a_permit2_allowance_gets_permit2_allowance_required() {
    let Some(chain) = chain() else { return };
    let settler = chain.settler().await;
    let pay_to = LocalSigner::random().address();

    // No approval at all, and one short of the price.
    for allowance in [U256::ZERO, U256::from(PRICE - 1)] {
        let payer = chain.payer(PRICE, allowance);
        assert_eq!(
            chain.anvil.allowance(chain.token, payer.address(), PERMIT2),
            allowance
        );
        let exact = chain.exact(&payer, pay_to, PRICE);
        let (verified, wire) = chain.verified(&exact, "exact");
        let refusal = refused(settler.check(&verified, &wire).await.unwrap_err());
        assert_eq!(refusal.reason, Reason::PERMIT2_ALLOWANCE_REQUIRED);
        assert_eq!(refusal.reason.as_str(), "permit2_allowance_required");

        let upto = chain.upto(&payer, pay_to, PRICE, facilitator());
        let (verified, wire) = chain.verified(&upto, permit2::UPTO);
        assert_eq!(
            refused(settler.check(&verified, &wire).await.unwrap_err()).reason,
            Reason::PERMIT2_ALLOWANCE_REQUIRED
        );
        // Settling anyway fails before anything is sent: the token refuses Permit2.
        let attempt = failure(settler.settle(&verified, &wire, U256::from(PRICE)).await);
        assert_eq!(attempt.reason, Reason::SIMULATION_FAILED);
        assert!(
            attempt.message.contains("InsufficientAllowance"),
            "{}",
            attempt.message
        );
    }

    // Approved but unfunded: insufficient funds.
    let payer = chain.payer(PRICE - 1, U256::MAX);
    let exact = chain.exact(&payer, pay_to, PRICE);
    let (verified, wire) = chain.verified(&exact, "exact");
    assert_eq!(
        refused(settler.check(&verified, &wire).await.unwrap_err()).reason,
        Reason::INSUFFICIENT_FUNDS
    );
}

#[tokio::test]
async fn on_a_chain_without_the_proxies_nothing_is_sent_and_nothing_looks_settled() {
    let Some(chain) = chain() else { return };
    // A call to an address without code "succeeds": the settler must not take that for a
    // settlement.
    chain.anvil.set_code(EXACT_PERMIT2_PROXY, "0x");
    let settler = chain.settler().await;
    let payer = chain.payer(PRICE, U256::MAX);
    let pay_to = LocalSigner::random().address();
    let payload = chain.exact(&payer, pay_to, PRICE);
    let (verified, wire) = chain.verified(&payload, "exact");
    let before = chain.anvil.nonce(facilitator());
    assert!(matches!(
        settler.check(&verified, &wire).await,
        Err(SettlerError::Unavailable(_))
    ));
    assert!(matches!(
        settler.settle(&verified, &wire, verified.amount).await,
        SettleOutcome::Failed(SettlerError::Unavailable(_))
    ));
    assert_eq!(chain.anvil.nonce(facilitator()), before);
    assert_eq!(chain.anvil.balance(chain.token, pay_to), U256::ZERO);

    // Once installed, the same payment settles.
    chain.anvil.install_permit2();
    settler.check(&verified, &wire).await.unwrap();
    settled(settler.settle(&verified, &wire, verified.amount).await);
    assert_eq!(chain.anvil.balance(chain.token, pay_to), U256::from(PRICE));
}

#[tokio::test]
async fn an_upto_settlement_not_mined_in_time_is_unknown_then_resolved_with_its_charge() {
    let Some(chain) = chain() else { return };
    let settler = chain.settler_waiting(Duration::from_secs(2)).await;
    let payer = chain.payer(PRICE, U256::MAX);
    let pay_to = LocalSigner::random().address();
    let payload = chain.upto(&payer, pay_to, PRICE, facilitator());
    let (verified, wire) = chain.verified(&payload, permit2::UPTO);
    let charge = U256::from(PRICE / 4);

    // The chain stops mining: the transaction is sent, its receipt does not come.
    chain.anvil.call("evm_setAutomine", json!([false]));
    let transaction = match settler.settle(&verified, &wire, charge).await {
        SettleOutcome::Unknown {
            transaction: Some(transaction),
            ..
        } => transaction,
        other => panic!("expected an unknown outcome with a transaction, got {other:?}"),
    };
    // Still pending: neither settled nor failed.
    assert!(matches!(
        settler.resolve(&verified, &wire, Some(&transaction)).await,
        SettleOutcome::Unknown { .. }
    ));
    assert!(
        !chain
            .anvil
            .permit2_nonce_used(payer.address(), payload.permit2_authorization.nonce)
    );

    // Mined: the receipt and the transaction's input decide, with the charge.
    chain.anvil.call("evm_mine", json!([]));
    assert_eq!(
        settled(settler.resolve(&verified, &wire, Some(&transaction)).await),
        (transaction.clone(), charge)
    );
    assert_eq!(
        settled(settler.resolve(&verified, &wire, None).await),
        (transaction, charge)
    );
    assert_eq!(chain.anvil.balance(chain.token, pay_to), charge);
}

#[tokio::test]
async fn unsettled_permits_resolve_to_unknown_until_their_deadline_then_failed() {
    let Some(chain) = chain() else { return };
    let settler = chain.settler().await;
    let payer = chain.payer(PRICE, U256::MAX);
    let pay_to = LocalSigner::random().address();

    let live = chain.exact(&payer, pay_to, PRICE);
    let (verified, wire) = chain.verified(&live, "exact");
    assert!(matches!(
        settler.resolve(&verified, &wire, None).await,
        SettleOutcome::Unknown { .. }
    ));
    // An unknown transaction hash does not make it settled either.
    let made_up = B256::repeat_byte(9).to_string();
    assert!(matches!(
        settler.resolve(&verified, &wire, Some(&made_up)).await,
        SettleOutcome::Unknown { .. }
    ));

    // Signed long ago: the deadline has passed and the nonce is unused.
    let terms = chain.exact_terms(pay_to, PRICE);
    let expired = permit2::authorize_exact(&payer, &terms, now() - 3_600, 300);
    let (verified, wire) = chain.verified(&expired, "exact");
    assert_eq!(
        failure(settler.resolve(&verified, &wire, None).await).reason,
        Reason::SETTLEMENT_FAILED
    );
    // And the contract agrees: settling it now reverts with SignatureExpired.
    let attempt = failure(settler.settle(&verified, &wire, verified.amount).await);
    assert!(
        attempt.message.contains("SignatureExpired"),
        "{}",
        attempt.message
    );
}

#[tokio::test]
async fn a_smart_wallet_pays_through_permit2_with_an_erc1271_signature() {
    let Some(chain) = chain() else { return };
    let settler = chain.settler().await;
    let owner = LocalSigner::random();

    // The factory, then the owner's wallet at its CREATE2 address.
    let factory: serde_json::Value = serde_json::from_str(include_str!(
        "../../contracts/out/X402TestWalletFactory.json"
    ))
    .unwrap();
    let receipt = chain.anvil.transact(json!({
        "from": DEV_ADDRESSES[0],
        "data": factory["bytecode"],
    }));
    let factory: Address = receipt["contractAddress"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let salt = B256::repeat_byte(0x42);
    let wallet = chain.eth_call(
        factory,
        &onchain::walletAddressCall {
            owner: owner.address(),
            salt,
        },
    );
    let deploy = Bytes::from(
        onchain::deployCall {
            owner: owner.address(),
            salt,
        }
        .abi_encode(),
    );
    chain
        .anvil
        .transact(json!({"from": DEV_ADDRESSES[0], "to": factory, "data": deploy}));
    let code = chain.anvil.call("eth_getCode", json!([wallet, "latest"]));
    assert!(code.as_str().unwrap().len() > 2, "no wallet at {wallet}");

    // Funded, and Permit2 approved by the wallet itself (called by its owner).
    chain.anvil.mint(chain.token, wallet, U256::from(PRICE));
    let approve = onchain::approveCall {
        spender: PERMIT2,
        value: U256::MAX,
    }
    .abi_encode();
    chain.anvil.call(
        "anvil_setBalance",
        json!([owner.address(), "0xde0b6b3a7640000"]),
    );
    chain
        .anvil
        .call("anvil_impersonateAccount", json!([owner.address()]));
    let execute = Bytes::from(
        onchain::executeCall {
            target: chain.token,
            data: approve.into(),
        }
        .abi_encode(),
    );
    chain
        .anvil
        .transact(json!({"from": owner.address(), "to": wallet, "data": execute}));

    // The owner signs the Permit2 digest for the wallet; `from` is the wallet.
    let pay_to = LocalSigner::random().address();
    let mut signed =
        permit2::authorize_exact(&owner, &chain.exact_terms(pay_to, PRICE), now(), 300);
    signed.permit2_authorization.from = wallet;
    let payload = permit2::sign(&owner, signed.permit2_authorization, chain.chain_id);
    let digest = payload.permit2_authorization.signing_hash(chain.chain_id);
    assert_eq!(
        chain.eth_call(
            wallet,
            &onchain::isValidSignatureCall {
                hash: digest,
                signature: payload.signature.clone(),
            },
        ),
        alloy_primitives::FixedBytes([0x16, 0x26, 0xba, 0x7e])
    );

    let (verified, wire) = chain.verified(&payload, "exact");
    settler.check(&verified, &wire).await.unwrap();
    let (_, amount) = settled(settler.settle(&verified, &wire, verified.amount).await);
    assert_eq!(amount, U256::from(PRICE));
    assert_eq!(chain.anvil.balance(chain.token, pay_to), U256::from(PRICE));
    assert_eq!(chain.anvil.balance(chain.token, wallet), U256::ZERO);

    // A signature by anyone else is refused by the wallet, so by Permit2.
    chain.anvil.mint(chain.token, wallet, U256::from(PRICE));
    let stranger = LocalSigner::random();
    let mut forged =
        permit2::authorize_exact(&stranger, &chain.exact_terms(pay_to, PRICE), now(), 300);
    forged.permit2_authorization.from = wallet;
    let forged = permit2::sign(&stranger, forged.permit2_authorization, chain.chain_id);
    let (verified, wire) = chain.verified(&forged, "exact");
    let refusal = refused(settler.check(&verified, &wire).await.unwrap_err());
    assert_eq!(refusal.reason, Reason::SIMULATION_FAILED);
    assert!(
        refusal.message.contains("InvalidContractSignature"),
        "{}",
        refusal.message
    );
}

/// The upto proxy's calldata, built here independently of the settler.
mod x402_evm_calls {
    use super::*;

    alloy_sol_types::sol! {
        struct Permitted { address token; uint256 amount; }
        struct Permit { Permitted permitted; uint256 nonce; uint256 deadline; }
        struct ExactWitness { address to; uint256 validAfter; }
        struct UptoWitness { address to; address facilitator; uint256 validAfter; }
        struct TransferDetails { address to; uint256 requestedAmount; }
        interface Exact {
            function settle(Permit permit, address owner, ExactWitness witness, bytes signature) external;
        }
        function settle(Permit permit, uint256 amount, address owner, UptoWitness witness, bytes signature) external;
        function permitWitnessTransferFrom(Permit permit, TransferDetails transferDetails, address owner, bytes32 witness, string witnessTypeString, bytes signature) external;
    }

    fn permit<W>(auth: &permit2::Permit2Authorization<W>) -> Permit {
        Permit {
            permitted: Permitted {
                token: auth.permitted.token,
                amount: auth.permitted.amount,
            },
            nonce: auth.nonce,
            deadline: auth.deadline,
        }
    }

    pub(super) fn exact(payload: &ExactPermit2Payload) -> Vec<u8> {
        let auth = &payload.permit2_authorization;
        Exact::settleCall {
            permit: permit(auth),
            owner: auth.from,
            witness: ExactWitness {
                to: auth.witness.to,
                validAfter: auth.witness.valid_after,
            },
            signature: payload.signature.clone(),
        }
        .abi_encode()
    }

    /// Permit2 called directly (the caller is the spender), asking for `requested`.
    pub(super) fn permit2_direct(
        payload: &ExactPermit2Payload,
        requested: U256,
        type_string: String,
    ) -> Vec<u8> {
        let auth = &payload.permit2_authorization;
        permitWitnessTransferFromCall {
            permit: permit(auth),
            transferDetails: TransferDetails {
                to: auth.witness.to,
                requestedAmount: requested,
            },
            owner: auth.from,
            witness: auth.witness.hash_struct(),
            witnessTypeString: type_string,
            signature: payload.signature.clone(),
        }
        .abi_encode()
    }

    pub(super) fn upto(payload: &UptoPermit2Payload, amount: U256) -> Vec<u8> {
        let auth = &payload.permit2_authorization;
        settleCall {
            permit: permit(auth),
            amount,
            owner: auth.from,
            witness: UptoWitness {
                to: auth.witness.to,
                facilitator: auth.witness.facilitator,
                validAfter: auth.witness.valid_after,
            },
            signature: payload.signature.clone(),
        }
        .abi_encode()
    }
}

// --------------------------------------------------------------------------------------------
// eip2612GasSponsoring: a payer without a Permit2 allowance (and without ETH) pays with an
// EIP-2612 permit the proxy submits in `settleWithPermit`.
// --------------------------------------------------------------------------------------------

impl Chain {
    /// The token's EIP-712 domain, which the EIP-2612 permit is signed under.
    fn token_domain(&self) -> TokenDomain<'static> {
        TokenDomain {
            name: TOKEN_NAME,
            version: TOKEN_VERSION,
            chain_id: self.chain_id,
            verifying_contract: self.token,
        }
    }

    /// The token's EIP-2612 `nonces(owner)`.
    fn token_nonce(&self, owner: Address) -> U256 {
        self.eth_call(self.token, &onchain::noncesCall { owner })
    }

    /// The payer's permit for `payload`, at the token's current nonce.
    fn sponsoring<W>(
        &self,
        payer: &LocalSigner,
        payload: &Permit2Payload<W>,
    ) -> Eip2612GasSponsoring {
        Eip2612GasSponsoring::sign(
            payer,
            &self.token_domain(),
            &payload.permit2_authorization,
            self.token_nonce(payer.address()),
        )
    }
}

/// The payment with `info` in its `extensions`.
fn with_permit(mut wire: PaymentPayload, info: &Eip2612GasSponsoring) -> PaymentPayload {
    if let PaymentPayload::V2(p) = &mut wire {
        info.insert_into(&mut p.extensions);
    }
    wire
}

#[tokio::test]
async fn a_payer_without_allowance_or_eth_pays_exact_with_an_eip2612_permit() {
    let Some(chain) = chain() else { return };
    let settler = chain.settler().await;
    let payer = chain.payer(PRICE * 3, U256::ZERO);
    let pay_to = LocalSigner::random().address();
    let eth = chain
        .anvil
        .call("eth_getBalance", json!([payer.address(), "latest"]));
    assert_eq!(eth, json!("0x0"));
    assert_eq!(chain.token_nonce(payer.address()), U256::ZERO);

    let payload = chain.exact(&payer, pay_to, PRICE);
    let (verified, plain) = chain.verified(&payload, "exact");
    // Without the extension the payer is told to approve Permit2.
    assert_eq!(
        refused(settler.check(&verified, &plain).await.unwrap_err()).reason,
        Reason::PERMIT2_ALLOWANCE_REQUIRED
    );
    let info = chain.sponsoring(&payer, &payload);
    info.verify_signature(Default::default(), &chain.token_domain())
        .unwrap();
    let wire = with_permit(plain, &info);

    settler.check(&verified, &wire).await.unwrap();
    // Checking sends nothing.
    assert_eq!(chain.token_nonce(payer.address()), U256::ZERO);
    let (transaction, amount) = settled(settler.settle(&verified, &wire, verified.amount).await);
    assert_eq!(amount, U256::from(PRICE));
    // Exactly the price moved; the permit was used (nonce advanced) and the approval it gave
    // Permit2 was spent by the transfer; the payer still has no ETH.
    assert_eq!(
        chain.anvil.balance(chain.token, payer.address()),
        U256::from(PRICE * 2)
    );
    assert_eq!(chain.anvil.balance(chain.token, pay_to), U256::from(PRICE));
    assert_eq!(chain.anvil.balance(chain.token, facilitator()), U256::ZERO);
    assert_eq!(chain.token_nonce(payer.address()), U256::from(1u64));
    assert_eq!(
        chain.anvil.allowance(chain.token, payer.address(), PERMIT2),
        U256::ZERO
    );
    assert!(
        chain
            .anvil
            .permit2_nonce_used(payer.address(), payload.permit2_authorization.nonce)
    );
    assert_eq!(
        chain
            .anvil
            .call("eth_getBalance", json!([payer.address(), "latest"])),
        json!("0x0")
    );
    let input = chain
        .anvil
        .call("eth_getTransactionByHash", json!([transaction]))["input"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(input.starts_with("0xfa340378"), "{input}");

    // Resolving without the hash finds the settleWithPermit transaction.
    assert_eq!(
        settled(settler.resolve(&verified, &wire, None).await),
        (transaction, U256::from(PRICE))
    );
    // A replay: the Permit2 nonce is used.
    assert_eq!(
        refused(settler.check(&verified, &wire).await.unwrap_err()).reason,
        Reason::NONCE_ALREADY_USED
    );
}

#[tokio::test]
async fn a_payer_without_allowance_pays_upto_with_an_eip2612_permit_for_the_maximum() {
    let Some(chain) = chain() else { return };
    let settler = chain.settler().await;
    let payer = chain.payer(PRICE * 2, U256::ZERO);
    let pay_to = LocalSigner::random().address();
    let payload = chain.upto(&payer, pay_to, PRICE, facilitator());
    let info = chain.sponsoring(&payer, &payload);
    assert_eq!(info.amount, U256::from(PRICE));
    let (verified, wire) = chain.verified(&payload, permit2::UPTO);
    let wire = with_permit(wire, &info);
    settler.check(&verified, &wire).await.unwrap();

    let charge = U256::from(PRICE * 37 / 100);
    let (transaction, amount) = settled(settler.settle(&verified, &wire, charge).await);
    assert_eq!(amount, charge);
    assert_eq!(chain.anvil.balance(chain.token, pay_to), charge);
    assert_eq!(
        chain.anvil.balance(chain.token, payer.address()),
        U256::from(PRICE * 2) - charge
    );
    assert_eq!(chain.token_nonce(payer.address()), U256::from(1u64));
    // The permit approved the maximum; the charge was spent from it.
    assert_eq!(
        chain.anvil.allowance(chain.token, payer.address(), PERMIT2),
        U256::from(PRICE) - charge
    );
    assert_eq!(
        settled(settler.resolve(&verified, &wire, None).await),
        (transaction, charge)
    );
}

#[tokio::test]
async fn a_bad_eip2612_permit_is_refused_and_an_approved_payer_settles_without_it() {
    let Some(chain) = chain() else { return };
    let settler = chain.settler().await;
    let pay_to = LocalSigner::random().address();
    let payer = chain.payer(PRICE * 2, U256::ZERO);
    let payload = chain.exact(&payer, pay_to, PRICE);
    let (verified, wire) = chain.verified(&payload, "exact");
    let good = chain.sponsoring(&payer, &payload);

    // Offline checks, each with its reason.
    let mut amount = good.clone();
    amount.amount = U256::MAX;
    let mut spender = good.clone();
    spender.spender = EXACT_PERMIT2_PROXY;
    let mut from = good.clone();
    from.from = LocalSigner::random().address();
    for (bad, reason) in [
        (amount, Reason::EIP2612_AMOUNT_MISMATCH),
        (spender, Reason::EIP2612_SPENDER_NOT_PERMIT2),
        (from, Reason::EIP2612_FROM_MISMATCH),
    ] {
        let wire = with_permit(wire.clone(), &bad);
        assert_eq!(
            refused(settler.check(&verified, &wire).await.unwrap_err()).reason,
            reason
        );
        assert_eq!(
            failure(settler.settle(&verified, &wire, verified.amount).await).reason,
            reason
        );
    }
    // A permit signed for a nonce the token does not expect: the token refuses it inside the
    // proxy's try/catch, and the transfer then reverts for want of an allowance.
    let stale = Eip2612GasSponsoring::sign(
        &payer,
        &chain.token_domain(),
        &payload.permit2_authorization,
        U256::from(7u64),
    );
    let stale = with_permit(wire.clone(), &stale);
    let refusal = refused(settler.check(&verified, &stale).await.unwrap_err());
    assert_eq!(refusal.reason, Reason::SIMULATION_FAILED);
    assert!(
        refusal.message.contains("settleWithPermit"),
        "{}",
        refusal.message
    );
    assert_eq!(
        failure(settler.settle(&verified, &stale, verified.amount).await).reason,
        Reason::SIMULATION_FAILED
    );
    assert_eq!(chain.anvil.balance(chain.token, pay_to), U256::ZERO);
    assert_eq!(chain.token_nonce(payer.address()), U256::ZERO);

    // A payer who already approved Permit2: plain `settle`, the permit is not used.
    let approved = chain.payer(PRICE, U256::MAX);
    let payload = chain.exact(&approved, pay_to, PRICE);
    let info = chain.sponsoring(&approved, &payload);
    let (verified, wire) = chain.verified(&payload, "exact");
    let wire = with_permit(wire, &info);
    settler.check(&verified, &wire).await.unwrap();
    let (transaction, _) = settled(settler.settle(&verified, &wire, verified.amount).await);
    let input = chain
        .anvil
        .call("eth_getTransactionByHash", json!([transaction]))["input"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(input.starts_with("0x13cd3b53"), "{input}");
    assert_eq!(chain.token_nonce(approved.address()), U256::ZERO);
    assert_eq!(
        chain
            .anvil
            .allowance(chain.token, approved.address(), PERMIT2),
        U256::MAX
    );
    assert_eq!(chain.anvil.balance(chain.token, pay_to), U256::from(PRICE));
}

// erc20ApprovalGasSponsoring: a payer without a Permit2 allowance (and without ETH) pays with a
// signed approve(Permit2) transaction the settler funds, broadcasts, then settles after.
// --------------------------------------------------------------------------------------------

/// The payment with a signed approval in its `extensions`.
fn with_approval(
    mut wire: PaymentPayload,
    info: &x402_protocol::erc20_approval::Erc20ApprovalGasSponsoring,
) -> PaymentPayload {
    if let PaymentPayload::V2(p) = &mut wire {
        info.insert_into(&mut p.extensions);
    }
    wire
}

fn hex_u256(value: &serde_json::Value) -> U256 {
    value.as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_payer_without_allowance_or_eth_pays_exact_with_a_signed_erc20_approval() {
    use x402_protocol::erc20_approval::{
        APPROVAL_GAS_LIMIT, ApprovalFees, Erc20ApprovalGasSponsoring,
    };
    let Some(chain) = chain() else { return };
    let settler = chain.settler().await;
    let payer = chain.payer(PRICE * 3, U256::ZERO);
    let pay_to = LocalSigner::random().address();
    let eth = |who: Address| hex_u256(&chain.anvil.call("eth_getBalance", json!([who, "latest"])));
    assert_eq!(eth(payer.address()), U256::ZERO);

    let payload = chain.exact(&payer, pay_to, PRICE);
    let (verified, plain) = chain.verified(&payload, "exact");
    assert_eq!(
        refused(settler.check(&verified, &plain).await.unwrap_err()).reason,
        Reason::PERMIT2_ALLOWANCE_REQUIRED
    );
    let fees = |nonce| ApprovalFees {
        nonce,
        max_fee_per_gas: 3_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        gas_limit: APPROVAL_GAS_LIMIT,
    };
    let sign = |signer: &LocalSigner, nonce| {
        let mut info = Erc20ApprovalGasSponsoring::sign(
            signer,
            chain.chain_id,
            chain.token,
            U256::MAX,
            fees(nonce),
        );
        info.from = payer.address();
        with_approval(plain.clone(), &info)
    };
    // Refused: a nonce the chain would not take now; another signer.
    assert_eq!(
        refused(
            settler
                .check(&verified, &sign(&payer, 5))
                .await
                .unwrap_err()
        )
        .reason,
        Reason::SIMULATION_FAILED
    );
    assert_eq!(
        refused(
            settler
                .check(&verified, &sign(&LocalSigner::random(), 0))
                .await
                .unwrap_err()
        )
        .reason,
        Reason::ERC20_APPROVAL_TX_SIGNER_MISMATCH
    );
    let wire = sign(&payer, 0);
    settler.check(&verified, &wire).await.unwrap();
    // Checking sends nothing.
    assert_eq!(
        chain.anvil.call(
            "eth_getTransactionCount",
            json!([payer.address(), "latest"])
        ),
        json!("0x0")
    );
    let facilitator_before = eth(facilitator());
    let (transaction, amount) = settled(settler.settle(&verified, &wire, verified.amount).await);
    assert_eq!(amount, U256::from(PRICE));
    // The approval was mined from the payer's address (its nonce 0), before the settlement.
    let PaymentPayload::V2(p) = &wire else {
        unreachable!()
    };
    let raw: Bytes =
        p.extensions.as_ref().unwrap()["erc20ApprovalGasSponsoring"]["info"]["signedTransaction"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
    let approval = keccak256(&raw);
    let receipt = chain
        .anvil
        .call("eth_getTransactionReceipt", json!([approval]));
    assert_eq!(receipt["status"], json!("0x1"));
    assert_eq!(
        receipt["from"].as_str().unwrap().to_lowercase(),
        payer.address().to_string().to_lowercase()
    );
    let settlement = chain
        .anvil
        .call("eth_getTransactionReceipt", json!([transaction]));
    assert!(hex_u256(&settlement["blockNumber"]) >= hex_u256(&receipt["blockNumber"]));
    assert_ne!(B256::from(approval), transaction.parse::<B256>().unwrap());
    assert_eq!(
        chain.anvil.call(
            "eth_getTransactionCount",
            json!([payer.address(), "latest"])
        ),
        json!("0x1")
    );
    // Exactly the price moved; Permit2 holds the unlimited approval.
    assert_eq!(
        chain.anvil.balance(chain.token, payer.address()),
        U256::from(PRICE * 2)
    );
    assert_eq!(chain.anvil.balance(chain.token, pay_to), U256::from(PRICE));
    assert_eq!(
        chain.anvil.allowance(chain.token, payer.address(), PERMIT2),
        U256::MAX
    );
    // The funding was exactly the approval's maximum gas cost; the payer keeps what it did
    // not burn.
    let funded = U256::from(APPROVAL_GAS_LIMIT) * U256::from(3_000_000_000u64);
    let burned = hex_u256(&receipt["gasUsed"]) * hex_u256(&receipt["effectiveGasPrice"]);
    assert_eq!(eth(payer.address()), funded - burned);
    assert!(facilitator_before - eth(facilitator()) >= funded);
    // A replay: the Permit2 nonce is used.
    assert_eq!(
        refused(settler.check(&verified, &wire).await.unwrap_err()).reason,
        Reason::NONCE_ALREADY_USED
    );
}

#[tokio::test]
async fn a_payer_without_allowance_pays_upto_with_a_signed_erc20_approval_and_a_reverted_approval_sends_nothing_else()
 {
    use x402_protocol::erc20_approval::{ApprovalFees, Erc20ApprovalGasSponsoring};
    let Some(chain) = chain() else { return };
    let settler = chain.settler().await;
    let fees = |nonce, gas_limit| ApprovalFees {
        nonce,
        max_fee_per_gas: 3_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        gas_limit,
    };

    // upto: an approval of exactly the maximum; the charge is spent from it.
    let payer = chain.payer(PRICE * 2, U256::ZERO);
    let pay_to = LocalSigner::random().address();
    let payload = chain.upto(&payer, pay_to, PRICE, facilitator());
    let (verified, wire) = chain.verified(&payload, permit2::UPTO);
    let info = Erc20ApprovalGasSponsoring::sign(
        &payer,
        chain.chain_id,
        chain.token,
        U256::from(PRICE),
        fees(0, 70_000),
    );
    let wire = with_approval(wire, &info);
    settler.check(&verified, &wire).await.unwrap();
    let charge = U256::from(PRICE * 37 / 100);
    let (transaction, amount) = settled(settler.settle(&verified, &wire, charge).await);
    assert_eq!(amount, charge);
    assert_eq!(chain.anvil.balance(chain.token, pay_to), charge);
    assert_eq!(
        chain.anvil.balance(chain.token, payer.address()),
        U256::from(PRICE * 2) - charge
    );
    assert_eq!(
        chain.anvil.allowance(chain.token, payer.address(), PERMIT2),
        U256::from(PRICE) - charge
    );
    assert_eq!(
        settled(settler.resolve(&verified, &wire, None).await),
        (transaction, charge)
    );

    // An approval that runs out of gas is mined reverted: the settlement fails and the
    // payment is not sent (the Permit2 nonce stays unused, nothing moves).
    let payer = chain.payer(PRICE, U256::ZERO);
    let payload = chain.exact(&payer, pay_to, PRICE);
    let (verified, wire) = chain.verified(&payload, "exact");
    let info = Erc20ApprovalGasSponsoring::sign(
        &payer,
        chain.chain_id,
        chain.token,
        U256::MAX,
        fees(0, 30_000),
    );
    let wire = with_approval(wire, &info);
    settler.check(&verified, &wire).await.unwrap();
    let failed = failure(settler.settle(&verified, &wire, verified.amount).await);
    assert_eq!(failed.reason, Reason::SIMULATION_FAILED, "{failed:?}");
    assert_eq!(
        chain.anvil.call(
            "eth_getTransactionCount",
            json!([payer.address(), "latest"])
        ),
        json!("0x1")
    );
    assert_eq!(
        chain.anvil.allowance(chain.token, payer.address(), PERMIT2),
        U256::ZERO
    );
    assert_eq!(
        chain.anvil.balance(chain.token, payer.address()),
        U256::from(PRICE)
    );
    assert!(
        !chain
            .anvil
            .permit2_nonce_used(payer.address(), payload.permit2_authorization.nonce)
    );
}
