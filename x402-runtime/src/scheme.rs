//! Payment schemes: how one kind of payment is offered and checked.
//!
//! A [`Scheme`] knows one scheme (`exact`, `upto`) on one chain family with one transfer
//! method: what a 402 says about it (`extra`), and every check of a payment that needs no
//! ledger (amounts, recipient, validity window, signature). The gate asks the scheme that
//! claims a payment; it never matches on chains itself. The embedded facilitator uses the same
//! schemes, so a payment is judged by the same code in-process and behind `/verify`.
//!
//! Built in: [`ExactEip3009`] (`exact` with EIP-3009 `transferWithAuthorization` on EVM
//! chains), [`ExactPermit2`] (`exact` through Permit2, for any ERC-20) and [`UptoPermit2`]
//! (`upto`: the payer signs a maximum, the handler sets the charge). Other crates add theirs
//! (`x402-svm` for Solana) through [`X402Builder::scheme`](crate::X402Builder::scheme).

use std::sync::Arc;

use x402_protocol::eip2612::Eip2612GasSponsoring;
use x402_protocol::eip3009::{RecoveryBackend, TokenDomain};
use x402_protocol::erc20_approval::Erc20ApprovalGasSponsoring;
use x402_protocol::exact::EXACT;
use x402_protocol::facilitator::{PaymentPayload, PaymentRequirements};
use x402_protocol::permit2::{
    ASSET_TRANSFER_METHOD, ExactWitness, Permit2Authorization, Permit2Payload, UPTO, UptoWitness,
    Witness,
};
use x402_protocol::verify::{
    InvalidPayment, PaymentKey, RequirementTerms, SignatureCheck, VerifiedPayment, check_common,
    verify_eip3009, verify_exact_permit2, verify_upto_permit2,
};
use x402_protocol::{ChainAddress, Family, NetworkRegistry, SchemePayload};

use crate::challenge::AcceptOption;

/// How a route's option is paid on chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum TransferMethod {
    /// EIP-3009 `transferWithAuthorization` (EVM; USDC and tokens like it). The default on
    /// EVM chains.
    #[default]
    Eip3009,
    /// An SPL `TransferChecked` in a transaction the facilitator co-signs (Solana).
    SplTransfer,
    /// Uniswap's Permit2 `permitWitnessTransferFrom` through the x402 proxy (EVM; any ERC-20
    /// the payer has approved Permit2 for). Offered with `extra.assetTransferMethod:
    /// "permit2"`; the only method of `upto`.
    Permit2,
}

impl TransferMethod {
    /// Its name in `#[paid(transfer = "…")]` and in messages: `eip3009`, `permit2`, `spl`.
    pub fn as_str(self) -> &'static str {
        match self {
            TransferMethod::Eip3009 => "eip3009",
            TransferMethod::SplTransfer => "spl",
            TransferMethod::Permit2 => "permit2",
        }
    }

    /// The chain family it pays on.
    pub fn family(self) -> Family {
        match self {
            TransferMethod::Eip3009 | TransferMethod::Permit2 => Family::Evm,
            TransferMethod::SplTransfer => Family::Solana,
        }
    }
}

/// One kind of payment, as servers and the embedded facilitator need it.
///
/// Implementations must be cheap to call: the gate asks for every paid request.
pub trait Scheme: Send + Sync + 'static {
    /// The scheme's wire name (`exact`, `upto`).
    fn name(&self) -> &'static str;

    /// What it is, for messages and logs: `exact (EIP-3009)`.
    fn describe(&self) -> &'static str;

    /// The chain family it pays on.
    fn family(&self) -> Family;

    /// The transfer method it pays with.
    fn method(&self) -> TransferMethod;

    /// The `extra` object of a requirement offering `option` with this scheme.
    fn extra(&self, option: &AcceptOption) -> Option<serde_json::Value>;

    /// Whether it checks `payload` (of its own kind) for `requirements`.
    fn handles(&self, requirements: &PaymentRequirements, payload: &SchemePayload) -> bool;

    /// Every check that needs no ledger, at unix time `now`: the payment's own terms against the
    /// requirement, and its signature. Returns who pays, how much, and what makes the payment
    /// unique.
    fn verify(
        &self,
        payment: &PaymentPayload,
        requirements: &PaymentRequirements,
        registry: &NetworkRegistry,
        now: u64,
    ) -> Result<VerifiedPayment, InvalidPayment>;

    /// Who the payment names as payer, what it pays and what makes it unique, read from the
    /// payload WITHOUT checking amounts, windows or signatures. Used only when a gate leaves
    /// every check to a remote facilitator ([`X402Builder::local_checks`](crate::X402Builder::local_checks)
    /// off), to key replay protection and the journal.
    fn identify(
        &self,
        payment: &PaymentPayload,
        requirements: &PaymentRequirements,
        registry: &NetworkRegistry,
    ) -> Result<VerifiedPayment, InvalidPayment>;
}

