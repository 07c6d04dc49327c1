//! The paying core: choose an offer, reserve it against the budget, ask the approval hook,
//! sign, record. Transports (`reqwest-x402`, `rmcp-x402`) carry what it returns.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use alloy_primitives::{Address, B256};
use serde_json::{Map, Value, json};
use x402_protocol::client::prepare_payment;
use x402_protocol::eip3009::RecoveryBackend;
use x402_protocol::facilitator::PaymentRequirements;
use x402_protocol::{
    AssetInfo, ChainAddress, Family, NetworkInfo, NetworkRegistry, ProtocolVersion, SchemePayload,
    SolanaAddress, codec, payment_identifier, v1,
};

use crate::approve::{Approval, ApprovePayment, PaymentProposal};
use crate::challenge::Challenge;
use crate::error::{ConfigError, X402Error};
use crate::policy::{Candidate, Ledger, LimitUnit, Policy, PolicySettings, Refusal, parse_limit};
use crate::record::{PaymentRecord, PaymentStatus};
use crate::signer::{PaymentSigner, SolanaPaymentSigner};

/// Payments kept in the history by default.
const DEFAULT_HISTORY_LIMIT: usize = 1000;

/// How long a signed Solana payment is taken to stay good, in seconds: a transaction lands
/// only while its blockhash is among the last 150 (about a minute), and the blockhash may
/// already have been some seconds old.
const SOLANA_VALIDITY_SECONDS: u64 = 60;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Seconds since the unix epoch (0 if the clock is before it).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A signed payment, ready for a transport to carry: the `PaymentPayload` JSON (MCP puts it
/// in `_meta["x402/payment"]`), its base64 header form (HTTP puts it in `PAYMENT-SIGNATURE` or
/// `X-PAYMENT`), and the record of the payment.
///
/// Whoever holds it can have it settled until it expires, so its `Debug` output shows only
/// the record.
#[derive(Clone)]
pub struct SignedPayment {
    version: ProtocolVersion,
    payload: Value,
    encoded: String,
    /// What was paid, and (as the transport learns it) what became of it.
    pub record: PaymentRecord,
}

impl std::fmt::Debug for SignedPayment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedPayment")
            .field("version", &self.version)
            .field("record", &self.record)
            .finish_non_exhaustive()
    }
}

impl SignedPayment {
    /// Wraps a payment payload (encoding its header form once).
    pub fn new(version: ProtocolVersion, payload: Value, record: PaymentRecord) -> Self {
        SignedPayment {
            encoded: codec::encode(&payload),
            version,
            payload,
            record,
        }
    }

    /// The protocol generation of the payload.
    pub fn version(&self) -> ProtocolVersion {
        self.version
    }

    /// The `PaymentPayload` as JSON.
    pub fn payload(&self) -> &Value {
        &self.payload
    }

    /// The HTTP header that carries it: `payment-signature` (v2) or `x-payment` (v1).
    pub fn header_name(&self) -> &'static str {
        self.version.payment_header()
    }

    /// The header value: base64 of the payload's JSON.
    pub fn header_value(&self) -> &str {
        &self.encoded
    }
}

/// Pays x402 challenges within limits, for any transport.
///
/// It picks the best offer it is allowed to pay (known networks and tokens, preferences, then
/// the cheapest), checks the per-request cap and reserves the amount against the total
/// budget, asks the approval hook, signs (an EIP-3009 or Permit2 authorization with the
/// [`PaymentSigner`] on EVM chains, a transaction with the [`SolanaPaymentSigner`] on
/// Solana), and keeps a history of what it signed. Every refusal happens before anything is
/// signed.
///
/// A payer has an EVM signer ([`builder`](Self::builder)), a Solana signer
/// ([`solana_builder`](Self::solana_builder)), or both ([`PayerBuilder::solana`]); it
/// considers only the offers it has a key for.
///
/// It is cheap to clone; clones share caps, budget and history, so one `Payer` given to
/// `reqwest-x402` and to `rmcp-x402` spends from one budget.
///
/// ```
/// use x402_client::{LocalSigner, Payer};
///
/// let payer = Payer::builder(LocalSigner::random())
///     .max_per_request("$0.05")
///     .budget("$1")
///     .build()?;
/// assert_eq!(payer.remaining_budget()[0].1, "$1.00");
/// # Ok::<(), x402_client::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct Payer {
    inner: Arc<Inner>,
}

