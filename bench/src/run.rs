//! `x402-bench run`: starts the stub facilitator and each server under test on pinned cores,
//! loads every row with wrk, prints one table with ratios and the goals of issue 16, and can
//! write the same as JSON.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::{Value, json};
use x402_protocol::eip3009::LocalSigner;
use x402_protocol::{NetworkRegistry, codec, v2};

use crate::Error;
use crate::headers::{self, HeaderFile, PAYER_KEY};
use crate::wrk::{self, Load, Report};

/// Options of `x402-bench run`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct RunArgs {
    /// Seconds per row.
    #[arg(long, default_value_t = 8.0)]
    seconds: f64,
    /// Seconds of warm-up before each row (not measured).
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Connections wrk keeps open.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Pre-signed payments per requirement (each paid row needs rate × (seconds + warmup)).
    #[arg(long, default_value_t = 200_000)]
    payments: usize,
    /// CPU list of the server under test.
    #[arg(long, default_value = "0")]
    server_core: String,
    /// CPU list of wrk and the stub facilitator.
    #[arg(long, default_value = "1")]
    load_core: String,
    /// Peers to measure after this project: `x402-axum`, `express` (comma-separated).
    #[arg(long, value_delimiter = ',')]
    peers: Vec<String>,
    /// Only these rows (ids as printed, e.g. `paid_http,paid_secp256k1`).
    #[arg(long, value_delimiter = ',')]
    rows: Vec<String>,
    /// Write the results as JSON here too.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Run each server under a profiler, e.g. `--server-prefix "valgrind --tool=callgrind
    /// --callgrind-out-file=target/x402-bench/%p.callgrind --"` (callgrind's counters are then
    /// dumped before and after each row) or `"perf record -e cpu-clock -g -o perf.data --"`.
    #[arg(long, allow_hyphen_values = true)]
    server_prefix: Option<String>,
    /// Stop sending after this many responses in each row (a fixed count, for profiles; 0:
    /// by time). wrk still waits out `--seconds`, and counts time it did not send.
    #[arg(long, default_value_t = 0)]
    stop_after: u64,
    /// Skip the decode + verify bound.
    #[arg(long)]
    no_bound: bool,
    /// Run the server, wrk and the stub at this `nice` priority (e.g. -10; needs root), so
    /// builds on a shared machine take less of their cores. With the kernel's autogroups
    /// (`/proc/sys/kernel/sched_autogroup_enabled`) a nice value only weighs inside its session,
    /// so the harness then runs in a session of its own whose autogroup gets the same value.
    /// Recorded in the results.
    #[arg(long, allow_hyphen_values = true)]
    nice: Option<i32>,
}

/// Which server answers a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Target {
    /// This project (axum integration).
    This,
    /// x402-axum 2.0.2 from crates.io.
    X402Axum,
    /// @x402/express 2.27 from npm.
    Express,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::This => "this",
            Target::X402Axum => "x402-axum",
            Target::Express => "express",
        }
    }
}

/// What a row expects back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// 200 without payment.
    Unpaid,
    /// 402.
    Challenge,
    /// 200 for a new payment each request.
    Paid,
    /// 200 for an entitlement token.
    Entitled,
}

struct RowSpec {
    id: &'static str,
    title: &'static str,
    listener: &'static str,
    path: &'static str,
    kind: Kind,
}

const fn row(
    id: &'static str,
    title: &'static str,
    listener: &'static str,
    path: &'static str,
    kind: Kind,
) -> RowSpec {
    RowSpec {
        id,
        title,
        listener,
        path,
        kind,
    }
}