/// `exact` with EIP-3009 `transferWithAuthorization` on EVM chains: the payer signs an
/// authorization for exactly the price, to exactly `payTo`, valid for a window.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExactEip3009 {
    backend: RecoveryBackend,
}

impl ExactEip3009 {
    /// With an explicit signature-recovery backend (`k256`, or libsecp256k1 with the
    /// `secp256k1` feature: the default then).
    pub fn new(backend: RecoveryBackend) -> Self {
        ExactEip3009 { backend }
    }
}

impl Scheme for ExactEip3009 {
    fn name(&self) -> &'static str {
        EXACT
    }

    fn describe(&self) -> &'static str {
        "exact (EIP-3009)"
    }

    fn family(&self) -> Family {
        Family::Evm
    }

    fn method(&self) -> TransferMethod {
        TransferMethod::Eip3009
    }

    /// The token's EIP-712 domain, which the payer signs under.
    fn extra(&self, option: &AcceptOption) -> Option<serde_json::Value> {
        Some(serde_json::json!({
            "name": option.asset.eip712_name,
            "version": option.asset.eip712_version,
        }))
    }

    fn handles(&self, requirements: &PaymentRequirements, payload: &SchemePayload) -> bool {
        requirements.scheme() == EXACT && matches!(payload, SchemePayload::Eip3009(_))
    }

    fn verify(
        &self,
        payment: &PaymentPayload,
        requirements: &PaymentRequirements,
        registry: &NetworkRegistry,
        now: u64,
    ) -> Result<VerifiedPayment, InvalidPayment> {
        check_common(payment, requirements, registry)?;
        let exact = payload_of(self, payment, eip3009_payload)?;
        verify_eip3009(self.backend, exact, requirements, registry, now)
    }

    fn identify(
        &self,
        payment: &PaymentPayload,
        requirements: &PaymentRequirements,
        registry: &NetworkRegistry,
    ) -> Result<VerifiedPayment, InvalidPayment> {
        check_common(payment, requirements, registry)?;
        let exact = payload_of(self, payment, eip3009_payload)?;
        let terms = RequirementTerms::resolve(requirements, registry)?;
        let auth = &exact.authorization;
        Ok(VerifiedPayment {
            payer: ChainAddress::Evm(auth.from),
            network: terms.network.clone(),
            asset: ChainAddress::Evm(terms.asset),
            pay_to: ChainAddress::Evm(auth.to),
            amount: auth.value,
            key: PaymentKey::eip3009(terms.chain_id, terms.asset, exact),
            expires_at: Some(auth.valid_before.saturating_to::<u64>()),
            signature: SignatureCheck::Unchecked,
        })
    }
}

/// The payload of the kind a scheme checks (picked by `pick`), or a refusal saying the scheme
/// cannot check what was sent.
fn payload_of<'p, T>(
    scheme: &dyn Scheme,
    payment: &'p PaymentPayload,
    pick: impl Fn(&'p SchemePayload) -> Option<&'p T>,
) -> Result<&'p T, InvalidPayment> {
    pick(payment.payload()).ok_or_else(|| {
        InvalidPayment::new(
            x402_protocol::Reason::UNSUPPORTED_SCHEME,
            format!(
                "{} cannot check a {} payload",
                scheme.describe(),
                payment.payload().kind()
            ),
        )
        .with_payer(payment.payload().claimed_payer())
    })
}

