//! Shared pieces of the examples: the quickstart's paid API and the MCP example's paid tools,
//! so that tests (and `x402ctl`'s) can start the very servers the examples run.

pub mod mcp;
pub mod quickstart;
pub mod seller;
pub mod term;

/// Logs to stderr through `tracing`, filtered by `RUST_LOG` (default: `info` for x402 and the
/// example, `warn` for the rest).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("warn,x402=info,x402_examples=info")
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// The port to listen on: `PORT` from the environment, else `default` (0 picks a free one).
pub fn port(default: u16) -> u16 {
    match std::env::var("PORT") {
        Ok(value) => value.trim().parse().unwrap_or_else(|_| {
            eprintln!("PORT={value:?} is not a port number; using {default}");
            default
        }),
        Err(_) => default,
    }
}

/// Ends the program with the error's sentence (its `Display`, never `Debug`) and status 1.
pub fn exit_on_error<E: std::fmt::Display>(result: Result<(), E>) {
    if let Err(error) = result {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}

/// The README's Rust examples, compiled as doc tests so they cannot drift from the code.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