const THIS_ROWS: &[RowSpec] = &[
    row(
        "unpaid",
        "unpaid route, no x402 layer",
        "plain",
        "/free",
        Kind::Unpaid,
    ),
    row(
        "unpaid_layer",
        "unpaid route behind the layer",
        "http",
        "/free",
        Kind::Unpaid,
    ),
    row(
        "challenge",
        "402 challenge",
        "http",
        "/weather",
        Kind::Challenge,
    ),
    row(
        "paid_http",
        "paid via HTTP facilitator (stub)",
        "http",
        "/weather",
        Kind::Paid,
    ),
    row(
        "paid_http_trusted",
        "paid via HTTP (stub), no local checks",
        "http_trusted",
        "/weather",
        Kind::Paid,
    ),
    row(
        "paid_http_sqlite",
        "paid via HTTP (stub), SQLite journal",
        "http_sqlite",
        "/weather",
        Kind::Paid,
    ),
    row(
        "paid_k256",
        "paid, embedded, verified (k256)",
        "embedded_k256",
        "/weather",
        Kind::Paid,
    ),
    row(
        "paid_secp256k1",
        "paid, embedded, verified (secp256k1)",
        "embedded_secp256k1",
        "/weather",
        Kind::Paid,
    ),
    row(
        "paid_sqlite",
        "paid, embedded (secp256k1), SQLite journal",
        "embedded_sqlite",
        "/weather",
        Kind::Paid,
    ),
    row(
        "paid_sqlite_normal",
        "paid, embedded, SQLite sync=NORMAL",
        "embedded_sqlite_normal",
        "/weather",
        Kind::Paid,
    ),
    row(
        "pass",
        "entitlement reuse (1 h pass)",
        "http",
        "/pass",
        Kind::Entitled,
    ),
];

const PEER_ROWS: &[RowSpec] = &[
    row(
        "unpaid",
        "unpaid route, no x402 layer",
        "plain",
        "/free",
        Kind::Unpaid,
    ),
    row(
        "challenge",
        "402 challenge",
        "http",
        "/weather",
        Kind::Challenge,
    ),
    row(
        "paid_http",
        "paid via HTTP facilitator (stub)",
        "http",
        "/weather",
        Kind::Paid,
    ),
];

/// One measured row.
#[derive(Debug, Clone, Serialize)]
struct Row {
    target: Target,
    id: &'static str,
    title: &'static str,
    /// 1-minute load average just before the row.
    load1: f64,
    #[serde(flatten)]
    report: Report,
    /// Facilitator connections the server opened during the row (paid via HTTP only).
    facilitator_connections: Option<u64>,
    /// Facilitator calls during the row (paid via HTTP only).
    facilitator_calls: Option<u64>,
    /// CPU time the server process used during the row, in seconds of one core.
    server_cpu_seconds: f64,
    /// CPU time the stub facilitator used during the row (it shares wrk's core).
    stub_cpu_seconds: f64,
    /// Completed requests per second of server CPU: what the server does with the core it
    /// got, less sensitive to other processes on a shared machine than `rps`.
    requests_per_cpu_second: f64,
}

/// CPU time a process has used so far (all its threads), in seconds, from the scheduler's
/// nanosecond counters.
pub(crate) fn cpu_seconds(pid: u32) -> Option<f64> {
    let mut nanos = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let Ok(task) = task else { continue };
        // A thread may end between the listing and the read.
        let Ok(text) = std::fs::read_to_string(task.path().join("schedstat")) else {
            continue;
        };
        nanos += text.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(nanos as f64 / 1e9)
}

/// A child process that is stopped (SIGTERM, then kill) when dropped.
struct Process {
    name: String,
    child: Child,
}

impl Process {
    /// Starts `program args` pinned to `core`, and waits up to `wait` for its first stdout
    /// line, which must be JSON.
    fn start(
        name: &str,
        core: &str,
        nice: Option<i32>,
        prefix: &[String],
        program: &Path,
        args: &[String],
        wait: Duration,
    ) -> Result<(Process, Value), Error> {
        let mut command = match prefix.split_first() {
            Some((first, rest)) => {
                let mut command = crate::pinned(core, nice, first);
                command.args(rest).arg(program);
                command
            }
            None => crate::pinned(core, nice, program),
        };
        command.args(args);
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("starting {name}: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let process = Process {
            name: name.to_owned(),
            child,
        };
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = sender.send(lines.next());
            // Keep draining so the child never blocks on a full pipe.
            for _ in lines {}
        });
        let line = match receiver.recv_timeout(wait) {
            Ok(Some(Ok(line))) => line,
            _ => return Err(format!("{name} did not start within {wait:?}").into()),
        };
        let value = serde_json::from_str(&line)
            .map_err(|e| format!("{name} printed {line:?} instead of its ports: {e}"))?;
        Ok((process, value))
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // SIGTERM first, so a profiler wrapping the server writes its data.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        for _ in 0..600 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!("{} did not stop on SIGTERM; killing it", self.name);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn load1() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

