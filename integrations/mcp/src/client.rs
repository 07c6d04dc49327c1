//! An rmcp client that pays priced tools.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rmcp::model::{CallToolRequestParams, CallToolResult, RequestMetaObject};
use rmcp::service::{Peer, RoleClient, ServiceError};
use serde_json::Value;
use x402_client::{
    Challenge, Payer, PaymentKey, PaymentRecord, PaymentStatus, RequestId, ReuseCache,
    SignedPayment, X402Error, unix_now,
};
use x402_protocol::facilitator::SettleResponse;

use crate::adapter::SETTLEMENT_FAILED_PREFIX;
use crate::meta::{
    ENTITLEMENT_META_KEY, PAYMENT_META_KEY, PAYMENT_RESPONSE_META_KEY, payment_required_in,
    result_meta, tool_resource,
};

/// The method recorded for tool payments (in [`PaymentRecord::method`] and the approval
/// hook's proposal).
pub const TOOL_CALL_METHOD: &str = "tools/call";

/// Entitlement tokens kept per server connection; a server cannot make the client hold more.
const MAX_ENTITLEMENTS: usize = 256;

/// Why a tool call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum McpPayError {
    /// The tool asked for a payment the client would not or could not make (nothing was
    /// signed unless the error says so).
    #[error(transparent)]
    Payment(#[from] X402Error),
    /// The MCP call itself failed (transport, protocol error, unexpected answer). If a payment
    /// was sent, it is kept and sent again by the next identical call, so the call is paid at
    /// most once.
    #[error("the MCP call failed: {0}")]
    Service(#[from] ServiceError),
}

/// A tool's result, and the payment made for it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PaidCall {
    /// The tool's result as the server sent it (including `_meta`).
    pub result: CallToolResult,
    /// The payment made for this call, with what became of it; `None` when none was needed.
    pub payment: Option<PaymentRecord>,
}

impl PaidCall {
    /// The settlement receipt (`_meta["x402/payment-response"]`), if the server sent one.
    pub fn settlement(&self) -> Option<&SettleResponse> {
        self.payment.as_ref().and_then(|p| p.receipt.as_ref())
    }

    /// Whether the result is an error result (a tool error, or a payment the server refused).
    pub fn is_error(&self) -> bool {
        self.result.is_error == Some(true)
    }