struct Inner {
    signer: Option<Arc<dyn PaymentSigner>>,
    payer: Option<Address>,
    solana: Option<Arc<dyn SolanaPaymentSigner>>,
    solana_payer: Option<SolanaAddress>,
    policy: Policy,
    ledger: Mutex<Ledger>,
    approver: Option<Arc<dyn ApprovePayment>>,
    history: Mutex<Vec<PaymentRecord>>,
    history_limit: usize,
}

impl std::fmt::Debug for Payer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Payer")
            .field("payer", &self.inner.payer)
            .field("solana_payer", &self.inner.solana_payer)
            .field("policy", &self.inner.policy)
            .field("approval_hook", &self.inner.approver.is_some())
            .finish_non_exhaustive()
    }
}

/// Configures a [`Payer`].
#[must_use]
pub struct PayerBuilder {
    signer: Option<Arc<dyn PaymentSigner>>,
    solana: Option<Arc<dyn SolanaPaymentSigner>>,
    registry: NetworkRegistry,
    settings: PolicySettings,
    approver: Option<Arc<dyn ApprovePayment>>,
    history_limit: usize,
    error: Option<ConfigError>,
}

impl std::fmt::Debug for PayerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PayerBuilder")
            .field("payer", &self.signer.as_ref().map(|s| s.address()))
            .field("solana_payer", &self.solana.as_ref().map(|s| s.address()))
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl PayerBuilder {
    fn fail(mut self, error: ConfigError) -> Self {
        self.error.get_or_insert(error);
        self
    }

    /// Pays Solana offers too, with `signer` (`x402-svm`'s `SolanaWallet`, say). Calling it
    /// again replaces the Solana signer.
    pub fn solana(mut self, signer: impl SolanaPaymentSigner) -> Self {
        self.solana = Some(Arc::new(signer));
        self
    }

    /// Replaces the networks and tokens the client knows (default:
    /// [`NetworkRegistry::builtin`]). Only offers on known networks, in known tokens, are paid.
    pub fn registry(mut self, registry: NetworkRegistry) -> Self {
        self.registry = registry;
        self
    }

    /// Adds a network, such as a local dev chain.
    pub fn network(mut self, network: NetworkInfo) -> Self {
        match self.registry.register_network(network) {
            Ok(_) => self,
            Err(e) => self.fail(e.into()),
        }
    }

    /// Adds a token on a known network (by v1 name or CAIP-2 id).
    pub fn asset(mut self, network: &str, asset: AssetInfo) -> Self {
        match self.registry.register_asset(network, asset) {
            Ok(_) => self,
            Err(e) => self.fail(e.into()),
        }
    }

    /// Pays only on these networks (v1 names or CAIP-2 ids).
    pub fn networks<I, S>(mut self, networks: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.settings.allowed = Some(networks.into_iter().map(Into::into).collect());
        self
    }

    /// Prefers these networks, in this order, over cheaper offers elsewhere.
    pub fn prefer_networks<I, S>(mut self, networks: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.settings.preferred_networks = networks.into_iter().map(Into::into).collect();
        self
    }

    /// Prefers these tokens (symbols such as `USDC`, or contract addresses), in this order,
    /// over cheaper offers in other tokens.
    pub fn prefer_assets<I, S>(mut self, assets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.settings.preferred_assets = assets.into_iter().map(Into::into).collect();
        self
    }

    /// Caps what one request may cost: `"$0.10"` (every USD stablecoin), `"0.10"` (dollars
    /// too) or `"5 EURC"` (that token). Call again to cap other units. The first call replaces
    /// the default cap of [`DEFAULT_MAX_PER_REQUEST`](crate::DEFAULT_MAX_PER_REQUEST); tokens no
    /// cap covers are not paid. See [`policy`](crate::policy) for units.
    pub fn max_per_request(mut self, limit: &str) -> Self {
        match parse_limit(limit) {
            Ok(limit) => {
                self.settings
                    .per_request
                    .get_or_insert_with(Vec::new)
                    .push(limit);
                self
            }
            Err(e) => self.fail(e.into()),
        }
    }

    /// Removes every per-request cap, including the default one. Only the budget (if any) and
    /// the approval hook then stand between a server and your funds.
    pub fn no_per_request_cap(mut self) -> Self {
        self.settings.per_request = Some(Vec::new());
        self
    }

    /// Caps the total of all payments this client signs: `"$5"` or `"20 EURC"`; call again for
    /// other units. Without a budget the total is unlimited; with one, tokens no budget covers
    /// are not paid.
    pub fn budget(mut self, limit: &str) -> Self {
        match parse_limit(limit) {
            Ok(limit) => {
                self.settings
                    .budget
                    .get_or_insert_with(Vec::new)
                    .push(limit);
                self
            }
            Err(e) => self.fail(e.into()),
        }
    }

    /// Asks `hook` before every payment; it can refuse. See [`ApprovePayment`].
    pub fn approve(mut self, hook: impl ApprovePayment) -> Self {
        self.approver = Some(Arc::new(hook));
        self
    }

    /// How many payments the history keeps (default 1000; the oldest go first).
    pub fn history_limit(mut self, limit: usize) -> Self {
        self.history_limit = limit;
        self
    }

    /// Builds the payer, reporting the first configuration mistake.
    pub fn build(mut self) -> Result<Payer, ConfigError> {
        if let Some(error) = self.error {
            return Err(error);
        }
        self.settings.evm = self.signer.is_some();
        self.settings.solana = self.solana.is_some();
        let policy = Policy::new(self.registry, self.settings)?;
        Ok(Payer {
            inner: Arc::new(Inner {
                payer: self.signer.as_ref().map(|s| s.address()),
                signer: self.signer,
                solana_payer: self.solana.as_ref().map(|s| s.address()),
                solana: self.solana,
                policy,
                ledger: Mutex::new(Ledger::default()),
                approver: self.approver,
                history: Mutex::new(Vec::new()),
                history_limit: self.history_limit,
            }),
        })
    }
}

