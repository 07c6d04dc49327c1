//! The single-core bound of a paid route: decode + verify of one payment header, in a loop on
//! one core, as the criterion bench `x402-protocol/benches/protocol.rs` measures it. A server
//! that verifies each payment once can admit at most this many payments a second per core.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use x402_protocol::eip3009::RecoveryBackend;
use x402_protocol::facilitator::{PaymentPayload, PaymentRequirements};
use x402_protocol::verify::verify_payment_with;
use x402_protocol::{NetworkRegistry, codec, v2};

use crate::Error;
use crate::headers::HeaderFile;

/// Options of `x402-bench bound`.
#[derive(Debug, clap::Args)]
pub(crate) struct BoundArgs {
    /// A header file written by `x402-bench run`.
    #[arg(long)]
    headers: std::path::PathBuf,
    /// How many payments to decode and verify per backend.
    #[arg(long, default_value_t = 3000)]
    count: usize,
}

/// Prints `{"k256": payments_per_second, "secp256k1": payments_per_second}`.
pub(crate) fn run(args: BoundArgs) -> Result<(), Error> {
    let text = std::fs::read_to_string(&args.headers)?;
    let mut lines = text.lines();
    let meta: serde_json::Value = serde_json::from_str(lines.next().ok_or("empty header file")?)?;
    let requirement: v2::PaymentRequirements = serde_json::from_value(meta["requirement"].clone())?;
    let requirement = PaymentRequirements::V2(requirement);
    let headers: Vec<&str> = lines.take(args.count).collect();
    let registry = NetworkRegistry::builtin();
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let mut rates = serde_json::Map::new();
    for (name, backend) in [
        ("k256", RecoveryBackend::K256),
        ("secp256k1", RecoveryBackend::Secp256k1),
    ] {
        let started = cpu_seconds();
        let wall = Instant::now();
        for header in &headers {
            let payment: v2::PaymentPayload =
                codec::decode(header, codec::DEFAULT_MAX_HEADER_BYTES)?;
            verify_payment_with(
                backend,
                &PaymentPayload::V2(payment),
                &requirement,
                &registry,
                now,
            )?;
        }
        // CPU time, not wall time: on a shared machine the loop may wait for the core.
        let elapsed = match (started, cpu_seconds()) {
            (Some(a), Some(b)) if b > a => b - a,
            _ => wall.elapsed().as_secs_f64(),
        };
        let rate = headers.len() as f64 / elapsed;
        rates.insert(name.to_owned(), serde_json::json!(rate));
    }
    println!("{}", serde_json::Value::Object(rates));
    Ok(())
}

/// CPU time this (single-threaded) process has run, from the scheduler's counter.
fn cpu_seconds() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    Some(text.split_whitespace().next()?.parse::<u64>().ok()? as f64 / 1e9)
}

/// Runs `x402-bench bound` pinned to `core` and returns payments per second of CPU per
/// backend.
pub(crate) fn measure(
    core: &str,
    nice: Option<i32>,
    file: &HeaderFile,
) -> Result<(f64, f64), Error> {
    let output = crate::pinned(core, nice, std::env::current_exe()?)
        .arg("bound")
        .arg("--headers")
        .arg(&file.path)
        .arg("--count")
        .arg(file.count.min(5000).to_string())
        .output()?;
    if !output.status.success() {
        return Err(format!(
            "x402-bench bound failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    let rates: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    let get = |name: &str| {
        rates[name]
            .as_f64()
            .ok_or_else(|| format!("x402-bench bound printed no {name} rate"))
    };
    Ok((get("k256")?, get("secp256k1")?))
}
