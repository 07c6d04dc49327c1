//! The one place that speaks to the runtime's gate.
//!
//! The gate reads payments from HTTP-shaped requests, so a tool call is presented as one: a
//! [`RequestView`] of `POST /tools/<name>` whose `PAYMENT-SIGNATURE` header is the base64 of
//! `_meta["x402/payment"]` (and whose `x402-entitlement` header is `_meta["x402/entitlement"]`).
//! The tool's route has a fixed resource, `mcp://tool/<name>`, and speaks only x402 v2, as
//! the MCP transport does. Everything the gate answers is mapped back to tool results here:
//! the payment-required result, the receipt in `_meta`, the settlement failure.
//!
//! Keeping this small and alone means a change in the gate's API (for example an `evaluate`
//! that takes a decoded payload) is a change to this module only.

use rmcp::ErrorData;
use rmcp::model::{CallToolResponse, CallToolResult, JsonObject};
use serde_json::Value;
use x402_protocol::{ProtocolVersion, Reason, codec, headers};
use x402_runtime::entitlement::{ENTITLEMENT_HEADER, TOKEN_PREFIX};
use x402_runtime::{
    Challenge, Completion, Decision, Gate, PaymentInfo, Pending, Rejection, RequestView,
    ResponseParts, RouteSpec,
};

use crate::meta::{
    ENTITLEMENT_META_KEY, PAYMENT_META_KEY, PAYMENT_RESPONSE_META_KEY, payment_required_result,
    set_result_meta,
};

/// The largest receipt or challenge header value decoded back into JSON.
const MAX_DECODED_HEADER_BYTES: usize = 64 * 1024;

/// The text reference servers put before the reason of a failed settlement.
pub(crate) const SETTLEMENT_FAILED_PREFIX: &str = "Payment settlement failed: ";

/// A tool call, as the gate sees a request.
struct ToolView {
    path: String,
    headers: Vec<(&'static str, String)>,
}

impl RequestView for ToolView {
    fn method(&self) -> &str {
        "POST"
    }