impl Payer {
    /// Starts configuring a payer that pays from `signer`'s address on EVM chains. Add a
    /// Solana signer with [`PayerBuilder::solana`] to pay Solana offers as well.
    pub fn builder(signer: impl PaymentSigner) -> PayerBuilder {
        Self::new_builder(Some(Arc::new(signer)), None)
    }

    /// Starts configuring a payer that pays only on Solana, from `signer`'s address; EVM
    /// offers are refused.
    ///
    /// ```
    /// use x402_client::{Payer, SignerError, SolanaPaymentSigner, SolanaSignedPayment};
    /// use x402_protocol::facilitator::PaymentRequirements;
    /// use x402_protocol::{NetworkRegistry, SolanaAddress};
    ///
    /// struct Offline(SolanaAddress);
    ///
    /// #[async_trait::async_trait]
    /// impl SolanaPaymentSigner for Offline {
    ///     fn address(&self) -> SolanaAddress {
    ///         self.0
    ///     }
    ///     async fn sign_payment(
    ///         &self,
    ///         _: &PaymentRequirements,
    ///         _: &NetworkRegistry,
    ///     ) -> Result<SolanaSignedPayment, SignerError> {
    ///         Err(SignerError("offline".into()))
    ///     }
    /// }
    ///
    /// let payer = Payer::solana_builder(Offline(SolanaAddress([7; 32]))).budget("$1").build()?;
    /// assert_eq!(payer.solana_address(), Some(SolanaAddress([7; 32])));
    /// assert_eq!(payer.evm_address(), None);
    /// # Ok::<(), x402_client::ConfigError>(())
    /// ```
    pub fn solana_builder(signer: impl SolanaPaymentSigner) -> PayerBuilder {
        Self::new_builder(None, Some(Arc::new(signer)))
    }

