//! Pays a URL's 402 with USDC on Solana (or on an EVM chain, when `X402_PRIVATE_KEY` is set
//! too), and prints the answer and what was paid.
//!
//! ```text
//! X402_SOLANA_KEY=<base58 keypair or path to id.json> \
//! X402_SOLANA_RPC=https://api.devnet.solana.com \
//!     cargo run -p reqwest-x402 --features svm --example pay_solana -- https://api.example.com/data
//! ```

use std::sync::Arc;

use reqwest_x402::x402_svm::{RpcChain, SolanaWallet, wallet};
use reqwest_x402::{PaymentResponseExt, X402Middleware};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args().nth(1).ok_or("usage: pay_solana <url>")?;
    let keypair = wallet::keypair_from_env("X402_SOLANA_KEY")?;
    let rpc = std::env::var("X402_SOLANA_RPC")
        .unwrap_or_else(|_| "https://api.devnet.solana.com".to_owned());
    // The RPC node gives the recent blockhash (unless the 402 carries one) and the program
    // and decimals of mints the client does not know.
    let wallet = SolanaWallet::new(keypair, Arc::new(RpcChain::new(rpc)));

    let builder = match reqwest_x402::key_from_env("X402_PRIVATE_KEY") {
        // Both keys: the payer takes the cheapest offer it can pay, on either chain.
        Ok(evm) => X402Middleware::builder(evm).solana(wallet),
        Err(_) => X402Middleware::solana_builder(wallet),
    };
    let x402 = builder.max_per_request("$0.05").budget("$1").build()?;
    let client = x402.client()?;

    let response = client.get(&url).send().await?;
    if let Some(payment) = response.payment() {
        eprintln!("paid {}", payment.summary());
    }
    println!("{}", response.text().await?);
    Ok(())
}
