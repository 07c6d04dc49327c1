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

/// Hooks from async closures, for when a type of one's own is too much. Each closure gets
/// owned copies of its arguments.
#[derive(Default)]
pub struct FnHooks {
    name: Option<String>,
    before_verify: Option<GateFn>,
    after_verify: Option<GateFn>,
    after_settle: Option<SettleFn>,
    on_settle_failure: Option<SettleFn>,
    on_entitlement_redemption: Option<RedeemFn>,
}

impl fmt::Debug for FnHooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FnHooks")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

macro_rules! gate_setter {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[must_use]
        pub fn $name<F, Fut>(mut self, hook: F) -> Self
        where
            F: Fn(HookContext) -> Fut + Send + Sync + 'static,
            Fut: Future<Output = Result<Verdict, HookError>> + Send + 'static,
        {
            self.$name = Some(Box::new(move |ctx| Box::pin(hook(ctx))));
            self
        }
    };
}

macro_rules! settle_setter {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[must_use]
        pub fn $name<F, Fut>(mut self, hook: F) -> Self
        where
            F: Fn(HookContext, Settlement) -> Fut + Send + Sync + 'static,
            Fut: Future<Output = Result<(), HookError>> + Send + 'static,
        {
            self.$name = Some(Box::new(move |ctx, s| Box::pin(hook(ctx, s))));
            self
        }
    };
}

impl FnHooks {
    /// No hooks yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Names these hooks in logs.
    #[must_use]
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    gate_setter!(
        /// Runs `hook` before verification.
        before_verify
    );
    gate_setter!(
        /// Runs `hook` after verification.
        after_verify
    );
    settle_setter!(
        /// Runs `hook` after settlement.
        after_settle
    );
    settle_setter!(
        /// Runs `hook` after a failed or unknown settlement.
        on_settle_failure
    );

    /// Runs `hook` before a request is served from an entitlement.
    #[must_use]
    pub fn on_entitlement_redemption<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(Redemption) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Verdict, HookError>> + Send + 'static,
    {
        self.on_entitlement_redemption = Some(Box::new(move |r| Box::pin(hook(r))));
        self
    }
}

#[async_trait]
impl Hooks for FnHooks {
    fn name(&self) -> &str {
        self.name.as_deref().unwrap_or("FnHooks")
    }

    async fn before_verify(&self, ctx: &HookContext) -> Result<Verdict, HookError> {
        match &self.before_verify {
            Some(hook) => hook(ctx.clone()).await,
            None => Ok(Verdict::Continue),
        }
    }

    async fn after_verify(&self, ctx: &HookContext) -> Result<Verdict, HookError> {
        match &self.after_verify {
            Some(hook) => hook(ctx.clone()).await,
            None => Ok(Verdict::Continue),
        }
    }

    async fn after_settle(&self, ctx: &HookContext, s: &Settlement) -> Result<(), HookError> {
        match &self.after_settle {
            Some(hook) => hook(ctx.clone(), s.clone()).await,
            None => Ok(()),
        }
    }

    async fn on_settle_failure(&self, ctx: &HookContext, s: &Settlement) -> Result<(), HookError> {
        match &self.on_settle_failure {
            Some(hook) => hook(ctx.clone(), s.clone()).await,
            None => Ok(()),
        }
    }

    async fn on_entitlement_redemption(&self, r: &Redemption) -> Result<Verdict, HookError> {
        match &self.on_entitlement_redemption {
            Some(hook) => hook(r.clone()).await,
            None => Ok(Verdict::Continue),
        }
    }
}

/// One observing hook that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookFailure {
    /// The hook's name.
    pub hook: String,
    /// What went wrong (error text, "panicked", "timed out").
    pub error: String,
}

/// The observing hooks that failed at one point (the others ran normally).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} lifecycle hook(s) failed: {}", .0.len(), .0.iter().map(|f| format!("{}: {}", f.hook, f.error)).collect::<Vec<_>>().join("; "))]
pub struct HookFailures(pub Vec<HookFailure>);

/// The hook points, for logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Point {
    BeforeVerify,
    AfterVerify,
    AfterSettle,
    OnSettleFailure,
    OnEntitlementRedemption,
}

impl Point {
    fn as_str(self) -> &'static str {
        match self {
            Point::BeforeVerify => "before_verify",
            Point::AfterVerify => "after_verify",
            Point::AfterSettle => "after_settle",
            Point::OnSettleFailure => "on_settle_failure",
            Point::OnEntitlementRedemption => "on_entitlement_redemption",
        }
    }
}

/// Runs registered [`Hooks`] in registration order, containing their failures (see the
/// module docs). Cheap to clone.
#[derive(Clone)]
pub struct HookRunner {
    hooks: Vec<Arc<dyn Hooks>>,
    timeout: Duration,
}