    fn new_builder(
        signer: Option<Arc<dyn PaymentSigner>>,
        solana: Option<Arc<dyn SolanaPaymentSigner>>,
    ) -> PayerBuilder {
        PayerBuilder {
            signer,
            solana,
            registry: NetworkRegistry::builtin(),
            settings: PolicySettings::default(),
            approver: None,
            history_limit: DEFAULT_HISTORY_LIMIT,
            error: None,
        }
    }

    /// The EVM paying address. A Solana-only payer ([`solana_builder`](Self::solana_builder))
    /// has none and answers the zero address; [`evm_address`](Self::evm_address) tells the two
    /// apart.
    pub fn address(&self) -> Address {
        self.inner.payer.unwrap_or_default()
    }

    /// The EVM paying address, if the payer has an EVM signer.
    pub fn evm_address(&self) -> Option<Address> {
        self.inner.payer
    }

    /// The Solana paying address, if the payer has a Solana signer.
    pub fn solana_address(&self) -> Option<SolanaAddress> {
        self.inner.solana_payer
    }

    /// The networks and tokens the client knows.
    pub fn registry(&self) -> &NetworkRegistry {
        &self.inner.policy.registry
    }

    /// Every payment signed so far (up to the history limit), oldest first.
    pub fn history(&self) -> Vec<PaymentRecord> {
        lock(&self.inner.history).clone()
    }

    /// What has been committed per unit (`USD`, `EURC`…), for people.
    pub fn spent(&self) -> Vec<(LimitUnit, String)> {
        lock(&self.inner.ledger).spent()
    }

    /// What is left of each budget, for people; empty without a budget.
    pub fn remaining_budget(&self) -> Vec<(LimitUnit, String)> {
        lock(&self.inner.ledger).remaining(&self.inner.policy)
    }

    /// Pays a challenge: chooses an offer, commits it against the budget, asks the approval
    /// hook, signs, and records the payment in the history (status
    /// [`Sent`](PaymentStatus::Sent)).
    ///
    /// `method` and `url` say what is being paid for (`GET` and the request URL over HTTP;
    /// `tools/call` and `mcp://tool/<name>` over MCP); they go to the approval hook, errors
    /// and the record. Nothing is signed when it fails, except for
    /// [`X402Error::BadSignature`] (a signature that was then not used).
    pub async fn pay(
        &self,
        method: &str,
        url: &str,
        challenge: &Challenge,
    ) -> Result<SignedPayment, X402Error> {
        let inner = &*self.inner;
        let policy = &inner.policy;
        let (candidates, mut refusals) = policy.candidates(challenge);
        let mut chosen = None;
        {
            let mut ledger = lock(&inner.ledger);
            for candidate in candidates {
                match ledger.reserve(policy, &candidate) {
                    Ok(reservation) => {
                        chosen = Some((candidate, reservation));
                        break;
                    }
                    Err(reason) => refusals.push(Refusal {
                        offer: challenge.accepts[candidate.index].describe(&policy.registry),
                        reason,
                    }),
                }
            }
        }
        let Some((candidate, reservation)) = chosen else {
            return Err(X402Error::NoPayableOffer {
                url: url.to_owned(),
                refusals,
            });
        };
        let resource = challenge
            .resource_url()
            .map_or_else(|| url.to_owned(), str::to_owned);
        let proposal = PaymentProposal {
            method: method.to_owned(),
            url: url.to_owned(),
            resource: resource.clone(),
            description: description(challenge, &candidate),
            version: challenge.version,
            network: candidate.network.clone(),
            asset: candidate.asset.clone(),
            amount: candidate.amount(),
            pay_to: candidate.pay_to,
            requirements: candidate.requirements.clone(),
        };
        if let Some(approver) = &inner.approver
            && let Approval::Refuse(reason) = approver.approve(&proposal).await
        {
            lock(&inner.ledger).release(reservation);
            return Err(X402Error::NotApproved {
                proposal: Box::new(proposal),
                reason,
            });
        }
        let (payload, nonce, valid_before, payer) =
            match self.sign(url, challenge, &candidate).await {
                Ok(signed) => signed,
                Err(error) => {
                    lock(&inner.ledger).release(reservation);
                    return Err(error);
                }
            };
        tracing::info!(
            target: "x402::client",
            amount = %proposal.amount_display(),
            network = %candidate.network,
            pay_to = %candidate.pay_to,
            %url,
            "paying"
        );
        let record = PaymentRecord {
            signed_at: SystemTime::now(),
            method: method.to_owned(),
            url: url.to_owned(),
            resource,
            version: challenge.version,
            network: candidate.network,
            asset: candidate.asset,
            amount: proposal.amount,
            pay_to: candidate.pay_to,
            payer,
            nonce,
            valid_before,
            attempts: 0,
            status: PaymentStatus::Sent,
            receipt: None,
        };
        self.record(record.clone());
        Ok(SignedPayment::new(challenge.version, payload, record))
    }