/// The EIP-3009 payload of a payment.
fn eip3009_payload(p: &SchemePayload) -> Option<&x402_protocol::exact::ExactEvmPayload> {
    match p {
        SchemePayload::Eip3009(exact) => Some(exact),
        _ => None,
    }
}

/// The Permit2 `exact` payload of a payment.
fn permit2_exact_payload(p: &SchemePayload) -> Option<&Permit2Payload<ExactWitness>> {
    match p {
        SchemePayload::Permit2Exact(exact) => Some(exact),
        _ => None,
    }
}

/// The `upto` payload of a payment.
fn upto_payload(p: &SchemePayload) -> Option<&Permit2Payload<UptoWitness>> {
    match p {
        SchemePayload::Permit2Upto(upto) => Some(upto),
        _ => None,
    }
}

/// The `extra` of a Permit2 requirement: the method, and the token's EIP-712 domain (which the
/// EIP-2612 gas-sponsoring extension signs under).
fn permit2_extra(option: &AcceptOption) -> serde_json::Map<String, serde_json::Value> {
    let mut extra = serde_json::Map::new();
    extra.insert(
        "assetTransferMethod".to_owned(),
        ASSET_TRANSFER_METHOD.into(),
    );
    if !option.asset.eip712_name.is_empty() {
        extra.insert("name".to_owned(), option.asset.eip712_name.clone().into());
        extra.insert(
            "version".to_owned(),
            option.asset.eip712_version.clone().into(),
        );
    }
    extra
}

/// Checks the payment's `eip2612GasSponsoring` permit, if it carries one: its fields against
/// the Permit2 authorization and its signature in the token's EIP-712 domain (the
/// requirement's `extra.name`/`extra.version`), each refusal with its own reason; then its
/// `erc20ApprovalGasSponsoring` transaction, if it carries one ([`check_approval`]).
fn check_sponsoring<W>(
    backend: RecoveryBackend,
    payment: &PaymentPayload,
    requirements: &PaymentRequirements,
    authorization: &Permit2Authorization<W>,
    verified: &VerifiedPayment,
    now: u64,
) -> Result<(), InvalidPayment> {
    let extra = |key| {
        requirements
            .extra()
            .and_then(|e| e.get(key))
            .and_then(serde_json::Value::as_str)
    };
    let domain = match (extra("name"), extra("version"), verified.network.chain_id()) {
        (Some(name), Some(version), Some(chain_id)) => Some(TokenDomain {
            name,
            version,
            chain_id,
            verifying_contract: authorization.permitted.token,
        }),
        _ => None,
    };
    Eip2612GasSponsoring::verify(
        backend,
        payment.extensions(),
        authorization,
        domain.as_ref(),
        now,
    )
    .map_err(|e| InvalidPayment::new(e.reason(), e.to_string()).with_payer(Some(verified.payer)))?;
    check_approval(backend, payment, authorization, verified)
}

/// Checks the payment's `erc20ApprovalGasSponsoring` transaction, if it carries one, in the
/// reference's order (`info` fields, then the transaction: decodes, calls the token,
/// `approve(Permit2, …)`, signed by the payer) and that it is for the payment's chain, each
/// refusal with its own reason. Its nonce and fees are the settler's question.
fn check_approval<W>(
    backend: RecoveryBackend,
    payment: &PaymentPayload,
    authorization: &Permit2Authorization<W>,
    verified: &VerifiedPayment,
) -> Result<(), InvalidPayment> {
    let refuse = |e: x402_protocol::erc20_approval::ApprovalError| {
        InvalidPayment::new(e.reason(), e.to_string()).with_payer(Some(verified.payer))
    };
    let Some(info) =
        Erc20ApprovalGasSponsoring::from_extensions(payment.extensions()).map_err(refuse)?
    else {
        return Ok(());
    };
    let Some(chain_id) = verified.network.chain_id() else {
        return Ok(());
    };
    info.check(backend, authorization, chain_id)
        .map(|_| ())
        .map_err(refuse)
}

