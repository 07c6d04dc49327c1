//! Priced tools on an rmcp server.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use rmcp::ErrorData;
use rmcp::RoleServer;
use rmcp::handler::server::common::AsRequestContext;
use rmcp::handler::server::router::tool::ToolRoute;
use rmcp::handler::server::tool::{ToolCallContext, ToolRouter};
use rmcp::model::CallToolResponse;
use rmcp::service::RequestContext;
use x402_protocol::ProtocolVersion;
use x402_runtime::{Gate, PriceSpec, RouteSpec};

use crate::adapter::{self, Admit};
use crate::meta::{PAYMENT_META_KEY, tool_resource};

/// Why a tool's price could not be set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PricingError {
    /// The same tool was priced twice.
    #[error("the tool {0:?} is priced twice")]
    Duplicate(String),
    /// The route cannot be served by this gate (unknown network, bad price, no `pay_to`…).
    #[error("the price of tool {tool:?} cannot be served: {message}")]
    Invalid {
        /// The tool.
        tool: String,
        /// What the gate said.
        message: String,
    },
}

/// The paid tools of an MCP server, and the gate that guards them.
///
/// A tool is priced with a [`RouteSpec`], the same description `#[paid(...)]` emits for HTTP
/// handlers (`RouteSpec::fixed("$0.01").networks(&["base-sepolia"])…`, every key the same).
/// Its resource URL is `mcp://tool/<name>` unless the spec names one, and it speaks x402 v2
/// only, as the MCP transport does.
///
/// Every call to a priced tool goes through the runtime's [`Gate`]: the payment in
/// `_meta["x402/payment"]` is matched, checked against replays, verified by the facilitator,
/// the tool runs, and the payment is settled only when the tool succeeded; the receipt comes
/// back in the result's `_meta["x402/payment-response"]`. Without a payment (or with one
/// that is refused) the tool does not run and the call answers with the payment-required
/// result (`isError`, the `PaymentRequired` as `structuredContent` and as text). A tool can
/// read the payment from its context with rmcp's `Extension<`[`PaymentInfo`](x402_runtime::PaymentInfo)`>`.
///
/// Build it once at start-up and [`wrap`](Self::wrap) each tool router with it (cheap:
/// streamable HTTP servers build a router per session).
///
/// ```
/// use std::sync::Arc;
/// use rmcp::handler::server::router::tool::ToolRoute;
/// use rmcp::handler::server::tool::ToolRouter;
/// use rmcp::model::{CallToolResult, ContentBlock, Tool};
/// use rmcp_x402::PaidTools;
/// use x402_runtime::{Gate, RouteSpec};
///
/// struct Weather;
///
/// let gate = Gate::builder()
///     .embedded_facilitator()
///     .pay_to("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC")
///     .build()?;
/// let paid = PaidTools::builder(gate)
///     .tool("forecast", RouteSpec::fixed("$0.01").networks(&["base-sepolia"]))
///     .build()?;
///
/// let forecast = ToolRoute::new_dyn(
///     Tool::new("forecast", "Tomorrow's weather", Arc::new(Default::default())),
///     |_context| Box::pin(async { Ok(CallToolResult::success(vec![ContentBlock::text("sunny")]).into()) }),
/// );
/// let router: ToolRouter<Weather> = paid.wrap(ToolRouter::new().with_route(forecast));
/// assert!(router.has_route("forecast"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct PaidTools {
    inner: Arc<Inner>,
}

struct Inner {
    gate: Arc<Gate>,
    tools: HashMap<String, &'static RouteSpec>,
}

impl std::fmt::Debug for PaidTools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut tools: Vec<_> = self.inner.tools.keys().collect();
        tools.sort();
        f.debug_struct("PaidTools")
            .field("tools", &tools)
            .field("gate", &self.inner.gate)
            .finish()
    }
}

/// Configures [`PaidTools`].
#[must_use]
#[derive(Debug)]
pub struct PaidToolsBuilder {
    gate: Arc<Gate>,
    tools: Vec<(String, RouteSpec)>,
}

impl PaidToolsBuilder {
    /// Prices the tool `name`. The spec's `resource` defaults to `mcp://tool/<name>`; its
    /// `only` is set to v2.
    ///
    /// A `RouteSpec::dynamic` price function sees the call as `POST /tools/<name>` without
    /// the tool's arguments.
    pub fn tool(mut self, name: impl Into<String>, spec: RouteSpec) -> Self {
        self.tools.push((name.into(), spec));
        self
    }