    /// Builds, signs and checks the payment payload for the chosen offer; returns it with
    /// what identifies the payment, until when it can be settled, and the payer.
    async fn sign(
        &self,
        url: &str,
        challenge: &Challenge,
        candidate: &Candidate,
    ) -> Result<(Value, B256, u64, ChainAddress), X402Error> {
        let (payload, nonce, valid_before, payer) = match candidate.network.family() {
            Family::Evm => self.sign_evm(url, challenge, candidate).await?,
            Family::Solana => self.sign_solana(url, candidate).await?,
        };
        let json = self.payment_payload(url, challenge, candidate, payload)?;
        Ok((json, nonce, valid_before, payer))
    }

    /// Signs a Solana offer's transaction with the Solana signer.
    async fn sign_solana(
        &self,
        url: &str,
        candidate: &Candidate,
    ) -> Result<(SchemePayload, B256, u64, ChainAddress), X402Error> {
        let inner = &*self.inner;
        let (Some(signer), Some(payer)) = (&inner.solana, inner.solana_payer) else {
            return Err(X402Error::Prepare {
                url: url.to_owned(),
                message: "this client has no Solana key".to_owned(),
            });
        };
        let signed = signer
            .sign_payment(&candidate.requirements, &inner.policy.registry)
            .await?;
        let lifetime = candidate
            .requirements
            .max_timeout_seconds()
            .min(SOLANA_VALIDITY_SECONDS);
        Ok((
            SchemePayload::Solana(signed.payload),
            signed.id,
            unix_now().saturating_add(lifetime),
            ChainAddress::Solana(payer),
        ))
    }

