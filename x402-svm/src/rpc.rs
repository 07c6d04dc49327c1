//! [`RpcChain`]: a Solana cluster over its JSON-RPC API (the six methods settling and paying
//! need), on the workspace's reqwest client.

use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use solana_address::Address;
use solana_hash::Hash;
use solana_signature::Signature;
use solana_transaction::versioned::VersionedTransaction;

use crate::chain::{ChainError, MintInfo, SvmChain, TransactionStatus, mint_info};
use crate::wire::encode_transaction;

/// A Solana JSON-RPC endpoint (`https://api.devnet.solana.com`, a local validator…).
///
/// ```
/// use x402_svm::RpcChain;
///
/// let chain = RpcChain::new("http://127.0.0.1:8899");
/// assert_eq!(chain.url(), "http://127.0.0.1:8899");
/// ```
#[derive(Debug, Clone)]
pub struct RpcChain {
    url: String,
    http: reqwest::Client,
}

impl RpcChain {
    /// An endpoint with a 10-second timeout per call.
    pub fn new(url: impl Into<String>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        RpcChain {
            url: url.into(),
            http,
        }
    }

    /// The endpoint's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Calls `method`: a connection that could not be made is [`ChainError::Unavailable`],
    /// any later failure [`ChainError::NoAnswer`], a JSON-RPC error [`ChainError::Rejected`].
    async fn call(&self, method: &str, params: Value) -> Result<Value, ChainError> {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let response = self
            .http
            .post(&self.url)
            .json(&body)
            .send()
            .await
            .map_err(|e| {
                if e.is_connect() {
                    ChainError::Unavailable(format!("{method}: {e}"))
                } else {
                    ChainError::NoAnswer(format!("{method}: {e}"))
                }
            })?;
        let status = response.status();
        let answer: Value = response
            .json()
            .await
            .map_err(|e| ChainError::NoAnswer(format!("{method}: HTTP {status}: {e}")))?;
        if let Some(error) = answer.get("error") {
            let message = error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("error")
                .to_owned();
            // JSON-RPC errors are answers: the node looked at the request and refused it.
            return Err(ChainError::Rejected(format!("{method}: {message}")));
        }
        answer
            .get("result")
            .cloned()
            .ok_or_else(|| ChainError::NoAnswer(format!("{method}: no result in {answer}")))
    }
}

fn malformed(method: &str, what: &Value) -> ChainError {
    ChainError::NoAnswer(format!("{method}: unexpected answer {what}"))
}

#[async_trait]
impl SvmChain for RpcChain {
    async fn latest_blockhash(&self) -> Result<Hash, ChainError> {
        let result = self
            .call("getLatestBlockhash", json!([{"commitment": "confirmed"}]))
            .await?;
        result["value"]["blockhash"]
            .as_str()
            .and_then(|text| text.parse().ok())
            .ok_or_else(|| malformed("getLatestBlockhash", &result))
    }

    async fn is_blockhash_valid(&self, blockhash: &Hash) -> Result<bool, ChainError> {
        let result = self
            .call(
                "isBlockhashValid",
                json!([blockhash.to_string(), {"commitment": "confirmed"}]),
            )
            .await?;
        result["value"]
            .as_bool()
            .ok_or_else(|| malformed("isBlockhashValid", &result))
    }

    async fn simulate(&self, transaction: &VersionedTransaction) -> Result<(), ChainError> {
        let result = self
            .call(
                "simulateTransaction",
                json!([encode_transaction(transaction), {
                    "encoding": "base64",
                    "sigVerify": true,
                    "replaceRecentBlockhash": false,
                    "commitment": "confirmed",
                }]),
            )
            .await?;
        match &result["value"]["err"] {
            Value::Null => Ok(()),
            error => Err(ChainError::Rejected(error.to_string())),
        }
    }

    async fn send(&self, transaction: &VersionedTransaction) -> Result<Signature, ChainError> {
        let result = self
            .call(
                "sendTransaction",
                json!([encode_transaction(transaction), {
                    "encoding": "base64",
                    "preflightCommitment": "confirmed",
                }]),
            )
            .await?;
        result
            .as_str()
            .and_then(|text| text.parse().ok())
            .ok_or_else(|| malformed("sendTransaction", &result))
    }

    async fn status(&self, signature: &Signature) -> Result<Option<TransactionStatus>, ChainError> {
        let result = self
            .call(
                "getSignatureStatuses",
                json!([[signature.to_string()], {"searchTransactionHistory": true}]),
            )
            .await?;
        let entry = &result["value"][0];
        if entry.is_null() {
            return Ok(None);
        }
        let confirmed = matches!(
            entry["confirmationStatus"].as_str(),
            Some("confirmed" | "finalized")
        );
        match &entry["err"] {
            Value::Null if confirmed => Ok(Some(TransactionStatus::Succeeded)),
            // Processed but not confirmed yet: keep waiting.
            Value::Null => Ok(None),
            error => Ok(Some(TransactionStatus::Failed(error.to_string()))),
        }
    }

    async fn mint(&self, mint: &Address) -> Result<Option<MintInfo>, ChainError> {
        let result = self
            .call(
                "getAccountInfo",
                json!([mint.to_string(), {"encoding": "base64", "commitment": "confirmed"}]),
            )
            .await?;
        let account = &result["value"];
        if account.is_null() {
            return Ok(None);
        }
        let owner: Address = account["owner"]
            .as_str()
            .and_then(|text| text.parse().ok())
            .ok_or_else(|| malformed("getAccountInfo", &result))?;
        let data = account["data"][0]
            .as_str()
            .and_then(|text| STANDARD.decode(text).ok())
            .ok_or_else(|| malformed("getAccountInfo", &result))?;
        Ok(mint_info(&owner, &data))
    }
}
