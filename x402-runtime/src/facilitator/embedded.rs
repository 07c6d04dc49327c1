use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use x402_protocol::eip3009::RecoveryBackend;
use x402_protocol::exact::{EXACT, ExactEvmPayload};
use x402_protocol::facilitator::{
    FacilitatorRequest, SettleResponse, SupportedKind, SupportedResponse, VerifyResponse,
};
use x402_protocol::verify::{InvalidPayment, VerifiedPayment, verify_payment_with};
use x402_protocol::{Address, NetworkRegistry, ProtocolVersion, Reason};

use super::{DevLedger, Facilitator, FacilitatorError};
use crate::clock::{Clock, SystemClock};

/// Why a [`Settler`] did not accept or settle a payment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SettlerError {
    /// The payment is not acceptable (spent nonce, short balance, reverted transfer…): the
    /// client gets a 402 with the reason.
    #[error(transparent)]
    Rejected(#[from] InvalidPayment),
    /// The settler's backend (a chain node, a database) failed, so nothing can be said about
    /// the payment: the client gets a 502 and the payer is not blamed. The message is logged,
    /// not sent.
    #[error("settlement backend unavailable: {0}")]
    Unavailable(String),
}

/// Where an [`EmbeddedFacilitator`] moves funds once a payment is verified.
#[async_trait]
pub trait Settler: Send + Sync + 'static {
    /// Ledger checks for a verified payment: the nonce is unused and the balance covers it.
    async fn check(
        &self,
        payment: &VerifiedPayment,
        payload: &ExactEvmPayload,
    ) -> Result<(), SettlerError>;
    /// Moves the funds and returns the transaction id.
    async fn settle(
        &self,
        payment: &VerifiedPayment,
        payload: &ExactEvmPayload,
    ) -> Result<String, SettlerError>;
    /// Addresses that submit transactions, listed under `signers` in `/supported`.
    fn signers(&self) -> Vec<Address> {
        Vec::new()
    }
}

#[async_trait]
impl<S: Settler + ?Sized> Settler for Arc<S> {
    async fn check(
        &self,
        payment: &VerifiedPayment,
        payload: &ExactEvmPayload,
    ) -> Result<(), SettlerError> {
        (**self).check(payment, payload).await
    }
    async fn settle(
        &self,
        payment: &VerifiedPayment,
        payload: &ExactEvmPayload,
    ) -> Result<String, SettlerError> {
        (**self).settle(payment, payload).await
    }
    fn signers(&self) -> Vec<Address> {
        (**self).signers()
    }
}

/// A facilitator in the server's own process: verifies with real signature recovery and every
/// check of the spec, then settles through a [`Settler`] (a [`DevLedger`] unless told
/// otherwise).
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
    settler: Arc<dyn Settler>,
    dev_ledger: Option<Arc<DevLedger>>,
    backend: RecoveryBackend,
}

impl std::fmt::Debug for EmbeddedFacilitator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedFacilitator")
            .field("networks", &self.registry.names().collect::<Vec<_>>())
            .field("dev_ledger", &self.dev_ledger.is_some())
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

/// Configures an [`EmbeddedFacilitator`].
#[derive(Default)]
pub struct EmbeddedFacilitatorBuilder {
    registry: Option<Arc<NetworkRegistry>>,
    clock: Option<Arc<dyn Clock>>,
    settler: Option<Arc<dyn Settler>>,
    dev_ledger: Option<Arc<DevLedger>>,
    backend: Option<RecoveryBackend>,
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

    /// Settles into this dev ledger (the default is a fresh one).
    pub fn dev_ledger(mut self, ledger: Arc<DevLedger>) -> Self {
        self.dev_ledger = Some(ledger.clone());
        self.settler = Some(ledger);
        self
    }

    /// Settles through another settler, such as an EVM chain.
    pub fn settler(mut self, settler: Arc<dyn Settler>) -> Self {
        self.settler = Some(settler);
        self.dev_ledger = None;
        self
    }

    /// Which signature-recovery library to use.
    pub fn recovery_backend(mut self, backend: RecoveryBackend) -> Self {
        self.backend = Some(backend);
        self
    }

    /// Builds the facilitator.
    pub fn build(self) -> EmbeddedFacilitator {
        let (settler, dev_ledger) = match (self.settler, self.dev_ledger) {
            (Some(settler), ledger) => (settler, ledger),
            (None, _) => {
                let ledger = Arc::new(DevLedger::new());
                (ledger.clone() as Arc<dyn Settler>, Some(ledger))
            }
        };
        EmbeddedFacilitator {
            registry: self
                .registry
                .unwrap_or_else(|| Arc::new(NetworkRegistry::builtin())),
            clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
            settler,
            dev_ledger,
            backend: self.backend.unwrap_or_default(),
        }
    }
}

