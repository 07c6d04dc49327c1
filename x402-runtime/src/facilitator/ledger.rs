use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use x402_protocol::eip2612::Eip2612GasSponsoring;
use x402_protocol::eip3009::RecoveryBackend;
use x402_protocol::erc20_approval::Erc20ApprovalGasSponsoring;
use x402_protocol::facilitator::PaymentPayload;
use x402_protocol::verify::{InvalidPayment, PaymentKey, VerifiedPayment};
use x402_protocol::{Address, B256, ChainAddress, Reason, SchemePayload, SolanaAddress, U256};

use super::{SettleOutcome, Settler, SettlerError};

/// How a Permit2 payment whose allowance is short gets one: what settling applies first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Approval {
    /// An `eip2612GasSponsoring` permit for this value (consumes a token nonce).
    Permit(U256),
    /// An `erc20ApprovalGasSponsoring` transaction approving this value (consumes a
    /// transaction nonce of the payer).
    Transaction(U256),
}

/// One settled transfer in a [`DevLedger`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    /// The network's CAIP-2 id.
    pub network: String,
    /// Token contract or mint.
    pub asset: ChainAddress,
    /// Payer.
    pub from: ChainAddress,
    /// Recipient.
    pub to: ChainAddress,
    /// Atomic amount.
    pub value: U256,
    /// What made the payment unique (its authorization's nonce, its transaction…).
    pub key: PaymentKey,
    /// The synthetic transaction id reported in the receipt: the ledger's random prefix and
    /// the transfer's sequence number.
    pub transaction: B256,
}

/// How a transfer's synthetic id reads on its chain: a `0x…` hash on EVM chains, a base58
/// 64-byte signature on Solana.
fn transaction_id(payer: &ChainAddress, id: B256) -> String {
    match payer {
        ChainAddress::Evm(_) => id.to_string(),
        ChainAddress::Solana(_) => {
            let mut signature = [0u8; 64];
            signature[..32].copy_from_slice(id.as_slice());
            signature[32..].copy_from_slice(id.as_slice());
            bs58::encode(signature).into_string()
        }
    }
}