fn bench_dir() -> PathBuf {
    workspace_root().join("target").join("x402-bench")
}

fn port(ports: &Value, listener: &str) -> Result<u16, Error> {
    ports[listener]
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())
        .ok_or_else(|| format!("the server printed no port for {listener:?}: {ports}").into())
}

/// A small blocking HTTP helper on its own runtime (the orchestrator is idle while wrk runs).
struct Http {
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
}

impl Http {
    fn new() -> Result<Self, Error> {
        Ok(Http {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()?,
        })
    }

    fn get(&self, url: &str, headers: &[(&str, &str)]) -> Result<reqwest::Response, Error> {
        self.runtime.block_on(async {
            let mut request = self.client.get(url);
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            Ok(request.send().await?)
        })
    }

    fn json(&self, url: &str) -> Result<Value, Error> {
        let response = self.get(url, &[])?;
        Ok(self.runtime.block_on(response.json())?)
    }

    /// The first requirement of a route's v2 challenge.
    fn requirement(&self, url: &str) -> Result<v2::PaymentRequirements, Error> {
        let response = self.get(url, &[])?;
        if response.status().as_u16() != 402 {
            return Err(format!("{url}: expected 402, got {}", response.status()).into());
        }
        let header = response
            .headers()
            .get("payment-required")
            .ok_or_else(|| format!("{url}: no PAYMENT-REQUIRED header"))?
            .to_str()?;
        let required: v2::PaymentRequired = codec::decode(header, 64 * 1024)?;
        required
            .accepts
            .into_iter()
            .next()
            .ok_or_else(|| format!("{url}: the challenge accepts nothing").into())
    }
}

/// Everything one target needs during its rows.
struct Session<'a> {
    args: &'a RunArgs,
    http: &'a Http,
    stub_url: &'a str,
    target: Target,
    ports: Value,
    server_pid: u32,
    stub_pid: u32,
    payments: Option<HeaderFile>,
    /// Payments already used, per listener (each listener has its own replay store).
    used: std::collections::HashMap<&'static str, u64>,
    token: Option<String>,
}

