use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use x402_protocol::facilitator::{
    FacilitatorRequest, PaymentPayload, SettleResponse, SupportedKind, SupportedResponse,
    VerifyResponse,
};
use x402_protocol::verify::{InvalidPayment, SignatureCheck, VerifiedPayment};
use x402_protocol::{ChainAddress, NetworkInfo, NetworkRegistry, ProtocolVersion, Reason, U256};

use super::{DevLedger, Facilitator, FacilitatorError};
use crate::clock::{Clock, SystemClock};
use crate::scheme::Schemes;

/// Why a [`Settler`] did not accept or settle a payment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SettlerError {
    /// The payment is not acceptable (spent nonce, short balance, a transfer that would
    /// revert…): the client gets a 402 with the reason.
    #[error(transparent)]
    Rejected(#[from] InvalidPayment),
    /// The settler's backend (a chain node, a database) failed before anything was submitted,
    /// so the payment is untouched: the client gets a 502 and the payer is not blamed. The
    /// message is logged, not sent.
    #[error("settlement backend unavailable: {0}")]
    Unavailable(String),
}

/// How a settlement ended, as far as the settler can prove.
///
/// Only a settler can prove that a payment was *not* executed; anything it cannot prove either
/// way is [`Unknown`](SettleOutcome::Unknown), never a failure, so that a payer is never asked
/// to pay again for a transfer that may still land.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SettleOutcome {
    /// The funds moved: the transaction that moved them (empty when nothing had to move, an
    /// `upto` payment charged zero), and the amount.
    Settled {
        /// Transaction id (`0x…` hash on EVM, base58 signature on Solana).
        transaction: String,
        /// Atomic amount moved.
        amount: U256,
    },
    /// Definitely not executed: refused before submission, reverted on chain, or shown unused
    /// by the chain. The payment may be retried.
    Failed(SettlerError),
    /// Submitted, or possibly submitted, without a verdict in time (a receipt that did not
    /// arrive, a node that stopped answering after the send).
    Unknown {
        /// The transaction, when it was submitted and its id is known.
        transaction: Option<String>,
        /// What is known, for the operator's log.
        detail: String,
    },
}

/// Hears about a settlement while it runs: the transactions it sends, so that a facilitator
/// can record and report a transaction before its outcome is known.
pub trait SettleObserver: Send + Sync {
    /// A transaction carrying the payment was signed and is being sent (called again for each
    /// replacement, such as the same transfer re-priced with higher fees).
    fn submitted(&self, transaction: &str);
}

/// An observer that ignores everything.
impl SettleObserver for () {
    fn submitted(&self, _transaction: &str) {}
}

