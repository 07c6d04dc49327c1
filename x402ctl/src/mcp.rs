//! `x402ctl mcp call`: call a tool of an MCP server (a stdio command or a streamable HTTP
//! URL) and pay for it, with the same keys (EVM and/or Solana) and limits as `x402ctl pay`.

use std::io::Write as _;

use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, ContentBlock};
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp_x402::{McpPayError, X402Client, payment_required_in};
use serde_json::Value;
use x402_client::{Challenge, PaymentStatus};

use crate::{Failure, McpCallArgs};

pub(crate) async fn call(args: McpCallArgs) -> Result<(), Failure> {
    let mut builder = crate::pay::Keys::load(&args.key_env, &args.solana)?
        .payer()
        .max_per_request(&args.max);
    if !args.network.is_empty() {
        builder = builder.networks(args.network.clone());
    }
    let payer = builder.build().map_err(|e| Failure::usage(e.to_string()))?;
    let arguments = match args.args.as_deref() {
        None => serde_json::Map::new(),
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(object)) => object,
            Ok(_) => return Err(Failure::usage("--args must be a JSON object")),
            Err(e) => return Err(Failure::usage(format!("--args is not JSON: {e}"))),
        },
    };

    let connection = connect(&args.server).await?;
    let tools = X402Client::new(connection.peer().clone(), payer.clone());
    let mut params = CallToolRequestParams::new(args.tool.clone());
    params.arguments = Some(arguments);
    let outcome = tools.call_tool(params).await;
    let _ = connection.cancel().await;
    let call = outcome.map_err(|error| match error {
        McpPayError::Payment(refused) => Failure::refused(refused.to_string()),
        other => Failure::http(format!(
            "calling {} on {}: {}",
            args.tool,
            args.server,
            crate::chain(&other)
        )),
    })?;

    let mut stdout = std::io::stdout().lock();
    if args.json {
        let _ = writeln!(
            stdout,
            "{}",
            serde_json::to_string_pretty(&call.result).unwrap_or_default()
        );
    } else {
        for block in &call.result.content {
            let _ = match block {
                ContentBlock::Text(text) => writeln!(stdout, "{}", text.text),
                other => writeln!(
                    stdout,
                    "{}",
                    serde_json::to_string(other).unwrap_or_default()
                ),
            };
        }
    }
    let _ = stdout.flush();

    let summary = match &call.payment {
        Some(record) => {
            let mut text = crate::pay::payment_summary(record);
            if let PaymentStatus::Rejected { .. } = record.status
                && let Some(challenge) = payment_required_in(&call.result)
                    .and_then(|required| Challenge::from_json(&required).ok())
            {
                text.push_str("\nx402: the server accepts:\n");
                text.push_str(&challenge.describe_accepts(payer.registry()));
            }
            text
        }
        None if payment_required_in(&call.result).is_some() => {
            "x402: the tool asks for a payment; nothing was paid".to_owned()
        }
        None => "x402: no payment was needed".to_owned(),
    };
    eprintln!("{summary}");
    if call.is_error() {
        Err(Failure::silent_http())
    } else {
        Ok(())
    }
}

/// Connects to `server`: a streamable HTTP endpoint (`http://…`, `https://…`) or a command
/// line that starts a stdio MCP server (split on whitespace).
async fn connect(server: &str) -> Result<RunningService<RoleClient, ()>, Failure> {
    if server.starts_with("http://") || server.starts_with("https://") {
        return ()
            .serve(StreamableHttpClientTransport::from_uri(server.to_owned()))
            .await
            .map_err(|e| Failure::http(format!("connecting to {server}: {}", crate::chain(&e))));
    }
    let mut words = server.split_whitespace();
    let program = words
        .next()
        .ok_or_else(|| Failure::usage("the server is empty: give a URL or a command"))?;
    let mut command = tokio::process::Command::new(program);
    command.args(words);
    let transport = TokioChildProcess::new(command)
        .map_err(|e| Failure::http(format!("starting {server:?}: {e}")))?;
    ().serve(transport)
        .await
        .map_err(|e| Failure::http(format!("connecting to {server:?}: {}", crate::chain(&e))))
}
