//! Hooks that run once a payment is settled, or when one did not go through.
//!
//! Next to the before-signing [`ApprovePayment`](crate::ApprovePayment) hook, the builder takes
//! [`after_payment`](crate::X402MiddlewareBuilder::after_payment) (the paid request got its
//! answer and the payment went through) and
//! [`on_payment_failure`](crate::X402MiddlewareBuilder::on_payment_failure) (nothing was
//! signed, or the server did not take the payment). For one request at most one of them runs,
//! once, before the response (or error) is handed back.
//!
//! Hooks observe; they cannot change the response. A hook that panics is caught and logged
//! (`x402::client` target, level `error`); the request goes on as if the hook had returned.
//!
//! ```no_run
//! use reqwest_x402::hooks::PaymentFailure;
//! use reqwest_x402::{PaymentRecord, X402Middleware};
//!
//! # fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let x402 = X402Middleware::builder(reqwest_x402::key_from_env("X402_PRIVATE_KEY")?)
//!     .after_payment(|record: PaymentRecord| async move {
//!         println!("paid {} for {}", record.amount_display(), record.url);
//!     })
//!     .on_payment_failure(|failure: PaymentFailure| async move {
//!         eprintln!("not paid: {failure}");
//!     })
//!     .build()?;
//! # let _ = x402; Ok(()) }
//! ```

use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;

use async_trait::async_trait;
use futures_util::FutureExt;
use x402_client::{PaymentRecord, PaymentStatus, X402Error};

/// Runs once a paid request got its answer and the payment went through: the record's status
/// is [`Settled`](PaymentStatus::Settled) (with the settlement receipt in
/// [`receipt`](PaymentRecord::receipt)) or [`Unconfirmed`](PaymentStatus::Unconfirmed) (a
/// success without a receipt).
///
/// Implemented for async closures taking the record by value; see the
/// [module documentation](self).
#[async_trait]
pub trait AfterPayment: Send + Sync + 'static {
    /// Called with the payment's final record.
    async fn after_payment(&self, record: &PaymentRecord);
}

#[async_trait]
impl<F, Fut> AfterPayment for F
where
    F: Fn(PaymentRecord) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    async fn after_payment(&self, record: &PaymentRecord) {
        (self)(record.clone()).await
    }
}

/// What a server asked for with 412 `permit2_allowance_required`: the payer must let Uniswap's
/// Permit2 contract move `amount` (at least) of `token` on `network` before its Permit2
/// payment can be settled.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Permit2Allowance {
    /// The network.
    pub network: x402_client::x402_protocol::NetworkInfo,
    /// The token to approve.
    pub token: x402_client::x402_protocol::Address,
    /// The payer (the token owner).
    pub owner: x402_client::x402_protocol::Address,
    /// What the payment moves at most.
    pub amount: x402_client::x402_protocol::U256,
    /// The Permit2 contract, the spender to approve.
    pub spender: x402_client::x402_protocol::Address,
}

/// Gives Permit2 an allowance when a server answers a Permit2 payment with 412
/// `permit2_allowance_required` (an ERC-20 `approve(Permit2, …)` sent by the payer, through a
/// wallet or an RPC node of your choice). When it returns `Ok`, the same payment is sent once
/// more: it was not used. `Err` (a message) leaves the 412 as the answer.
///
/// Implemented for async closures taking the request by value:
///
/// ```no_run
/// use reqwest_x402::hooks::Permit2Allowance;
/// use reqwest_x402::X402Middleware;
///
/// # fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let x402 = X402Middleware::builder(reqwest_x402::key_from_env("X402_PRIVATE_KEY")?)
///     .approve_permit2(|needed: Permit2Allowance| async move {
///         // send token.approve(needed.spender, U256::MAX) from needed.owner, wait for it
///         Err::<(), String>(format!("approve {} for {} first", needed.token, needed.spender))
///     })
///     .build()?;
/// # let _ = x402; Ok(()) }
/// ```
#[async_trait]
pub trait ApprovePermit2: Send + Sync + 'static {
    /// Makes the allowance, or says why not.
    async fn approve_permit2(&self, needed: &Permit2Allowance) -> Result<(), String>;
}

