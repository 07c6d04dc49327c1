use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use x402_protocol::facilitator::PaymentPayload;
use x402_protocol::verify::{InvalidPayment, PaymentKey, VerifiedPayment};
use x402_protocol::{B256, ChainAddress, Reason, U256};

use super::{SettleOutcome, Settler, SettlerError};

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

/// Network (CAIP-2 id: borrowed for built-in networks, so lookups allocate nothing), token,
/// holder.
type Account = (Cow<'static, str>, ChainAddress, ChainAddress);

#[derive(Debug)]
struct State {
    balances: HashMap<Account, U256>,
    used: HashSet<PaymentKey>,
    transfers: Vec<Transfer>,
    /// Random bytes that start every transaction id of this ledger.
    salt: B256,
}

impl Default for State {
    fn default() -> Self {
        State {
            balances: HashMap::new(),
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
        self.lock()
            .balances
            .get(&(Cow::Borrowed(network), asset.into(), account.into()))
            .copied()
            .unwrap_or_default()
    }

    /// Whether a payment was settled.
    pub fn is_used(&self, key: &PaymentKey) -> bool {
        self.lock().used.contains(key)
    }

    /// Every transfer so far, oldest first.
    pub fn transfers(&self) -> Vec<Transfer> {
        self.lock().transfers.clone()
    }

    fn check_locked(
        state: &State,
        payment: &VerifiedPayment,
        amount: U256,
    ) -> Result<(), InvalidPayment> {
        if state.used.contains(&payment.key) {
            return Err(InvalidPayment::new(
                Reason::NONCE_ALREADY_USED,
                format!("payment {} was already settled", payment.key),
            ));
        }
        let balance = state
            .balances
            .get(&(payment.network.caip2.clone(), payment.asset, payment.payer))
            .copied()
            .unwrap_or_default();
        if balance < amount {
            return Err(InvalidPayment::new(
                Reason::INSUFFICIENT_FUNDS,
                format!(
                    "{} holds {balance} atomic units, needs {amount}",
                    payment.payer
                ),
            ));
        }
        Ok(())
    }
}

#[async_trait]
impl Settler for DevLedger {
    async fn check(
        &self,
        payment: &VerifiedPayment,
        _payload: &PaymentPayload,
    ) -> Result<(), SettlerError> {
        Ok(Self::check_locked(&self.lock(), payment, payment.amount)?)
    }

    async fn settle(
        &self,
        payment: &VerifiedPayment,
        _payload: &PaymentPayload,
        amount: U256,
    ) -> SettleOutcome {
        let network = &payment.network.caip2;
        let mut state = self.lock();
        if let Err(invalid) = Self::check_locked(&state, payment, amount) {
            return SettleOutcome::Failed(invalid.into());
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
            transaction: transaction.to_string(),
            amount,
        }
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
                transaction: transfer.transaction.to_string(),
                amount: transfer.value,
            },
            None => SettleOutcome::Failed(SettlerError::Rejected(InvalidPayment::new(
                Reason::SETTLEMENT_FAILED,
                "the dev ledger never settled this payment",
            ))),
        }
    }
}