/// Where an [`EmbeddedFacilitator`] moves funds once a payment is verified.
#[async_trait]
pub trait Settler: Send + Sync + 'static {
    /// Whether it settles payments on `network` (the dev ledger: every network; a chain
    /// settler: its own chain).
    fn settles(&self, network: &NetworkInfo) -> bool {
        let _ = network;
        true
    }

    /// Whether [`check`](Self::check) verifies contract wallets' signatures (ERC-1271, and
    /// ERC-6492 for wallets not deployed yet) on `network`'s chain. A payment whose signature
    /// is [`SignatureCheck::OnChain`] reaches only such a settler; any other refuses it with
    /// the reason the verifier gave for that case (`smart_wallet_signature_needs_rpc`, or an
    /// invalid signature). The default is no, as for the dev ledger, which has no chain.
    fn checks_contract_signatures(&self, network: &NetworkInfo) -> bool {
        let _ = network;
        false
    }

    /// Whether it broadcasts (and funds the gas of) the signed `approve(Permit2, …)`
    /// transaction of an `erc20ApprovalGasSponsoring` payment on `network` before settling it,
    /// so that gates may declare the extension in their 402s. The default is no; the dev
    /// ledger: yes (it applies the approval to its own books).
    fn broadcasts_approvals(&self, network: &NetworkInfo) -> bool {
        let _ = network;
        false
    }

    /// Ledger checks for a verified payment: the nonce is unused, the balance covers it, the
    /// transfer would succeed. When the settler
    /// [checks contract signatures](Self::checks_contract_signatures) and the payment's
    /// signature is [`SignatureCheck::OnChain`], also that the chain accepts the signature.
    async fn check(
        &self,
        payment: &VerifiedPayment,
        payload: &PaymentPayload,
    ) -> Result<(), SettlerError>;

    /// Moves `amount` (the payment's amount, or less for `upto`) and says how that ended.
    async fn settle(
        &self,
        payment: &VerifiedPayment,
        payload: &PaymentPayload,
        amount: U256,
    ) -> SettleOutcome;

    /// [`settle`](Self::settle), telling `observer` about each transaction as it is sent.
    /// The default sends nothing to the observer.
    async fn settle_observed(
        &self,
        payment: &VerifiedPayment,
        payload: &PaymentPayload,
        amount: U256,
        observer: &dyn SettleObserver,
    ) -> SettleOutcome {
        let _ = observer;
        self.settle(payment, payload, amount).await
    }

    /// Turns an earlier [`SettleOutcome::Unknown`] into a verdict by asking the chain (a
    /// receipt, the authorization's state), or says it is still unknown. The default knows
    /// nothing more.
    async fn resolve(
        &self,
        payment: &VerifiedPayment,
        payload: &PaymentPayload,
        transaction: Option<&str>,
    ) -> SettleOutcome {
        let _ = (payment, payload);
        SettleOutcome::Unknown {
            transaction: transaction.map(str::to_owned),
            detail: "this settler cannot look up earlier settlements".to_owned(),
        }
    }

    /// Addresses that submit transactions, listed under `signers` in `/supported`.
    fn signers(&self) -> Vec<ChainAddress> {
        Vec::new()
    }

    /// A blockhash Solana payers on `network` may build their transaction on without asking
    /// a node, when it never changes: the dev ledger, which checks none, has one; a chain
    /// settler has none (its blockhashes expire in about a minute, so payers ask the chain).
    fn fixed_blockhash(&self, network: &NetworkInfo) -> Option<String> {
        let _ = network;
        None
    }
}

#[async_trait]
impl<S: Settler + ?Sized> Settler for Arc<S> {
    fn settles(&self, network: &NetworkInfo) -> bool {
        (**self).settles(network)
    }
    fn checks_contract_signatures(&self, network: &NetworkInfo) -> bool {
        (**self).checks_contract_signatures(network)
    }
    fn broadcasts_approvals(&self, network: &NetworkInfo) -> bool {
        (**self).broadcasts_approvals(network)
    }
    async fn check(
        &self,
        payment: &VerifiedPayment,
        payload: &PaymentPayload,
    ) -> Result<(), SettlerError> {
        (**self).check(payment, payload).await
    }
    async fn settle(
        &self,
        payment: &VerifiedPayment,
        payload: &PaymentPayload,
        amount: U256,
    ) -> SettleOutcome {
        (**self).settle(payment, payload, amount).await
    }
    async fn settle_observed(
        &self,
        payment: &VerifiedPayment,
        payload: &PaymentPayload,
        amount: U256,
        observer: &dyn SettleObserver,
    ) -> SettleOutcome {
        (**self)
            .settle_observed(payment, payload, amount, observer)
            .await
    }
    async fn resolve(
        &self,
        payment: &VerifiedPayment,
        payload: &PaymentPayload,
        transaction: Option<&str>,
    ) -> SettleOutcome {
        (**self).resolve(payment, payload, transaction).await
    }
    fn signers(&self) -> Vec<ChainAddress> {
        (**self).signers()
    }
    fn fixed_blockhash(&self, network: &NetworkInfo) -> Option<String> {
        (**self).fixed_blockhash(network)
    }
}

/// A facilitator in the server's own process: verifies with the configured [`Schemes`] (real
/// signature recovery and every check of the spec), then settles through a [`Settler`] per
/// network (a [`DevLedger`] unless told otherwise).
///
/// ```
/// use x402_runtime::facilitator::EmbeddedFacilitator;
///
/// let facilitator = EmbeddedFacilitator::builder().build();
/// let ledger = facilitator.dev_ledger().expect("the default settler is a dev ledger");
/// # let _ = ledger;
/// ```
pub struct EmbeddedFacilitator {
    registry: Arc<NetworkRegistry>,
    clock: Arc<dyn Clock>,
    schemes: Schemes,
    settlers: Vec<Arc<dyn Settler>>,
    dev_ledger: Option<Arc<DevLedger>>,
}