/// Network (CAIP-2 id: borrowed for built-in networks, so lookups allocate nothing), token,
/// holder.
type Account = (Cow<'static, str>, ChainAddress, ChainAddress);

/// What `map` holds for `holder`'s `asset` on `network` (zero when nothing).
fn read(
    map: &HashMap<Account, U256>,
    network: &str,
    asset: ChainAddress,
    holder: ChainAddress,
) -> U256 {
    map.get(&(Cow::Borrowed(network), asset, holder))
        .copied()
        .unwrap_or_default()
}

#[derive(Debug)]
struct State {
    balances: HashMap<Account, U256>,
    /// What each holder allowed Permit2 to move of a token (an ERC-20 `approve(Permit2, …)`).
    permit2_allowances: HashMap<Account, U256>,
    /// Each holder's EIP-2612 `nonces(owner)` per token: the nonce its next permit must sign.
    token_nonces: HashMap<Account, U256>,
    /// Each EVM account's transaction nonce per network (CAIP-2 id): what the next signed
    /// `erc20ApprovalGasSponsoring` transaction must use.
    transaction_nonces: HashMap<(Cow<'static, str>, ChainAddress), u64>,
    used: HashSet<PaymentKey>,
    transfers: Vec<Transfer>,
    /// Random bytes that start every transaction id of this ledger.
    salt: B256,
}

impl Default for State {
    fn default() -> Self {
        State {
            balances: HashMap::new(),
            permit2_allowances: HashMap::new(),
            token_nonces: HashMap::new(),
            transaction_nonces: HashMap::new(),
            used: HashSet::new(),
            transfers: Vec::new(),
            salt: x402_protocol::eip3009::random_nonce(),
        }
    }
}

impl State {
    /// A transaction id no other transfer of this ledger has (and, by its random prefix, no
    /// other ledger's): no hashing per settlement.
    fn next_transaction(&self) -> B256 {
        let mut id = self.salt;
        id.0[24..].copy_from_slice(&(self.transfers.len() as u64).to_be_bytes());
        id
    }
}

/// An in-memory token ledger that settles verified payments the way a chain would: each
/// payment (its [`PaymentKey`]: an authorization's nonce, a transaction) once, never beyond
/// the payer's balance. Works for every network and scheme, EVM and Solana alike. Development
/// and tests only: no money moves.
///
/// ```
/// use x402_protocol::{Address, U256};
/// use x402_runtime::facilitator::DevLedger;
///
/// let ledger = DevLedger::new();
/// let (usdc, alice) = (Address::repeat_byte(1), Address::repeat_byte(2));
/// ledger.fund("eip155:8453", usdc, alice, U256::from(1_000_000u64));
/// assert_eq!(ledger.balance("eip155:8453", usdc, alice), U256::from(1_000_000u64));
/// ```
#[derive(Debug, Default)]
pub struct DevLedger {
    state: Mutex<State>,
}

impl DevLedger {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update below is applied whole after its checks, so a poisoned lock still
        // guards consistent data.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Credits `amount` atomic units of `asset` on `network` (CAIP-2 id) to `account` (a
    /// faucet).
    pub fn fund(
        &self,
        network: &str,
        asset: impl Into<ChainAddress>,
        account: impl Into<ChainAddress>,
        amount: U256,
    ) {
        let mut state = self.lock();
        let balance = state
            .balances
            .entry((Cow::Owned(network.to_owned()), asset.into(), account.into()))
            .or_default();
        *balance = balance.saturating_add(amount);
    }

    /// The balance of `account`.
    pub fn balance(
        &self,
        network: &str,
        asset: impl Into<ChainAddress>,
        account: impl Into<ChainAddress>,
    ) -> U256 {
        read(&self.lock().balances, network, asset.into(), account.into())
    }

    /// Lets Permit2 move up to `amount` of `owner`'s `asset` on `network` (CAIP-2 id), as the
    /// ERC-20 `approve(Permit2, amount)` a payer sends once before paying with Permit2 does.
    /// `U256::MAX` never decreases. Permit2 payments of a holder without enough allowance are
    /// refused with `permit2_allowance_required` (HTTP 412 from a gate), unless they carry an
    /// `eip2612GasSponsoring` permit signing the holder's current
    /// [`token_nonce`](Self::token_nonce): settling then sets the allowance to the permit's
    /// value and consumes the nonce, as the token's `permit` would; or an
    /// `erc20ApprovalGasSponsoring` transaction signed at the holder's
    /// [`transaction_nonce`](Self::transaction_nonce): settling then sets the allowance to the
    /// approved amount and consumes that nonce, as broadcasting it would.
    ///
    /// ```
    /// use x402_protocol::{Address, U256};
    /// use x402_runtime::facilitator::DevLedger;
    ///
    /// let ledger = DevLedger::new();
    /// let (usdc, alice) = (Address::repeat_byte(1), Address::repeat_byte(2));
    /// ledger.approve_permit2("eip155:8453", usdc, alice, U256::MAX);
    /// assert_eq!(ledger.permit2_allowance("eip155:8453", usdc, alice), U256::MAX);
    /// ```
    pub fn approve_permit2(
        &self,
        network: &str,
        asset: impl Into<ChainAddress>,
        owner: impl Into<ChainAddress>,
        amount: U256,
    ) {
        self.lock().permit2_allowances.insert(
            (Cow::Owned(network.to_owned()), asset.into(), owner.into()),
            amount,
        );
    }

    /// What Permit2 may still move of `owner`'s `asset`.
    pub fn permit2_allowance(
        &self,
        network: &str,
        asset: impl Into<ChainAddress>,
        owner: impl Into<ChainAddress>,
    ) -> U256 {
        read(
            &self.lock().permit2_allowances,
            network,
            asset.into(),
            owner.into(),
        )
    }

    /// The EIP-2612 `nonces(owner)` the ledger tracks for `owner`'s `asset`: what the next
    /// `eip2612GasSponsoring` permit must sign. Starts at zero; each permit the ledger uses as
    /// an approval consumes one.
    pub fn token_nonce(
        &self,
        network: &str,
        asset: impl Into<ChainAddress>,
        owner: impl Into<ChainAddress>,
    ) -> U256 {
        read(
            &self.lock().token_nonces,
            network,
            asset.into(),
            owner.into(),
        )
    }

    /// The transaction nonce the ledger tracks for the EVM `account` on `network` (CAIP-2 id):
    /// what the next signed `erc20ApprovalGasSponsoring` approval must use. Starts at zero;
    /// each approval the ledger applies consumes one. The ledger tracks nothing else of the
    /// account's transactions (no gas: it has no native token), so this is the number of
    /// approvals it applied.
    pub fn transaction_nonce(&self, network: &str, account: impl Into<ChainAddress>) -> u64 {
        self.lock()
            .transaction_nonces
            .get(&(Cow::Borrowed(network), account.into()))
            .copied()
            .unwrap_or_default()
    }

    /// The account this ledger settles from: what `upto` payers name as the facilitator
    /// (`witness.facilitator`). Random per ledger.
    pub fn address(&self) -> Address {
        Address::from_slice(&self.lock().salt[..20])
    }

    /// The fee payer Solana payers name (`extra.feePayer`) and build their transaction
    /// around: random per ledger, like [`address`](Self::address). The ledger holds no key for
    /// it; it settles Solana payments into its books without co-signing.
    pub fn fee_payer(&self) -> SolanaAddress {
        let mut key = [0u8; 32];
        key.copy_from_slice(self.lock().salt.as_slice());
        key[0] ^= 0x5a;
        SolanaAddress(key)
    }

    /// Whether a payment was settled.
    pub fn is_used(&self, key: &PaymentKey) -> bool {
        self.lock().used.contains(key)
    }

    /// Every transfer so far, oldest first.
    pub fn transfers(&self) -> Vec<Transfer> {
        self.lock().transfers.clone()
    }

    /// Checks a settlement of `amount`. For a Permit2 payment whose allowance is short but
    /// that carries a usable `eip2612GasSponsoring` permit, returns the allowance that permit
    /// grants (its value), which settling applies first, as the x402 proxy's
    /// `settleWithPermit` does; else, with a usable `erc20ApprovalGasSponsoring` transaction
    /// (at the payer's tracked [transaction nonce](Self::transaction_nonce)), the allowance
    /// it approves, as a facilitator broadcasting it before the settlement would.
    fn check_locked(
        state: &State,
        payment: &VerifiedPayment,
        payload: &PaymentPayload,
        amount: U256,
    ) -> Result<Option<Approval>, InvalidPayment> {
        if state.used.contains(&payment.key) {
            return Err(InvalidPayment::new(
                Reason::NONCE_ALREADY_USED,
                format!("payment {} was already settled", payment.key),
            ));
        }
        let account = (payment.network.caip2.clone(), payment.asset, payment.payer);
        let balance = state.balances.get(&account).copied().unwrap_or_default();
        if balance < amount {
            return Err(InvalidPayment::new(
                Reason::INSUFFICIENT_FUNDS,
                format!(
                    "{} holds {balance} atomic units, needs {amount}",
                    payment.payer
                ),
            ));
        }
        let sponsoring = match payload.payload() {
            SchemePayload::Permit2Exact(exact) => {
                sponsoring(payload, &exact.permit2_authorization, payment)?
            }
            SchemePayload::Permit2Upto(upto) => {
                sponsoring(payload, &upto.permit2_authorization, payment)?
            }
            _ => None,
        };
        let permitted = match payload.payload() {
            SchemePayload::Permit2Exact(exact) => {
                Some(exact.permit2_authorization.permitted.amount)
            }
            SchemePayload::Permit2Upto(upto) => {
                let facilitator = upto.permit2_authorization.witness.facilitator;
                let own = Address::from_slice(&state.salt[..20]);
                if facilitator != own {
                    return Err(InvalidPayment::new(
                        Reason::UPTO_FACILITATOR_MISMATCH,
                        format!(
                            "the payment may be settled only by {facilitator}, and this ledger settles as {own}"
                        ),
                    ));
                }
                Some(upto.permit2_authorization.permitted.amount)
            }
            _ => None,
        };
        if let Some(permitted) = permitted {
            if amount > permitted {
                return Err(InvalidPayment::new(
                    Reason::UPTO_SETTLEMENT_EXCEEDS_AMOUNT,
                    format!(
                        "settling {amount} atomic units exceeds the {permitted} the payer permitted"
                    ),
                ));
            }
            let allowance = state
                .permit2_allowances
                .get(&account)
                .copied()
                .unwrap_or_default();
            if allowance < amount
                && let Some(info) = sponsoring
            {
                // The permit stands in for the approval, if the token would accept it.
                let expected = state
                    .token_nonces
                    .get(&account)
                    .copied()
                    .unwrap_or_default();
                if info.nonce != expected {
                    return Err(InvalidPayment::new(
                        Reason::SIMULATION_FAILED,
                        format!(
                            "the EIP-2612 permit signs nonce {} but the token expects {expected} from {}: the token would refuse it and Permit2 could not move the payment",
                            info.nonce, payment.payer
                        ),
                    ));
                }
                return Ok(Some(Approval::Permit(info.amount)));
            }
            if allowance < amount
                && let Some(approved) = approval(state, payload, payment)?
            {
                if approved < amount {
                    return Err(InvalidPayment::new(
                        Reason::PERMIT2_ALLOWANCE_REQUIRED,
                        format!(
                            "the signed approval lets Permit2 move {approved} atomic units of {}, needs {amount}",
                            payment.asset
                        ),
                    ));
                }
                return Ok(Some(Approval::Transaction(approved)));
            }
            if allowance < amount {
                return Err(InvalidPayment::new(
                    Reason::PERMIT2_ALLOWANCE_REQUIRED,
                    format!(
                        "{} allows Permit2 to move {allowance} atomic units of {}, needs {amount}: approve Permit2 ({}) for the token first",
                        payment.payer,
                        payment.asset,
                        x402_protocol::permit2::PERMIT2_ADDRESS
                    ),
                ));
            }
        }
        Ok(None)
    }
}

/// The payment's `eip2612GasSponsoring` permit, checked against its Permit2 authorization
/// (the scheme already checked its deadline and its signature in the token's domain).
fn sponsoring<W>(
    payload: &PaymentPayload,
    authorization: &x402_protocol::permit2::Permit2Authorization<W>,
    payment: &VerifiedPayment,
) -> Result<Option<Eip2612GasSponsoring>, InvalidPayment> {
    let refuse = |e: x402_protocol::eip2612::SponsoringError| {
        InvalidPayment::new(e.reason(), e.to_string()).with_payer(Some(payment.payer))
    };
    let Some(info) = Eip2612GasSponsoring::from_extensions(payload.extensions()).map_err(refuse)?
    else {
        return Ok(None);
    };
    // The deadline was checked by the scheme, on the gate's clock.
    info.check_terms(authorization).map_err(refuse)?;
    Ok(Some(info))
}

/// The payment's `erc20ApprovalGasSponsoring` transaction, checked against its Permit2
/// authorization and the payer's tracked transaction nonce: the allowance it approves.
fn approval(
    state: &State,
    payload: &PaymentPayload,
    payment: &VerifiedPayment,
) -> Result<Option<U256>, InvalidPayment> {
    let refuse = |e: x402_protocol::erc20_approval::ApprovalError| {
        InvalidPayment::new(e.reason(), e.to_string()).with_payer(Some(payment.payer))
    };
    let Some(info) =
        Erc20ApprovalGasSponsoring::from_extensions(payload.extensions()).map_err(refuse)?
    else {
        return Ok(None);
    };
    let Some(chain_id) = payment.network.chain_id() else {
        return Ok(None);
    };
    let backend = RecoveryBackend::default();
    let tx = match payload.payload() {
        SchemePayload::Permit2Exact(exact) => {
            info.check(backend, &exact.permit2_authorization, chain_id)
        }
        SchemePayload::Permit2Upto(upto) => {
            info.check(backend, &upto.permit2_authorization, chain_id)
        }
        _ => return Ok(None),
    }
    .map_err(refuse)?;
    let expected = state
        .transaction_nonces
        .get(&(payment.network.caip2.clone(), payment.payer))
        .copied()
        .unwrap_or_default();
    if tx.nonce != expected {
        return Err(InvalidPayment::new(
            Reason::SIMULATION_FAILED,
            format!(
                "the signed approval uses nonce {} but {}'s next transaction nonce is {expected}: the chain would not include it",
                tx.nonce, payment.payer
            ),
        )
        .with_payer(Some(payment.payer)));
    }
    // check() accepted the calldata, so it is approve(Permit2, amount).
    Ok(Some(tx.approved_amount().unwrap_or_default()))
}

#[async_trait]
impl Settler for DevLedger {
    async fn check(
        &self,
        payment: &VerifiedPayment,
        payload: &PaymentPayload,
    ) -> Result<(), SettlerError> {
        Self::check_locked(&self.lock(), payment, payload, payment.amount)?;
        Ok(())
    }

    async fn settle(
        &self,
        payment: &VerifiedPayment,
        payload: &PaymentPayload,
        amount: U256,
    ) -> SettleOutcome {
        let network = &payment.network.caip2;
        let mut state = self.lock();
        let approval = match Self::check_locked(&state, payment, payload, amount) {
            Ok(approval) => approval,
            Err(invalid) => return SettleOutcome::Failed(invalid.into()),
        };
        let account = (network.clone(), payment.asset, payment.payer);
        match approval {
            Some(Approval::Permit(value)) => {
                // The EIP-2612 permit: approves Permit2 for its value and consumes the token
                // nonce.
                *state.token_nonces.entry(account.clone()).or_default() += U256::from(1u64);
                state.permit2_allowances.insert(account, value);
            }
            Some(Approval::Transaction(value)) => {
                // The broadcast approve(Permit2, value): sets the allowance and consumes the
                // payer's transaction nonce.
                *state
                    .transaction_nonces
                    .entry((network.clone(), payment.payer))
                    .or_default() += 1;
                state.permit2_allowances.insert(account, value);
            }
            None => {}
        }
        if matches!(
            payload.payload(),
            SchemePayload::Permit2Exact(_) | SchemePayload::Permit2Upto(_)
        ) && let Some(allowance) =
            state
                .permit2_allowances
                .get_mut(&(network.clone(), payment.asset, payment.payer))
            && *allowance != U256::MAX
        {
            // Checked above: the allowance covers the amount.
            *allowance -= amount;
        }
        // Checked above: the balance covers the amount.
        let from = state
            .balances
            .entry((network.clone(), payment.asset, payment.payer))
            .or_default();
        *from -= amount;
        let to = state
            .balances
            .entry((network.clone(), payment.asset, payment.pay_to))
            .or_default();
        *to = to.saturating_add(amount);
        state.used.insert(payment.key.clone());
        let transaction = state.next_transaction();
        let id = transaction_id(&payment.payer, transaction);
        state.transfers.push(Transfer {
            network: network.to_string(),
            asset: payment.asset,
            from: payment.payer,
            to: payment.pay_to,
            value: amount,
            key: payment.key.clone(),
            transaction,
        });
        SettleOutcome::Settled {
            transaction: id,
            amount,
        }
    }

    /// The ledger applies `erc20ApprovalGasSponsoring` approvals to its books.
    fn broadcasts_approvals(&self, _network: &x402_protocol::NetworkInfo) -> bool {
        true
    }

    /// The ledger settles as [`DevLedger::address`] on EVM networks and pays Solana fees as
    /// [`DevLedger::fee_payer`].
    fn signers(&self) -> Vec<ChainAddress> {
        vec![
            ChainAddress::Evm(self.address()),
            ChainAddress::Solana(self.fee_payer()),
        ]
    }

    /// Solana payers build on a blockhash of the ledger's own (random per ledger): it checks
    /// none, so the 402 can carry it and payers need no node.
    fn fixed_blockhash(&self, network: &x402_protocol::NetworkInfo) -> Option<String> {
        (network.family() == x402_protocol::Family::Solana).then(|| {
            let mut hash = [0u8; 32];
            hash.copy_from_slice(self.lock().salt.as_slice());
            hash[0] ^= 0xb1;
            bs58::encode(hash).into_string()
        })
    }

    /// The ledger knows every settlement it made: a payment it settled is settled, one it did
    /// not is (provably) not.
    async fn resolve(
        &self,
        payment: &VerifiedPayment,
        _payload: &PaymentPayload,
        _transaction: Option<&str>,
    ) -> SettleOutcome {
        let state = self.lock();
        match state.transfers.iter().find(|t| t.key == payment.key) {
            Some(transfer) => SettleOutcome::Settled {
                transaction: transaction_id(&transfer.from, transfer.transaction),
                amount: transfer.value,
            },
            None => SettleOutcome::Failed(SettlerError::Rejected(InvalidPayment::new(
                Reason::SETTLEMENT_FAILED,
                "the dev ledger never settled this payment",
            ))),
        }
    }
}
