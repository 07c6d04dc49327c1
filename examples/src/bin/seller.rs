//! A paid API configured only by the environment: networks, tokens, facilitator, recipient and
//! default network come from the configuration file in `X402_CONFIG` (see
//! `x402_runtime::config`), the port from `PORT`, log filters from `RUST_LOG`.
//!
//! ```sh
//! X402_CONFIG=x402.toml PORT=4021 cargo run -p x402-examples --bin seller
//! x402ctl pay --config x402.toml http://127.0.0.1:4021/weather
//! ```

use std::net::SocketAddr;

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() {
    x402_examples::init_logging();
    x402_examples::exit_on_error(run().await);
}

async fn run() -> Result<(), Error> {
    let x402 = x402_examples::seller::x402_from_env()?;
    let listener = tokio::net::TcpListener::bind(SocketAddr::from((
        [127, 0, 0, 1],
        x402_examples::port(4021),
    )))
    .await?;
    let address = listener.local_addr()?;
    // The first line of stdout is the URL, for scripts (x402ctl dev reads it).
    println!("http://{address}");
    tracing::info!(target: "x402_examples", "GET http://{address}/weather costs $0.01");
    axum::serve(listener, x402_examples::seller::app(&x402))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
