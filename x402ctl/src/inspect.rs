//! `x402ctl inspect`: decode and explain a 402 challenge, a payment header or a settlement
//! receipt, and check a payment's signature offline.

use std::fmt::Write as _;
use std::io::Read as _;

use reqwest_x402::Challenge;
use reqwest_x402::challenge::Offered;
use reqwest_x402::challenge::{describe_amount, describe_network};
use serde_json::Value;
use x402_protocol::amount::format_units;
use x402_protocol::eip3009::{RecoveryBackend, TokenDomain};
use x402_protocol::facilitator::{PaymentPayload, PaymentRequirements, SettleResponse};
use x402_protocol::verify::RequirementTerms;
use x402_protocol::{NetworkRegistry, ProtocolVersion, codec, headers};

use crate::Failure;
use crate::time;

/// What the input turned out to be, with its explanation.
pub(crate) struct Explained {
    pub(crate) text: String,
    /// False when a payment's signature does not verify.
    pub(crate) ok: bool,
}

const HEADER_NAMES: [&str; 5] = [
    headers::PAYMENT_REQUIRED,
    headers::X_PAYMENT,
    headers::PAYMENT_SIGNATURE,
    headers::X_PAYMENT_RESPONSE,
    headers::PAYMENT_RESPONSE,
];

/// Explains `input`: a URL (fetched, not paid), `-` (stdin), `Header-Name: value`, a base64
/// header value, or raw JSON.
pub(crate) async fn run(input: &str) -> Result<Explained, Failure> {
    let registry = NetworkRegistry::builtin();
    let input = if input == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| Failure::usage(format!("reading stdin: {e}")))?;
        text
    } else {
        input.to_owned()
    };
    let input = input.trim();
    if input.starts_with("http://") || input.starts_with("https://") {
        return fetch(input, &registry).await;
    }
    // `PAYMENT-REQUIRED: eyJ…`, as copied from a response.
    let value = match input.split_once(':') {
        Some((name, value))
            if HEADER_NAMES
                .iter()
                .any(|h| name.trim().eq_ignore_ascii_case(h)) =>
        {
            value.trim()
        }
        _ => input,
    };
    let json: Value = if value.starts_with('{') {
        serde_json::from_str(value).map_err(|e| Failure::usage(format!("not valid JSON: {e}")))?
    } else {
        codec::decode(value, 1 << 20).map_err(|e| {
            Failure::usage(format!(
                "not a URL, JSON, or an x402 header value (standard base64 JSON): {e}"
            ))
        })?
    };
    explain_json(&json, &registry)
}

/// Explains one decoded x402 object.
pub(crate) fn explain_json(json: &Value, registry: &NetworkRegistry) -> Result<Explained, Failure> {
    if json.get("accepts").is_some() {
        let challenge = Challenge::from_json(json).map_err(|e| Failure::usage(e.to_string()))?;
        return Ok(Explained {
            text: explain_challenge(&challenge, None, registry),
            ok: true,
        });
    }
    if json.get("payload").is_some() {
        let payment: PaymentPayload = serde_json::from_value(json.clone())
            .map_err(|e| Failure::usage(format!("not a valid x402 payment: {e}")))?;
        return Ok(explain_payment(&payment, registry, time::now()));
    }
    if json.get("success").is_some() {
        let receipt: SettleResponse = serde_json::from_value(json.clone())
            .map_err(|e| Failure::usage(format!("not a valid settlement receipt: {e}")))?;
        return Ok(Explained {
            text: explain_receipt(&receipt, registry),
            ok: true,
        });
    }
    Err(Failure::usage(
        "this JSON is not an x402 object: no `accepts` (a 402), `payload` (a payment) or `success` (a receipt)",
    ))
}

async fn fetch(url: &str, registry: &NetworkRegistry) -> Result<Explained, Failure> {
    let response = reqwest::get(url)
        .await
        .map_err(|e| Failure::http(format!("GET {url}: {}", crate::chain(&e))))?;
    let status = response.status();
    let header = response
        .headers()
        .get(headers::PAYMENT_REQUIRED)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let receipt = [headers::PAYMENT_RESPONSE, headers::X_PAYMENT_RESPONSE]
        .iter()
        .find_map(|h| response.headers().get(*h))
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response
        .bytes()
        .await
        .map_err(|e| Failure::http(format!("GET {url}: {}", crate::chain(&e))))?;
    let mut text = format!("GET {url}: HTTP {status}\n");
    if let Some(receipt) = receipt
        && let Ok(receipt) = codec::decode::<SettleResponse>(&receipt, 1 << 20)
    {
        text.push_str(&explain_receipt(&receipt, registry));
    }
    if status.as_u16() != 402 {
        text.push_str("no payment is required for a plain GET\n");
        return Ok(Explained { text, ok: true });
    }
    match Challenge::parse(header.as_deref(), &body) {
        Ok(challenge) => {
            let served = match (header.is_some(), challenge.version) {
                (true, _) => "v2 PAYMENT-REQUIRED header",
                (false, _) => "v1 JSON body",
            };
            let v1_too = header.is_some()
                && serde_json::from_slice::<Value>(&body)
                    .ok()
                    .and_then(|b| b.get("x402Version").and_then(Value::as_u64))
                    == Some(1);
            text.push_str(&explain_challenge(&challenge, Some(served), registry));
            if v1_too {
                text.push_str("the body also carries the v1 challenge: v1 clients can pay too\n");
            }
        }
        Err(e) => {
            let _ = writeln!(text, "this 402 is not an x402 challenge: {e}");
        }
    }
    Ok(Explained { text, ok: true })
}