impl std::fmt::Debug for EmbeddedFacilitator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedFacilitator")
            .field("networks", &self.registry.names().collect::<Vec<_>>())
            .field("schemes", &self.schemes)
            .field("settlers", &self.settlers.len())
            .field("dev_ledger", &self.dev_ledger.is_some())
            .finish_non_exhaustive()
    }
}

/// Configures an [`EmbeddedFacilitator`].
#[derive(Default)]
pub struct EmbeddedFacilitatorBuilder {
    registry: Option<Arc<NetworkRegistry>>,
    clock: Option<Arc<dyn Clock>>,
    schemes: Option<Schemes>,
    settlers: Vec<Arc<dyn Settler>>,
    dev_ledger: Option<Arc<DevLedger>>,
}

impl EmbeddedFacilitatorBuilder {
    /// The networks and tokens it accepts (default: the built-in ones).
    pub fn registry(mut self, registry: Arc<NetworkRegistry>) -> Self {
        self.registry = Some(registry);
        self
    }

    /// Its clock (default: the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The schemes it verifies with (default: the built-in ones).
    pub fn schemes(mut self, schemes: Schemes) -> Self {
        self.schemes = Some(schemes);
        self
    }

    /// Settles into this dev ledger, for every network no other settler takes (without any
    /// settler, a fresh dev ledger is used).
    pub fn dev_ledger(mut self, ledger: Arc<DevLedger>) -> Self {
        self.dev_ledger = Some(ledger);
        self
    }

    /// Settles through `settler` the networks it [settles](Settler::settles), such as an EVM
    /// chain. Several settlers may be added (one per chain); the first that takes a network
    /// settles it.
    pub fn settler(mut self, settler: Arc<dyn Settler>) -> Self {
        self.settlers.push(settler);
        self
    }

    /// Builds the facilitator.
    pub fn build(self) -> EmbeddedFacilitator {
        let mut settlers = self.settlers;
        let dev_ledger = match (self.dev_ledger, settlers.is_empty()) {
            (Some(ledger), _) => Some(ledger),
            (None, true) => Some(Arc::new(DevLedger::new())),
            (None, false) => None,
        };
        if let Some(ledger) = &dev_ledger {
            settlers.push(ledger.clone());
        }
        EmbeddedFacilitator {
            registry: self
                .registry
                .unwrap_or_else(|| Arc::new(NetworkRegistry::builtin())),
            clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
            schemes: self.schemes.unwrap_or_default(),
            settlers,
            dev_ledger,
        }
    }
}

impl EmbeddedFacilitator {
    /// Starts configuring one.
    pub fn builder() -> EmbeddedFacilitatorBuilder {
        EmbeddedFacilitatorBuilder::default()
    }

    /// The dev ledger it settles into, when it has one.
    pub fn dev_ledger(&self) -> Option<&Arc<DevLedger>> {
        self.dev_ledger.as_ref()
    }

    /// The networks it knows.
    pub fn registry(&self) -> &Arc<NetworkRegistry> {
        &self.registry
    }

    /// The schemes it verifies with.
    pub fn schemes(&self) -> &Schemes {
        &self.schemes
    }

    fn settler_for(&self, network: &NetworkInfo) -> Result<&Arc<dyn Settler>, SettlerError> {
        self.settlers
            .iter()
            .find(|s| s.settles(network))
            .ok_or_else(|| {
                SettlerError::Rejected(InvalidPayment::new(
                    Reason::INVALID_NETWORK,
                    format!("this facilitator has no settler for {network}"),
                ))
            })
    }

    /// Whether its settler for `network` broadcasts `erc20ApprovalGasSponsoring` approvals
    /// ([`Settler::broadcasts_approvals`]).
    pub fn broadcasts_approvals(&self, network: &NetworkInfo) -> bool {
        self.settler_for(network)
            .is_ok_and(|settler| settler.broadcasts_approvals(network))
    }

