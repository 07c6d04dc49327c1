//! The builder's services: configuration files, the journal and reconciliation, hooks,
//! discovery.

use super::*;

impl<T: From<Gate>> X402Builder<T> {
    /// Takes networks, tokens and server settings from a parsed configuration (see
    /// [`config`](crate::config)): its networks and tokens are registered; its
    /// `[server]` table sets the facilitator (and its bearer token, read now from where the
    /// file says), recipients, default networks, public URL and timeouts. Settings made after
    /// this call override it.
    pub fn config(mut self, config: &crate::config::Config) -> Self {
        for entry in &config.networks {
            if entry.declared {
                self.networks.push(entry.network.clone());
            }
            for token in &entry.tokens {
                self.assets
                    .push((entry.network.caip2.to_string(), token.clone()));
            }
        }
        let server = &config.server;
        if let Some(url) = &server.facilitator {
            self = if url.eq_ignore_ascii_case("embedded") {
                self.embedded_facilitator()
            } else {
                match &server.facilitator_token {
                    None => self.facilitator(url.clone()),
                    Some(source) => match source.read() {
                        Ok(token) => self.facilitator_with_auth(
                            url.clone(),
                            format!("Bearer {}", token.as_str()),
                        ),
                        Err(message) => {
                            self.deferred_error.get_or_insert(ConfigError::File(
                                config.error("server.facilitator_token", message),
                            ));
                            self
                        }
                    },
                }
            };
        }
        for address in &server.pay_to {
            self = self.pay_to(address.trim());
        }
        if !server.networks.is_empty() {
            self.default_networks = server.networks.clone();
        }
        if let Some(url) = &server.public_url {
            self = self.public_url(url.trim());
        }
        if let Some(timeout) = server.settlement_timeout {
            self.settlement_timeout = timeout;
        }
        if let Some(timeout) = server.facilitator_timeout {
            self.facilitator_timeout = timeout;
        }
        self
    }

    /// Reads a configuration file ([`config`](crate::config) describes the format) and
    /// applies it as [`config`](Self::config) does. A mistake in it is reported by
    /// [`build`](Self::build), as a sentence naming the file, line and key.
    pub fn config_file(mut self, path: impl AsRef<std::path::Path>) -> Self {
        match crate::config::Config::load(path) {
            Ok(config) => self.config(&config),
            Err(error) => {
                self.deferred_error.get_or_insert(ConfigError::File(error));
                self
            }
        }
    }

    /// Where admitted payments and every change of their state are recorded (default: in
    /// memory). Use a SQLite file for a single server, Postgres for replicas: the journal is
    /// what answers a client whose answer was lost, what reconciliation resolves after a crash,
    /// and what `x402ctl payments` reports.
    ///
    /// ```no_run
    /// # #[cfg(feature = "sqlite")]
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// use x402_runtime::Gate;
    /// use x402_runtime::journal::SqliteJournal;
    ///
    /// let gate = Gate::builder()
    ///     .facilitator("https://x402.org/facilitator")
    ///     .pay_to("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC")
    ///     .journal(SqliteJournal::open("payments.db").await?)
    ///     .build()?;
    /// # let _ = gate; Ok(()) }
    /// ```
    pub fn journal(mut self, journal: impl Journal) -> Self {
        self.journal = Some(Arc::new(journal));
        self
    }

    /// The journal at `url` (`sqlite://payments.db`, `postgres://…`, `memory:`), opened (and
    /// created, migrated) in the background as the gate starts; until it is open, paid
    /// requests wait for it, and fail closed (503) if it cannot be opened.
    pub fn journal_url(mut self, url: impl Into<String>) -> Self {
        self.journal = Some(Arc::new(LazyJournal::new(url)));
        self
    }

    /// The largest response body kept in the journal to answer a retried payment (default
    /// 1 MiB); larger or streamed responses are not kept, and a retry gets 409
    /// `payment_already_settled` with the receipt instead.
    pub fn keep_response_bytes(mut self, bytes: usize) -> Self {
        self.keep_response_bytes = bytes;
        self
    }

    /// How the `payment-identifier` extension is offered (default: declared, optional).
    pub fn payment_ids(mut self, policy: PaymentIds) -> Self {
        self.payment_ids = policy;
        self
    }

    /// How old an open journal record (verified, settling, unknown) must be before
    /// reconciliation resolves it (default: twice the settlement timeout, at least 2 minutes).
    /// It must exceed the time a handler and its settlement can take, or reconciliation would
    /// release payments still being served.
    pub fn reconcile_after(mut self, age: Duration) -> Self {
        self.reconcile_after = Some(age);
        self
    }

    /// How often the gate reconciles in the background (default every 30 s, starting at
    /// start-up, when built inside a tokio runtime); `None` turns it off
    /// ([`Gate::reconcile`] still works).
    pub fn reconcile_every(mut self, every: Option<Duration>) -> Self {
        self.reconcile_every = every;
        self
    }

    /// Adds lifecycle hooks (see [`hooks`](crate::hooks)): code of the server's own run before
    /// and after a payment is verified, and after it is settled or fails to. Hooks added by
    /// several calls run in the order they were added; a hook that aborts stops the request
    /// (nothing settled, the handler not run), and one that fails, panics or hangs refuses it
    /// (500 `hook_failed`).
    ///
    /// ```
    /// use x402_runtime::hooks::{Abort, FnHooks, HookContext, Verdict};
    /// use x402_runtime::{Gate, Reason};
    ///
    /// let gate = Gate::builder()
    ///     .embedded_facilitator()
    ///     .pay_to("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC")
    ///     .hooks(FnHooks::new().after_verify(|ctx: HookContext| async move {
    ///         Ok(match ctx.payment.payer.as_deref() {
    ///             Some("0x000000000000000000000000000000000000dEaD") => Verdict::Abort(
    ///                 Abort::new(403, Reason::new("payer_blocked"), "this payer is blocked"),
    ///             ),
    ///             _ => Verdict::Continue,
    ///         })
    ///     }))
    ///     .build()?;
    /// # let _ = gate;
    /// # Ok::<(), x402_runtime::ConfigError>(())
    /// ```
    pub fn hooks(mut self, hooks: impl Hooks) -> Self {
        self.hooks = self.hooks.with(hooks);
        self
    }

    /// How long each lifecycle hook may run before it counts as failed (default 10 s).
    pub fn hook_timeout(mut self, timeout: Duration) -> Self {
        self.hooks = self.hooks.timeout(timeout);
        self
    }

    /// Lists every route declared [`discoverable`](RouteSpec::discoverable) in `catalog` (with
    /// its price, description and `bazaar` declaration) once it has been asked for, e.g. for
    /// a facilitator in the same process to serve from `/discovery/resources`.
    pub fn discovery_catalog(mut self, catalog: Arc<DiscoveryCatalog>) -> Self {
        self.discovery = Some(catalog);
        self
    }
}