impl EmbeddedFacilitator {
    /// Starts configuring one.
    pub fn builder() -> EmbeddedFacilitatorBuilder {
        EmbeddedFacilitatorBuilder::default()
    }

    /// The dev ledger it settles into, when that is its settler.
    pub fn dev_ledger(&self) -> Option<&Arc<DevLedger>> {
        self.dev_ledger.as_ref()
    }

    /// The networks it knows.
    pub fn registry(&self) -> &Arc<NetworkRegistry> {
        &self.registry
    }

    async fn check(&self, request: &FacilitatorRequest) -> Result<VerifiedPayment, SettlerError> {
        let version = request.payment_payload.version();
        if u64::from(request.x402_version) != u64::from(version.number()) {
            return Err(InvalidPayment::new(
                Reason::INVALID_X402_VERSION,
                format!(
                    "x402Version is {} but the payment is {version}",
                    request.x402_version
                ),
            )
            .into());
        }
        let now = self.clock.now_unix();
        let verified = verify_payment_with(
            self.backend,
            &request.payment_payload,
            &request.payment_requirements,
            &self.registry,
            now,
        )?;
        self.settler
            .check(&verified, request.payment_payload.exact())
            .await
            .map_err(|e| match e {
                SettlerError::Rejected(mut invalid) => {
                    invalid.payer = Some(verified.payer);
                    SettlerError::Rejected(invalid)
                }
                unavailable => unavailable,
            })?;
        Ok(verified)
    }
}

/// A backend failure is the facilitator's, not the payment's: surface it as one.
fn backend_failure(message: String) -> FacilitatorError {
    tracing::error!(target: "x402::facilitator", %message, "settlement backend failed");
    FacilitatorError::Unreachable(message)
}

fn payer_string(payer: Option<Address>) -> Option<String> {
    payer.map(|p| p.to_checksum(None))
}

#[async_trait]
impl Facilitator for EmbeddedFacilitator {
    async fn verify(
        &self,
        request: &FacilitatorRequest,
    ) -> Result<VerifyResponse, FacilitatorError> {
        let version = request.payment_payload.version();
        Ok(match self.check(request).await {
            Ok(verified) => VerifyResponse::valid(verified.payer.to_checksum(None)),
            Err(SettlerError::Rejected(e)) => VerifyResponse::invalid(
                e.reason.for_version(version),
                e.message,
                payer_string(e.payer),
            ),
            Err(SettlerError::Unavailable(message)) => return Err(backend_failure(message)),
        })
    }

    async fn settle(
        &self,
        request: &FacilitatorRequest,
    ) -> Result<SettleResponse, FacilitatorError> {
        let version = request.payment_payload.version();
        let network = request.payment_payload.network().to_owned();
        let payload = request.payment_payload.exact();
        let outcome = match self.check(request).await {
            Ok(verified) => self
                .settler
                .settle(&verified, payload)
                .await
                .map(|tx| (tx, verified.payer)),
            Err(e) => Err(e),
        };
        Ok(match outcome {
            Ok((transaction, payer)) => SettleResponse {
                success: true,
                error_reason: None,
                error_message: None,
                payer: Some(payer.to_checksum(None)),
                transaction,
                network,
                amount: None,
                extensions: None,
            },
            Err(SettlerError::Rejected(e)) => SettleResponse::failure(
                e.reason.for_version(version),
                e.message,
                network,
                payer_string(e.payer.or(Some(payload.authorization.from))),
            ),
            Err(SettlerError::Unavailable(message)) => return Err(backend_failure(message)),
        })
    }

    async fn supported(&self) -> Result<SupportedResponse, FacilitatorError> {
        let mut kinds = Vec::new();
        for version in [ProtocolVersion::V1, ProtocolVersion::V2] {
            for network in self.registry.networks() {
                kinds.push(SupportedKind {
                    x402_version: version.number(),
                    scheme: EXACT.to_owned(),
                    network: network.wire_id(version).to_owned(),
                    extra: None,
                });
            }
        }
        let signers: Vec<_> = self
            .settler
            .signers()
            .iter()
            .map(|a| a.to_checksum(None))
            .collect();
        let mut signer_map = BTreeMap::new();
        if !signers.is_empty() {
            signer_map.insert("eip155:*".to_owned(), serde_json::json!(signers));
        }
        Ok(SupportedResponse {
            kinds,
            extensions: Vec::new(),
            signers: signer_map,
        })
    }
}