    /// Checks every fixed price against the gate (networks, tokens, recipient) and builds.
    ///
    /// Each spec is kept for the life of the process (the gate caches prepared routes by
    /// the spec's address), so build once, at start-up.
    pub fn build(self) -> Result<PaidTools, PricingError> {
        let mut tools = HashMap::new();
        for (name, mut spec) in self.tools {
            if tools.contains_key(&name) {
                return Err(PricingError::Duplicate(name));
            }
            if spec.resource.is_none() {
                let resource: &'static str = Box::leak(tool_resource(&name).into_boxed_str());
                spec = spec.resource(resource);
            }
            spec = spec.only(ProtocolVersion::V2);
            let spec: &'static RouteSpec = Box::leak(Box::new(spec));
            if let PriceSpec::Fixed(_) = spec.price {
                adapter::check(&self.gate, spec, &name).map_err(|message| {
                    PricingError::Invalid {
                        tool: name.clone(),
                        message,
                    }
                })?;
            }
            tools.insert(name, spec);
        }
        Ok(PaidTools {
            inner: Arc::new(Inner {
                gate: self.gate,
                tools,
            }),
        })
    }
}

/// A bare request context, for [`PaidTools::call`].
struct Plain(RequestContext<RoleServer>);

impl AsRequestContext for Plain {
    fn as_request_context(&self) -> &RequestContext<RoleServer> {
        &self.0
    }

    fn as_request_context_mut(&mut self) -> &mut RequestContext<RoleServer> {
        &mut self.0
    }
}

impl PaidTools {
    /// Starts pricing tools behind `gate`.
    pub fn builder(gate: impl Into<Arc<Gate>>) -> PaidToolsBuilder {
        PaidToolsBuilder {
            gate: gate.into(),
            tools: Vec::new(),
        }
    }

    /// The gate.
    pub fn gate(&self) -> &Arc<Gate> {
        &self.inner.gate
    }

    /// The spec a tool is priced with, if it is priced.
    pub fn spec(&self, tool: &str) -> Option<&'static RouteSpec> {
        self.inner.tools.get(tool).copied()
    }

    /// The priced tools' names, sorted.
    pub fn tools(&self) -> Vec<&str> {
        let mut names: Vec<_> = self.inner.tools.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// Puts the priced tools of `router` behind the gate; other tools are left as they are.
    /// A priced tool the router does not have is reported (once per call) in the log.
    pub fn wrap<S>(&self, mut router: ToolRouter<S>) -> ToolRouter<S>
    where
        S: Send + Sync + 'static,
    {
        for (name, spec) in &self.inner.tools {
            let Some(route) = router.map.remove(name.as_str()) else {
                tracing::warn!(target: "x402::config", tool = %name, "a priced tool is not in the tool router");
                continue;
            };
            router.add_route(self.paid_route(route, name, spec));
        }
        router
    }

    fn paid_route<S>(
        &self,
        route: ToolRoute<S>,
        name: &str,
        spec: &'static RouteSpec,
    ) -> ToolRoute<S>
    where
        S: Send + Sync + 'static,
    {
        let paid = self.clone();
        let name: Arc<str> = Arc::from(name);
        let call = route.call.clone();
        ToolRoute::new_dyn(
            route.attr.clone(),
            move |context: ToolCallContext<'_, S>| {
                let paid = paid.clone();
                let name = name.clone();
                let call = call.clone();
                Box::pin(async move {
                    paid.serve(&name, spec, context, |context| (call)(context))
                        .await
                })
            },
        )
    }

    /// Serves one call of `tool` through the gate when it is priced (running `run` only when
    /// the payment is good), or just runs it when it is not. For servers that implement
    /// `ServerHandler::call_tool` by hand instead of with a [`ToolRouter`].
    ///
    /// `run` gets the context back with the payment's [`PaymentInfo`](x402_runtime::PaymentInfo)
    /// in its extensions and `_meta["x402/payment"]` taken out.
    pub async fn call<F, Fut>(
        &self,
        tool: &str,
        context: RequestContext<RoleServer>,
        run: F,
    ) -> Result<CallToolResponse, ErrorData>
    where
        F: FnOnce(RequestContext<RoleServer>) -> Fut,
        Fut: Future<Output = Result<CallToolResponse, ErrorData>>,
    {
        match self.spec(tool) {
            Some(spec) => {
                self.serve(tool, spec, Plain(context), |plain| run(plain.0))
                    .await
            }
            None => run(context).await,
        }
    }

    async fn serve<C, F, Fut>(
        &self,
        tool: &str,
        spec: &'static RouteSpec,
        mut context: C,
        run: F,
    ) -> Result<CallToolResponse, ErrorData>
    where
        C: AsRequestContext,
        F: FnOnce(C) -> Fut,
        Fut: Future<Output = Result<CallToolResponse, ErrorData>>,
    {
        let gate = &self.inner.gate;
        let admitted = {
            let request = context.as_request_context_mut();
            match adapter::admit(gate, spec, tool, &request.meta.0.0).await {
                Admit::Answer(answer) => return answer,
                Admit::Run(admitted) => {
                    // The tool needs the payer, not a spendable copy of the payment.
                    request.meta.0.0.remove(PAYMENT_META_KEY);
                    request.extensions.insert(admitted.payment.clone());
                    admitted
                }
            }
        };
        let outcome = run(context).await;
        adapter::complete(gate, tool, *admitted, outcome).await
    }
}