impl Default for HookRunner {
    fn default() -> Self {
        HookRunner {
            hooks: Vec::new(),
            timeout: DEFAULT_HOOK_TIMEOUT,
        }
    }
}

impl fmt::Debug for HookRunner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HookRunner")
            .field(
                "hooks",
                &self.hooks.iter().map(|h| h.name()).collect::<Vec<_>>(),
            )
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl HookRunner {
    /// No hooks; every point continues.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds hooks, run after those already added.
    #[must_use]
    pub fn with(mut self, hooks: impl Hooks) -> Self {
        self.hooks.push(Arc::new(hooks));
        self
    }

    /// Adds shared hooks.
    #[must_use]
    pub fn with_shared(mut self, hooks: Arc<dyn Hooks>) -> Self {
        self.hooks.push(hooks);
        self
    }

    /// How long each hook may run (default 10 s); a hook still running then has failed.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Whether no hooks are registered.
    pub fn is_empty(&self) -> bool {
        self.hooks.is_empty()
    }

    /// Runs one hook call, containing panics and the timeout. `Err` is the logged failure.
    async fn contain<T>(
        &self,
        hook: &dyn Hooks,
        point: Point,
        call: impl Future<Output = Result<T, HookError>> + Send,
    ) -> Result<T, String> {
        let guarded = AssertUnwindSafe(call).catch_unwind();
        let error = match tokio::time::timeout(self.timeout, guarded).await {
            Ok(Ok(Ok(value))) => return Ok(value),
            Ok(Ok(Err(error))) => error.to_string(),
            Ok(Err(panic)) => {
                let text = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a non-string panic".to_owned());
                format!("panicked: {text}")
            }
            Err(_) => format!("timed out after {:?}", self.timeout),
        };
        tracing::error!(
            target: "x402::hooks",
            hook = hook.name(),
            point = point.as_str(),
            %error,
            "lifecycle hook failed"
        );
        Err(error)
    }

    /// Runs a gating point: the first abort stops it; failures abort with `hook_failed`.
    async fn gate<'a, F>(&'a self, point: Point, call: F) -> Result<(), Abort>
    where
        F: Fn(
            &'a dyn Hooks,
        ) -> Pin<Box<dyn Future<Output = Result<Verdict, HookError>> + Send + 'a>>,
    {
        for hook in &self.hooks {
            let hook: &dyn Hooks = hook.as_ref();
            match self.contain(hook, point, call(hook)).await {
                Ok(Verdict::Continue) => {}
                Ok(Verdict::Abort(abort)) if (400..=599).contains(&abort.status) => {
                    tracing::info!(
                        target: "x402::hooks",
                        hook = hook.name(),
                        point = point.as_str(),
                        status = abort.status,
                        reason = %abort.reason,
                        "lifecycle hook stopped the request"
                    );
                    return Err(abort);
                }
                Ok(Verdict::Abort(abort)) => {
                    tracing::error!(
                        target: "x402::hooks",
                        hook = hook.name(),
                        point = point.as_str(),
                        status = abort.status,
                        "lifecycle hook aborted with a status that is not an error; refusing with 500"
                    );
                    return Err(Abort::hook_failed());
                }
                Err(_) => return Err(Abort::hook_failed()),
            }
        }
        Ok(())
    }

    /// Runs an observing point: every hook runs; failures are collected.
    async fn observe<'a, F>(&'a self, point: Point, call: F) -> Result<(), HookFailures>
    where
        F: Fn(&'a dyn Hooks) -> Pin<Box<dyn Future<Output = Result<(), HookError>> + Send + 'a>>,
    {
        let mut failures = Vec::new();
        for hook in &self.hooks {
            let hook: &dyn Hooks = hook.as_ref();
            if let Err(error) = self.contain(hook, point, call(hook)).await {
                failures.push(HookFailure {
                    hook: hook.name().to_owned(),
                    error,
                });
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(HookFailures(failures))
        }
    }

    /// Before verification. `Err` = do not verify; answer with the abort.
    pub async fn before_verify(&self, ctx: &HookContext) -> Result<(), Abort> {
        self.gate(Point::BeforeVerify, |h| h.before_verify(ctx))
            .await
    }

    /// After verification. `Err` = run neither the handler nor the settlement; answer with
    /// the abort (and release the payment's replay record, as for any unused payment).
    pub async fn after_verify(&self, ctx: &HookContext) -> Result<(), Abort> {
        self.gate(Point::AfterVerify, |h| h.after_verify(ctx)).await
    }

    /// After a settlement. Failures are logged and returned; the response stands.
    pub async fn after_settle(
        &self,
        ctx: &HookContext,
        settlement: &Settlement,
    ) -> Result<(), HookFailures> {
        self.observe(Point::AfterSettle, |h| h.after_settle(ctx, settlement))
            .await
    }

    /// After a failed or unknown settlement. Failures are logged and returned.
    pub async fn on_settle_failure(
        &self,
        ctx: &HookContext,
        settlement: &Settlement,
    ) -> Result<(), HookFailures> {
        self.observe(Point::OnSettleFailure, |h| {
            h.on_settle_failure(ctx, settlement)
        })
        .await
    }

    /// Before serving from an entitlement. `Err` = do not serve and do not take from the
    /// grant; answer with the abort.
    pub async fn on_entitlement_redemption(&self, redemption: &Redemption) -> Result<(), Abort> {
        self.gate(Point::OnEntitlementRedemption, |h| {
            h.on_entitlement_redemption(redemption)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn context() -> HookContext {
        let requirements: PaymentRequirements = serde_json::from_value(serde_json::json!({
            "scheme": "exact", "network": "eip155:84532", "amount": "10000",
            "asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
            "payTo": "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC", "maxTimeoutSeconds": 300,
            "extra": {"name": "USDC", "version": "2"}
        }))
        .unwrap();
        let payload: PaymentPayload = serde_json::from_value(serde_json::json!({
            "x402Version": 2,
            "accepted": serde_json::to_value(&requirements).unwrap(),
            "payload": {
                "signature": "0x00",
                "authorization": {
                    "from": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
                    "to": "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
                    "value": "10000", "validAfter": "0", "validBefore": "1796050353",
                    "nonce": "0x0b2d310c2d4b1269293f47cafc9cd5af7e909374030962752891a4c612d61f3c"
                }
            }
        }))
        .unwrap();
        let request = RequestSummary {
            method: "GET".into(),
            path_and_query: "/report".into(),
            resource: "https://api.example.test/report".into(),
            host: Some("api.example.test".into()),
            user_agent: None,
        };
        HookContext::new(
            request,
            HookPayment::new(Arc::new(payload), Arc::new(requirements)),
        )
        .with_payer_for_tests()
    }

    impl HookContext {
        fn with_payer_for_tests(mut self) -> Self {
            self.payment = self
                .payment
                .with_payer("0x70997970C51812dc3A010C7d01b50e0d17dc79C8");
            self
        }
    }

    fn redemption() -> Redemption {
        Redemption::new(
            context().request,
            "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
            Grant {
                id: "g1".into(),
                scope: "path:/report".into(),
                transaction: "0xabc".into(),
                paid: U256::from(10_000u64),
                expires_at: 2_000_000_000,
                remaining: Some(2),
            },
        )
    }

    /// Records each call, then behaves as told.
    #[derive(Clone, Copy)]
    enum Act {
        Continue,
        Abort(u16),
        Fail,
        Panic,
        Hang,
    }

    struct Scripted {
        name: &'static str,
        act: Act,
        log: Arc<Mutex<Vec<String>>>,
    }

    impl Scripted {
        async fn run(&self, point: &str) -> Result<Verdict, HookError> {
            self.log
                .lock()
                .unwrap()
                .push(format!("{}:{point}", self.name));
            match self.act {
                Act::Continue => Ok(Verdict::Continue),
                Act::Abort(status) => Ok(Verdict::Abort(Abort::new(
                    status,
                    Reason::new("payer_blocked"),
                    "blocked",
                ))),
                Act::Fail => Err("crm unreachable".into()),
                Act::Panic => panic!("hook bug"),
                Act::Hang => {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    Ok(Verdict::Continue)
                }
            }
        }
    }

    #[async_trait]
    impl Hooks for Scripted {
        fn name(&self) -> &str {
            self.name
        }
        async fn before_verify(&self, _: &HookContext) -> Result<Verdict, HookError> {
            self.run("before_verify").await
        }
        async fn after_verify(&self, _: &HookContext) -> Result<Verdict, HookError> {
            self.run("after_verify").await
        }
        async fn after_settle(&self, _: &HookContext, _: &Settlement) -> Result<(), HookError> {
            self.run("after_settle").await.map(|_| ())
        }
        async fn on_settle_failure(
            &self,
            _: &HookContext,
            _: &Settlement,
        ) -> Result<(), HookError> {
            self.run("on_settle_failure").await.map(|_| ())
        }
        async fn on_entitlement_redemption(&self, _: &Redemption) -> Result<Verdict, HookError> {
            self.run("redemption").await
        }
    }

    fn runner(acts: &[(&'static str, Act)]) -> (HookRunner, Arc<Mutex<Vec<String>>>) {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut runner = HookRunner::new().timeout(Duration::from_millis(100));
        for (name, act) in acts {
            runner = runner.with(Scripted {
                name,
                act: *act,
                log: log.clone(),
            });
        }
        (runner, log)
    }

    fn settled() -> Settlement {
        Settlement::Settled {
            transaction: "0xabc".into(),
            amount: U256::from(10_000u64),
        }
    }

    #[tokio::test]
    async fn no_hooks_and_continuing_hooks_let_the_request_through_in_order() {
        assert_eq!(HookRunner::new().before_verify(&context()).await, Ok(()));
        let (hooks, log) = runner(&[("a", Act::Continue), ("b", Act::Continue)]);
        let ctx = context();
        assert_eq!(hooks.before_verify(&ctx).await, Ok(()));
        assert_eq!(hooks.after_verify(&ctx).await, Ok(()));
        assert_eq!(hooks.after_settle(&ctx, &settled()).await, Ok(()));
        assert_eq!(hooks.on_entitlement_redemption(&redemption()).await, Ok(()));
        assert_eq!(
            *log.lock().unwrap(),
            [
                "a:before_verify",
                "b:before_verify",
                "a:after_verify",
                "b:after_verify",
                "a:after_settle",
                "b:after_settle",
                "a:redemption",
                "b:redemption",
            ]
        );
    }

    #[tokio::test]
    async fn an_abort_stops_the_request_with_its_status_and_later_hooks_do_not_run() {
        let (hooks, log) = runner(&[("a", Act::Abort(403)), ("b", Act::Continue)]);
        let abort = hooks.after_verify(&context()).await.unwrap_err();
        assert_eq!(abort.status, 403);
        assert_eq!(abort.reason.as_str(), "payer_blocked");
        assert_eq!(*log.lock().unwrap(), ["a:after_verify"]);
    }

    #[tokio::test]
    async fn failing_panicking_hanging_or_non_error_aborts_fail_closed() {
        for act in [
            Act::Fail,
            Act::Panic,
            Act::Hang,
            Act::Abort(200),
            Act::Abort(302),
        ] {
            let (hooks, log) = runner(&[("bad", act), ("never", Act::Continue)]);
            let ctx = context();
            for result in [
                hooks.before_verify(&ctx).await,
                hooks.after_verify(&ctx).await,
                hooks.on_entitlement_redemption(&redemption()).await,
            ] {
                let abort = result.unwrap_err();
                assert_eq!(abort.status, 500);
                assert_eq!(abort.reason.as_str(), HOOK_FAILED);
                assert!(
                    !abort.message.contains("crm"),
                    "internal details stay in the log"
                );
            }
            assert!(
                !log.lock().unwrap().iter().any(|l| l.starts_with("never")),
                "nothing runs after a failed gating hook"
            );
        }
    }

    #[tokio::test]
    async fn observers_all_run_and_their_failures_are_reported() {
        let (hooks, log) = runner(&[
            ("panics", Act::Panic),
            ("fails", Act::Fail),
            ("hangs", Act::Hang),
            ("fine", Act::Continue),
        ]);
        let failure = Settlement::Unknown {
            transaction: None,
            detail: "timeout".into(),
        };
        let failures = hooks
            .on_settle_failure(&context(), &failure)
            .await
            .unwrap_err();
        let names: Vec<_> = failures.0.iter().map(|f| f.hook.as_str()).collect();
        assert_eq!(names, ["panics", "fails", "hangs"]);
        assert!(failures.0[0].error.contains("hook bug"), "{failures}");
        assert!(failures.0[1].error.contains("crm unreachable"));
        assert!(failures.0[2].error.contains("timed out"));
        assert!(
            log.lock()
                .unwrap()
                .contains(&"fine:on_settle_failure".to_owned())
        );
    }

    #[tokio::test]
    async fn closures_see_the_payment_and_the_settlement() {
        let settled_seen = Arc::new(AtomicUsize::new(0));
        let seen = settled_seen.clone();
        let hooks = HookRunner::new().with(
            FnHooks::new()
                .named("crm")
                .after_verify(|ctx: HookContext| async move {
                    Ok(if ctx.payment.amount > U256::from(5_000u64) {
                        Verdict::Abort(Abort::new(402, Reason::new("too_expensive"), "no"))
                    } else {
                        Verdict::Continue
                    })
                })
                .after_settle(move |ctx: HookContext, s: Settlement| {
                    let seen = seen.clone();
                    async move {
                        assert_eq!(ctx.payment.network, "eip155:84532");
                        if let Settlement::Settled { amount, .. } = s {
                            seen.fetch_add(amount.to::<usize>(), Ordering::SeqCst);
                        }
                        Ok(())
                    }
                }),
        );
        let abort = hooks.after_verify(&context()).await.unwrap_err();
        assert_eq!(
            (abort.status, abort.reason.as_str()),
            (402, "too_expensive")
        );
        assert_eq!(
            hooks.before_verify(&context()).await,
            Ok(()),
            "unset points continue"
        );
        hooks.after_settle(&context(), &settled()).await.unwrap();
        assert_eq!(settled_seen.load(Ordering::SeqCst), 10_000);
        assert!(format!("{hooks:?}").contains("crm"));
    }
}
