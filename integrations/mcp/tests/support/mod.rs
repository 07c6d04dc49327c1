//! Test support: a weather MCP server with priced tools behind a real gate (embedded
//! facilitator, dev ledger), reachable in process (a duplex pipe) or over streamable HTTP on
//! loopback, and a signer that counts its signatures.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rmcp::handler::server::tool::{Extension, ToolRouter};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock};
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, ServerHandler, ServiceExt, schemars, tool, tool_handler, tool_router};
use rmcp_x402::PaidTools;
use x402_client::{LocalSigner, Payer, PayerBuilder, PaymentSigner, SignerError};
use x402_protocol::facilitator::{
    FacilitatorRequest, SettleResponse, SupportedResponse, VerifyResponse,
};
use x402_protocol::{Address, B256, U256};
use x402_runtime::entitlement::EntitlementKeys;
use x402_runtime::facilitator::{DevLedger, EmbeddedFacilitator};
use x402_runtime::{AccessSpec, Facilitator, FacilitatorError, Gate, PaymentInfo, RouteSpec};

/// The recipient of every priced tool.
pub const PAY_TO: &str = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";
/// 0.01 USDC in atomic units.
pub const CENT: u64 = 10_000;
/// base-sepolia.
pub const CHAIN_ID: u64 = 84532;
/// The CAIP-2 id of that chain (the dev ledger keys balances by network).
pub const NETWORK: &str = "eip155:84532";

pub fn usdc() -> Address {
    x402_protocol::network::builtin_network("base-sepolia")
        .unwrap()
        .default_asset
        .address
        .as_evm()
        .unwrap()
}

pub fn pay_to() -> Address {
    PAY_TO.parse().unwrap()
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
pub struct City {
    /// The city.
    pub city: String,
}

/// Tools: `forecast` (0.01 USDC), `storm` (0.01 USDC, always fails), `premium` (5 USDC),
/// `pass` (0.01 USDC buys two calls), `ping` (free).
#[derive(Clone)]
pub struct Weather {
    tool_router: ToolRouter<Weather>,
    runs: Arc<AtomicUsize>,
}

#[tool_router]
impl Weather {
    pub fn new(paid: &PaidTools, runs: Arc<AtomicUsize>) -> Self {
        Weather {
            tool_router: paid.wrap(Self::tool_router()),
            runs,
        }
    }

    #[tool(description = "Tomorrow's weather in a city")]
    async fn forecast(
        &self,
        Parameters(City { city }): Parameters<City>,
        Extension(payment): Extension<PaymentInfo>,
    ) -> String {
        self.runs.fetch_add(1, Ordering::SeqCst);
        format!(
            "{city}: sunny (paid {} by {})",
            payment.amount_display(),
            payment.payer()
        )
    }

    #[tool(description = "A paid tool whose upstream is down")]
    async fn storm(&self) -> Result<CallToolResult, ErrorData> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        Ok(CallToolResult::error(vec![ContentBlock::text(
            "the storm service is down",
        )]))
    }

    #[tool(description = "An expensive report")]
    async fn premium(&self) -> String {
        self.runs.fetch_add(1, Ordering::SeqCst);
        "premium report".to_owned()
    }

    #[tool(description = "One payment buys two calls")]
    async fn pass(&self) -> String {
        self.runs.fetch_add(1, Ordering::SeqCst);
        "pass used".to_owned()
    }

    #[tool(description = "Free")]
    async fn ping(&self) -> String {
        "pong".to_owned()
    }
}

// The router with the priced routes is the one in the field, not a fresh `Self::tool_router()`.
#[tool_handler(router = self.tool_router)]
impl ServerHandler for Weather {}

/// The prices of the weather tools.
pub fn paid_tools(gate: Gate) -> PaidTools {
    PaidTools::builder(gate)
        .tool(
            "forecast",
            RouteSpec::fixed("0.01 USDC")
                .networks(&["base-sepolia"])
                .description("Tomorrow's weather")
                .mime_type("text/plain"),
        )
        .tool(
            "storm",
            RouteSpec::fixed("0.01 USDC").networks(&["base-sepolia"]),
        )
        .tool(
            "premium",
            RouteSpec::fixed("$5").networks(&["base-sepolia"]),
        )
        .tool(
            "pass",
            RouteSpec::fixed("0.01 USDC")
                .networks(&["base-sepolia"])
                .access(AccessSpec {
                    duration: None,
                    uses: Some(2),
                    scope: None,
                }),
        )
        .build()
        .unwrap()
}

/// Verifies honestly (embedded facilitator) and reports every settlement as failed.
pub struct SettleFails(pub EmbeddedFacilitator);