impl Session<'_> {
    fn url(&self, spec: &RowSpec) -> Result<String, Error> {
        Ok(format!(
            "http://127.0.0.1:{}{}",
            port(&self.ports, spec.listener)?,
            spec.path
        ))
    }

    fn load(&self, spec: &RowSpec, seconds: f64) -> Result<Load, Error> {
        let mut load = Load {
            core: self.args.load_core.clone(),
            nice: self.args.nice,
            connections: self.args.connections,
            seconds,
            headers: Vec::new(),
            payments: None,
            stop_after: self.args.stop_after,
        };
        match spec.kind {
            Kind::Unpaid | Kind::Challenge => {}
            Kind::Paid => {
                let file = self
                    .payments
                    .as_ref()
                    .ok_or("no payments were signed for this target")?;
                let offset = self.used.get(spec.listener).copied().unwrap_or(0);
                load.payments = Some((file.path.clone(), "PAYMENT-SIGNATURE", offset));
            }
            Kind::Entitled => {
                let token = self.token.as_ref().ok_or("no entitlement token")?;
                load.headers.push(format!("x402-entitlement: {token}"));
            }
        }
        Ok(load)
    }

    fn wrk(&mut self, spec: &RowSpec, seconds: f64) -> Result<Report, Error> {
        let url = self.url(spec)?;
        let report = wrk::run(&url, &self.load(spec, seconds)?)?;
        if let Some(sent) = report.payments_sent {
            // Requests in flight when wrk stopped may have been answered after it counted.
            *self.used.entry(spec.listener).or_default() += sent + 1;
            let available = self.payments.as_ref().map_or(0, |f| f.count as u64);
            if self.used[spec.listener] >= available {
                return Err(format!(
                    "{}/{}: ran out of pre-signed payments ({available}); raise --payments",
                    self.target.name(),
                    spec.id
                )
                .into());
            }
        }
        Ok(report)
    }

    fn measure(&mut self, spec: &RowSpec) -> Result<Row, Error> {
        if self.args.warmup > 0.0 && self.args.stop_after == 0 {
            self.wrk(spec, self.args.warmup)?;
        }
        let stats_url = format!("{}/stats", self.stub_url);
        let before = self.http.json(&stats_url)?;
        let load1 = load1();
        // Under callgrind, dump its counters around the row: the dump after it holds this
        // row's cost alone.
        let callgrind = self.target == Target::This
            && self
                .args
                .server_prefix
                .as_deref()
                .is_some_and(|p| p.contains("callgrind"));
        if callgrind {
            callgrind_dump(self.server_pid, &format!("before {}", spec.id))?;
        }
        let cpu_before = cpu_seconds(self.server_pid).unwrap_or(f64::NAN);
        let stub_before = cpu_seconds(self.stub_pid).unwrap_or(f64::NAN);
        let report = self.wrk(spec, self.args.seconds)?;
        let server_cpu_seconds = cpu_seconds(self.server_pid).unwrap_or(f64::NAN) - cpu_before;
        let stub_cpu_seconds = cpu_seconds(self.stub_pid).unwrap_or(f64::NAN) - stub_before;
        if callgrind {
            callgrind_dump(
                self.server_pid,
                &format!("{} {} requests", spec.id, report.requests),
            )?;
        }
        let after = self.http.json(&stats_url)?;
        let delta = |key: &str| {
            after[key]
                .as_u64()
                .unwrap_or(0)
                .saturating_sub(before[key].as_u64().unwrap_or(0))
        };
        let calls = delta("verify") + delta("settle");
        let expected_2xx = spec.kind != Kind::Challenge;
        let wrong = if expected_2xx {
            report.non_2xx
        } else {
            report.requests - report.non_2xx
        };
        if wrong > 0 || report.requests == 0 {
            return Err(format!(
                "{}/{}: {wrong} of {} answers had the wrong status (expected {}); {}",
                self.target.name(),
                spec.id,
                report.requests,
                if expected_2xx { "2xx" } else { "402" },
                report.socket_errors
            )
            .into());
        }
        Ok(Row {
            target: self.target,
            id: spec.id,
            title: spec.title,
            load1,
            facilitator_connections: (calls > 0).then(|| delta("connections")),
            facilitator_calls: (calls > 0).then_some(calls),
            server_cpu_seconds,
            stub_cpu_seconds,
            requests_per_cpu_second: report.requests as f64 / server_cpu_seconds,
            report,
        })
    }
}

/// Asks the callgrind process `pid` to write its counters since the last dump.
fn callgrind_dump(pid: u32, label: &str) -> Result<(), Error> {
    let status = Command::new("callgrind_control")
        .arg(format!("--dump={label}"))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .status()?;
    if !status.success() {
        return Err(format!("callgrind_control --dump failed for {pid}").into());
    }
    eprintln!("  callgrind dump: {label}");
    Ok(())
}

fn selected<'s>(args: &RunArgs, specs: &'s [RowSpec]) -> Vec<&'s RowSpec> {
    specs
        .iter()
        .filter(|spec| args.rows.is_empty() || args.rows.iter().any(|r| r == spec.id))
        .collect()
}

