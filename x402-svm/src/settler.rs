//! [`SvmSettler`]: settles Solana payments for the embedded facilitator by co-signing the
//! payer's transaction as fee payer, submitting it and waiting for its confirmation.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use solana_address::Address;
use solana_keypair::Keypair;
use solana_signature::Signature;
use solana_signer::Signer as _;
use solana_transaction::versioned::VersionedTransaction;
use x402_protocol::facilitator::PaymentPayload;
use x402_protocol::verify::{InvalidPayment, VerifiedPayment};
use x402_protocol::{ChainAddress, NetworkInfo, Reason, SchemePayload, SolanaAddress, U256};
use x402_runtime::facilitator::{SettleObserver, SettleOutcome, Settler, SettlerError};

use crate::chain::{ChainError, SvmChain, TransactionStatus};
use crate::rpc::RpcChain;
use crate::wire::decode_transaction;

/// The fee payer named in the transaction is not one of this facilitator's keys.
pub const FEE_PAYER_NOT_MANAGED: &str = "fee_payer_not_managed_by_facilitator";
/// The co-signed transaction fails in simulation (no funds, no destination account, an
/// expired blockhash…).
pub const SIMULATION_FAILED: &str = "transaction_simulation_failed";
/// The transaction was included but failed: nothing moved.
pub const TRANSACTION_FAILED: &str = "transaction_failed";

/// Settles `exact` Solana payments on one cluster: checks the transaction's fee payer is one of
/// its keys, signs as fee payer, simulates, submits and polls the signature status until the
/// transaction is confirmed.
///
/// Outcomes follow the runtime's three-outcome rule: a transaction the chain refused before
/// executing, or one that failed, is [`SettleOutcome::Failed`]; one sent without a verdict in
/// time is [`SettleOutcome::Unknown`] with its signature, and [`Settler::resolve`] later asks
/// the chain for it. A transaction the chain does not know whose blockhash has expired can
/// never land, so it is then failed for certain.
pub struct SvmSettler<C> {
    chain: C,
    network: String,
    fee_payers: Vec<Keypair>,
    confirm_timeout: Duration,
    poll_interval: Duration,
}

impl<C> fmt::Debug for SvmSettler<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SvmSettler")
            .field("network", &self.network)
            .field(
                "fee_payers",
                &self
                    .fee_payers
                    .iter()
                    .map(|k| k.pubkey().to_string())
                    .collect::<Vec<_>>(),
            )
            .field("confirm_timeout", &self.confirm_timeout)
            .finish_non_exhaustive()
    }
}

impl SvmSettler<RpcChain> {
    /// The settler a configuration file describes for one Solana `[[network]]`: its
    /// `rpc_url` (or `rpc_url_env`), its `signers` (fee payer keys: base58 exports or
    /// `id.json` byte arrays, from `key_env` / `key_file`), and `receipt_timeout` /
    /// `poll_interval` of its settlement settings. Each mistake names its key in the file.
    pub fn from_config(
        config: &x402_runtime::config::Config,
        network: &x402_runtime::config::NetworkConfig,
    ) -> Result<Self, x402_runtime::config::ConfigFileError> {
        let key = &network.key;
        if network.network.family() != x402_protocol::Family::Solana {
            return Err(config.error(
                key.clone(),
                format!("{} is not a Solana cluster", network.network),
            ));
        }
        let Some(rpc_url) = network.read_rpc_url(&config.origin)? else {
            return Err(config.error(
                format!("{key}.rpc_url"),
                format!(
                    "is missing: settling on {} needs its JSON-RPC endpoint; write rpc_url = \"https://…\" or rpc_url_env = \"VARIABLE\"",
                    network.network
                ),
            ));
        };
        let mut keys = Vec::with_capacity(network.signers.len());
        for (j, source) in network.signers.iter().enumerate() {
            let secret = source
                .read()
                .map_err(|message| config.error(format!("{key}.signers[{j}]"), message))?;
            let keypair = crate::wallet::load_keypair(&secret).map_err(|error| {
                config.error(
                    format!("{key}.signers[{j}]"),
                    format!("{source} does not hold a Solana keypair: {error}"),
                )
            })?;
            if keys
                .iter()
                .any(|k: &Keypair| k.pubkey() == keypair.pubkey())
            {
                return Err(config.error(
                    format!("{key}.signers"),
                    format!(
                        "two signers hold the same key ({}); give each its own",
                        keypair.pubkey()
                    ),
                ));
            }
            keys.push(keypair);
        }
        let mut keys = keys.into_iter();
        let Some(first) = keys.next() else {
            return Err(config.error(
                format!("{key}.signers"),
                format!(
                    "is empty: settling on {} needs at least one fee payer key; write signers = [{{ key_env = \"FEE_PAYER_KEY\" }}]",
                    network.network
                ),
            ));
        };
        let mut settler = SvmSettler::new(
            RpcChain::new(rpc_url.as_str()),
            network.network.caip2.to_string(),
            first,
        );
        for key in keys {
            settler = settler.fee_payer(key);
        }
        if let Some(timeout) = network.settlement.receipt_timeout {
            settler = settler.confirm_timeout(timeout);
        }
        if let Some(interval) = network.settlement.poll_interval {
            settler = settler.poll_interval(interval);
        }
        Ok(settler)
    }
}