#[async_trait]
impl<F, Fut> ApprovePermit2 for F
where
    F: Fn(Permit2Allowance) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send,
{
    async fn approve_permit2(&self, needed: &Permit2Allowance) -> Result<(), String> {
        (self)(needed.clone()).await
    }
}

/// Runs when a 402 was not paid, or a payment was sent and not taken; see
/// [`PaymentFailure`].
///
/// Implemented for async closures taking the failure by value; see the
/// [module documentation](self).
#[async_trait]
pub trait OnPaymentFailure: Send + Sync + 'static {
    /// Called with what went wrong.
    async fn on_payment_failure(&self, failure: &PaymentFailure);
}

#[async_trait]
impl<F, Fut> OnPaymentFailure for F
where
    F: Fn(PaymentFailure) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    async fn on_payment_failure(&self, failure: &PaymentFailure) {
        (self)(failure.clone()).await
    }
}

/// Why nothing was signed for a 402.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NotSignedReason {
    /// No offer fits the networks, tokens, caps or budget
    /// ([`X402Error::NoPayableOffer`]).
    NoPayableOffer,
    /// The approval hook refused ([`X402Error::NotApproved`]).
    NotApproved,
    /// The signer failed or produced a bad signature ([`X402Error::Signer`],
    /// [`X402Error::BadSignature`]).
    SignerFailed,
    /// The offer could not be turned into a payment ([`X402Error::Prepare`] and the like).
    Other,
}

/// What went wrong with a payment, for [`OnPaymentFailure`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum PaymentFailure {
    /// Nothing was signed: the request fails with the [`X402Error`] described here.
    NotSigned {
        /// The request's method.
        method: String,
        /// The request's URL.
        url: String,
        /// Which kind of refusal.
        reason: NotSignedReason,
        /// The error's message (as the request's error displays it).
        message: String,
    },
    /// The server refused the payment (a 402 with a reason, such as `insufficient_funds`) or
    /// its settlement failed (a receipt with `success: false`); the record's status is
    /// [`Rejected`](PaymentStatus::Rejected).
    Refused(PaymentRecord),
    /// The server answered with an error status and no receipt (the handler failed), so it did
    /// not settle; the authorization is kept for a retry of the same request. Status
    /// [`NotSettled`](PaymentStatus::NotSettled).
    NotSettled(PaymentRecord),
    /// The server still reported the settlement pending (504 `settlement_pending`) once the
    /// retries ran out; the outcome is unknown and the authorization is kept.
    Pending(PaymentRecord),
    /// The paid request got no answer (a connection error): the server may or may not have
    /// settled it; the authorization is kept for a retry. Status [`Sent`](PaymentStatus::Sent).
    NoAnswer(PaymentRecord),
}

impl PaymentFailure {
    /// The payment's record, when something was signed.
    pub fn record(&self) -> Option<&PaymentRecord> {
        match self {
            PaymentFailure::NotSigned { .. } => None,
            PaymentFailure::Refused(record)
            | PaymentFailure::NotSettled(record)
            | PaymentFailure::Pending(record)
            | PaymentFailure::NoAnswer(record) => Some(record),
        }
    }

    /// The failure of a request for which nothing was signed.
    pub(crate) fn not_signed(method: &str, url: &str, error: &X402Error) -> Self {
        let reason = match error {
            X402Error::NoPayableOffer { .. } => NotSignedReason::NoPayableOffer,
            X402Error::NotApproved { .. } => NotSignedReason::NotApproved,
            X402Error::Signer(_) | X402Error::BadSignature { .. } => NotSignedReason::SignerFailed,
            _ => NotSignedReason::Other,
        };
        PaymentFailure::NotSigned {
            method: method.to_owned(),
            url: url.to_owned(),
            reason,
            message: error.to_string(),
        }
    }