/// Builds the x402-axum peer (a separate Cargo workspace) and returns its binary.
fn build_x402_axum_peer() -> Result<PathBuf, Error> {
    let root = workspace_root();
    let target_dir = root.join("target").join("x402-axum-peer");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
        .args(["build", "--release", "--locked", "--manifest-path"])
        .arg(root.join("bench/x402-axum-peer/Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
        .status()?;
    if !status.success() {
        return Err("building bench/x402-axum-peer failed".into());
    }
    Ok(target_dir.join("release").join("x402-axum-peer"))
}

/// Installs the express peer's npm packages (into its ignored node_modules) when missing.
fn install_express_peer() -> Result<PathBuf, Error> {
    let dir = workspace_root().join("bench/express-peer");
    if !dir.join("node_modules/@x402/express").exists() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--prefix"])
            .arg(&dir)
            .status()?;
        if !status.success() {
            return Err("npm ci in bench/express-peer failed".into());
        }
    }
    Ok(dir.join("server.mjs"))
}

fn ratio(numerator: Option<f64>, denominator: Option<f64>) -> Option<f64> {
    match (numerator, denominator) {
        (Some(n), Some(d)) if d > 0.0 => Some(n / d),
        _ => None,
    }
}

/// One goal of issue 16: a measured ratio against its threshold.
#[derive(Debug, Serialize)]
struct Goal {
    goal: &'static str,
    /// The ratio of request rates.
    ratio: Option<f64>,
    /// The same ratio of requests per second of server CPU (less sensitive to other load).
    ratio_per_cpu: Option<f64>,
    threshold: f64,
    met: Option<bool>,
}

fn goals(rows: &[Row], bound: Option<(f64, f64)>) -> Vec<Goal> {
    let find = |target: Target, id: &str| rows.iter().find(|r| r.target == target && r.id == id);
    let rate = |target: Target, id: &str| find(target, id).map(|r| r.report.rps);
    let per_cpu = |target: Target, id: &str| find(target, id).map(|r| r.requests_per_cpu_second);
    let goal = |goal: &'static str, (a, b): ((Target, &str), (Target, &str)), threshold: f64| {
        let ratio = ratio(rate(a.0, a.1), rate(b.0, b.1));
        Goal {
            goal,
            ratio,
            ratio_per_cpu: self::ratio(per_cpu(a.0, a.1), per_cpu(b.0, b.1)),
            threshold,
            met: ratio.map(|r| r >= threshold),
        }
    };
    let bound_goal = |goal: &'static str, id: &str, bound: Option<f64>| {
        let ratio = ratio(rate(Target::This, id), bound);
        Goal {
            goal,
            ratio,
            // The bound is measured on a whole core: compare with the server's rate per
            // second of CPU.
            ratio_per_cpu: self::ratio(per_cpu(Target::This, id), bound),
            threshold: 0.7,
            met: ratio.map(|r| r >= 0.7),
        }
    };
    let this = |id| (Target::This, id);
    vec![
        goal(
            "paid via HTTP facilitator / x402-axum's",
            (this("paid_http"), (Target::X402Axum, "paid_http")),
            1.5,
        ),
        goal(
            "paid via HTTP, local checks off / x402-axum's",
            (this("paid_http_trusted"), (Target::X402Axum, "paid_http")),
            1.5,
        ),
        bound_goal(
            "paid embedded secp256k1 / decode+verify bound (secp256k1)",
            "paid_secp256k1",
            bound.map(|b| b.1),
        ),
        bound_goal(
            "paid embedded k256 / decode+verify bound (k256)",
            "paid_k256",
            bound.map(|b| b.0),
        ),
        goal(
            "paid embedded secp256k1 / @x402/express paid",
            (this("paid_secp256k1"), (Target::Express, "paid_http")),
            30.0,
        ),
        goal(
            "paid, SQLite journal / memory journal (secp256k1)",
            (this("paid_sqlite"), this("paid_secp256k1")),
            0.8,
        ),
        goal(
            "paid via HTTP, SQLite journal / memory journal",
            (this("paid_http_sqlite"), this("paid_http")),
            0.8,
        ),
        goal(
            "paid, SQLite sync=NORMAL / memory journal",
            (this("paid_sqlite_normal"), this("paid_secp256k1")),
            0.8,
        ),
        goal(
            "402 challenge / unpaid route",
            (this("challenge"), this("unpaid")),
            0.9,
        ),
        goal(
            "entitlement reuse / unpaid route",
            (this("pass"), this("unpaid")),
            0.9,
        ),
        goal(
            "unpaid behind the layer / without it",
            (this("unpaid_layer"), this("unpaid")),
            0.98,
        ),
    ]
}