/// What a Permit2 payload names, unchecked (for gates that leave every check to a remote
/// facilitator).
fn identify_permit2<W: Witness>(
    payload: &Permit2Payload<W>,
    requirements: &PaymentRequirements,
    registry: &NetworkRegistry,
) -> Result<VerifiedPayment, InvalidPayment> {
    let terms = RequirementTerms::resolve(requirements, registry)?;
    let auth = &payload.permit2_authorization;
    Ok(VerifiedPayment {
        payer: ChainAddress::Evm(auth.from),
        network: terms.network.clone(),
        asset: ChainAddress::Evm(terms.asset),
        pay_to: ChainAddress::Evm(auth.witness.to()),
        amount: auth.permitted.amount,
        key: PaymentKey::permit2(terms.chain_id, auth.from, auth.nonce),
        expires_at: Some(auth.deadline.saturating_to::<u64>()),
        signature: SignatureCheck::Unchecked,
    })
}

/// `exact` through Permit2 on EVM chains: the payer signs a `PermitWitnessTransferFrom` for
/// exactly the price, spendable only by the x402 exact proxy and only to `payTo`. Works with any
/// ERC-20 the payer has approved Permit2 for (a payer without that approval is answered 412
/// `permit2_allowance_required`), or, for tokens with EIP-2612 `permit`, with the payer's
/// signed permit in the `eip2612GasSponsoring` extension (checked here: fields and signature),
/// or with a signed `approve(Permit2, …)` transaction in the `erc20ApprovalGasSponsoring`
/// extension (checked here: fields, target, calldata, chain, signer) for a settler that
/// broadcasts it.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExactPermit2 {
    backend: RecoveryBackend,
}

impl ExactPermit2 {
    /// With an explicit signature-recovery backend.
    pub fn new(backend: RecoveryBackend) -> Self {
        ExactPermit2 { backend }
    }
}

impl Scheme for ExactPermit2 {
    fn name(&self) -> &'static str {
        EXACT
    }

    fn describe(&self) -> &'static str {
        "exact (Permit2)"
    }

    fn family(&self) -> Family {
        Family::Evm
    }

    fn method(&self) -> TransferMethod {
        TransferMethod::Permit2
    }

    fn extra(&self, option: &AcceptOption) -> Option<serde_json::Value> {
        Some(serde_json::Value::Object(permit2_extra(option)))
    }

    fn handles(&self, requirements: &PaymentRequirements, payload: &SchemePayload) -> bool {
        requirements.scheme() == EXACT && matches!(payload, SchemePayload::Permit2Exact(_))
    }

    fn verify(
        &self,
        payment: &PaymentPayload,
        requirements: &PaymentRequirements,
        registry: &NetworkRegistry,
        now: u64,
    ) -> Result<VerifiedPayment, InvalidPayment> {
        check_common(payment, requirements, registry)?;
        let exact = payload_of(self, payment, permit2_exact_payload)?;
        let verified = verify_exact_permit2(self.backend, exact, requirements, registry, now)?;
        check_sponsoring(
            self.backend,
            payment,
            requirements,
            &exact.permit2_authorization,
            &verified,
            now,
        )?;
        Ok(verified)
    }

    fn identify(
        &self,
        payment: &PaymentPayload,
        requirements: &PaymentRequirements,
        registry: &NetworkRegistry,
    ) -> Result<VerifiedPayment, InvalidPayment> {
        check_common(payment, requirements, registry)?;
        let exact = payload_of(self, payment, permit2_exact_payload)?;
        identify_permit2(exact, requirements, registry)
    }
}

/// `upto` on EVM chains (metered pricing): the payer signs a Permit2 transfer of at most the
/// route's maximum, which only the named facilitator may settle; the handler sets the actual
/// charge ([`PaymentInfo::charge`](crate::PaymentInfo::charge)) and only that moves. A charge of
/// zero settles nothing and leaves the authorization unused.
///
/// The facilitator that may settle is the requirement's `extra.facilitatorAddress`: the
/// embedded facilitator's settling account, or the one given to
/// [`X402Builder::upto_facilitator`](crate::X402Builder::upto_facilitator) for a remote one.
#[derive(Debug, Clone, Copy, Default)]
pub struct UptoPermit2 {
    backend: RecoveryBackend,
}

impl UptoPermit2 {
    /// With an explicit signature-recovery backend.
    pub fn new(backend: RecoveryBackend) -> Self {
        UptoPermit2 { backend }
    }
}

