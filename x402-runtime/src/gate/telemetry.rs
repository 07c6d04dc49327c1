//! What the gate tells operators about paid requests: counters and latency histograms through
//! the [`metrics`] facade (a no-op until the program installs a recorder, such as
//! `metrics-exporter-prometheus`), beside the `tracing` events and spans.
//!
//! | metric | kind | labels |
//! | --- | --- | --- |
//! | `x402_payments_total` | counter | `route`, `network`, `outcome` (`verified`, `rejected`, `settled`, `failed`, `unknown`) |
//! | `x402_payment_verify_seconds` | histogram | `network` |
//! | `x402_payment_settle_seconds` | histogram | `network`, `outcome` |
//! | `x402_facilitator_errors_total` | counter | `call` (`verify`, `settle`), `kind` |

use std::time::Duration;

use crate::facilitator::FacilitatorError;
use crate::route::RouteSpec;

/// The `route` label: the handler's path, or `-` for routes written by hand.
pub(crate) fn route_label(spec: &RouteSpec) -> &'static str {
    if spec.handler.is_empty() {
        "-"
    } else {
        spec.handler
    }
}

/// One paid request reached `outcome`.
pub(crate) fn payment(route: &'static str, network: &str, outcome: &'static str) {
    metrics::counter!(
        "x402_payments_total",
        "route" => route,
        "network" => network.to_owned(),
        "outcome" => outcome
    )
    .increment(1);
}

/// How long verifying a payment took (scheme checks, replay reservation, facilitator).
pub(crate) fn verify_latency(network: &str, took: Duration) {
    metrics::histogram!("x402_payment_verify_seconds", "network" => network.to_owned())
        .record(took.as_secs_f64());
}

/// How long settling a payment took, and how it ended.
pub(crate) fn settle_latency(network: &str, outcome: &'static str, took: Duration) {
    metrics::histogram!(
        "x402_payment_settle_seconds",
        "network" => network.to_owned(),
        "outcome" => outcome
    )
    .record(took.as_secs_f64());
}

/// A facilitator call failed (as opposed to answering "invalid").
pub(crate) fn facilitator_error(call: &'static str, error: &FacilitatorError) {
    let kind = match error {
        FacilitatorError::Unreachable(_) => "unreachable",
        FacilitatorError::Interrupted(_) => "interrupted",
        FacilitatorError::Timeout(_) => "timeout",
        FacilitatorError::Status { .. } => "status",
        FacilitatorError::InvalidResponse(_) => "invalid_response",
        FacilitatorError::Internal(_) => "internal",
    };
    metrics::counter!("x402_facilitator_errors_total", "call" => call, "kind" => kind).increment(1);
}
