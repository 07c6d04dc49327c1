//! The MCP example's server: an rmcp server whose `forecast` tool costs 0.01 USDC on Base
//! Sepolia (verified and settled in process by the embedded facilitator into a dev ledger,
//! the quickstart's demo payer funded there) and whose `ping` tool is free.

use std::net::SocketAddr;
use std::sync::Arc;

use rmcp::handler::server::tool::{Extension, ToolRouter};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ServerHandler, schemars, tool, tool_handler, tool_router};
use rmcp_x402::{PaidTools, PaymentInfo};
use x402_runtime::{Gate, RouteSpec};

use crate::quickstart::{PAY_TO, fund_demo_payer};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// The `forecast` tool's arguments.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
pub struct City {
    /// The city to forecast.
    pub city: String,
}

/// The weather MCP server.
#[derive(Debug, Clone)]
pub struct Weather {
    tool_router: ToolRouter<Weather>,
}

#[tool_router]
impl Weather {
    /// A server whose priced tools go through `paid`'s gate.
    pub fn new(paid: &PaidTools) -> Self {
        Weather {
            tool_router: paid.wrap(Self::tool_router()),
        }
    }

    /// Priced in [`paid_tools`]. The `Extension<PaymentInfo>` is only there when the call
    /// went through the gate, so this tool cannot run unpaid by mistake.
    #[tool(description = "Tomorrow's weather in a city (0.01 USDC)")]
    async fn forecast(
        &self,
        Parameters(City { city }): Parameters<City>,
        Extension(payment): Extension<PaymentInfo>,
    ) -> String {
        format!(
            "{city}: sunny, 21 °C (paid {} by {})",
            payment.amount_display(),
            payment.payer()
        )
    }

    #[tool(description = "Is the server there? (free)")]
    async fn ping(&self) -> String {
        "pong".to_owned()
    }
}

// Serve the router in the field (with the prices), not a fresh `Self::tool_router()`.
#[tool_handler(router = self.tool_router)]
impl ServerHandler for Weather {}

/// The gate: embedded facilitator, [`PAY_TO`], the demo payer holding 10 USDC.
pub fn gate() -> Result<Gate, Error> {
    let gate = Gate::builder()
        .embedded_facilitator()
        // The quickstart's Solana route is linked into this program too.
        .scheme(std::sync::Arc::new(x402_svm::ExactSvm))
        .pay_to(PAY_TO)
        .build()?;
    fund_demo_payer(&gate)?;
    Ok(gate)
}

/// The prices: `forecast` costs 0.01 USDC on Base Sepolia.
pub fn paid_tools(gate: Gate) -> Result<PaidTools, Error> {
    Ok(PaidTools::builder(gate)
        .tool(
            "forecast",
            RouteSpec::fixed("0.01 USDC")
                .networks(&["base-sepolia"])
                .description("Tomorrow's weather")
                .mime_type("text/plain"),
        )
        .build()?)
}

/// Serves the weather server over streamable HTTP at `http://<address>/mcp` (port 0 picks a
/// free one) in the background.
pub async fn serve_http(
    address: SocketAddr,
) -> Result<(PaidTools, SocketAddr, tokio::task::JoinHandle<()>), Error> {
    let paid = paid_tools(gate()?)?;
    let for_sessions = paid.clone();
    let service = StreamableHttpService::new(
        move || Ok(Weather::new(&for_sessions)),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default(),
    );
    let app = axum::Router::new().nest_service("/mcp", service);
    let listener = tokio::net::TcpListener::bind(address).await?;
    let bound = listener.local_addr()?;
    let task = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            eprintln!("server stopped: {error}");
        }
    });
    Ok((paid, bound, task))
}