    /// The account its settler for `network` sends from (what an `upto` payer names as
    /// `witness.facilitator`), when that settler has one on the network's chain family.
    pub fn settling_account(&self, network: &NetworkInfo) -> Option<ChainAddress> {
        let family = network.family();
        self.settler_for(network)
            .ok()?
            .signers()
            .into_iter()
            .find(|signer| signer.family() == family)
    }

    /// The fixed blockhash of the settler for `network`, if it has one
    /// ([`Settler::fixed_blockhash`]).
    pub fn fixed_blockhash(&self, network: &NetworkInfo) -> Option<String> {
        self.settler_for(network).ok()?.fixed_blockhash(network)
    }

    /// Verifies a request with its scheme (signature recovery included).
    pub fn verify_offline(
        &self,
        request: &FacilitatorRequest,
    ) -> Result<VerifiedPayment, InvalidPayment> {
        let version = request.payment_payload.version();
        if u64::from(request.x402_version) != u64::from(version.number()) {
            return Err(InvalidPayment::new(
                Reason::INVALID_X402_VERSION,
                format!(
                    "x402Version is {} but the payment is {version}",
                    request.x402_version
                ),
            ));
        }
        self.schemes.verify(
            &request.payment_payload,
            &request.payment_requirements,
            &self.registry,
            self.clock.now_unix(),
        )
    }

    /// The ledger checks of a payment already verified by its scheme: the settler for its
    /// network confirms the nonce is unused and the balance covers it. A signature left to the
    /// chain ([`SignatureCheck::OnChain`]) is refused unless that settler
    /// [checks contract signatures](Settler::checks_contract_signatures); one not checked at
    /// all ([`SignatureCheck::Unchecked`]) is refused.
    pub async fn check_verified(
        &self,
        payment: &VerifiedPayment,
        payload: &PaymentPayload,
    ) -> Result<(), SettlerError> {
        let settler = self.settler_for(&payment.network)?;
        if let SignatureCheck::Unchecked = payment.signature {
            return Err(SettlerError::Rejected(
                InvalidPayment::new(
                    Reason::INVALID_SIGNATURE,
                    "the payment's signature was never checked",
                )
                .with_payer(Some(payment.payer)),
            ));
        }
        signature_checkable(settler, payment)?;
        settler
            .check(payment, payload)
            .await
            .map_err(|e| with_payer(e, payment.payer))
    }

    /// Settles `amount` of a payment already verified by its scheme (no second signature
    /// recovery): the ledger checks again, then the settler moves the funds.
    pub async fn settle_verified(
        &self,
        payment: &VerifiedPayment,
        payload: &PaymentPayload,
        amount: U256,
    ) -> SettleOutcome {
        self.settle_verified_observed(payment, payload, amount, &())
            .await
    }

    /// [`settle_verified`](Self::settle_verified), telling `observer` about each transaction
    /// the settler sends.
    pub async fn settle_verified_observed(
        &self,
        payment: &VerifiedPayment,
        payload: &PaymentPayload,
        amount: U256,
        observer: &dyn SettleObserver,
    ) -> SettleOutcome {
        let settler = match self
            .settler_for(&payment.network)
            .and_then(|settler| signature_checkable(settler, payment).map(|()| settler))
        {
            Ok(settler) => settler,
            Err(error) => return SettleOutcome::Failed(error),
        };
        if amount.is_zero() {
            // Nothing to move (an `upto` payment charged zero): the authorization stays unused.
            return SettleOutcome::Settled {
                transaction: String::new(),
                amount,
            };
        }
        match settler
            .settle_observed(payment, payload, amount, observer)
            .await
        {
            SettleOutcome::Failed(error) => SettleOutcome::Failed(with_payer(error, payment.payer)),
            other => other,
        }
    }

    /// Asks the settler of a payment's network to resolve an earlier unknown outcome.
    pub async fn resolve_verified(
        &self,
        payment: &VerifiedPayment,
        payload: &PaymentPayload,
        transaction: Option<&str>,
    ) -> SettleOutcome {
        match self.settler_for(&payment.network) {
            Ok(settler) => settler.resolve(payment, payload, transaction).await,
            Err(error) => SettleOutcome::Failed(error),
        }
    }
}

