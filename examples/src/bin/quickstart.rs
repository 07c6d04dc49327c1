//! x402 in one program: a paid axum API (embedded facilitator, dev ledger, nothing to set up)
//! and a client that meets its 402, signs an EIP-3009 authorization, pays, sends the same
//! payment again, pays a metered route (`upto`) only for what it used, and pays on Solana.
//!
//! ```sh
//! cargo run -p x402-examples --bin quickstart            # the walkthrough
//! cargo run -p x402-examples --bin quickstart -- --serve # just the API, for x402ctl or curl
//! ```

use std::net::SocketAddr;

use x402_examples::quickstart::{self, DEMO_PAYER_KEY, PAY_TO};
use x402_examples::term::{bold, cyan, dim, green, red, short, yellow};
use x402_protocol::client::sign_payment;
use x402_protocol::eip3009::LocalSigner;
use x402_protocol::facilitator::{PaymentRequirements, SettleResponse};
use x402_protocol::{Address, NetworkRegistry, U256, amount::format_units, codec, v2};

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() {
    x402_examples::init_logging();
    let result = if std::env::args().any(|a| a == "--serve") {
        serve().await
    } else {
        walkthrough().await
    };
    x402_examples::exit_on_error(result);
}

/// Serves the API until interrupted, and says how to pay it.
async fn serve() -> Result<(), Error> {
    let port = x402_examples::port(4021);
    let (_x402, address, task) =
        quickstart::serve(SocketAddr::from(([127, 0, 0, 1], port))).await?;
    let payer = LocalSigner::from_hex(DEMO_PAYER_KEY)?.address();
    println!(
        "{} http://{address}/weather costs 0.01 USDC on base-sepolia",
        bold("serving")
    );
    println!(
        "{} {payer} holds 10 USDC in the dev ledger; pay as it with:",
        bold("demo payer")
    );
    println!(
        "  X402_PRIVATE_KEY={DEMO_PAYER_KEY} cargo run -p x402ctl -- pay http://{address}/weather"
    );
    let solana = quickstart::demo_solana_payer();
    println!(
        "{} http://{address}/weather-sol costs 0.01 USDC on solana-devnet; its demo payer holds 10 USDC too:",
        bold("serving")
    );
    println!(
        "  X402_SOLANA_KEY={} cargo run -p x402ctl -- pay http://{address}/weather-sol",
        solana.to_base58_string()
    );
    tokio::select! {
        _ = task => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}

async fn walkthrough() -> Result<(), Error> {
    let (x402, address, _server) = quickstart::serve(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let url = format!("http://{address}/weather");
    let payer = LocalSigner::from_hex(DEMO_PAYER_KEY)?;
    let registry = NetworkRegistry::builtin();
    let network = registry.network("base-sepolia")?;
    let ledger = x402
        .gate()
        .dev_ledger()
        .ok_or("the embedded facilitator has a dev ledger")?;
    let balance = |who: Address| {
        let atomic = ledger.balance(&network.caip2, network.default_asset.address, who);
        format!("{} USDC", format_units(atomic, 6))
    };
    let pay_to: Address = PAY_TO.parse()?;
    let client = reqwest::Client::new();

    println!(
        "{}",
        bold("x402 quickstart: a paid API and a client paying it, offline")
    );
    println!(
        "{}",
        dim(&format!(
            "server {url} (embedded facilitator, dev ledger) · payer {} ({})",
            short(&payer.address().to_checksum(None)),
            balance(payer.address())
        ))
    );

    // 1. No payment: 402 with the ways to pay.
    let response = client.get(&url).send().await?;
    let status = response.status();
    let header = response
        .headers()
        .get("payment-required")
        .ok_or("a 402 carries PAYMENT-REQUIRED")?
        .to_str()?
        .to_owned();
    let required: v2::PaymentRequired = codec::decode(&header, codec::DEFAULT_MAX_HEADER_BYTES)?;
    let offer = required
        .accepts
        .first()
        .ok_or("the 402 offers a way to pay")?
        .clone();
    println!("\n{} GET /weather", bold("1."));
    println!(
        "   ← {} {} USDC on {} to {} {}",
        yellow(&status.to_string()),
        format_units(offer.amount, 6),
        offer.network,
        cyan(&short(&offer.pay_to)),
        dim("(v1 JSON body + v2 PAYMENT-REQUIRED header)")
    );

    // 2. Sign an EIP-3009 authorization for that offer.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let requirement = PaymentRequirements::V2(offer);
    let payment = sign_payment(
        &requirement,
        required.resource.as_ref(),
        &payer,
        &registry,
        now,
    )?;
    let Some(exact) = payment.payload().as_eip3009() else {
        return Err("the quickstart signs EIP-3009 payments".into());
    };
    let authorization = &exact.authorization;
    println!("{} sign TransferWithAuthorization", bold("2."));
    println!(
        "   value {} · valid for {} s · nonce {}",
        authorization.value,
        authorization.valid_before.saturating_sub(U256::from(now)),
        cyan(&short(&authorization.nonce.to_string()))
    );
    let header = codec::encode(&payment);

    // 3. Pay: the same request with PAYMENT-SIGNATURE.
    let response = client
        .get(&url)
        .header("payment-signature", &header)
        .send()
        .await?;
    let status = response.status();
    let receipt = response
        .headers()
        .get("payment-response")
        .map(|v| v.to_str().map(str::to_owned))
        .transpose()?;
    let body = response.text().await?;
    println!("{} GET /weather with PAYMENT-SIGNATURE", bold("3."));
    println!("   ← {} {}", green(&status.to_string()), body.trim());
    if let Some(receipt) = receipt {
        let receipt: SettleResponse = codec::decode(&receipt, codec::DEFAULT_MAX_HEADER_BYTES)?;
        println!(
            "   receipt: {} tx {} on {}",
            if receipt.success {
                green("settled")
            } else {
                red("failed")
            },
            cyan(&short(&receipt.transaction)),
            receipt.network
        );
    }

    // 4. The dev ledger moved.
    println!("{} dev ledger", bold("4."));
    println!(
        "   payee {} now holds {} · payer holds {}",
        cyan(&short(PAY_TO)),
        green(&balance(pay_to)),
        balance(payer.address())
    );

    // 5. The same authorization again.
    let response = client
        .get(&url)
        .header("payment-signature", &header)
        .send()
        .await?;
    let status = response.status();
    let answer: serde_json::Value = response.json().await?;
    println!("{} replay the same PAYMENT-SIGNATURE", bold("5."));
    if status.is_success() {
        // A payment sent again (a client whose answer was lost) gets the answer it paid for,
        // from the journal, and is not charged twice.
        println!(
            "   ← {} the same answer again, from the payment journal; charged once: payer still holds {}",
            green(&status.to_string()),
            balance(payer.address())
        );
    } else {
        println!(
            "   ← {} {}: {}",
            red(&status.to_string()),
            answer["error"].as_str().unwrap_or("?"),
            answer["message"].as_str().unwrap_or("")
        );
    }
    // 6. Metered: authorize at most 0.10 USDC, be charged for what was used.
    let metered =
        format!("http://{address}/summarize?text=x402+lets+any+web+API+charge+per+request");
    let response = client.get(&metered).send().await?;
    let header = response
        .headers()
        .get("payment-required")
        .ok_or("a 402 carries PAYMENT-REQUIRED")?
        .to_str()?
        .to_owned();
    let required: v2::PaymentRequired = codec::decode(&header, codec::DEFAULT_MAX_HEADER_BYTES)?;
    let offer = required
        .accepts
        .first()
        .ok_or("the 402 offers a way to pay")?
        .clone();
    let maximum = offer.amount;
    let payment = sign_payment(
        &PaymentRequirements::V2(offer),
        required.resource.as_ref(),
        &payer,
        &registry,
        now,
    )?;
    let before = balance(payer.address());
    let response = client
        .get(&metered)
        .header("payment-signature", codec::encode(&payment))
        .send()
        .await?;
    let status = response.status();
    let receipt = response
        .headers()
        .get("payment-response")
        .map(|v| v.to_str().map(str::to_owned))
        .transpose()?;
    let body = response.text().await?;
    println!(
        "{} GET /summarize, metered (upto): authorize at most {} USDC through Permit2",
        bold("6."),
        format_units(maximum, 6)
    );
    println!("   ← {} {}", green(&status.to_string()), body.trim());
    if let Some(receipt) = receipt {
        let receipt: SettleResponse = codec::decode(&receipt, codec::DEFAULT_MAX_HEADER_BYTES)?;
        let charged = receipt
            .amount
            .as_deref()
            .and_then(|a| a.parse::<U256>().ok())
            .unwrap_or_default();
        println!(
            "   settled {} USDC of the {} authorized · payer {} → {}",
            green(&format_units(charged, 6)),
            format_units(maximum, 6),
            before,
            balance(payer.address())
        );
    }
    solana_step(&x402, address).await?;
    println!(
        "\n{}",
        dim(
            "Serve it and pay with the CLI: cargo run -p x402-examples --bin quickstart -- --serve"
        )
    );
    Ok(())
}

/// Step 7, the same report on Solana devnet, paid by reqwest-x402 with an ed25519 key: the 402
/// names the facilitator's fee payer and (the dev ledger needs no node) a blockhash to build
/// on; the payer signs an SPL `TransferChecked`, the facilitator verifies and settles it.
async fn solana_step(x402: &axum_x402::X402, address: SocketAddr) -> Result<(), Error> {
    use reqwest_x402::{PaymentResponseExt as _, X402Middleware};
    use solana_signer::Signer as _;
    use x402_protocol::{ChainAddress, SolanaAddress};

    let registry = NetworkRegistry::builtin();
    let network = registry.network("solana-devnet")?;
    let ledger = x402
        .gate()
        .dev_ledger()
        .ok_or("the embedded facilitator has a dev ledger")?;
    let keypair = quickstart::demo_solana_payer();
    let payer = ChainAddress::Solana(SolanaAddress(keypair.pubkey().to_bytes()));
    let balance = || {
        let atomic = ledger.balance(&network.caip2, network.default_asset.address, payer);
        format!("{} USDC", format_units(atomic, 6))
    };
    let before = balance();
    let client = X402Middleware::solana_builder(x402_svm::SolanaWallet::offline(keypair))
        .max_per_request("$0.05")
        .build()?
        .client()?;
    let url = format!("http://{address}/weather-sol");
    let response = client.get(&url).send().await?;
    let status = response.status();
    let receipt = response.settlement().cloned();
    let body = response.text().await?;
    println!(
        "{} GET /weather-sol on solana-devnet, paid by reqwest-x402 with an ed25519 key",
        bold("7.")
    );
    println!("   ← {} {}", green(&status.to_string()), body.trim());
    if let Some(receipt) = receipt {
        println!(
            "   transaction {} · payer {} → {}",
            cyan(&short(&receipt.transaction)),
            before,
            balance()
        );
    }
    Ok(())
}
