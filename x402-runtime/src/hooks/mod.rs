//! Lifecycle hooks: a server's own code around verification and settlement (log to a CRM,
//! refuse a payer, grant a bonus), run by the gate at five points.
//!
//! | point | may stop the request? | called with |
//! | --- | --- | --- |
//! | [`before_verify`](Hooks::before_verify) | yes | request summary, payment (payer unknown) |
//! | [`after_verify`](Hooks::after_verify) | yes | request summary, payment with its payer |
//! | [`after_settle`](Hooks::after_settle) | no | …, the settlement |
//! | [`on_settle_failure`](Hooks::on_settle_failure) | no | …, the failed or unknown settlement |
//! | [`on_entitlement_redemption`](Hooks::on_entitlement_redemption) | yes | request summary, payer, grant |
//!
//! **Failing closed.** A [`HookRunner`] runs the hooks in order and turns anything a gating
//! hook does wrong — returning an error, panicking, taking longer than the runner's timeout,
//! or aborting with a status outside 400–599 — into an [`Abort`] (500, `hook_failed`), logged
//! under the `x402::hooks` target with the hook's name. A gating hook's failure therefore
//! never lets a request through. The observing hooks (after settlement) run when the money has
//! already moved: stopping the response then would charge the payer without serving it, so
//! their failures are logged and returned to the caller as a [`HookFailures`] instead
//! (every observer runs even if an earlier one failed).
//!
//! ```
//! use x402_runtime::hooks::{Abort, FnHooks, HookContext, HookRunner, Verdict};
//! use x402_runtime::Reason;
//!
//! let hooks = HookRunner::new().with(FnHooks::new().after_verify(|ctx: HookContext| async move {
//!     let blocked = ctx.payment.payer.as_deref() == Some("0x000000000000000000000000000000000000dEaD");
//!     Ok(if blocked {
//!         Verdict::Abort(Abort::new(403, Reason::new("payer_blocked"), "this payer is blocked"))
//!     } else {
//!         Verdict::Continue
//!     })
//! }));
//! # let _ = hooks;
//! ```

use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::FutureExt as _;
use x402_protocol::facilitator::{PaymentPayload, PaymentRequirements};
use x402_protocol::{ProtocolVersion, Reason, U256};

use crate::payment::Grant;
use crate::request::RequestView;

/// The reason code of a request refused because a hook failed.
pub const HOOK_FAILED: &str = "hook_failed";

/// How long one hook may run before the runner gives up on it (fails closed).
pub const DEFAULT_HOOK_TIMEOUT: Duration = Duration::from_secs(10);

/// What a hook may return as an error: anything that is an error.
pub type HookError = Box<dyn std::error::Error + Send + Sync>;

/// What hooks see of the request: owned copies, so hooks may keep or send them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RequestSummary {
    /// The HTTP method.
    pub method: String,
    /// Path and query, as received.
    pub path_and_query: String,
    /// The paid resource's absolute URL.
    pub resource: String,
    /// The `Host` header.
    pub host: Option<String>,
    /// The `User-Agent` header.
    pub user_agent: Option<String>,
}

impl RequestSummary {
    /// The summary of a request to `resource`.
    pub fn from_view(view: &dyn RequestView, resource: impl Into<String>) -> Self {
        RequestSummary {
            method: view.method().to_owned(),
            path_and_query: view.path_and_query().to_owned(),
            resource: resource.into(),
            host: view.header("host").map(str::to_owned),
            user_agent: view.header("user-agent").map(str::to_owned),
        }
    }
}

/// The payment a request carries, as the gate decoded and matched it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HookPayment {
    /// Protocol generation.
    pub version: ProtocolVersion,
    /// Scheme, e.g. `exact`.
    pub scheme: String,
    /// Network as on the wire.
    pub network: String,
    /// Asset (token) as on the wire.
    pub asset: String,
    /// Amount required, atomic units.
    pub amount: U256,
    /// Recipient as on the wire.
    pub pay_to: String,
    /// The payer, once verification established it.
    pub payer: Option<String>,
    /// The decoded payment.
    pub payload: Arc<PaymentPayload>,
    /// The requirement it was matched to.
    pub requirements: Arc<PaymentRequirements>,
}

impl HookPayment {
    /// A payment and the requirement it pays, payer not yet known.
    pub fn new(payload: Arc<PaymentPayload>, requirements: Arc<PaymentRequirements>) -> Self {
        HookPayment {
            version: payload.version(),
            scheme: requirements.scheme().to_owned(),
            network: requirements.network().to_owned(),
            asset: requirements.asset().to_owned(),
            amount: requirements.amount(),
            pay_to: requirements.pay_to().to_owned(),
            payer: None,
            payload,
            requirements,
        }
    }

