//! Hooks from closures.

use super::*;

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
