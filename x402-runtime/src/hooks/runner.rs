//! Running the hooks in order, fail-closed, with a time limit.

use super::*;

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
