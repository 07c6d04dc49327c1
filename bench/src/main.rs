//! `x402-bench`: the load harness of issue 16, measured the way a load balancer sees a server.
//!
//! ```sh
//! scripts/loadtest                              # this project, every row, 8 s each
//! scripts/loadtest --peers x402-axum,express    # the same routes on x402-axum 2.0.2 and @x402/express 2.27
//! scripts/loadtest --json target/x402-bench/last.json
//! ```
//!
//! The server under test runs alone on one core (`taskset -c 0`); `wrk` (1 thread, 32
//! connections) and a stub facilitator share the other. Paid rows send pre-signed, distinct
//! payments (replay protection stays on). See the README's "Load harness" section.

mod bound;
mod headers;
mod run;
mod server;
mod stub;
mod wrk;

use clap::{Parser, Subcommand};

pub(crate) type Error = Box<dyn std::error::Error + Send + Sync>;

/// Recipient of every bench payment, on every server.
pub(crate) const PAY_TO: &str = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";

/// Network of every bench payment.
pub(crate) const BENCH_NETWORK: &str = "base-sepolia";

/// A command that runs `program` pinned to the CPUs in `core`, at scheduling priority `nice`
/// when given (negative values need root: they let the measured processes win the CPU over
/// builds running on a shared machine).
pub(crate) fn pinned(
    core: &str,
    nice: Option<i32>,
    program: impl AsRef<std::ffi::OsStr>,
) -> std::process::Command {
    let mut command = std::process::Command::new("taskset");
    command.args(["-c", core]);
    if let Some(nice) = nice {
        command.args(["nice", "-n", &nice.to_string()]);
    }
    command.arg(program);
    command
}

#[derive(Parser)]
#[command(about = "Load harness for x402 servers (issue 16)")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: run::RunArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Measure (the default).
    Run(run::RunArgs),
    /// The server under test (started by `run`).
    Server(server::ServerArgs),
    /// The stub facilitator (started by `run`).
    Stub(stub::StubArgs),
    /// Decode + verify pre-signed payments in a loop: the single-core bound of a paid route.
    Bound(bound::BoundArgs),
}

fn main() -> Result<(), Error> {
    let cli = Cli::parse();
    match cli.command {
        None => run::run(cli.run),
        Some(Command::Run(args)) => run::run(args),
        Some(Command::Server(args)) => server::run(args),
        Some(Command::Stub(args)) => stub::run(args),
        Some(Command::Bound(args)) => bound::run(args),
    }
}