impl Scheme for UptoPermit2 {
    fn name(&self) -> &'static str {
        UPTO
    }

    fn describe(&self) -> &'static str {
        "upto (Permit2)"
    }

    fn family(&self) -> Family {
        Family::Evm
    }

    fn method(&self) -> TransferMethod {
        TransferMethod::Permit2
    }

    fn extra(&self, option: &AcceptOption) -> Option<serde_json::Value> {
        let mut extra = permit2_extra(option);
        if let Some(facilitator) = option.facilitator {
            extra.insert(
                "facilitatorAddress".to_owned(),
                facilitator.to_string().into(),
            );
        }
        Some(serde_json::Value::Object(extra))
    }

    fn handles(&self, requirements: &PaymentRequirements, payload: &SchemePayload) -> bool {
        requirements.scheme() == UPTO && matches!(payload, SchemePayload::Permit2Upto(_))
    }

    fn verify(
        &self,
        payment: &PaymentPayload,
        requirements: &PaymentRequirements,
        registry: &NetworkRegistry,
        now: u64,
    ) -> Result<VerifiedPayment, InvalidPayment> {
        check_common(payment, requirements, registry)?;
        let upto = payload_of(self, payment, upto_payload)?;
        let verified = verify_upto_permit2(self.backend, upto, requirements, registry, now, None)?;
        check_sponsoring(
            self.backend,
            payment,
            requirements,
            &upto.permit2_authorization,
            &verified,
            now,
        )?;
        Ok(verified)
    }

    fn identify(
        &self,
        payment: &PaymentPayload,
        requirements: &PaymentRequirements,
        registry: &NetworkRegistry,
    ) -> Result<VerifiedPayment, InvalidPayment> {
        check_common(payment, requirements, registry)?;
        let upto = payload_of(self, payment, upto_payload)?;
        identify_permit2(upto, requirements, registry)
    }
}

/// The schemes a gate or facilitator knows, in the order they are asked.
#[derive(Clone)]
pub struct Schemes(Vec<Arc<dyn Scheme>>);

impl std::fmt::Debug for Schemes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|s| s.describe()))
            .finish()
    }
}

impl Default for Schemes {
    /// The built-in ones: [`ExactEip3009`], [`ExactPermit2`], [`UptoPermit2`].
    fn default() -> Self {
        Schemes(vec![
            Arc::new(ExactEip3009::default()),
            Arc::new(ExactPermit2::default()),
            Arc::new(UptoPermit2::default()),
        ])
    }
}

impl Schemes {
    /// Adds a scheme, asked before the ones already known (so a replacement wins).
    pub fn add(&mut self, scheme: Arc<dyn Scheme>) {
        self.0.insert(0, scheme);
    }

    /// Every known scheme.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn Scheme>> {
        self.0.iter()
    }

    /// The scheme that offers `name` with `method` on `family`.
    pub fn offering(
        &self,
        name: &str,
        family: Family,
        method: TransferMethod,
    ) -> Option<&Arc<dyn Scheme>> {
        self.0
            .iter()
            .find(|s| s.name() == name && s.family() == family && s.method() == method)
    }

    /// The scheme that checks `payload` for `requirements`.
    pub fn for_payment(
        &self,
        requirements: &PaymentRequirements,
        payload: &SchemePayload,
    ) -> Option<&Arc<dyn Scheme>> {
        self.0.iter().find(|s| s.handles(requirements, payload))
    }

    /// Checks a payment with the scheme that claims it, or explains that none does.
    pub fn verify(
        &self,
        payment: &PaymentPayload,
        requirements: &PaymentRequirements,
        registry: &NetworkRegistry,
        now: u64,
    ) -> Result<VerifiedPayment, InvalidPayment> {
        match self.for_payment(requirements, payment.payload()) {
            Some(scheme) => scheme.verify(payment, requirements, registry, now),
            None => Err(InvalidPayment::new(
                x402_protocol::Reason::UNSUPPORTED_SCHEME,
                format!(
                    "no configured scheme checks {:?} payments made with a {} payload",
                    requirements.scheme(),
                    payment.payload().kind()
                ),
            )
            .with_payer(payment.payload().claimed_payer())),
        }
    }
}