/// Refuses a payment whose signature only the chain can check when `settler` cannot check it
/// there, with the reason its verifier chose for that case.
fn signature_checkable(
    settler: &Arc<dyn Settler>,
    payment: &VerifiedPayment,
) -> Result<(), SettlerError> {
    match &payment.signature {
        SignatureCheck::OnChain { without_chain, .. }
            if !settler.checks_contract_signatures(&payment.network) =>
        {
            Err(SettlerError::Rejected((**without_chain).clone()))
        }
        _ => Ok(()),
    }
}

fn with_payer(error: SettlerError, payer: ChainAddress) -> SettlerError {
    match error {
        SettlerError::Rejected(invalid) => SettlerError::Rejected(invalid.with_payer(Some(payer))),
        unavailable => unavailable,
    }
}

/// A backend failure is the facilitator's, not the payment's: surface it as one.
fn backend_failure(message: String) -> FacilitatorError {
    tracing::error!(target: "x402::facilitator", %message, "settlement backend failed");
    FacilitatorError::Unreachable(message)
}

/// The receipt of a settlement outcome, as `/settle` answers it.
pub fn settle_response(
    outcome: SettleOutcome,
    network: &str,
    payer: Option<ChainAddress>,
    version: ProtocolVersion,
) -> Result<SettleResponse, FacilitatorError> {
    let payer_text = payer.map(|p| p.to_string());
    Ok(match outcome {
        SettleOutcome::Settled {
            transaction,
            amount,
        } => SettleResponse {
            success: true,
            error_reason: None,
            error_message: None,
            payer: payer_text,
            transaction,
            network: network.to_owned(),
            amount: Some(amount.to_string()),
            extensions: None,
        },
        SettleOutcome::Failed(SettlerError::Rejected(e)) => SettleResponse::failure(
            e.reason.for_version(version),
            e.message,
            network,
            e.payer.or(payer).map(|p| p.to_string()),
        ),
        SettleOutcome::Failed(SettlerError::Unavailable(message)) => {
            return Err(backend_failure(message));
        }
        SettleOutcome::Unknown {
            transaction,
            detail,
        } => {
            tracing::warn!(target: "x402::settlement", ?transaction, %detail, "settlement outcome unknown");
            SettleResponse {
                transaction: transaction.unwrap_or_default(),
                ..SettleResponse::failure(
                    Reason::SETTLEMENT_PENDING.as_str(),
                    "the transfer was submitted but its outcome is not known yet; retry with the same payment",
                    network,
                    payer_text,
                )
            }
        }
    })
}

#[async_trait]
impl Facilitator for EmbeddedFacilitator {
    async fn verify(
        &self,
        request: &FacilitatorRequest,
    ) -> Result<VerifyResponse, FacilitatorError> {
        let version = request.payment_payload.version();
        let claimed = request.payment_payload.payload().claimed_payer();
        let verified = match self.verify_offline(request) {
            Ok(verified) => verified,
            Err(e) => {
                return Ok(VerifyResponse::invalid(
                    e.reason.for_version(version),
                    e.message,
                    e.payer.or(claimed).map(|p| p.to_string()),
                ));
            }
        };
        Ok(
            match self
                .check_verified(&verified, &request.payment_payload)
                .await
            {
                Ok(()) => VerifyResponse::valid(verified.payer.to_string()),
                Err(SettlerError::Rejected(e)) => VerifyResponse::invalid(
                    e.reason.for_version(version),
                    e.message,
                    Some(verified.payer.to_string()),
                ),
                Err(SettlerError::Unavailable(message)) => return Err(backend_failure(message)),
            },
        )
    }

