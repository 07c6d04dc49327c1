use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use x402_protocol::exact::ExactEvmPayload;
use x402_protocol::verify::{InvalidPayment, VerifiedPayment};
use x402_protocol::{Address, B256, Reason, U256, amount::format_units};

use super::{Settler, SettlerError};

/// One settled transfer in a [`DevLedger`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    /// Chain id.
    pub chain_id: u64,
    /// Token contract.
    pub asset: Address,
    /// Payer.
    pub from: Address,
    /// Recipient.
    pub to: Address,
    /// Atomic amount.
    pub value: U256,
    /// The authorization nonce it consumed.
    pub nonce: B256,
    /// The synthetic transaction hash reported in the receipt.
    pub transaction: B256,
}

type Account = (u64, Address, Address);

#[derive(Debug, Default)]
struct State {
    balances: HashMap<Account, U256>,
    used: HashSet<(u64, Address, Address, B256)>,
    transfers: Vec<Transfer>,
}

/// An in-memory token ledger that settles EIP-3009 authorizations the way the token contract
/// would: each `(from, nonce)` once, never beyond the payer's balance. Development and tests
/// only: no money moves.
///
/// ```
/// use x402_protocol::{Address, U256};
/// use x402_runtime::facilitator::DevLedger;
///
/// let ledger = DevLedger::new();
/// let (chain, usdc, alice) = (8453, Address::repeat_byte(1), Address::repeat_byte(2));
/// ledger.fund(chain, usdc, alice, U256::from(1_000_000u64));
/// assert_eq!(ledger.balance(chain, usdc, alice), U256::from(1_000_000u64));
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

    /// Credits `amount` atomic units of `asset` on `chain_id` to `account` (a faucet).
    pub fn fund(&self, chain_id: u64, asset: Address, account: Address, amount: U256) {
        let mut state = self.lock();
        let balance = state
            .balances
            .entry((chain_id, asset, account))
            .or_default();
        *balance = balance.saturating_add(amount);
    }

    /// The balance of `account`.
    pub fn balance(&self, chain_id: u64, asset: Address, account: Address) -> U256 {
        self.lock()
            .balances
            .get(&(chain_id, asset, account))
            .copied()
            .unwrap_or_default()
    }

    /// Whether an authorization nonce was consumed.
    pub fn authorization_used(
        &self,
        chain_id: u64,
        asset: Address,
        from: Address,
        nonce: B256,
    ) -> bool {
        self.lock().used.contains(&(chain_id, asset, from, nonce))
    }

    /// Every transfer so far, oldest first.
    pub fn transfers(&self) -> Vec<Transfer> {
        self.lock().transfers.clone()
    }

    fn check_locked(
        state: &State,
        payment: &VerifiedPayment,
        payload: &ExactEvmPayload,
    ) -> Result<(), InvalidPayment> {
        let auth = &payload.authorization;
        let chain = payment.network.chain_id;
        if state
            .used
            .contains(&(chain, payment.asset, auth.from, auth.nonce))
        {
            return Err(InvalidPayment::new(
                Reason::NONCE_ALREADY_USED,
                format!(
                    "authorization nonce {} of {} was already used",
                    auth.nonce, auth.from
                ),
            ));
        }
        let balance = state
            .balances
            .get(&(chain, payment.asset, auth.from))
            .copied()
            .unwrap_or_default();
        if balance < auth.value {
            return Err(InvalidPayment::new(
                Reason::INSUFFICIENT_FUNDS,
                format!(
                    "{} holds {} atomic units, needs {} ({} more)",
                    auth.from,
                    balance,
                    auth.value,
                    format_units(auth.value - balance, 0)
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
        payload: &ExactEvmPayload,
    ) -> Result<(), SettlerError> {
        Ok(Self::check_locked(&self.lock(), payment, payload)?)
    }

    async fn settle(
        &self,
        payment: &VerifiedPayment,
        payload: &ExactEvmPayload,
    ) -> Result<String, SettlerError> {
        let auth = &payload.authorization;
        let chain = payment.network.chain_id;
        let mut state = self.lock();
        Self::check_locked(&state, payment, payload)?;
        // Checked above: the balance covers the value.
        let from = state
            .balances
            .entry((chain, payment.asset, auth.from))
            .or_default();
        *from -= auth.value;
        let to = state
            .balances
            .entry((chain, payment.asset, auth.to))
            .or_default();
        *to = to.saturating_add(auth.value);
        state
            .used
            .insert((chain, payment.asset, auth.from, auth.nonce));
        let mut preimage = Vec::with_capacity(8 + 20 + 20 + 32);
        preimage.extend_from_slice(&chain.to_be_bytes());
        preimage.extend_from_slice(payment.asset.as_slice());
        preimage.extend_from_slice(auth.from.as_slice());
        preimage.extend_from_slice(auth.nonce.as_slice());
        let transaction = alloy_primitives::keccak256(preimage);
        state.transfers.push(Transfer {
            chain_id: chain,
            asset: payment.asset,
            from: auth.from,
            to: auth.to,
            value: auth.value,
            nonce: auth.nonce,
            transaction,
        });
        Ok(transaction.to_string())
    }
}