    fn path_and_query(&self) -> &str {
        &self.path
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Checks that the gate can serve a route (networks, token, price, recipient), with the
/// message the gate gives when it cannot.
pub(crate) fn check(gate: &Gate, spec: &'static RouteSpec, tool: &str) -> Result<(), String> {
    let view = ToolView {
        path: format!("/tools/{tool}"),
        headers: Vec::new(),
    };
    gate.challenge(&view, spec)
        .map(|_| ())
        .map_err(|rejection| rejection.message().to_owned())
}

/// What to do with a call to a priced tool.
pub(crate) enum Admit {
    /// The payment (or entitlement) is good: run the tool, then [`complete`].
    Run(Box<Admitted>),
    /// Answer without running the tool.
    Answer(Result<CallToolResponse, ErrorData>),
}

/// A call let through.
pub(crate) struct Admitted {
    /// What the tool may know about the payment.
    pub(crate) payment: PaymentInfo,
    pending: Pending,
    challenge: Challenge,
}

/// Reads the payment (and entitlement) of a call from its `_meta` and asks the gate.
pub(crate) async fn admit(
    gate: &Gate,
    spec: &'static RouteSpec,
    tool: &str,
    meta: &JsonObject,
) -> Admit {
    let mut view = ToolView {
        path: format!("/tools/{tool}"),
        headers: Vec::new(),
    };
    let payment = match meta.get(PAYMENT_META_KEY) {
        None | Some(Value::Null) => None,
        Some(Value::Object(payload)) => Some(codec::encode(payload)),
        // The Python SDK also accepts the payload as JSON text.
        Some(Value::String(text)) => match serde_json::from_str::<Value>(text) {
            Ok(payload @ Value::Object(_)) => Some(codec::encode(&payload)),
            _ => return malformed_payment(gate, spec, tool, &view),
        },
        Some(_) => return malformed_payment(gate, spec, tool, &view),
    };
    if let Some(payment) = payment {
        view.headers.push((headers::PAYMENT_SIGNATURE, payment));
    }
    if let Some(token) = meta
        .get(ENTITLEMENT_META_KEY)
        .and_then(Value::as_str)
        .filter(|t| t.starts_with(TOKEN_PREFIX))
    {
        view.headers.push((ENTITLEMENT_HEADER, token.to_owned()));
    }
    let challenge = match gate.challenge(&view, spec) {
        Ok(challenge) => challenge,
        Err(rejection) => return Admit::Answer(Err(misconfigured(tool, &rejection))),
    };
    match gate.evaluate(&view, spec).await {
        Decision::Admitted(admission) => Admit::Run(Box::new(Admitted {
            payment: admission.payment,
            pending: admission.pending,
            challenge,
        })),
        Decision::Challenge(rejection) | Decision::Rejected(rejection) => {
            Admit::Answer(Ok(refusal(&rejection, &challenge).into()))
        }
    }
}

fn malformed_payment(gate: &Gate, spec: &'static RouteSpec, tool: &str, view: &ToolView) -> Admit {
    let rejection = Rejection::new(
        Reason::INVALID_PAYLOAD,
        format!("_meta[\"{PAYMENT_META_KEY}\"] must be a PaymentPayload object"),
    );
    match gate.challenge(view, spec) {
        Ok(challenge) => Admit::Answer(Ok(refusal(&rejection, &challenge).into())),
        Err(rejection) => Admit::Answer(Err(misconfigured(tool, &rejection))),
    }
}

/// A tool whose price cannot be worked out is broken, not free: a protocol error.
fn misconfigured(tool: &str, rejection: &Rejection) -> ErrorData {
    tracing::error!(target: "x402::config", tool, %rejection, "paid MCP tool is misconfigured");
    ErrorData::internal_error(
        format!("the paid tool is misconfigured: {}", rejection.message()),
        None,
    )
}

/// The payment-required result for a refused call: the v2 `PaymentRequired` whose `error` is
/// the reason code, and the failed receipt when settlement is what failed.
fn refusal(rejection: &Rejection, fallback: &Challenge) -> CallToolResult {
    let challenge = rejection.challenge().unwrap_or(fallback);
    let error = rejection.reason().for_version(ProtocolVersion::V2);
    let mut result = payment_required_result(payment_required(challenge, error));
    if let Some(settlement) = rejection.settlement()
        && let Ok(receipt) = serde_json::to_value(settlement)
    {
        set_result_meta(&mut result, PAYMENT_RESPONSE_META_KEY, receipt);
    }
    result
}

fn payment_required(challenge: &Challenge, error: &str) -> Value {
    // Serialising the protocol's own wire type cannot fail; fall back to the bare minimum.
    serde_json::to_value(challenge.v2(error))
        .unwrap_or_else(|_| serde_json::json!({"x402Version": 2, "error": error, "accepts": []}))
}

/// The status the gate is told the tool answered with: 200 for a result, 400 and up for an
/// error result, a protocol error or anything that is not a final result (nothing is settled
/// then, and the payment stays usable for the same call).
fn status_of(outcome: &Result<CallToolResponse, ErrorData>) -> u16 {
    match outcome {
        Ok(CallToolResponse::Complete(result)) if result.is_error != Some(true) => 200,
        Ok(CallToolResponse::Complete(_)) | Err(_) => 500,
        // An MRTR round: the client will send the same call again with its input (and the
        // same payment, which is released below).
        Ok(CallToolResponse::InputRequired(_)) => 428,
        Ok(_) => 501,
    }
}

/// After the tool: settles (or not), and turns the outcome into what the client gets.
pub(crate) async fn complete(
    gate: &Gate,
    tool: &str,
    admitted: Admitted,
    outcome: Result<CallToolResponse, ErrorData>,
) -> Result<CallToolResponse, ErrorData> {
    let status = status_of(&outcome);
    let completion = gate.finish(admitted.pending, status).await;
    let outcome = match outcome {
        // A task would run after the payment is settled or released: refuse it.
        Ok(CallToolResponse::Task(_)) => Err(ErrorData::internal_error(
            format!("the paid tool {tool} answered with a task; paid tools must answer directly"),
            None,
        )),
        other => other,
    };
    match completion {
        Completion::Deliver { headers, .. } => {
            let Ok(CallToolResponse::Complete(mut result)) = outcome else {
                return outcome;
            };
            if status < 400 {
                for (name, value) in &headers {
                    if name.eq_ignore_ascii_case(headers::PAYMENT_RESPONSE) {
                        match codec::decode::<Value>(value, MAX_DECODED_HEADER_BYTES) {
                            Ok(receipt) => {
                                set_result_meta(&mut result, PAYMENT_RESPONSE_META_KEY, receipt)
                            }
                            Err(error) => {
                                tracing::error!(target: "x402::settlement", tool, %error, "could not decode the settlement receipt");
                            }
                        }
                    } else if name.eq_ignore_ascii_case(ENTITLEMENT_HEADER) {
                        set_result_meta(&mut result, ENTITLEMENT_META_KEY, value.clone().into());
                    }
                }
            }
            Ok(result.into())
        }
        Completion::Replace(parts) => Ok(settlement_failed(&parts, &admitted.challenge).into()),
    }
}

/// The tool ran but settlement failed: the payment-required result with the reason (as
/// reference servers word it), the failed receipt, and none of the tool's output.
fn settlement_failed(parts: &ResponseParts, fallback: &Challenge) -> CallToolResult {
    let decoded = |name: &str| {
        parts
            .header(name)
            .and_then(|v| codec::decode::<Value>(v, MAX_DECODED_HEADER_BYTES).ok())
    };
    let reason = decoded(headers::PAYMENT_REQUIRED)
        .and_then(|required| {
            required
                .get("error")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .or_else(|| {
            serde_json::from_slice::<Value>(&parts.body)
                .ok()
                .and_then(|body| body.get("error").and_then(Value::as_str).map(str::to_owned))
        })
        .unwrap_or_else(|| Reason::SETTLEMENT_FAILED.as_str().to_owned());
    let mut required =
        decoded(headers::PAYMENT_REQUIRED).unwrap_or_else(|| payment_required(fallback, &reason));
    if let Some(object) = required.as_object_mut() {
        object.insert(
            "error".to_owned(),
            format!("{SETTLEMENT_FAILED_PREFIX}{reason}").into(),
        );
    }
    let mut result = payment_required_result(required);
    if let Some(receipt) = decoded(headers::PAYMENT_RESPONSE) {
        set_result_meta(&mut result, PAYMENT_RESPONSE_META_KEY, receipt);
    }
    tracing::warn!(target: "x402::settlement", %reason, status = parts.status, "settlement of a paid tool call failed; its output is withheld");
    result
}