    async fn settle(
        &self,
        request: &FacilitatorRequest,
    ) -> Result<SettleResponse, FacilitatorError> {
        let version = request.payment_payload.version();
        let network = request.payment_payload.network().to_owned();
        let claimed = request.payment_payload.payload().claimed_payer();
        // An `upto` settlement asks for the charge; the payment was signed, and is checked,
        // for the maximum it permits.
        let charge = request.payment_requirements.amount();
        let maximum = match request.payment_payload.payload() {
            x402_protocol::SchemePayload::Permit2Upto(upto) => {
                Some(upto.permit2_authorization.permitted.amount)
            }
            _ => None,
        };
        let verified = match maximum {
            Some(maximum) => self.verify_offline(&request.with_amount(maximum)),
            None => self.verify_offline(request),
        };
        let outcome = match verified {
            Ok(verified) if charge > verified.amount => {
                SettleOutcome::Failed(SettlerError::Rejected(InvalidPayment::new(
                    Reason::UPTO_SETTLEMENT_EXCEEDS_AMOUNT,
                    format!(
                        "settling {charge} atomic units exceeds the {} the payer permitted",
                        verified.amount
                    ),
                )))
            }
            Ok(verified) => {
                match self
                    .check_verified(&verified, &request.payment_payload)
                    .await
                {
                    Ok(()) => {
                        self.settle_verified(&verified, &request.payment_payload, charge)
                            .await
                    }
                    Err(error) => SettleOutcome::Failed(error),
                }
            }
            Err(invalid) => SettleOutcome::Failed(SettlerError::Rejected(invalid)),
        };
        settle_response(outcome, &network, claimed, version)
    }

