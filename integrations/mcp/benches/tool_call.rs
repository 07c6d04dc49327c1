//! What pricing a tool costs per call, end to end over rmcp's in-process transport (a duplex
//! pipe carrying real JSON-RPC): a free tool, a priced tool called without payment (the
//! payment-required result), and a paid call verified and settled by the embedded facilitator.
//!
//! ```sh
//! cargo bench -p rmcp-x402 --bench tool_call
//! ```

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use rmcp::handler::server::tool::{Extension, ToolRouter};
use rmcp::model::{CallToolRequestParams, RequestMetaObject};
use rmcp::service::{RoleClient, RunningService};
use rmcp::{ServerHandler, ServiceExt, tool, tool_handler, tool_router};
use rmcp_x402::{PAYMENT_META_KEY, PaidTools, PaymentInfo, payment_required_in};
use x402_client::{Challenge, LocalSigner, Payer};
use x402_protocol::U256;
use x402_runtime::{Gate, RouteSpec};

#[derive(Clone)]
struct Bench {
    tool_router: ToolRouter<Bench>,
}

#[tool_router]
impl Bench {
    fn new(paid: &PaidTools) -> Self {
        Bench {
            tool_router: paid.wrap(Self::tool_router()),
        }
    }

    #[tool(description = "priced")]
    async fn priced(&self, Extension(payment): Extension<PaymentInfo>) -> String {
        payment.payer().to_string()
    }

    #[tool(description = "free")]
    async fn free(&self) -> String {
        "free".to_owned()
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Bench {}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let key = LocalSigner::random();
    let (_paid, client): (PaidTools, RunningService<RoleClient, ()>) = runtime.block_on(async {
        let gate = Gate::builder()
            .embedded_facilitator()
            .pay_to("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC")
            .build()
            .unwrap();
        let network = gate.registry().network("base-sepolia").unwrap().clone();
        gate.dev_ledger().unwrap().fund(
            &network.caip2,
            network.default_asset.address,
            key.address(),
            U256::from(u64::MAX),
        );
        let paid = PaidTools::builder(gate)
            .tool(
                "priced",
                RouteSpec::fixed("0.01 USDC").networks(&["base-sepolia"]),
            )
            .build()
            .unwrap();
        let (server_end, client_end) = tokio::io::duplex(1 << 16);
        let server = Bench::new(&paid);
        tokio::spawn(async move {
            let running = server.serve(server_end).await.unwrap();
            let _ = running.waiting().await;
        });
        (paid, ().serve(client_end).await.unwrap())
    });
    let peer = client.peer().clone();
    let payer = Payer::builder(key).no_per_request_cap().build().unwrap();
    let challenge = runtime.block_on(async {
        let unpaid = peer
            .call_tool(CallToolRequestParams::new("priced"))
            .await
            .unwrap();
        Challenge::from_json(&payment_required_in(&unpaid).unwrap()).unwrap()
    });

    let mut group = c.benchmark_group("mcp_tool_call");
    group.bench_function("free_tool", |b| {
        b.iter(|| {
            runtime
                .block_on(peer.call_tool(CallToolRequestParams::new("free")))
                .unwrap()
        })
    });
    group.bench_function("priced_tool_unpaid", |b| {
        b.iter(|| {
            let result = runtime
                .block_on(peer.call_tool(CallToolRequestParams::new("priced")))
                .unwrap();
            assert_eq!(result.is_error, Some(true));
            black_box(result)
        })
    });
    group.bench_function("priced_tool_paid_and_settled", |b| {
        b.iter_batched(
            || {
                let signed = runtime
                    .block_on(payer.pay("tools/call", "mcp://tool/priced", &challenge))
                    .unwrap();
                let mut params = CallToolRequestParams::new("priced");
                params
                    .meta
                    .get_or_insert_with(RequestMetaObject::new)
                    .0
                    .0
                    .insert(PAYMENT_META_KEY.to_owned(), signed.payload().clone());
                params
            },
            |params| {
                let result = runtime.block_on(peer.call_tool(params)).unwrap();
                assert_ne!(result.is_error, Some(true), "{result:?}");
                black_box(result)
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