    /// The same payment with its verified payer.
    #[must_use]
    pub fn with_payer(mut self, payer: impl Into<String>) -> Self {
        self.payer = Some(payer.into());
        self
    }
}

/// A request and its payment: what every payment hook receives.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HookContext {
    /// The request.
    pub request: RequestSummary,
    /// The payment.
    pub payment: HookPayment,
}

impl HookContext {
    /// A context.
    pub fn new(request: RequestSummary, payment: HookPayment) -> Self {
        HookContext { request, payment }
    }
}

/// A request served from an entitlement (or a prepaid session) instead of a new payment.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Redemption {
    /// The request.
    pub request: RequestSummary,
    /// Who bought the grant.
    pub payer: String,
    /// The grant being used.
    pub grant: Grant,
}

impl Redemption {
    /// A redemption.
    pub fn new(request: RequestSummary, payer: impl Into<String>, grant: Grant) -> Self {
        Redemption {
            request,
            payer: payer.into(),
            grant,
        }
    }
}

/// How a settlement ended, as hooks see it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Settlement {
    /// The funds moved.
    Settled {
        /// The transaction.
        transaction: String,
        /// The amount settled, atomic units.
        amount: U256,
    },
    /// Provably not executed.
    Failed {
        /// Why.
        reason: Reason,
        /// Details.
        message: String,
    },
    /// Submitted or timed out without a verdict; resolved later.
    Unknown {
        /// The transaction, if one was submitted.
        transaction: Option<String>,
        /// What is known.
        detail: String,
    },
}

/// A deliberate refusal by a hook: the response's status, reason code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Abort {
    /// HTTP status, 400–599.
    pub status: u16,
    /// Machine-readable reason code.
    pub reason: Reason,
    /// Message for the client.
    pub message: String,
}

impl Abort {
    /// A refusal.
    pub fn new(status: u16, reason: Reason, message: impl Into<String>) -> Self {
        Abort {
            status,
            reason,
            message: message.into(),
        }
    }

    /// The refusal the runner substitutes for a failed hook: 500 `hook_failed`, without the
    /// hook's own error text (that goes to the log only).
    pub fn hook_failed() -> Self {
        Abort::new(
            500,
            Reason::new(HOOK_FAILED),
            "the request could not be processed",
        )
    }
}

/// What a gating hook decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Go on.
    Continue,
    /// Stop the request with this answer (no handler, no settlement).
    Abort(Abort),
}

/// A server's lifecycle hooks. Every method has a do-nothing default; implement the ones you
/// need. Hooks must be cheap to call concurrently (`&self`).
#[async_trait]
pub trait Hooks: Send + Sync + 'static {
    /// A name for logs.
    fn name(&self) -> &str {
        std::any::type_name::<Self>()
    }

    /// Before the payment is verified (the payer is not known yet).
    async fn before_verify(&self, _ctx: &HookContext) -> Result<Verdict, HookError> {
        Ok(Verdict::Continue)
    }

    /// After the payment verified, before the handler runs and before settlement.
    async fn after_verify(&self, _ctx: &HookContext) -> Result<Verdict, HookError> {
        Ok(Verdict::Continue)
    }

    /// After the payment settled.
    async fn after_settle(
        &self,
        _ctx: &HookContext,
        _settlement: &Settlement,
    ) -> Result<(), HookError> {
        Ok(())
    }

    /// After a settlement failed or ended without a verdict.
    async fn on_settle_failure(
        &self,
        _ctx: &HookContext,
        _settlement: &Settlement,
    ) -> Result<(), HookError> {
        Ok(())
    }

    /// Before a request is served from an entitlement or prepaid session.
    async fn on_entitlement_redemption(
        &self,
        _redemption: &Redemption,
    ) -> Result<Verdict, HookError> {
        Ok(Verdict::Continue)
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
type GateFn = Box<dyn Fn(HookContext) -> BoxFuture<Result<Verdict, HookError>> + Send + Sync>;
type SettleFn =
    Box<dyn Fn(HookContext, Settlement) -> BoxFuture<Result<(), HookError>> + Send + Sync>;
type RedeemFn = Box<dyn Fn(Redemption) -> BoxFuture<Result<Verdict, HookError>> + Send + Sync>;

mod fn_hooks;
mod runner;
#[cfg(test)]
mod tests;

pub use fn_hooks::FnHooks;
pub use runner::{HookFailure, HookFailures, HookRunner};
