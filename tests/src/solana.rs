//! A Solana JSON-RPC endpoint over an in-process LiteSVM, on loopback: the methods a payer
//! (`getLatestBlockhash`, `getAccountInfo`) and a settler (`simulateTransaction`,
//! `sendTransaction`, `getSignatureStatuses`, `isBlockhashValid`) call, answered from the real
//! SVM, so that `x402_svm::RpcChain` and the clients' RPC path run over HTTP in tests.

use std::sync::Arc;

use ::axum::Json;
use ::axum::extract::State;
use ::axum::routing::post;
use base64::Engine as _;
use serde_json::{Value, json};
use x402_svm::{ChainError, LiteSvmChain, SvmChain, TransactionStatus};

/// The endpoint, serving until dropped.
pub struct SolanaRpc {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// The SVM it answers from.
    pub chain: Arc<LiteSvmChain>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SolanaRpc {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `chain` over JSON-RPC on a free loopback port.
pub async fn serve(chain: Arc<LiteSvmChain>) -> SolanaRpc {
    let app = ::axum::Router::new()
        .route("/", post(handle))
        .with_state(chain.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let task = tokio::spawn(async move {
        let _ = ::axum::serve(listener, app).await;
    });
    SolanaRpc { url, chain, task }
}

async fn handle(State(chain): State<Arc<LiteSvmChain>>, Json(call): Json<Value>) -> Json<Value> {
    let id = call["id"].clone();
    let answer = match answer(
        &chain,
        call["method"].as_str().unwrap_or(""),
        &call["params"],
    )
    .await
    {
        Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
        Err(message) => {
            json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32002, "message": message}})
        }
    };
    Json(answer)
}

fn context(value: Value) -> Value {
    json!({"context": {"slot": 1}, "value": value})
}

fn transaction(
    params: &Value,
) -> Result<solana_transaction::versioned::VersionedTransaction, String> {
    let text = params[0].as_str().ok_or("no transaction")?;
    x402_svm::wire::decode_transaction(text).map_err(|e| e.to_string())
}

fn chain_error(error: ChainError) -> String {
    match error {
        ChainError::Rejected(why) => format!("Transaction simulation failed: {why}"),
        other => other.to_string(),
    }
}

async fn answer(chain: &LiteSvmChain, method: &str, params: &Value) -> Result<Value, String> {
    match method {
        "getLatestBlockhash" => {
            let hash = chain.latest_blockhash().await.map_err(chain_error)?;
            Ok(context(
                json!({"blockhash": hash.to_string(), "lastValidBlockHeight": 1_000_000u64}),
            ))
        }
        "isBlockhashValid" => {
            let hash = params[0]
                .as_str()
                .and_then(|t| t.parse().ok())
                .ok_or("no blockhash")?;
            Ok(context(json!(
                chain.is_blockhash_valid(&hash).await.map_err(chain_error)?
            )))
        }
        "simulateTransaction" => {
            let err = match chain.simulate(&transaction(params)?).await {
                Ok(()) => Value::Null,
                Err(ChainError::Rejected(why)) => json!(why),
                Err(other) => return Err(other.to_string()),
            };
            Ok(context(json!({"err": err, "logs": []})))
        }
        "sendTransaction" => {
            let signature = chain
                .send(&transaction(params)?)
                .await
                .map_err(chain_error)?;
            Ok(json!(signature.to_string()))
        }
        "getSignatureStatuses" => {
            let mut statuses = Vec::new();
            for text in params[0].as_array().ok_or("no signatures")? {
                let signature = text
                    .as_str()
                    .and_then(|t| t.parse().ok())
                    .ok_or("not a signature")?;
                statuses.push(match chain.status(&signature).await.map_err(chain_error)? {
                    None => Value::Null,
                    Some(TransactionStatus::Succeeded) => json!({
                        "slot": 1, "confirmations": null, "err": null,
                        "confirmationStatus": "finalized"
                    }),
                    Some(TransactionStatus::Failed(error)) => json!({
                        "slot": 1, "confirmations": null, "err": error,
                        "confirmationStatus": "finalized"
                    }),
                });
            }
            Ok(context(json!(statuses)))
        }
        "getAccountInfo" => {
            let address = params[0]
                .as_str()
                .and_then(|t| t.parse().ok())
                .ok_or("no address")?;
            let account = chain.with(|svm| svm.get_account(&address));
            Ok(context(match account {
                None => Value::Null,
                Some(account) => json!({
                    "lamports": account.lamports,
                    "owner": account.owner.to_string(),
                    "data": [base64::engine::general_purpose::STANDARD.encode(&account.data), "base64"],
                    "executable": account.executable,
                    "rentEpoch": 0,
                    "space": account.data.len(),
                }),
            }))
        }
        other => Err(format!("method {other} is not served here")),
    }
}