    async fn supported(&self) -> Result<SupportedResponse, FacilitatorError> {
        let mut kinds = Vec::new();
        for version in [ProtocolVersion::V1, ProtocolVersion::V2] {
            for network in self.registry.networks() {
                if !self.settlers.iter().any(|s| s.settles(network)) {
                    continue;
                }
                let mut names: Vec<&str> = self
                    .schemes
                    .iter()
                    .filter(|s| s.family() == network.family())
                    .map(|s| s.name())
                    .collect();
                names.dedup();
                for scheme in names {
                    // `upto` is x402 v2, settled only by the account its payer names; a Solana
                    // payment is built around the fee payer that co-signs it.
                    let extra = if scheme == x402_protocol::permit2::UPTO {
                        let Some(account) = self
                            .settling_account(network)
                            .filter(|_| version == ProtocolVersion::V2)
                        else {
                            continue;
                        };
                        Some(serde_json::json!({ "facilitatorAddress": account.to_string() }))
                    } else if network.family() == x402_protocol::Family::Solana {
                        let Some(fee_payer) = self.settling_account(network) else {
                            continue;
                        };
                        Some(serde_json::json!({ "feePayer": fee_payer.to_string() }))
                    } else {
                        None
                    };
                    kinds.push(SupportedKind {
                        x402_version: version.number(),
                        scheme: scheme.to_owned(),
                        network: network.wire_id(version).to_owned(),
                        extra,
                    });
                }
            }
        }
        let mut signer_map: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for settler in &self.settlers {
            for signer in settler.signers() {
                let key = format!("{}:*", signer.family().namespace());
                signer_map.entry(key).or_default().push(signer.to_string());
            }
        }
        // The EIP-2612 permit of a Permit2 payment is checked by the Permit2 schemes and
        // submitted by the settler (settleWithPermit on chain; the dev ledger's approval).
        let permit2_settled = self.registry.networks().any(|network| {
            network.family() == x402_protocol::Family::Evm
                && self.settlers.iter().any(|s| s.settles(network))
        }) && self
            .schemes
            .iter()
            .any(|s| s.method() == crate::scheme::TransferMethod::Permit2);
        let mut extensions = if permit2_settled {
            vec![x402_protocol::eip2612::EXTENSION.to_owned()]
        } else {
            Vec::new()
        };
        // The signed approval transaction of erc20ApprovalGasSponsoring: only where the
        // settler broadcasts it.
        if permit2_settled
            && self.registry.networks().any(|network| {
                network.family() == x402_protocol::Family::Evm && self.broadcasts_approvals(network)
            })
        {
            extensions.push(x402_protocol::erc20_approval::EXTENSION.to_owned());
        }
        Ok(SupportedResponse {
            kinds,
            extensions,
            signers: signer_map
                .into_iter()
                .map(|(k, v)| (k, serde_json::json!(v)))
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use x402_protocol::facilitator::PaymentRequirements;
    use x402_protocol::verify::PaymentKey;
    use x402_protocol::{Address, B256, v1};

    use super::*;

    /// A settler on every network that may check contract signatures, counting its checks.
    struct Chain {
        contract_signatures: bool,
        checks: AtomicUsize,
    }

    #[async_trait]
    impl Settler for Chain {
        fn checks_contract_signatures(&self, _network: &NetworkInfo) -> bool {
            self.contract_signatures
        }
        async fn check(&self, _: &VerifiedPayment, _: &PaymentPayload) -> Result<(), SettlerError> {
            self.checks.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
        async fn settle(
            &self,
            _: &VerifiedPayment,
            _: &PaymentPayload,
            amount: U256,
        ) -> SettleOutcome {
            SettleOutcome::Settled {
                transaction: "0x01".to_owned(),
                amount,
            }
        }
    }

    fn payment(signature: SignatureCheck) -> VerifiedPayment {
        let registry = NetworkRegistry::builtin();
        VerifiedPayment {
            payer: ChainAddress::Evm(Address::repeat_byte(1)),
            network: registry.network("base").unwrap().clone(),
            asset: ChainAddress::Evm(Address::repeat_byte(2)),
            pay_to: ChainAddress::Evm(Address::repeat_byte(3)),
            amount: U256::from(10u64),
            key: PaymentKey::from_parts(["test", "1"]),
            expires_at: None,
            signature,
        }
    }

    fn on_chain() -> SignatureCheck {
        SignatureCheck::OnChain {
            digest: B256::repeat_byte(9),
            without_chain: Box::new(InvalidPayment::new(
                Reason::SMART_WALLET_NEEDS_RPC,
                "needs an RPC",
            )),
        }
    }

    fn wire() -> PaymentPayload {
        let requirement = PaymentRequirements::V1(v1::PaymentRequirements {
            scheme: "exact".into(),
            network: "base".into(),
            max_amount_required: U256::from(10u64),
            resource: String::new(),
            description: String::new(),
            mime_type: String::new(),
            output_schema: None,
            pay_to: Address::repeat_byte(3).to_string(),
            max_timeout_seconds: 60,
            asset: Address::repeat_byte(2).to_string(),
            extra: Some(serde_json::json!({"name": "USD Coin", "version": "2"})),
        });
        let signer = x402_protocol::eip3009::LocalSigner::random();
        x402_protocol::client::prepare_payment(
            &requirement,
            None,
            signer.address(),
            &NetworkRegistry::builtin(),
            1_800_000_000,
        )
        .unwrap()
        .finish(vec![0u8; 65])
    }

    fn reason(error: SettlerError) -> Reason {
        match error {
            SettlerError::Rejected(invalid) => invalid.reason,
            other => panic!("expected a refusal, got {other}"),
        }
    }

    #[tokio::test]
    async fn a_signature_left_to_the_chain_reaches_only_a_settler_that_checks_it() {
        let wire = wire();
        // The dev ledger has no chain: refused with the verifier's reason, at check and at
        // settle, and nothing moves.
        let ledger = EmbeddedFacilitator::builder().build();
        let refused = ledger.check_verified(&payment(on_chain()), &wire).await;
        assert_eq!(reason(refused.unwrap_err()), Reason::SMART_WALLET_NEEDS_RPC);
        let SettleOutcome::Failed(error) = ledger
            .settle_verified(&payment(on_chain()), &wire, U256::from(10u64))
            .await
        else {
            panic!("settled without a signature check");
        };
        assert_eq!(reason(error), Reason::SMART_WALLET_NEEDS_RPC);
        assert!(ledger.dev_ledger().unwrap().transfers().is_empty());
        // A signature never checked is refused at check.
        let refused = ledger
            .check_verified(&payment(SignatureCheck::Unchecked), &wire)
            .await;
        assert_eq!(reason(refused.unwrap_err()), Reason::INVALID_SIGNATURE);

        for contract_signatures in [false, true] {
            let chain = Arc::new(Chain {
                contract_signatures,
                checks: AtomicUsize::new(0),
            });
            let facilitator = EmbeddedFacilitator::builder()
                .settler(chain.clone())
                .build();
            let checked = facilitator
                .check_verified(&payment(on_chain()), &wire)
                .await;
            assert_eq!(checked.is_ok(), contract_signatures, "{checked:?}");
            assert_eq!(
                chain.checks.load(Ordering::SeqCst),
                usize::from(contract_signatures)
            );
            // A recovered signature needs no such settler.
            assert!(
                facilitator
                    .check_verified(&payment(SignatureCheck::Recovered), &wire)
                    .await
                    .is_ok()
            );
        }
    }
}