fn field(text: &mut String, name: &str, value: impl std::fmt::Display) {
    let _ = writeln!(text, "  {name:<13}{value}");
}

fn explain_challenge(
    challenge: &Challenge,
    source: Option<&str>,
    registry: &NetworkRegistry,
) -> String {
    let mut text = format!("x402 {} payment challenge (402)", challenge.version);
    if let Some(source) = source {
        let _ = write!(text, ", from the {source}");
    }
    text.push('\n');
    if let Some(error) = &challenge.error {
        field(&mut text, "error", error);
    }
    if let Some(message) = &challenge.message {
        field(&mut text, "message", message);
    }
    if let Some(url) = challenge.resource_url() {
        field(&mut text, "resource", url);
    }
    if let Some(description) = challenge
        .resource
        .as_ref()
        .and_then(|r| r.get("description"))
        .and_then(Value::as_str)
        .filter(|d| !d.is_empty())
    {
        field(&mut text, "description", description);
    }
    if let Some(extensions) = &challenge.extensions {
        let names: Vec<_> = extensions
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        field(&mut text, "extensions", names.join(", "));
    }
    let _ = writeln!(text, "  accepts {} way(s) to pay:", challenge.accepts.len());
    for (i, offered) in challenge.accepts.iter().enumerate() {
        let _ = writeln!(text, "    {}. {}", i + 1, describe_offer(offered, registry));
    }
    text
}

fn describe_offer(offered: &Offered, registry: &NetworkRegistry) -> String {
    let Ok(r) = &offered.requirements else {
        return offered.describe(registry);
    };
    let mut line = offered.describe(registry);
    let _ = write!(line, ", valid for {} s", r.max_timeout_seconds());
    match RequirementTerms::resolve(r, registry) {
        Ok(terms) => {
            let _ = write!(
                line,
                "\n       asset {} (EIP-712 domain {:?} version {:?}, chain {})",
                r.asset(),
                terms.eip712_name,
                terms.eip712_version,
                terms.chain_id
            );
        }
        Err(e) => {
            let _ = write!(line, "\n       not payable by this tool: {}", e.message);
        }
    }
    line
}

/// The token domain a payment was signed in: v2 names it in `accepted`; a v1 payment carries no
/// asset, so it is the network's default token.
fn signing_terms(
    payment: &PaymentPayload,
    registry: &NetworkRegistry,
) -> Result<RequirementTerms, String> {
    match payment {
        PaymentPayload::V2(p) => {
            RequirementTerms::resolve(&PaymentRequirements::V2(p.accepted.clone()), registry)
                .map_err(|e| e.message)
        }
        PaymentPayload::V1(p) => {
            let network = registry.network(&p.network).map_err(|e| e.to_string())?;
            let asset = &network.default_asset;
            let (Some(chain_id), Some(token), Some(exact)) = (
                network.chain_id(),
                asset.evm_address(),
                p.payload.as_eip3009(),
            ) else {
                return Err(format!("{} is not an EVM network", network.name));
            };
            Ok(RequirementTerms {
                network: network.clone(),
                chain_id,
                asset: token,
                eip712_name: asset.eip712_name.to_string(),
                eip712_version: asset.eip712_version.to_string(),
                pay_to: exact.authorization.to,
                amount: exact.authorization.value,
            })
        }
    }
}