impl<C: SvmChain> SvmSettler<C> {
    /// A settler for `network` (its CAIP-2 id, `solana:<genesis hash prefix>`, or v1 name as
    /// the registry knows it: compared with [`NetworkInfo::caip2`] and `name`) that pays fees
    /// with `fee_payer`.
    pub fn new(chain: C, network: impl Into<String>, fee_payer: Keypair) -> Self {
        SvmSettler {
            chain,
            network: network.into(),
            fee_payers: vec![fee_payer],
            confirm_timeout: Duration::from_secs(30),
            poll_interval: Duration::from_millis(400),
        }
    }

    /// Adds a fee payer key; the payer's transaction names which one pays.
    pub fn fee_payer(mut self, key: Keypair) -> Self {
        self.fee_payers.push(key);
        self
    }

    /// How long [`settle`](Settler::settle) waits for confirmation before answering
    /// [`SettleOutcome::Unknown`] (default 30 s).
    pub fn confirm_timeout(mut self, timeout: Duration) -> Self {
        self.confirm_timeout = timeout;
        self
    }

    /// How often the signature status is asked while waiting (default 400 ms).
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// The chain it settles on.
    pub fn chain(&self) -> &C {
        &self.chain
    }

    /// The fee payers' addresses.
    pub fn fee_payer_addresses(&self) -> Vec<Address> {
        self.fee_payers.iter().map(|k| k.pubkey()).collect()
    }

    /// The payer's transaction, co-signed by the fee payer it names, or why not.
    fn cosign(&self, payload: &PaymentPayload) -> Result<VersionedTransaction, InvalidPayment> {
        let SchemePayload::Solana(svm) = payload.payload() else {
            return Err(InvalidPayment::new(
                Reason::new("invalid_exact_svm_payload_transaction_could_not_be_decoded"),
                "not a Solana payment",
            ));
        };
        let mut transaction = decode_transaction(&svm.transaction).map_err(|e| {
            InvalidPayment::new(
                Reason::new("invalid_exact_svm_payload_transaction_could_not_be_decoded"),
                e.to_string(),
            )
        })?;
        let fee_payer = transaction
            .message
            .static_account_keys()
            .first()
            .copied()
            .ok_or_else(|| {
                InvalidPayment::new(
                    Reason::new("invalid_exact_svm_payload_transaction_could_not_be_decoded"),
                    "the transaction has no accounts",
                )
            })?;
        let key = self
            .fee_payers
            .iter()
            .find(|k| k.pubkey() == fee_payer)
            .ok_or_else(|| {
                InvalidPayment::new(
                    Reason::new(FEE_PAYER_NOT_MANAGED),
                    format!("the fee payer {fee_payer} is not a key of this facilitator"),
                )
            })?;
        if transaction.signatures.is_empty() {
            return Err(InvalidPayment::new(
                Reason::new("invalid_exact_svm_payload_transaction_could_not_be_decoded"),
                "the transaction has no signature slots",
            ));
        }
        transaction.signatures[0] = key.sign_message(&transaction.message.serialize());
        Ok(transaction)
    }

    /// What the chain says about `signature`, as a settlement outcome, when it says anything.
    async fn verdict(
        &self,
        signature: &Signature,
        amount: U256,
    ) -> Result<Option<SettleOutcome>, ChainError> {
        Ok(match self.chain.status(signature).await? {
            Some(TransactionStatus::Succeeded) => Some(SettleOutcome::Settled {
                transaction: signature.to_string(),
                amount,
            }),
            Some(TransactionStatus::Failed(error)) => Some(failed(
                TRANSACTION_FAILED,
                format!("transaction {signature} failed on chain: {error}"),
            )),
            None => None,
        })
    }
}

fn failed(reason: &'static str, message: String) -> SettleOutcome {
    SettleOutcome::Failed(SettlerError::Rejected(InvalidPayment::new(
        Reason::new(reason),
        message,
    )))
}

fn exact_amount(payment: &VerifiedPayment, amount: U256) -> Result<(), InvalidPayment> {
    if amount != payment.amount {
        // A signed transfer moves what it says; there is no partial settlement on Solana.
        return Err(InvalidPayment::new(
            Reason::new("invalid_exact_svm_payload_amount_mismatch"),
            format!(
                "a Solana payment settles its signed amount {} only, not {amount}",
                payment.amount
            ),
        ));
    }
    Ok(())
}

