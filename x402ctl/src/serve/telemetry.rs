//! The facilitator's metrics, through the `metrics` facade, rendered as Prometheus text at
//! `/metrics` (with those of the runtime and `x402-evm` in the same process).
//!
//! | metric | kind | labels |
//! | --- | --- | --- |
//! | `x402_facilitator_requests_total` | counter | `endpoint`, `status` |
//! | `x402_facilitator_auth_total` | counter | `result` (`ok`, `missing`, `invalid`, `disabled`) |
//! | `x402_facilitator_rate_limited_total` | counter | `caller` |
//! | `x402_facilitator_verify_total` | counter | `network`, `scheme`, `result` (`valid`, `invalid`, `error`) |
//! | `x402_facilitator_verify_seconds` | histogram | `network` |
//! | `x402_facilitator_settle_total` | counter | `network`, `scheme`, `outcome` (`settled`, `failed`, `pending`, `error`): answers to `/settle` |
//! | `x402_facilitator_settle_seconds` | histogram | `network`, `outcome` |
//! | `x402_facilitator_settlements_total` | counter | `network`, `outcome` (`settled`, `failed`, `unknown`), `reconciled`: settlement outcomes as journaled |
//! | `x402_facilitator_settlements_in_flight` | gauge | |
//! | `x402_facilitator_errors_total` | counter | `kind` (`journal`, …) |
//! | `x402_evm_*` | | nonces, re-pricing, transactions sent (x402-evm) |
//! | `x402_payments_total`, `x402_payment_*_seconds` | | paid requests (servers in the same process) |

use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Latency buckets, in seconds: from a verify answered from memory to a slow block.
const BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Installs the Prometheus recorder for this process; its handle renders `/metrics`.
pub(crate) fn install() -> Result<PrometheusHandle, String> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), BUCKETS)
        .map_err(|e| e.to_string())?
        .install_recorder()
        .map_err(|e| format!("cannot install the metrics recorder: {e}"))?;
    let upkeep = handle.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            upkeep.run_upkeep();
        }
    });
    Ok(handle)
}

/// A scheme name as a label: the known ones, else `other`.
pub(crate) fn scheme_label(scheme: &str) -> &'static str {
    match scheme {
        "exact" => "exact",
        "upto" => "upto",
        _ => "other",
    }
}

pub(crate) fn request(endpoint: &'static str, status: u16) {
    metrics::counter!("x402_facilitator_requests_total", "endpoint" => endpoint, "status" => status.to_string()).increment(1);
}

pub(crate) fn auth(result: &'static str) {
    metrics::counter!("x402_facilitator_auth_total", "result" => result).increment(1);
}

pub(crate) fn rate_limited(caller: &str) {
    metrics::counter!("x402_facilitator_rate_limited_total", "caller" => caller.to_owned())
        .increment(1);
}

pub(crate) fn verified(network: &str, scheme: &'static str, result: &'static str, took: Duration) {
    metrics::counter!("x402_facilitator_verify_total", "network" => network.to_owned(), "scheme" => scheme, "result" => result).increment(1);
    metrics::histogram!("x402_facilitator_verify_seconds", "network" => network.to_owned())
        .record(took.as_secs_f64());
}

pub(crate) fn settle_answered(
    network: &str,
    scheme: &'static str,
    outcome: &'static str,
    took: Duration,
) {
    metrics::counter!("x402_facilitator_settle_total", "network" => network.to_owned(), "scheme" => scheme, "outcome" => outcome).increment(1);
    metrics::histogram!("x402_facilitator_settle_seconds", "network" => network.to_owned(), "outcome" => outcome)
        .record(took.as_secs_f64());
}

pub(crate) fn settlement(network: &str, outcome: &'static str, reconciled: bool) {
    metrics::counter!(
        "x402_facilitator_settlements_total",
        "network" => network.to_owned(),
        "outcome" => outcome,
        "reconciled" => if reconciled { "true" } else { "false" }
    )
    .increment(1);
}

pub(crate) fn in_flight(n: usize) {
    metrics::gauge!("x402_facilitator_settlements_in_flight").set(n as f64);
}

pub(crate) fn error(kind: &'static str) {
    metrics::counter!("x402_facilitator_errors_total", "kind" => kind).increment(1);
}
