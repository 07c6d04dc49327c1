//! Paid MCP tools in one program: an rmcp server whose `forecast` tool costs 0.01 USDC
//! (embedded facilitator, dev ledger, nothing to set up) and an rmcp client that pays it
//! within a budget, over streamable HTTP on loopback.
//!
//! ```sh
//! cargo run -p x402-examples --bin mcp              # the walkthrough
//! cargo run -p x402-examples --bin mcp -- --serve   # just the server, for x402ctl
//! cargo run -p x402-examples --bin mcp -- --stdio   # the server over stdio
//! ```

use std::net::SocketAddr;

use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp_x402::{McpPayError, X402Client};
use x402_client::{Payer, PaymentStatus, key_from_hex};
use x402_examples::mcp::{self, Weather};
use x402_examples::quickstart::{DEMO_PAYER_KEY, PAY_TO};
use x402_examples::term::{bold, cyan, dim, green, red, short, yellow};
use x402_protocol::{Address, amount::format_units};

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    if std::env::args().any(|a| a == "--stdio") {
        return stdio().await;
    }
    if std::env::args().any(|a| a == "--serve") {
        return serve().await;
    }
    walkthrough().await
}

/// Serves over stdio (stdout carries MCP, so nothing else is printed there).
async fn stdio() -> Result<(), Error> {
    let paid = mcp::paid_tools(mcp::gate()?)?;
    let running = Weather::new(&paid).serve(rmcp::transport::stdio()).await?;
    running.waiting().await?;
    Ok(())
}

/// Serves over streamable HTTP until interrupted, and says how to pay.
async fn serve() -> Result<(), Error> {
    let port = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(8402);
    let (_paid, address, task) = mcp::serve_http(SocketAddr::from(([127, 0, 0, 1], port))).await?;
    let payer = key_from_hex(DEMO_PAYER_KEY)?.address();
    println!(
        "{} http://{address}/mcp: tool forecast costs 0.01 USDC on base-sepolia, ping is free",
        bold("serving")
    );
    println!(
        "{} {payer} holds 10 USDC in the dev ledger; pay as it with:",
        bold("demo payer")
    );
    println!(
        "  X402_PRIVATE_KEY={DEMO_PAYER_KEY} cargo run -p x402ctl -- mcp call http://{address}/mcp forecast --args '{{\"city\":\"Oslo\"}}'"
    );
    tokio::select! {
        _ = task => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}

fn forecast(city: &str) -> CallToolRequestParams {
    let mut params = CallToolRequestParams::new("forecast");
    params.arguments = serde_json::json!({ "city": city }).as_object().cloned();
    params
}

async fn walkthrough() -> Result<(), Error> {
    let (paid, address, _server) = mcp::serve_http(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let url = format!("http://{address}/mcp");
    let ledger = paid
        .gate()
        .dev_ledger()
        .ok_or("the embedded facilitator has a dev ledger")?
        .clone();
    let network = paid.gate().registry().network("base-sepolia")?.clone();
    let balance = |who: Address| {
        let atomic = ledger.balance(&network.caip2, network.default_asset.address, who);
        format!("{} USDC", format_units(atomic, 6))
    };
    let key = key_from_hex(DEMO_PAYER_KEY)?;
    let payer_address = key.address();
    // At most 2 cents in total: the third paid call is refused before anything is signed.
    let payer = Payer::builder(key)
        .max_per_request("$0.05")
        .budget("$0.02")
        .build()?;

    println!(
        "{}",
        bold("x402 over MCP: a paid rmcp tool and a client paying it, offline")
    );
    println!(
        "{}",
        dim(&format!(
            "server {url} (embedded facilitator, dev ledger) · payer {} ({}) · budget $0.02",
            short(&payer_address.to_checksum(None)),
            balance(payer_address)
        ))
    );

    let connection = ().serve(StreamableHttpClientTransport::from_uri(url)).await?;
    let tools = X402Client::new(connection.peer().clone(), payer.clone());

    let ping = tools.call_tool(CallToolRequestParams::new("ping")).await?;
    println!("\n{} ping (free)", bold("1."));
    println!("   ← {} {}", green("ok"), ping.text());

    for (step, city) in [(2, "Oslo"), (3, "Bergen"), (4, "Tromsø")] {
        println!(
            "{} forecast {{\"city\": \"{city}\"}}",
            bold(&format!("{step}."))
        );
        match tools.call_tool(forecast(city)).await {
            Ok(call) => {
                println!("   ← {} {}", green("ok"), call.text());
                if let Some(payment) = &call.payment {
                    let status = match &payment.status {
                        PaymentStatus::Settled { transaction } => {
                            format!("{} tx {}", green("settled"), cyan(&short(transaction)))
                        }
                        other => red(&other.to_string()),
                    };
                    println!(
                        "   paid {} to {}: {status}",
                        payment.amount_display(),
                        cyan(&short(PAY_TO))
                    );
                }
            }
            Err(McpPayError::Payment(refused)) => {
                println!("   {} {}", yellow("not paid:"), refused);
            }
            Err(other) => return Err(other.into()),
        }
    }

    println!("{} dev ledger", bold("5."));
    println!(
        "   payee {} now holds {} · payer holds {} · budget left {}",
        cyan(&short(PAY_TO)),
        green(&balance(PAY_TO.parse()?)),
        balance(payer_address),
        payer
            .remaining_budget()
            .first()
            .map(|(_, left)| left.clone())
            .unwrap_or_default()
    );
    let _ = connection.cancel().await;
    println!(
        "\n{}",
        dim("Serve it and pay with the CLI: cargo run -p x402-examples --bin mcp -- --serve")
    );
    Ok(())
}