#[async_trait]
impl<C: SvmChain> Settler for SvmSettler<C> {
    fn settles(&self, network: &NetworkInfo) -> bool {
        *network.caip2 == *self.network || network.name == self.network
    }

    async fn check(
        &self,
        payment: &VerifiedPayment,
        payload: &PaymentPayload,
    ) -> Result<(), SettlerError> {
        exact_amount(payment, payment.amount)?;
        let transaction = self.cosign(payload)?;
        match self.chain.simulate(&transaction).await {
            Ok(()) => Ok(()),
            Err(ChainError::Rejected(why)) => Err(SettlerError::Rejected(InvalidPayment::new(
                Reason::new(SIMULATION_FAILED),
                why,
            ))),
            Err(other) => Err(SettlerError::Unavailable(other.to_string())),
        }
    }

    async fn settle(
        &self,
        payment: &VerifiedPayment,
        payload: &PaymentPayload,
        amount: U256,
    ) -> SettleOutcome {
        self.settle_observed(payment, payload, amount, &()).await
    }

    async fn settle_observed(
        &self,
        payment: &VerifiedPayment,
        payload: &PaymentPayload,
        amount: U256,
        observer: &dyn SettleObserver,
    ) -> SettleOutcome {
        if let Err(invalid) = exact_amount(payment, amount) {
            return SettleOutcome::Failed(invalid.into());
        }
        let transaction = match self.cosign(payload) {
            Ok(transaction) => transaction,
            Err(invalid) => return SettleOutcome::Failed(invalid.into()),
        };
        // The fee payer's signature is the transaction's id; it is known before sending.
        let signature = transaction.signatures[0];
        observer.submitted(&signature.to_string());
        match self.chain.send(&transaction).await {
            Ok(_) => {}
            Err(ChainError::Rejected(why)) => {
                // A refusal may be "already processed": an earlier send of the same
                // transaction landed. Only the status tells.
                return match self.verdict(&signature, amount).await {
                    Ok(Some(outcome)) => outcome,
                    Ok(None) => failed(SIMULATION_FAILED, why),
                    Err(error) => SettleOutcome::Unknown {
                        transaction: Some(signature.to_string()),
                        detail: format!("refused ({why}), then no status: {error}"),
                    },
                };
            }
            Err(ChainError::Unavailable(why)) => {
                return SettleOutcome::Failed(SettlerError::Unavailable(why));
            }
            Err(ChainError::NoAnswer(why)) => {
                return SettleOutcome::Unknown {
                    transaction: Some(signature.to_string()),
                    detail: format!("sent, then no answer: {why}"),
                };
            }
        }
        let deadline = tokio::time::Instant::now() + self.confirm_timeout;
        loop {
            match self.verdict(&signature, amount).await {
                Ok(Some(outcome)) => return outcome,
                Ok(None) => {}
                Err(error) => {
                    tracing::debug!(target: "x402::svm", %error, %signature, "signature status unavailable");
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return SettleOutcome::Unknown {
                    transaction: Some(signature.to_string()),
                    detail: format!(
                        "not confirmed within {:?}; the chain will tell",
                        self.confirm_timeout
                    ),
                };
            }
            tokio::time::sleep(self.poll_interval).await;
        }
    }

    async fn resolve(
        &self,
        payment: &VerifiedPayment,
        payload: &PaymentPayload,
        transaction: Option<&str>,
    ) -> SettleOutcome {
        let unknown = |detail: String| SettleOutcome::Unknown {
            transaction: transaction.map(str::to_owned),
            detail,
        };
        // The id is the fee payer's signature, which signing again reproduces (ed25519 is
        // deterministic), so a settlement that crashed before recording it is found too.
        let cosigned = match self.cosign(payload) {
            Ok(transaction) => transaction,
            Err(invalid) => return SettleOutcome::Failed(invalid.into()),
        };
        let signature = cosigned.signatures[0];
        match self.verdict(&signature, payment.amount).await {
            Ok(Some(outcome)) => return outcome,
            Ok(None) => {}
            Err(error) => return unknown(error.to_string()),
        }
        match self
            .chain
            .is_blockhash_valid(cosigned.message.recent_blockhash())
            .await
        {
            // Check the status once more: it may have landed between the two questions.
            Ok(false) => match self.verdict(&signature, payment.amount).await {
                Ok(Some(outcome)) => outcome,
                Ok(None) => failed(
                    TRANSACTION_FAILED,
                    format!("transaction {signature} never landed and its blockhash has expired"),
                ),
                Err(error) => unknown(error.to_string()),
            },
            Ok(true) => unknown(format!(
                "transaction {signature} is not known yet and its blockhash is still valid"
            )),
            Err(error) => unknown(error.to_string()),
        }
    }

    fn signers(&self) -> Vec<ChainAddress> {
        self.fee_payers
            .iter()
            .map(|k| ChainAddress::Solana(SolanaAddress(k.pubkey().to_bytes())))
            .collect()
    }
}