pub(crate) fn explain_payment(
    payment: &PaymentPayload,
    registry: &NetworkRegistry,
    now: u64,
) -> Explained {
    let Some(exact) = payment.payload().as_eip3009() else {
        return Explained {
            text: format!(
                "x402 {} payment with a {} payload on {}: this tool checks the signatures of EIP-3009 payments only\n",
                payment.version(),
                payment.payload().kind(),
                payment.network()
            ),
            ok: false,
        };
    };
    let auth = &exact.authorization;
    let header = match payment.version() {
        ProtocolVersion::V1 => "X-PAYMENT",
        ProtocolVersion::V2 => "PAYMENT-SIGNATURE",
    };
    let mut text = format!("x402 {} payment ({header})\n", payment.version());
    let terms = signing_terms(payment, registry);
    let (payer_line, signature_line, ok) = match &terms {
        Ok(terms) => {
            let domain = TokenDomain {
                name: &terms.eip712_name,
                version: &terms.eip712_version,
                chain_id: terms.chain_id,
                verifying_contract: terms.asset,
            };
            let digest = domain.signing_hash(auth);
            match RecoveryBackend::default().recover(&digest, &exact.signature) {
                Ok(recovered) if recovered == auth.from => (
                    format!("{recovered} (recovered from the signature)"),
                    "valid: it recovers to the authorization's `from`".to_owned(),
                    true,
                ),
                Ok(recovered) => (
                    format!(
                        "{} claimed, but the signature recovers to {recovered}",
                        auth.from
                    ),
                    format!(
                        "INVALID: signed by {recovered}, not by {} (or for another token domain)",
                        auth.from
                    ),
                    false,
                ),
                Err(e) => (
                    format!("{} claimed; no signer recoverable", auth.from),
                    format!("INVALID: {e}"),
                    false,
                ),
            }
        }
        Err(e) => (
            format!("{} claimed (not checked)", auth.from),
            format!("not checked: {e}"),
            false,
        ),
    };
    field(&mut text, "payer", payer_line);
    field(&mut text, "signature", signature_line);
    let amount = match &terms {
        Ok(terms) => match registry.asset(&terms.network, terms.asset) {
            Some(asset) => format!(
                "{} {} ({} atomic units)",
                format_units(auth.value, asset.decimals),
                asset.symbol,
                auth.value
            ),
            None => format!("{} atomic units (unknown token)", auth.value),
        },
        Err(_) => format!("{} atomic units", auth.value),
    };
    field(&mut text, "amount", amount);
    field(
        &mut text,
        "network",
        describe_network(payment.network(), registry),
    );
    match (&terms, payment) {
        (Ok(terms), PaymentPayload::V1(_)) => field(
            &mut text,
            "asset",
            format!(
                "{} (v1 payments name no asset: the network's default token, EIP-712 {:?} version {:?})",
                terms.asset, terms.eip712_name, terms.eip712_version
            ),
        ),
        (Ok(terms), PaymentPayload::V2(_)) => field(
            &mut text,
            "asset",
            format!(
                "{} (EIP-712 {:?} version {:?})",
                terms.asset, terms.eip712_name, terms.eip712_version
            ),
        ),
        (Err(_), _) => {}
    }
    field(&mut text, "pay to", auth.to);
    let after = auth.valid_after.saturating_to::<u64>();
    let before = auth.valid_before.saturating_to::<u64>();
    field(
        &mut text,
        "valid after",
        format!("{} ({})", time::utc(after), time::relative(after, now)),
    );
    let state = if now >= before {
        format!("expired {} ago", time::span(now - before))
    } else if now < after {
        format!("not valid yet; expires in {}", time::span(before - now))
    } else {
        format!("valid now; expires in {}", time::span(before - now))
    };
    field(
        &mut text,
        "valid before",
        format!("{} ({state})", time::utc(before)),
    );
    field(
        &mut text,
        "window",
        format!("{} long", time::span(before.saturating_sub(after))),
    );
    field(&mut text, "nonce", auth.nonce);
    if let PaymentPayload::V2(p) = payment {
        if let Some(resource) = &p.resource {
            field(&mut text, "resource", &resource.url);
        }
        field(
            &mut text,
            "accepted",
            describe_amount(&PaymentRequirements::V2(p.accepted.clone()), registry)
                + &format!(" on {} to {}", p.accepted.network, p.accepted.pay_to),
        );
        if auth.value != p.accepted.amount {
            field(
                &mut text,
                "warning",
                "the authorized value differs from `accepted.amount`",
            );
        }
    }
    Explained { text, ok }
}

fn explain_receipt(receipt: &SettleResponse, registry: &NetworkRegistry) -> String {
    let mut text = "x402 settlement receipt (PAYMENT-RESPONSE / X-PAYMENT-RESPONSE)\n".to_owned();
    field(
        &mut text,
        "success",
        if receipt.success { "yes" } else { "no" },
    );
    if !receipt.transaction.is_empty() {
        field(&mut text, "transaction", &receipt.transaction);
    }
    if !receipt.network.is_empty() {
        field(
            &mut text,
            "network",
            describe_network(&receipt.network, registry),
        );
    }
    if let Some(payer) = &receipt.payer {
        field(&mut text, "payer", payer);
    }
    if let Some(amount) = &receipt.amount {
        field(&mut text, "amount", format!("{amount} atomic units"));
    }
    if let Some(reason) = &receipt.error_reason {
        field(&mut text, "error", reason);
    }
    if let Some(message) = &receipt.error_message {
        field(&mut text, "message", message);
    }
    text
}