#[async_trait::async_trait]
impl Facilitator for SettleFails {
    async fn verify(
        &self,
        request: &FacilitatorRequest,
    ) -> Result<VerifyResponse, FacilitatorError> {
        self.0.verify(request).await
    }
    async fn settle(
        &self,
        _request: &FacilitatorRequest,
    ) -> Result<SettleResponse, FacilitatorError> {
        Ok(SettleResponse::failure(
            "transaction_failed",
            "the transfer reverted",
            "eip155:84532",
            None,
        ))
    }
    async fn supported(&self) -> Result<SupportedResponse, FacilitatorError> {
        self.0.supported().await
    }
}

/// A server under test: its prices, ledger and how many times a paid tool ran.
pub struct Server {
    pub paid: PaidTools,
    pub ledger: Arc<DevLedger>,
    pub runs: Arc<AtomicUsize>,
}

impl Server {
    /// The weather server with the embedded facilitator.
    pub fn new() -> Self {
        let gate = Gate::builder()
            .embedded_facilitator()
            .pay_to(PAY_TO)
            .build()
            .unwrap();
        let ledger = gate.dev_ledger().unwrap().clone();
        Server {
            paid: paid_tools(gate),
            ledger,
            runs: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The weather server whose facilitator verifies but never settles.
    pub fn settle_fails() -> Self {
        let ledger = Arc::new(DevLedger::new());
        let embedded = EmbeddedFacilitator::builder()
            .dev_ledger(ledger.clone())
            .build();
        let gate = Gate::builder()
            .facilitator_client(Arc::new(SettleFails(embedded)))
            .pay_to(PAY_TO)
            .entitlement_keys(
                EntitlementKeys::parse(
                    "test:0101010101010101010101010101010101010101010101010101010101010101",
                )
                .unwrap(),
            )
            .build()
            .unwrap();
        Server {
            paid: paid_tools(gate),
            ledger,
            runs: Arc::new(AtomicUsize::new(0)),
        }
    }

    pub fn fund(&self, who: Address, cents: u64) {
        self.ledger
            .fund(NETWORK, usdc(), who, U256::from(cents * CENT));
    }

    pub fn balance(&self, who: Address) -> U256 {
        self.ledger.balance(NETWORK, usdc(), who)
    }

    pub fn runs(&self) -> usize {
        self.runs.load(Ordering::SeqCst)
    }

    fn weather(&self) -> Weather {
        Weather::new(&self.paid, self.runs.clone())
    }
}

/// How the client reaches the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// A duplex pipe in this process.
    InProcess,
    /// Streamable HTTP on a loopback port.
    Http,
}

/// A client connection (and the server task behind it).
pub struct Connection {
    pub client: RunningService<RoleClient, ()>,
    pub url: Option<String>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Connection {
    pub fn peer(&self) -> rmcp::Peer<RoleClient> {
        self.client.peer().clone()
    }
}

/// Serves `server` over streamable HTTP on a loopback port; returns the MCP endpoint URL.
pub async fn serve_http(server: &Server) -> (String, tokio::task::JoinHandle<()>) {
    let paid = server.paid.clone();
    let runs = server.runs.clone();
    let service = StreamableHttpService::new(
        move || Ok(Weather::new(&paid, runs.clone())),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default(),
    );
    let app = axum::Router::new().nest_service("/mcp", service);
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (format!("http://{addr}/mcp"), task)
}

/// Connects an rmcp client to `server` over `transport`.
pub async fn connect(server: &Server, transport: Transport) -> Connection {
    match transport {
        Transport::InProcess => {
            let (server_end, client_end) = tokio::io::duplex(1 << 16);
            let weather = server.weather();
            let task = tokio::spawn(async move {
                let running = weather.serve(server_end).await.unwrap();
                let _ = running.waiting().await;
            });
            let client = ().serve(client_end).await.unwrap();
            Connection {
                client,
                url: None,
                server: task,
            }
        }
        Transport::Http => {
            let (url, task) = serve_http(server).await;
            let client = tokio::time::timeout(
                Duration::from_secs(10),
                ().serve(StreamableHttpClientTransport::from_uri(url.clone())),
            )
            .await
            .expect("connects in time")
            .unwrap();
            Connection {
                client,
                url: Some(url),
                server: task,
            }
        }
    }
}

/// A real local key that counts how often it signs.
#[derive(Debug, Clone)]
pub struct CountingSigner {
    key: LocalSigner,
    count: Arc<AtomicUsize>,
}

impl CountingSigner {
    pub fn new() -> Self {
        CountingSigner {
            key: LocalSigner::random(),
            count: Arc::new(AtomicUsize::new(0)),
        }
    }

    pub fn signed(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    pub fn payer(&self) -> PayerBuilder {
        Payer::builder(self.clone())
    }
}

#[async_trait::async_trait]
impl PaymentSigner for CountingSigner {
    fn address(&self) -> Address {
        self.key.address()
    }

    async fn sign_digest(&self, digest: B256) -> Result<[u8; 65], SignerError> {
        self.count.fetch_add(1, Ordering::SeqCst);
        self.key.sign_digest(digest).await
    }
}