    /// The text of the result's text content, joined by newlines.
    pub fn text(&self) -> String {
        self.result
            .content
            .iter()
            .filter_map(|block| match block {
                rmcp::model::ContentBlock::Text(text) => Some(text.text.as_str()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

#[derive(Default)]
struct State {
    reuse: ReuseCache,
    /// Entitlement tokens by tool name.
    entitlements: HashMap<String, String>,
}

/// Calls tools over an rmcp client connection and pays the ones that ask for payment, with a
/// [`Payer`]'s caps, budget, approval hook and history (the same code `reqwest-x402` pays
/// HTTP 402s with; give both the same `Payer` to share one budget).
///
/// A call that answers with the x402 payment-required result is paid once and sent again
/// with the payment in `_meta["x402/payment"]`; the answer comes back with a
/// [`PaymentRecord`] whose receipt is the server's `_meta["x402/payment-response"]`. A call
/// the payer refuses (over the cap or budget, no acceptable network, the hook said no) fails
/// with [`McpPayError::Payment`] before anything is signed.
///
/// A payment is never made twice for one call: when the paid call gets no answer, or the tool
/// fails (so nothing is settled), the signed payment is kept and the same call (tool name and
/// arguments, or the same [`PaymentKey`]) sends it again.
///
/// ```no_run
/// use rmcp::ServiceExt;
/// use rmcp::model::CallToolRequestParams;
/// use rmcp::transport::StreamableHttpClientTransport;
/// use rmcp_x402::X402Client;
/// use x402_client::Payer;
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let payer = Payer::builder(x402_client::key_from_env("X402_PRIVATE_KEY")?)
///     .max_per_request("$0.05")
///     .budget("$1")
///     .build()?;
/// let connection = ()
///     .serve(StreamableHttpClientTransport::from_uri("http://127.0.0.1:8000/mcp"))
///     .await?;
/// let tools = X402Client::new(connection.peer().clone(), payer.clone());
///
/// let call = tools.call_tool(CallToolRequestParams::new("forecast")).await?;
/// println!("{}", call.text());
/// if let Some(payment) = &call.payment {
///     eprintln!("paid {}", payment.summary());
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct X402Client {
    peer: Peer<RoleClient>,
    payer: Payer,
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for X402Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("X402Client")
            .field("payer", &self.payer)
            .finish_non_exhaustive()
    }
}

impl X402Client {
    /// Pays tools over this connection with `payer`.
    pub fn new(peer: Peer<RoleClient>, payer: Payer) -> Self {
        X402Client {
            peer,
            payer,
            state: Arc::new(Mutex::new(State::default())),
        }
    }

    /// The connection.
    pub fn peer(&self) -> &Peer<RoleClient> {
        &self.peer
    }

    /// The payer (caps, budget, history).
    pub fn payer(&self) -> &Payer {
        &self.payer
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update replaces whole entries, so a poisoned lock still holds sound data.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Calls a tool, paying for it if it asks. A call that already carries
    /// `_meta["x402/payment"]` (paid by hand) is sent as it is and never paid again.
    pub async fn call_tool(&self, params: CallToolRequestParams) -> Result<PaidCall, McpPayError> {
        let id = call_id(&params);
        self.call(params, id).await
    }

    /// Like [`call_tool`](Self::call_tool), naming the logical call with `key` instead of its
    /// tool name and arguments (for reusing a kept payment, see [`PaymentKey`]).
    pub async fn call_tool_with_key(
        &self,
        params: CallToolRequestParams,
        key: &PaymentKey,
    ) -> Result<PaidCall, McpPayError> {
        self.call(params, RequestId::from_key(key)).await
    }

    async fn call(
        &self,
        params: CallToolRequestParams,
        id: RequestId,
    ) -> Result<PaidCall, McpPayError> {
        if meta_has(&params, PAYMENT_META_KEY) {
            let result = self.peer.call_tool(params).await?;
            return Ok(PaidCall {
                result,
                payment: None,
            });
        }
        let name = params.name.to_string();
        let url = tool_resource(&name);
        let kept = {
            let mut state = self.lock();
            if state.reuse.is_empty() {
                None
            } else {
                state.reuse.take(&id, unix_now())
            }
        };
        if let Some(signed) = kept {
            tracing::info!(target: "x402::client", tool = %name, nonce = %signed.record.nonce, "reusing the authorization signed for this call");
            return self.send_paid(params, signed, id).await;
        }

        let mut first = params.clone();
        let presented = self.lock().entitlements.get(&name).cloned();
        if let Some(token) = &presented {
            set_meta(&mut first, ENTITLEMENT_META_KEY, token.clone().into());
        }
        let result = self.peer.call_tool(first).await?;
        let Some(required) = payment_required_in(&result) else {
            return Ok(PaidCall {
                result,
                payment: None,
            });
        };
        let challenge = Challenge::from_json(&required).map_err(|error| X402Error::Challenge {
            url: url.clone(),
            error,
        })?;
        if presented.is_some()
            && challenge
                .error
                .as_deref()
                .is_some_and(|e| e.starts_with("entitlement_"))
        {
            tracing::info!(target: "x402::client", tool = %name, "the server refused an entitlement token; dropping it");
            self.lock().entitlements.remove(&name);
        }
        let signed = self.payer.pay(TOOL_CALL_METHOD, &url, &challenge).await?;
        self.send_paid(params, signed, id).await
    }

    /// Sends a call with a payment and reports what became of the payment.
    async fn send_paid(
        &self,
        params: CallToolRequestParams,
        mut signed: SignedPayment,
        id: RequestId,
    ) -> Result<PaidCall, McpPayError> {
        let name = params.name.to_string();
        signed.record.attempts += 1;
        self.payer.update(&signed.record);
        let mut paid = params;
        set_meta(&mut paid, PAYMENT_META_KEY, signed.payload().clone());
        let result = match self.peer.call_tool(paid).await {
            Ok(result) => result,
            Err(error) => {
                // No answer: the server may or may not hold the payment. Keep it, so the same
                // call made again carries the same authorization and is paid at most once.
                tracing::warn!(target: "x402::client", tool = %name, %error, "paid call failed without an answer; keeping its authorization for a retry");
                self.lock().reuse.put(id, signed);
                return Err(error.into());
            }
        };
        let receipt = receipt_of(&result);
        signed.record.status = match (&receipt, payment_required_in(&result)) {
            (Some(r), _) if r.success => PaymentStatus::Settled {
                transaction: r.transaction.clone(),
            },
            (Some(r), required) => PaymentStatus::Rejected {
                reason: r
                    .error_reason
                    .clone()
                    .or_else(|| required.as_ref().and_then(refusal_reason))
                    .unwrap_or_else(|| "settlement_failed".to_owned()),
                message: r.error_message.clone(),
            },
            (None, Some(required)) => PaymentStatus::Rejected {
                reason: refusal_reason(&required).unwrap_or_else(|| "payment_rejected".to_owned()),
                message: None,
            },
            (None, None) if result.is_error == Some(true) => PaymentStatus::ToolError,
            (None, None) => PaymentStatus::Unconfirmed { status: 200 },
        };
        signed.record.receipt = receipt;
        self.payer.update(&signed.record);
        tracing::info!(target: "x402::client", summary = %signed.record.summary(), "payment answered");
        if let Some(token) = result_meta(&result, ENTITLEMENT_META_KEY).and_then(Value::as_str) {
            let mut state = self.lock();
            if state.entitlements.len() < MAX_ENTITLEMENTS || state.entitlements.contains_key(&name)
            {
                state.entitlements.insert(name.clone(), token.to_owned());
            }
        }
        let record = signed.record.clone();
        if matches!(record.status, PaymentStatus::ToolError) {
            // Not settled (the tool failed): the authorization is still good for this call,
            // and is what a retry of it sends.
            self.lock().reuse.put(id, signed);
        }
        Ok(PaidCall {
            result,
            payment: Some(record),
        })
    }

    /// The tools for which an entitlement token is held (never the tokens).
    pub fn entitlements(&self) -> Vec<String> {
        let mut tools: Vec<_> = self.lock().entitlements.keys().cloned().collect();
        tools.sort();
        tools
    }
}

/// A call's identity for payment reuse: tool name and arguments.
fn call_id(params: &CallToolRequestParams) -> RequestId {
    let arguments = params
        .arguments
        .as_ref()
        .map(|a| serde_json::to_vec(a).unwrap_or_default())
        .unwrap_or_default();
    RequestId::from_parts([
        TOOL_CALL_METHOD.as_bytes(),
        params.name.as_bytes(),
        arguments.as_slice(),
    ])
}

fn meta_has(params: &CallToolRequestParams, key: &str) -> bool {
    params
        .meta
        .as_ref()
        .is_some_and(|m| m.0.0.contains_key(key))
}

fn set_meta(params: &mut CallToolRequestParams, key: &str, value: Value) {
    params
        .meta
        .get_or_insert_with(RequestMetaObject::new)
        .0
        .0
        .insert(key.to_owned(), value);
}

/// The receipt of a paid call: `_meta["x402/payment-response"]`, or (as the Python server
/// sends a failed settlement) the same key inside `structuredContent`.
fn receipt_of(result: &CallToolResult) -> Option<SettleResponse> {
    result_meta(result, PAYMENT_RESPONSE_META_KEY)
        .or_else(|| {
            result
                .structured_content
                .as_ref()
                .and_then(|s| s.get(PAYMENT_RESPONSE_META_KEY))
        })
        .and_then(|v| serde_json::from_value(v.clone()).ok())
}

/// The reason a payment-required result gives (`error`), without the settlement-failure
/// wording reference servers add.
fn refusal_reason(required: &Value) -> Option<String> {
    let error = required.get("error").and_then(Value::as_str)?;
    let reason = error
        .strip_prefix(SETTLEMENT_FAILED_PREFIX)
        .unwrap_or(error);
    Some(reason.to_owned()).filter(|r| !r.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn calls_are_identified_by_tool_and_arguments() {
        let call = |name: &'static str, args: Value| {
            let mut params = CallToolRequestParams::new(name);
            params.arguments = args.as_object().cloned();
            call_id(&params)
        };
        assert_eq!(call("a", json!({"x": 1})), call("a", json!({"x": 1})));
        assert_ne!(call("a", json!({"x": 1})), call("a", json!({"x": 2})));
        assert_ne!(call("a", json!({"x": 1})), call("b", json!({"x": 1})));
    }

    #[test]
    fn refusal_reasons_lose_the_settlement_wording() {
        assert_eq!(
            refusal_reason(&json!({"error": "Payment settlement failed: insufficient_funds"})),
            Some("insufficient_funds".into())
        );
        assert_eq!(
            refusal_reason(&json!({"error": "invalid_exact_evm_payload_signature"})),
            Some("invalid_exact_evm_payload_signature".into())
        );
        assert_eq!(refusal_reason(&json!({"accepts": []})), None);
    }
}
