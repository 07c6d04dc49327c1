//! Running `wrk` on its own core and reading its report.

use serde::Serialize;

use crate::Error;

/// The Lua script that rotates pre-signed payments.
pub(crate) const PAYMENTS_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/lua/payments.lua");

/// How to load one URL.
#[derive(Debug, Clone)]
pub(crate) struct Load {
    /// CPU the load generator is pinned to.
    pub(crate) core: String,
    /// Its scheduling priority, if set.
    pub(crate) nice: Option<i32>,
    /// Open connections.
    pub(crate) connections: usize,
    /// Seconds to run.
    pub(crate) seconds: f64,
    /// Extra request headers (`name: value`).
    pub(crate) headers: Vec<String>,
    /// Payments to rotate through: the file, the header to send them in, how many to skip.
    pub(crate) payments: Option<(std::path::PathBuf, &'static str, u64)>,
    /// Stop after this many responses (0: run for `seconds`).
    pub(crate) stop_after: u64,
}

/// What wrk reported.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Report {
    /// Completed requests.
    pub(crate) requests: u64,
    /// Wall time wrk measured.
    pub(crate) seconds: f64,
    /// Requests per second.
    pub(crate) rps: f64,
    /// Responses that were not 2xx/3xx.
    pub(crate) non_2xx: u64,
    /// Connect/read/write/timeout errors, as wrk printed them (empty: none).
    pub(crate) socket_errors: String,
    /// Median latency, ms.
    pub(crate) p50_ms: f64,
    /// 99th percentile latency, ms.
    pub(crate) p99_ms: f64,
    /// Payments the script sent (paid rows only).
    pub(crate) payments_sent: Option<u64>,
}

/// Runs wrk (1 thread) against `url` and parses its report.
pub(crate) fn run(url: &str, load: &Load) -> Result<Report, Error> {
    let mut command = crate::pinned(&load.core, load.nice, "wrk");
    command.args(["-t1", "--latency"]);
    command.arg(format!("-c{}", load.connections));
    command.arg(format!("-d{}s", load.seconds.max(1.0).round()));
    command.arg("--timeout").arg("10s");
    for header in &load.headers {
        command.arg("-H").arg(header);
    }
    if let Some((file, name, offset)) = &load.payments {
        command.arg("-s").arg(PAYMENTS_SCRIPT);
        command.env("X402_BENCH_HEADERS", file);
        command.env("X402_BENCH_HEADER_NAME", name);
        command.env("X402_BENCH_OFFSET", offset.to_string());
        command.env("X402_BENCH_STOP_AFTER", load.stop_after.to_string());
    }
    command.arg(url);
    let output = command
        .output()
        .map_err(|e| format!("running wrk (apt-get install wrk): {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "wrk failed ({}): {}{}",
            output.status,
            text,
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    parse(&text).ok_or_else(|| format!("could not read wrk's report:\n{text}").into())
}

/// `200.00us`, `1.20ms`, `2.00s` → milliseconds.
fn duration_ms(text: &str) -> Option<f64> {
    let (number, factor) = if let Some(n) = text.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1000.0)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60_000.0)
    } else {
        return None;
    };
    number.parse::<f64>().ok().map(|n| n * factor)
}

fn parse(text: &str) -> Option<Report> {
    let mut report = Report::default();
    let mut saw_total = false;
    for line in text.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["50%", value] => report.p50_ms = duration_ms(value)?,
            ["99%", value] => report.p99_ms = duration_ms(value)?,
            [count, "requests", "in", seconds, ..] => {
                report.requests = count.parse().ok()?;
                report.seconds = duration_ms(seconds.trim_end_matches(','))? / 1000.0;
                saw_total = true;
            }
            ["Non-2xx", "or", "3xx", "responses:", count] => report.non_2xx = count.parse().ok()?,
            ["Socket", "errors:", ..] => report.socket_errors = line.to_owned(),
            ["Requests/sec:", rps] => report.rps = rps.parse().ok()?,
            ["x402-bench", "payments", "sent:", count] => {
                report.payments_sent = Some(count.parse().ok()?);
            }
            _ => {}
        }
    }
    saw_total.then_some(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_wrk_report() {
        let text = "Running 8s test @ http://127.0.0.1:4000/weather
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     4.73ms  612.13us  15.33ms   88.97%
    Req/Sec     6.77k   231.40     7.06k    86.25%
  Latency Distribution
     50%    4.64ms
     75%  880.00us
     90%    5.35ms
     99%    1.02s
  53910 requests in 8.00s, 21.85MB read
  Non-2xx or 3xx responses: 3
  Socket errors: connect 0, read 0, write 0, timeout 2
Requests/sec:   6738.11
Transfer/sec:      2.73MB
x402-bench payments sent: 53942
";
        let report = parse(text).unwrap();
        assert_eq!(report.requests, 53_910);
        assert!((report.seconds - 8.0).abs() < 1e-9);
        assert!((report.rps - 6738.11).abs() < 1e-9);
        assert_eq!(report.non_2xx, 3);
        assert!((report.p50_ms - 4.64).abs() < 1e-9);
        assert!((report.p99_ms - 1020.0).abs() < 1e-9);
        assert_eq!(report.payments_sent, Some(53_942));
        assert!(report.socket_errors.contains("timeout 2"));
        assert!(parse("wrk: connection refused").is_none());
        assert_eq!(duration_ms("5.00m"), Some(300_000.0));
    }
}