    /// The failure a record's final status stands for, if it is one (`pending` when the
    /// receipt still says the settlement is pending).
    pub(crate) fn of_record(record: &PaymentRecord, pending: bool) -> Option<Self> {
        if pending {
            return Some(PaymentFailure::Pending(record.clone()));
        }
        match record.status {
            PaymentStatus::Rejected { .. } => Some(PaymentFailure::Refused(record.clone())),
            PaymentStatus::NotSettled { .. } | PaymentStatus::ToolError => {
                Some(PaymentFailure::NotSettled(record.clone()))
            }
            PaymentStatus::Sent => Some(PaymentFailure::NoAnswer(record.clone())),
            _ => None,
        }
    }
}

impl fmt::Display for PaymentFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PaymentFailure::NotSigned { message, .. } => f.write_str(message),
            PaymentFailure::Pending(record) => write!(
                f,
                "{} for {}: settlement still pending",
                record.amount_display(),
                record.url
            ),
            PaymentFailure::Refused(record)
            | PaymentFailure::NotSettled(record)
            | PaymentFailure::NoAnswer(record) => write!(
                f,
                "{} for {}: {}",
                record.amount_display(),
                record.url,
                record.status
            ),
        }
    }
}

/// The hooks a middleware runs.
#[derive(Default, Clone)]
pub(crate) struct Hooks {
    pub(crate) after_payment: Option<std::sync::Arc<dyn AfterPayment>>,
    pub(crate) on_failure: Option<std::sync::Arc<dyn OnPaymentFailure>>,
    pub(crate) permit2: Option<std::sync::Arc<dyn ApprovePermit2>>,
}

impl Hooks {
    /// Runs the after-payment hook, if any; a panic in it is logged, not propagated.
    pub(crate) async fn after_payment(&self, record: &PaymentRecord) {
        if let Some(hook) = &self.after_payment {
            guarded("after_payment", &record.url, hook.after_payment(record)).await;
        }
    }

    /// Runs the Permit2 allowance hook, if any: `Some(true)` when it made the allowance.
    pub(crate) async fn approve_permit2(&self, needed: &Permit2Allowance, url: &str) -> bool {
        let Some(hook) = &self.permit2 else {
            return false;
        };
        match AssertUnwindSafe(hook.approve_permit2(needed))
            .catch_unwind()
            .await
        {
            Ok(Ok(())) => true,
            Ok(Err(message)) => {
                tracing::warn!(target: "x402::client", %url, %message, "the Permit2 allowance was not made");
                false
            }
            Err(_) => {
                tracing::error!(target: "x402::client", %url, "the approve_permit2 hook panicked");
                false
            }
        }
    }

    /// Runs the failure hook, if any; a panic in it is logged, not propagated.
    pub(crate) async fn on_failure(&self, failure: PaymentFailure) {
        if let Some(hook) = &self.on_failure {
            let url = match &failure {
                PaymentFailure::NotSigned { url, .. } => url.clone(),
                other => other.record().map(|r| r.url.clone()).unwrap_or_default(),
            };
            guarded(
                "on_payment_failure",
                &url,
                hook.on_payment_failure(&failure),
            )
            .await;
        }
    }
}

/// Awaits a hook's future, catching a panic in it.
async fn guarded(hook: &'static str, url: &str, run: impl Future<Output = ()>) {
    if let Err(panic) = AssertUnwindSafe(run).catch_unwind().await {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a non-string panic payload".to_owned());
        tracing::error!(target: "x402::client", hook, %url, panic = %message, "a payment hook panicked; the request goes on");
    }
}

impl fmt::Debug for Hooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hooks")
            .field("after_payment", &self.after_payment.is_some())
            .field("on_payment_failure", &self.on_failure.is_some())
            .finish()
    }
}
