//! An rmcp client calls priced tools of an rmcp server, in process (a duplex pipe carrying
//! real JSON-RPC) and over streamable HTTP on loopback, and pays through the embedded
//! facilitator into its dev ledger.

use crate::support;

use rmcp::model::{CallToolRequestParams, CallToolResult, ContentBlock, RequestMetaObject};
use rmcp_x402::{
    ENTITLEMENT_META_KEY, McpPayError, PAYMENT_META_KEY, PAYMENT_RESPONSE_META_KEY, X402Client,
    payment_required_in,
};
use serde_json::{Value, json};
use support::{CENT, CountingSigner, PAY_TO, Server, Transport, connect, pay_to};
use x402_client::{Challenge, PaymentSigner, PaymentStatus, RefusalReason, X402Error};
use x402_protocol::U256;

fn call(name: &'static str, arguments: Value) -> CallToolRequestParams {
    let mut params = CallToolRequestParams::new(name);
    params.arguments = arguments.as_object().cloned();
    params
}

fn with_meta(mut params: CallToolRequestParams, key: &str, value: Value) -> CallToolRequestParams {
    params
        .meta
        .get_or_insert_with(RequestMetaObject::new)
        .0
        .0
        .insert(key.to_owned(), value);
    params
}

fn text(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| match c {
            ContentBlock::Text(t) => Some(t.text.clone()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn meta(result: &CallToolResult, key: &str) -> Option<Value> {
    result.meta.as_ref().and_then(|m| m.0.get(key)).cloned()
}

async fn pays_a_priced_tool_and_gets_result_and_receipt(transport: Transport) {
    let server = Server::new();
    let signer = CountingSigner::new();
    server.fund(signer.address(), 100);
    let connection = connect(&server, transport).await;
    let payer = signer.payer().build().unwrap();
    let tools = X402Client::new(connection.peer(), payer.clone());

    let paid = tools
        .call_tool(call("forecast", json!({"city": "Oslo"})))
        .await
        .unwrap();
    assert!(!paid.is_error(), "{:?}", paid.result);
    assert_eq!(
        paid.text(),
        format!("Oslo: sunny (paid 0.01 USDC by {})", signer.address())
    );
    let payment = paid.payment.clone().expect("a payment record");
    let PaymentStatus::Settled { transaction } = &payment.status else {
        panic!("not settled: {}", payment.status);
    };
    assert_eq!(payment.method, "tools/call");
    assert_eq!(payment.url, "mcp://tool/forecast");
    assert_eq!(payment.resource, "mcp://tool/forecast");
    assert_eq!(payment.amount, U256::from(CENT));
    assert_eq!(payment.pay_to, pay_to());
    assert_eq!(payment.attempts, 1);
    let receipt = paid.settlement().expect("a receipt");
    assert!(receipt.success);
    assert_eq!(&receipt.transaction, transaction);
    assert_eq!(receipt.network, "eip155:84532");
    // On the wire: the receipt is a JSON object under the spec's `_meta` key.
    let wire = meta(&paid.result, PAYMENT_RESPONSE_META_KEY).expect("receipt in _meta");
    assert_eq!(wire["success"], true);
    assert_eq!(wire["transaction"], transaction.as_str());

    let transfers = server.ledger.transfers();
    assert_eq!(transfers.len(), 1);
    assert!(
        transfers[0]
            .key
            .as_str()
            .ends_with(&format!("/{:x}", payment.nonce))
    );
    assert_eq!(transfers[0].transaction.to_string(), *transaction);
    assert_eq!(transfers[0].from, signer.address());
    assert_eq!(transfers[0].to, pay_to());
    assert_eq!(server.balance(signer.address()), U256::from(99 * CENT));
    assert_eq!(server.balance(pay_to()), U256::from(CENT));
    assert_eq!(signer.signed(), 1);
    assert_eq!(server.runs(), 1);
    assert_eq!(payer.history().len(), 1);
    assert_eq!(payer.history()[0].status, payment.status);

    // A free tool is called once, without payment.
    let free = tools.call_tool(call("ping", json!({}))).await.unwrap();
    assert_eq!(free.text(), "pong");
    assert!(free.payment.is_none());
    assert_eq!(signer.signed(), 1);
}

async fn an_unpaid_call_gets_the_payment_required_result(transport: Transport) {
    let server = Server::new();
    let connection = connect(&server, transport).await;

    let result = connection
        .client
        .call_tool(call("forecast", json!({"city": "Oslo"})))
        .await
        .unwrap();
    assert_eq!(result.is_error, Some(true));
    let structured = result
        .structured_content
        .clone()
        .expect("structuredContent");
    // content[0].text is the same object as JSON text.
    let ContentBlock::Text(first) = &result.content[0] else {
        panic!("content[0] is not text: {:?}", result.content);
    };
    assert_eq!(
        serde_json::from_str::<Value>(&first.text).unwrap(),
        structured
    );
    assert_eq!(structured["x402Version"], 2);
    assert_eq!(structured["error"], "payment_required");
    assert_eq!(structured["resource"]["url"], "mcp://tool/forecast");
    assert_eq!(structured["resource"]["description"], "Tomorrow's weather");
    assert_eq!(structured["resource"]["mimeType"], "text/plain");
    let accepts = structured["accepts"].as_array().unwrap();
    assert_eq!(accepts.len(), 1, "v2 only: {accepts:?}");
    assert_eq!(accepts[0]["scheme"], "exact");
    assert_eq!(accepts[0]["network"], "eip155:84532");
    assert_eq!(accepts[0]["amount"], "10000");
    assert_eq!(accepts[0]["payTo"], PAY_TO);
    assert_eq!(
        accepts[0]["asset"],
        support::usdc().to_checksum(None).as_str()
    );
    assert!(meta(&result, PAYMENT_RESPONSE_META_KEY).is_none());
    assert_eq!(server.runs(), 0, "the tool does not run unpaid");

    // A free tool answers as usual.
    let free = connection
        .client
        .call_tool(call("ping", json!({})))
        .await
        .unwrap();
    assert_eq!(text(&free), "pong");
    assert_ne!(free.is_error, Some(true));
}

async fn a_replayed_payment_is_refused(transport: Transport) {
    let server = Server::new();
    let signer = CountingSigner::new();
    server.fund(signer.address(), 100);
    let connection = connect(&server, transport).await;
    let payer = signer.payer().build().unwrap();

    // Pay by hand: read the challenge, sign once, send the same payment twice.
    let params = call("forecast", json!({"city": "Oslo"}));
    let unpaid = connection.client.call_tool(params.clone()).await.unwrap();
    let challenge = Challenge::from_json(&payment_required_in(&unpaid).unwrap()).unwrap();
    let signed = payer
        .pay("tools/call", "mcp://tool/forecast", &challenge)
        .await
        .unwrap();
    let paid = with_meta(params, PAYMENT_META_KEY, signed.payload().clone());

    let first = connection.client.call_tool(paid.clone()).await.unwrap();
    assert_ne!(first.is_error, Some(true), "{first:?}");
    assert!(text(&first).starts_with("Oslo: sunny"));
    assert_eq!(
        meta(&first, PAYMENT_RESPONSE_META_KEY).unwrap()["success"],
        true
    );

    let replay = connection.client.call_tool(paid.clone()).await.unwrap();
    assert_eq!(replay.is_error, Some(true));
    let refused = payment_required_in(&replay).expect("a payment-required result");
    // A tool result is not kept for a resend: the settled payment is refused as spent.
    assert_eq!(refused["error"], "payment_already_settled");
    assert!(!text(&replay).contains("sunny"));
    assert_eq!(server.runs(), 1, "the replay did not run the tool");
    assert_eq!(server.ledger.transfers().len(), 1, "charged once");
    assert_eq!(server.balance(signer.address()), U256::from(99 * CENT));

    // The paying client passes a hand-paid call through and never pays it again.
    let tools = X402Client::new(connection.peer(), payer.clone());
    let passed = tools.call_tool(paid).await.unwrap();
    assert!(passed.payment.is_none());
    assert!(passed.is_error());
    assert_eq!(signer.signed(), 1);
}

async fn an_over_budget_call_is_refused_before_signing(transport: Transport) {
    let server = Server::new();
    let signer = CountingSigner::new();
    server.fund(signer.address(), 1000);
    let connection = connect(&server, transport).await;
    let payer = signer.payer().budget("$0.015").build().unwrap();
    let tools = X402Client::new(connection.peer(), payer.clone());

    let first = tools
        .call_tool(call("forecast", json!({"city": "Oslo"})))
        .await
        .unwrap();
    assert!(matches!(
        first.payment.unwrap().status,
        PaymentStatus::Settled { .. }
    ));
    assert_eq!(signer.signed(), 1);

    let error = tools
        .call_tool(call("forecast", json!({"city": "Bergen"})))
        .await
        .unwrap_err();
    let McpPayError::Payment(X402Error::NoPayableOffer { url, refusals }) = &error else {
        panic!("not a refusal: {error}");
    };
    assert_eq!(url, "mcp://tool/forecast");
    assert!(
        matches!(&refusals[..], [r] if matches!(&r.reason, RefusalReason::OverBudget { remaining, .. } if remaining == "$0.005")),
        "{error}"
    );
    assert!(
        error.to_string().contains("remaining budget of $0.005"),
        "{error}"
    );

    // Over the per-request cap (default $0.10): refused as well.
    let error = tools
        .call_tool(call("premium", json!({})))
        .await
        .unwrap_err();
    let McpPayError::Payment(X402Error::NoPayableOffer { refusals, .. }) = &error else {
        panic!("not a refusal: {error}");
    };
    assert!(
        matches!(&refusals[..], [r] if matches!(r.reason, RefusalReason::OverCap { .. })),
        "{error}"
    );

    assert_eq!(signer.signed(), 1, "nothing signed for refused calls");
    assert_eq!(server.runs(), 1);
    assert_eq!(server.ledger.transfers().len(), 1);
    assert_eq!(payer.history().len(), 1);
    assert_eq!(payer.remaining_budget()[0].1, "$0.005");
}

async fn a_failing_tool_is_not_charged_and_its_payment_is_reused(transport: Transport) {
    let server = Server::new();
    let signer = CountingSigner::new();
    server.fund(signer.address(), 100);
    let connection = connect(&server, transport).await;
    let tools = X402Client::new(connection.peer(), signer.payer().build().unwrap());

    let first = tools.call_tool(call("storm", json!({}))).await.unwrap();
    assert!(first.is_error());
    assert_eq!(first.text(), "the storm service is down");
    let payment = first.payment.clone().unwrap();
    assert_eq!(payment.status, PaymentStatus::ToolError);
    assert!(first.settlement().is_none());
    assert!(server.ledger.transfers().is_empty(), "not settled");

    // The same call again sends the same, still unspent, authorization.
    let second = tools.call_tool(call("storm", json!({}))).await.unwrap();
    let again = second.payment.unwrap();
    assert_eq!(again.nonce, payment.nonce);
    assert_eq!(again.attempts, 2);
    assert_eq!(again.status, PaymentStatus::ToolError);
    assert_eq!(signer.signed(), 1);
    assert_eq!(server.runs(), 2);
    assert_eq!(server.balance(signer.address()), U256::from(100 * CENT));
}

async fn a_failed_settlement_withholds_the_output(transport: Transport) {
    let server = Server::settle_fails();
    let signer = CountingSigner::new();
    server.fund(signer.address(), 100);
    let connection = connect(&server, transport).await;
    let tools = X402Client::new(connection.peer(), signer.payer().build().unwrap());

    let paid = tools
        .call_tool(call("forecast", json!({"city": "Oslo"})))
        .await
        .unwrap();
    assert!(paid.is_error());
    assert_eq!(server.runs(), 1, "the tool ran");
    assert!(
        !paid.text().contains("sunny"),
        "its output is withheld: {}",
        paid.text()
    );
    let required = payment_required_in(&paid.result).expect("payment-required result");
    assert_eq!(
        required["error"],
        "Payment settlement failed: transaction_failed"
    );
    assert_eq!(required["accepts"][0]["amount"], "10000");
    let receipt = meta(&paid.result, PAYMENT_RESPONSE_META_KEY).expect("the failed receipt");
    assert_eq!(receipt["success"], false);
    assert_eq!(receipt["errorReason"], "transaction_failed");
    let payment = paid.payment.unwrap();
    assert_eq!(
        payment.status,
        PaymentStatus::Rejected {
            reason: "transaction_failed".into(),
            message: Some("the transfer reverted".into()),
        }
    );
}

async fn an_entitlement_pays_for_the_next_call(transport: Transport) {
    let server = Server::new();
    let signer = CountingSigner::new();
    server.fund(signer.address(), 100);
    let connection = connect(&server, transport).await;
    let tools = X402Client::new(connection.peer(), signer.payer().build().unwrap());

    let bought = tools.call_tool(call("pass", json!({}))).await.unwrap();
    assert_eq!(bought.text(), "pass used");
    assert!(matches!(
        bought.payment.unwrap().status,
        PaymentStatus::Settled { .. }
    ));
    let token = meta(&bought.result, ENTITLEMENT_META_KEY).expect("an entitlement token");
    assert!(token.as_str().unwrap().starts_with("x402e1."), "{token}");
    assert_eq!(tools.entitlements(), ["pass"]);

    // The second call is covered by the token: no payment.
    let covered = tools.call_tool(call("pass", json!({}))).await.unwrap();
    assert_eq!(covered.text(), "pass used");
    assert!(covered.payment.is_none());
    assert_eq!(signer.signed(), 1);
    assert_eq!(server.ledger.transfers().len(), 1);
    assert_eq!(server.runs(), 2);

    // Two uses bought, two used: the third is paid again.
    let third = tools.call_tool(call("pass", json!({}))).await.unwrap();
    assert!(matches!(
        third.payment.unwrap().status,
        PaymentStatus::Settled { .. }
    ));
    assert_eq!(signer.signed(), 2);
    assert_eq!(server.ledger.transfers().len(), 2);
}

async fn a_malformed_payment_is_refused(transport: Transport) {
    let server = Server::new();
    let connection = connect(&server, transport).await;
    for bad in [json!("not a payment"), json!(42), json!({"x402Version": 2})] {
        let params = with_meta(
            call("forecast", json!({"city": "Oslo"})),
            PAYMENT_META_KEY,
            bad.clone(),
        );
        let result = connection.client.call_tool(params).await.unwrap();
        assert_eq!(result.is_error, Some(true), "{bad}");
        let refused = payment_required_in(&result).expect("a payment-required result");
        assert_eq!(refused["error"], "invalid_payload", "{bad}");
        assert_eq!(refused["accepts"][0]["amount"], "10000", "{bad}");
    }
    assert_eq!(server.runs(), 0);
}

macro_rules! over_both_transports {
    ($($scenario:ident),* $(,)?) => {
        mod in_process {
            $(
                #[tokio::test]
                async fn $scenario() {
                    super::$scenario(super::Transport::InProcess).await;
                }
            )*
        }
        mod streamable_http {
            $(
                #[tokio::test]
                async fn $scenario() {
                    super::$scenario(super::Transport::Http).await;
                }
            )*
        }
    };
}

over_both_transports!(
    pays_a_priced_tool_and_gets_result_and_receipt,
    an_unpaid_call_gets_the_payment_required_result,
    a_replayed_payment_is_refused,
    an_over_budget_call_is_refused_before_signing,
    a_failing_tool_is_not_charged_and_its_payment_is_reused,
    a_failed_settlement_withholds_the_output,
    an_entitlement_pays_for_the_next_call,
    a_malformed_payment_is_refused,
);