fn print_table(args: &RunArgs, rows: &[Row], bound: Option<(f64, f64)>, goals: &[Goal]) {
    println!();
    println!(
        "x402-bench: server on core {}, wrk (1 thread, {} connections) and the stub facilitator on core {}, {} s per row{}",
        args.server_core,
        args.connections,
        args.load_core,
        args.seconds,
        args.nice
            .map_or_else(String::new, |n| format!(", nice {n}"))
    );
    println!(
        "cpu: share of one core the server used; req/cpu-s: requests per second of server CPU"
    );
    println!(
        "{:<10} {:<17} {:<38} {:>9} {:>9} {:>7} {:>10} {:>7} {:>7} {:>6}",
        "target", "row", "", "req/s", "×unpaid", "cpu", "req/cpu-s", "p50 ms", "p99 ms", "load1"
    );
    for row in rows {
        let unpaid = rows
            .iter()
            .find(|r| r.target == row.target && r.id == "unpaid")
            .map(|r| r.report.rps);
        let versus = ratio(Some(row.report.rps), unpaid)
            .map_or_else(|| "-".to_owned(), |r| format!("{r:.2}"));
        let facilitator = match (row.facilitator_calls, row.facilitator_connections) {
            (Some(calls), Some(connections)) => format!(
                "  [{calls} facilitator calls on {connections} new connections; stub cpu {:.2}]",
                row.stub_cpu_seconds / row.report.seconds
            ),
            _ => String::new(),
        };
        println!(
            "{:<10} {:<17} {:<38} {:>9.0} {:>9} {:>7.2} {:>10.0} {:>7.2} {:>7.2} {:>6.2}{facilitator}",
            row.target.name(),
            row.id,
            row.title,
            row.report.rps,
            versus,
            row.server_cpu_seconds / row.report.seconds,
            row.requests_per_cpu_second,
            row.report.p50_ms,
            row.report.p99_ms,
            row.load1,
        );
    }
    if let Some((k256, secp256k1)) = bound {
        println!(
            "decode + verify bound on one core: {k256:.0}/s with k256, {secp256k1:.0}/s with secp256k1"
        );
    }
    println!();
    let show = |r: Option<f64>| r.map_or_else(|| "-".to_owned(), |r| format!("{r:.2}"));
    println!(
        "{:<60} {:>8} {:>10} {:>8}  met",
        "goal (issue 16)", "ratio", "per cpu-s", "≥"
    );
    for goal in goals {
        println!(
            "{:<60} {:>8} {:>10} {:>8}  {}",
            goal.goal,
            show(goal.ratio),
            show(goal.ratio_per_cpu),
            goal.threshold,
            match goal.met {
                Some(true) => "yes",
                Some(false) => "NO",
                None => "not measured",
            }
        );
    }
}

/// Set in the harness's own session (see [`RunArgs::nice`]).
const SESSION_MARKER: &str = "X402_BENCH_OWN_SESSION";

/// With `--nice`: reruns this command in a new session (its own scheduler autogroup) and
/// returns its exit status; inside that session, gives the autogroup the nice value.
fn own_session(nice: i32) -> Result<Option<std::process::ExitStatus>, Error> {
    if std::env::var_os(SESSION_MARKER).is_some() {
        if let Err(error) = std::fs::write("/proc/self/autogroup", nice.to_string()) {
            eprintln!("could not set the autogroup's nice value: {error}");
        }
        return Ok(None);
    }
    let status = Command::new("setsid")
        .arg("--wait")
        .arg(std::env::current_exe()?)
        .args(std::env::args_os().skip(1))
        .env(SESSION_MARKER, "1")
        .status()
        .map_err(|e| format!("setsid (util-linux): {e}"))?;
    Ok(Some(status))
}