    /// Signs an EVM offer's authorization with the EVM signer and checks the signature.
    async fn sign_evm(
        &self,
        url: &str,
        challenge: &Challenge,
        candidate: &Candidate,
    ) -> Result<(SchemePayload, B256, u64, ChainAddress), X402Error> {
        let inner = &*self.inner;
        let (Some(signer), Some(payer)) = (&inner.signer, inner.payer) else {
            return Err(X402Error::Prepare {
                url: url.to_owned(),
                message: "this client has no EVM key".to_owned(),
            });
        };
        let resource = challenge.resource_info();
        let prepared = prepare_payment(
            &candidate.requirements,
            resource.as_ref(),
            payer,
            &inner.policy.registry,
            unix_now(),
        )
        .map_err(|e| X402Error::Prepare {
            url: url.to_owned(),
            message: e.to_string(),
        })?;
        let signature = signer.sign_payment_digest(prepared.digest()).await?;
        // A signature that does not recover to the payer would be refused anyway; it may also
        // mean the signer is not who it claims to be. Do not send it. (A contract wallet's
        // signature is the chain's to judge.)
        if !signer.is_contract_wallet() {
            match RecoveryBackend::default().recover(&prepared.digest(), &signature) {
                Ok(recovered) if recovered == payer => {}
                Ok(recovered) => {
                    return Err(X402Error::BadSignature {
                        expected: payer,
                        detail: format!("it recovers to {recovered}"),
                    });
                }
                Err(e) => {
                    return Err(X402Error::BadSignature {
                        expected: payer,
                        detail: e.to_string(),
                    });
                }
            }
        }
        let nonce = prepared.nonce();
        let valid_before = prepared.valid_before();
        let payload = prepared.scheme_payload(signature);
        Ok((payload, nonce, valid_before, ChainAddress::Evm(payer)))
    }

    /// The `PaymentPayload` carrying `payload`, in the challenge's protocol generation.
    fn payment_payload(
        &self,
        url: &str,
        challenge: &Challenge,
        candidate: &Candidate,
        payload: SchemePayload,
    ) -> Result<Value, X402Error> {
        let json = match &candidate.requirements {
            PaymentRequirements::V1(r) => json!(v1::PaymentPayload {
                x402_version: Default::default(),
                scheme: r.scheme.clone(),
                network: r.network.clone(),
                payload,
            }),
            PaymentRequirements::V2(_) => {
                // `accepted` is the entry exactly as offered (unknown fields included): servers
                // compare it with what they offered.
                let mut object = Map::new();
                object.insert("x402Version".into(), json!(2));
                if let Some(resource) = &challenge.resource {
                    object.insert("resource".into(), resource.clone());
                }
                object.insert(
                    "accepted".into(),
                    challenge.accepts[candidate.index].raw.clone(),
                );
                object.insert("payload".into(), json!(payload));
                if let Some(extensions) = &challenge.extensions {
                    let mut extensions = extensions.clone();
                    // A server that offers payment-identifier gets an id with the payment: a
                    // retry of this request (which resends this very payment) is then
                    // recognised by id as well as by authorization.
                    if extensions.get(payment_identifier::EXTENSION_KEY).is_some() {
                        payment_identifier::append_id(
                            &mut extensions,
                            &payment_identifier::generate_id(),
                        )
                        .map_err(|e| X402Error::Prepare {
                            url: url.to_owned(),
                            message: e.to_string(),
                        })?;
                    }
                    object.insert("extensions".into(), extensions);
                }
                Value::Object(object)
            }
        };
        Ok(json)
    }

    fn record(&self, record: PaymentRecord) {
        let mut history = lock(&self.inner.history);
        history.push(record);
        let excess = history
            .len()
            .saturating_sub(self.inner.history_limit.max(1));
        history.drain(..excess);
    }

    /// Copies a payment's new state (attempts, status, receipt) into the history, if it is
    /// still there. Transports call it as they learn what became of a payment.
    pub fn update(&self, record: &PaymentRecord) {
        let mut history = lock(&self.inner.history);
        if let Some(kept) = history.iter_mut().rev().find(|r| r.nonce == record.nonce) {
            *kept = record.clone();
        }
    }
}

fn description(challenge: &Challenge, candidate: &Candidate) -> Option<String> {
    let from_resource = challenge
        .resource
        .as_ref()
        .and_then(|r| r.get("description"))
        .and_then(Value::as_str);
    let from_entry = match &candidate.requirements {
        PaymentRequirements::V1(r) => Some(r.description.as_str()),
        PaymentRequirements::V2(_) => None,
    };
    from_resource
        .or(from_entry)
        .filter(|d| !d.is_empty())
        .map(str::to_owned)
}
