//! The x402 MCP transport on the wire: `_meta` keys, the tool resource URL, and the
//! payment-required tool result.
//!
//! | what | where | shape |
//! | --- | --- | --- |
//! | payment required | tool result: `isError: true`, `structuredContent`, `content[0].text` | the v2 `PaymentRequired`, as an object and as JSON text |
//! | payment | request `params._meta["x402/payment"]` | the `PaymentPayload` as a JSON object (not base64) |
//! | receipt | result `_meta["x402/payment-response"]` | the `SettleResponse` as a JSON object |
//! | entitlement (this workspace's extension) | result and request `_meta["x402/entitlement"]` | the token string a route with `access`/`uses` grants |

use rmcp::model::{CallToolResult, ContentBlock, MetaObject};
use serde_json::Value;

/// `_meta` key of the payment a client sends with `tools/call`.
pub const PAYMENT_META_KEY: &str = "x402/payment";

/// `_meta` key of the settlement receipt a server returns with a paid tool result.
pub const PAYMENT_RESPONSE_META_KEY: &str = "x402/payment-response";

/// `_meta` key of an entitlement token: returned with a paid result when the tool's route
/// sells reusable access (`access`, `uses`), and sent back by the client on later calls
/// instead of paying again. Not part of the x402 MCP transport spec; clients that do not know
/// it ignore it and simply pay each call.
pub const ENTITLEMENT_META_KEY: &str = "x402/entitlement";

/// The resource URL of a tool, `mcp://tool/<name>`, as the reference SDKs name it.
///
/// ```
/// assert_eq!(rmcp_x402::tool_resource("forecast"), "mcp://tool/forecast");
/// ```
pub fn tool_resource(name: &str) -> String {
    format!("mcp://tool/{name}")
}

/// The tool result that asks for payment: `isError: true`, the `PaymentRequired` in
/// `structuredContent`, and the same JSON as text in `content[0]`.
///
/// ```
/// let required = serde_json::json!({"x402Version": 2, "accepts": []});
/// let result = rmcp_x402::payment_required_result(required.clone());
/// assert_eq!(result.is_error, Some(true));
/// assert_eq!(rmcp_x402::payment_required_in(&result), Some(required));
/// ```
pub fn payment_required_result(payment_required: Value) -> CallToolResult {
    CallToolResult::structured_error(payment_required)
}

/// Whether a JSON value looks like a `PaymentRequired` (has `x402Version` and `accepts`).
fn is_payment_required(value: &Value) -> bool {
    value.get("x402Version").is_some_and(Value::is_u64)
        && value.get("accepts").is_some_and(Value::is_array)
}

/// The `PaymentRequired` a tool result carries, if it is a payment-required result: from
/// `structuredContent` when it has `x402Version` and `accepts`, else from the first text
/// content that parses as such JSON. Only error results are considered.
pub fn payment_required_in(result: &CallToolResult) -> Option<Value> {
    if result.is_error != Some(true) {
        return None;
    }
    if let Some(structured) = result
        .structured_content
        .as_ref()
        .filter(|v| is_payment_required(v))
    {
        return Some(structured.clone());
    }
    result.content.iter().find_map(|block| match block {
        ContentBlock::Text(text) => serde_json::from_str::<Value>(&text.text)
            .ok()
            .filter(is_payment_required),
        _ => None,
    })
}

/// A key of a result's `_meta`.
pub(crate) fn result_meta<'a>(result: &'a CallToolResult, key: &str) -> Option<&'a Value> {
    result.meta.as_ref().and_then(|meta| meta.0.get(key))
}

/// Sets a key of a result's `_meta`.
pub(crate) fn set_result_meta(result: &mut CallToolResult, key: &str, value: Value) {
    result
        .meta
        .get_or_insert_with(MetaObject::new)
        .0
        .insert(key.to_owned(), value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn payment_required_is_read_from_structured_content_or_text() {
        let required = json!({"x402Version": 2, "error": "payment_required", "accepts": [{"scheme": "exact"}]});
        let result = payment_required_result(required.clone());
        assert_eq!(result.is_error, Some(true));
        let ContentBlock::Text(text) = &result.content[0] else {
            panic!("text content");
        };
        assert_eq!(serde_json::from_str::<Value>(&text.text).unwrap(), required);
        assert_eq!(payment_required_in(&result), Some(required.clone()));

        // Text only (a client without structured content support).
        let mut text_only = result.clone();
        text_only.structured_content = None;
        assert_eq!(payment_required_in(&text_only), Some(required.clone()));

        // Not an error, or not x402: nothing.
        let mut ok = result.clone();
        ok.is_error = Some(false);
        assert_eq!(payment_required_in(&ok), None);
        let other = CallToolResult::structured_error(json!({"error": "boom"}));
        assert_eq!(payment_required_in(&other), None);
        let mut bad_text = CallToolResult::error(vec![ContentBlock::text("not json")]);
        assert_eq!(payment_required_in(&bad_text), None);
        bad_text
            .content
            .push(ContentBlock::text(required.to_string()));
        assert_eq!(payment_required_in(&bad_text), Some(required));
    }

    #[test]
    fn result_meta_keys_are_set_and_read() {
        let mut result = CallToolResult::success(vec![ContentBlock::text("ok")]);
        assert!(result_meta(&result, PAYMENT_RESPONSE_META_KEY).is_none());
        set_result_meta(
            &mut result,
            PAYMENT_RESPONSE_META_KEY,
            json!({"success": true}),
        );
        assert_eq!(
            result_meta(&result, PAYMENT_RESPONSE_META_KEY),
            Some(&json!({"success": true}))
        );
        let wire = serde_json::to_value(&result).unwrap();
        assert_eq!(wire["_meta"]["x402/payment-response"]["success"], true);
    }
}