/// Measures every selected row of every selected target.
pub(crate) fn run(args: RunArgs) -> Result<(), Error> {
    if let Some(nice) = args.nice
        && let Some(status) = own_session(nice)?
    {
        return if status.success() {
            Ok(())
        } else {
            Err(format!("the harness failed ({status})").into())
        };
    }
    let exe = std::env::current_exe()?;
    for peer in &args.peers {
        if peer != "x402-axum" && peer != "express" {
            return Err(format!("unknown peer {peer:?}: use x402-axum or express").into());
        }
    }
    // Build the peers first, so nothing compiles while measuring.
    let x402_axum = if args.peers.iter().any(|p| p == "x402-axum") {
        Some(build_x402_axum_peer()?)
    } else {
        None
    };
    let express = if args.peers.iter().any(|p| p == "express") {
        Some(install_express_peer()?)
    } else {
        None
    };

    let http = Http::new()?;
    let (stub, stub_ports) = Process::start(
        "the stub facilitator",
        &args.load_core,
        args.nice,
        &[],
        &exe,
        &["stub".to_owned()],
        Duration::from_secs(20),
    )?;
    let stub_url = format!("http://127.0.0.1:{}", port(&stub_ports, "port")?);
    let signer = LocalSigner::from_hex(PAYER_KEY)?;
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let prefix: Vec<String> = args
        .server_prefix
        .as_deref()
        .map(|p| p.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();

    let mut targets: Vec<(Target, PathBuf, Vec<String>, &[RowSpec])> = vec![(
        Target::This,
        exe.clone(),
        vec![
            "server".to_owned(),
            "--facilitator".to_owned(),
            stub_url.clone(),
            "--payer".to_owned(),
            signer.address().to_string(),
        ],
        THIS_ROWS,
    )];
    if let Some(binary) = x402_axum {
        targets.push((
            Target::X402Axum,
            binary,
            vec!["--facilitator".to_owned(), stub_url.clone()],
            PEER_ROWS,
        ));
    }
    if let Some(script) = express {
        targets.push((
            Target::Express,
            PathBuf::from("node"),
            vec![
                script.to_string_lossy().into_owned(),
                "--facilitator".to_owned(),
                stub_url.clone(),
            ],
            PEER_ROWS,
        ));
    }

    let mut rows = Vec::new();
    let mut bound = None;
    for (target, program, server_args, specs) in targets {
        let specs = selected(&args, specs);
        if specs.is_empty() {
            continue;
        }
        eprintln!("starting {} on core {}…", target.name(), args.server_core);
        let (server, ports) = Process::start(
            target.name(),
            &args.server_core,
            args.nice,
            &prefix,
            &program,
            &server_args,
            Duration::from_secs(120),
        )?;
        let mut session = Session {
            args: &args,
            http: &http,
            stub_url: &stub_url,
            target,
            ports,
            server_pid: server.child.id(),
            stub_pid: stub.child.id(),
            payments: None,
            used: Default::default(),
            token: None,
        };
        if specs.iter().any(|s| s.kind == Kind::Paid) || (target == Target::This && !args.no_bound)
        {
            let url = format!("http://127.0.0.1:{}/weather", port(&session.ports, "http")?);
            let requirement = http.requirement(&url)?;
            let file = headers::ensure(
                &bench_dir().join("headers"),
                &requirement,
                args.payments,
                threads,
            )?;
            if target == Target::This && !args.no_bound && bound.is_none() {
                bound = Some(crate::bound::measure(&args.server_core, args.nice, &file)?);
            }
            session.payments = Some(file);
        }
        if specs.iter().any(|s| s.kind == Kind::Entitled) {
            // Buy the pass once, with a payment of its own.
            let url = format!("http://127.0.0.1:{}/pass", port(&session.ports, "http")?);
            let requirement = http.requirement(&url)?;
            let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
            let payment =
                headers::sign_one(&requirement, &signer, &NetworkRegistry::builtin(), now)?;
            let response = http.get(&url, &[("payment-signature", &payment)])?;
            let token = response
                .headers()
                .get("x402-entitlement")
                .ok_or_else(|| {
                    format!(
                        "{url}: paid, but got no entitlement token ({})",
                        response.status()
                    )
                })?
                .to_str()?
                .to_owned();
            session.token = Some(token);
        }
        for spec in specs {
            eprintln!("{} / {}…", target.name(), spec.id);
            let row = session.measure(spec)?;
            eprintln!(
                "  {:.0} req/s (load average {:.2})",
                row.report.rps, row.load1
            );
            rows.push(row);
        }
        drop(server);
    }

    let goals = goals(&rows, bound);
    print_table(&args, &rows, bound, &goals);
    if let Some(path) = &args.json {
        let report = json!({
            "unix_time": SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs(),
            "seconds": args.seconds,
            "connections": args.connections,
            "server_core": args.server_core,
            "load_core": args.load_core,
            "nice": args.nice,
            "rows": rows,
            "bound": bound.map(|(k256, secp256k1)| json!({"k256": k256, "secp256k1": secp256k1})),
            "goals": goals,
        });
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}
