//! `x402ctl`: x402 from the command line.
//!
//! - `x402ctl pay <url>`: a curl that pays (`-X`, `-d`, `-H`, `--max`, `--key-env`,
//!   `--network`, `--solana-key`, `--solana-rpc`); the body goes to stdout, what was paid to
//!   stderr.
//! - `x402ctl inspect <header value | JSON | url>`: explains a 402, a payment or a receipt and
//!   checks a payment's signature offline.
//! - `x402ctl keygen [--solana]`: a fresh development key (EVM, or a Solana keypair) and its
//!   address.
//! - `x402ctl discover <facilitator>`: what a facilitator's Bazaar catalogue lists
//!   (`--type`, `--network`, `--pay-to`, `--scheme`, `--extension`, `--limit`, `--offset`,
//!   `--all`, `--search <words>`, `--json`).
//! - `x402ctl serve`: a facilitator (`/verify`, `/settle`, `/supported`,
//!   `/discovery/resources`) over the embedded verifier and a dev ledger.
//! - `x402ctl payments --journal <url>`: list a payment journal (SQLite or Postgres) with
//!   filters, or its totals per route, day, payer or network; a table or `--json`.
//! - `x402ctl mcp call <server> <tool> [--args JSON]`: call a tool of an MCP server (a stdio
//!   command or a streamable HTTP URL) and pay for it, with the flags of `pay`.
//!
//! Exit status: 0 on success; 1 when the request or server failed (or the final HTTP status is
//! an error, or an inspected signature does not verify); 2 for usage mistakes and payments the
//! client refused to make.

use std::net::IpAddr;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

mod dev;
mod discover;
mod inspect;
mod mcp;
mod pay;
mod payments;
mod seller;
mod serve;
mod time;

/// x402 from the command line: pay, inspect, make keys, run a dev facilitator.
#[derive(Debug, Parser)]
#[command(name = "x402ctl", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Request a URL like curl and pay its 402 (prints the body; the payment goes to stderr).
    Pay(PayArgs),
    /// Explain a 402 challenge, a payment header or a receipt; check a payment's signature.
    Inspect {
        /// A header value (base64), `Header-Name: value`, raw JSON, a URL to GET, or `-` for
        /// stdin.
        input: String,
    },
    /// Make a development key and print its address.
    Keygen {
        /// Print JSON instead of text: `{"address", "privateKey"}`, or with --solana
        /// `{"address", "secretKey"}`.
        #[arg(long)]
        json: bool,
        /// Make a Solana keypair (printed as the base58 64-byte secret wallets import)
        /// instead of an EVM key.
        #[arg(long)]
        solana: bool,
    },
    /// Run a facilitator: settles on the configured chains (or, with --dev, into an
    /// in-memory dev ledger).
    Serve(ServeArgs),
    /// A whole dev network in one command: a local chain (anvil, when found) with the test
    /// token and funded payers, the facilitator, and paid sellers; prints every URL and key,
    /// stops everything on Ctrl-C.
    Dev(DevArgs),
    /// A small paid API configured by a configuration file (what `x402ctl dev` starts).
    #[command(hide = true)]
    Seller(seller::SellerArgs),
    /// List journaled payments, or their totals, from a SQLite or Postgres journal.
    Payments(PaymentsArgs),
    /// List what a facilitator's Bazaar catalogue offers (or search it).
    Discover(DiscoverArgs),
    /// Use MCP servers whose tools are paid with x402.
    Mcp {
        #[command(subcommand)]
        command: McpCommand,
    },
}

#[derive(Debug, Subcommand)]
enum McpCommand {
    /// Call a tool and pay for it (prints the tool's text; the payment goes to stderr).
    Call(McpCallArgs),
}

/// Arguments of `x402ctl discover`.
#[derive(Debug, Args)]
pub(crate) struct DiscoverArgs {
    /// The facilitator's base URL (its `/discovery/resources` is asked).
    facilitator: String,
    /// Only resources of this type: http or mcp.
    #[arg(long = "type")]
    kind: Option<String>,
    /// Only resources payable on this network (CAIP-2 id or name).
    #[arg(long)]
    network: Option<String>,
    /// Only resources paying this recipient.
    #[arg(long)]
    pay_to: Option<String>,
    /// Only resources with this scheme (exact, upto, …).
    #[arg(long)]
    scheme: Option<String>,
    /// Only resources declaring this extension (repeatable).
    #[arg(long)]
    extension: Vec<String>,
    /// Page size, 1–100.
    #[arg(long, default_value_t = 20)]
    limit: u32,
    /// Entries to skip.
    #[arg(long, default_value_t = 0)]
    offset: u64,
    /// Follow the pages to the end (at most 10 000 entries).
    #[arg(long)]
    all: bool,
    /// Search for these words instead of listing (`/discovery/search`).
    #[arg(long)]
    search: Option<String>,
    /// Print the JSON answer.
    #[arg(long)]
    json: bool,
}

/// Arguments of `x402ctl mcp call`.
#[derive(Debug, Args)]
pub(crate) struct McpCallArgs {
    /// The MCP server: a streamable HTTP URL (`http://127.0.0.1:8000/mcp`) or a command line
    /// that starts a stdio server (split on whitespace).
    server: String,
    /// The tool's name.
    tool: String,
    /// The tool's arguments, a JSON object.
    #[arg(long)]
    args: Option<String>,
    /// The most this call may cost: "$0.10", "0.10" (dollars) or "5 EURC".
    #[arg(long, default_value = x402_client::DEFAULT_MAX_PER_REQUEST)]
    max: String,
    /// Environment variable holding the payer's private key.
    #[arg(long, default_value = "X402_PRIVATE_KEY")]
    key_env: String,
    #[command(flatten)]
    solana: SolanaArgs,
    /// Only pay on this network (v1 name or CAIP-2 id; repeatable).
    #[arg(long)]
    network: Vec<String>,
    /// Print the whole tool result as JSON (with `_meta`) instead of its text.
    #[arg(long)]
    json: bool,
}

/// Arguments of `x402ctl pay`.
#[derive(Debug, Args)]
pub(crate) struct PayArgs {
    /// The URL to request.
    url: String,
    /// HTTP method (default GET, or POST with -d).
    #[arg(short = 'X', long = "request")]
    method: Option<String>,
    /// Request body; `@file` reads a file.
    #[arg(short = 'd', long = "data")]
    data: Option<String>,
    /// A request header, "Name: value" (repeatable).
    #[arg(short = 'H', long = "header")]
    header: Vec<String>,
    /// The most this request may cost: "$0.10", "0.10" (dollars) or "5 EURC".
    #[arg(long, default_value = reqwest_x402::DEFAULT_MAX_PER_REQUEST)]
    max: String,
    /// Environment variable holding the payer's private key.
    #[arg(long, default_value = "X402_PRIVATE_KEY")]
    key_env: String,
    /// Only pay on this network (v1 name or CAIP-2 id; repeatable).
    #[arg(long)]
    network: Vec<String>,
    /// Print the response status and headers before the body.
    #[arg(short = 'i', long)]
    include: bool,
    /// A configuration file whose networks and tokens the client knows (default: the file in
    /// X402_CONFIG), so local chains and custom tokens can be paid.
    #[arg(long)]
    config: Option<std::path::PathBuf>,
    /// A network to know, as one `[[network]]` entry of the configuration format written as a
    /// TOML inline table (repeatable), e.g. '{ name = "anvil", chain_id = 31337, token = [{
    /// address = "0x…", symbol = "USDC", decimals = 6, eip712_name = "X402 Test USD",
    /// eip712_version = "2", usd = true }] }'.
    #[arg(long)]
    chain: Vec<String>,
    /// When the server answers a Permit2 payment with 412 permit2_allowance_required, approve
    /// Permit2 for the token (unlimited) from the payer's key through this RPC node, wait for
    /// the transaction, and send the same payment again. The payer needs gas on that chain.
    #[arg(long, value_name = "RPC_URL")]
    approve_permit2: Option<String>,
    #[command(flatten)]
    solana: SolanaArgs,
}

/// The Solana key of `pay` and `mcp call`.
#[derive(Debug, Args)]
pub(crate) struct SolanaArgs {
    /// Pay Solana offers with this keypair: its base58 text (a wallet's export, as `keygen
    /// --solana` prints it) or the path of a solana-keygen id.json. Without an EVM key in
    /// --key-env, only Solana offers are paid.
    #[arg(
        long,
        env = "X402_SOLANA_KEY",
        hide_env_values = true,
        value_name = "KEY_OR_PATH"
    )]
    solana_key: Option<String>,
    /// A Solana JSON-RPC node, for the recent blockhash when the offer carries none and for
    /// mints the client does not know.
    #[arg(long, env = "X402_SOLANA_RPC", value_name = "RPC_URL")]
    solana_rpc: Option<String>,
}

/// Arguments of `x402ctl serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The configuration file: networks (RPC URLs, signers, tokens) and `[facilitator]`
    /// settings (default: the file in X402_CONFIG).
    #[arg(long)]
    config: Option<std::path::PathBuf>,
    /// Development mode: settle into an in-memory dev ledger on every known network (no chain,
    /// no money, no auth).
    #[arg(long)]
    dev: bool,
    /// Address to listen on (default: `[facilitator] listen`, else 127.0.0.1).
    #[arg(long)]
    host: Option<IpAddr>,
    /// Port to listen on (0 picks a free one; the URL is the first line on stdout; default:
    /// `[facilitator] listen`, else 4022).
    #[arg(long)]
    port: Option<u16>,
    /// Environment variable holding the callers' bearer tokens, `name:token[,name:token…]`
    /// (default: `[facilitator] auth_tokens_env`).
    #[arg(long)]
    auth_tokens_env: Option<String>,
    /// Serve without caller authentication (only behind a gateway that authenticates).
    #[arg(long)]
    no_auth: bool,
    /// The settlement journal: sqlite://path, postgres://…, memory: (default: `[facilitator]
    /// journal`, else sqlite://x402-facilitator.db; memory: with --dev).
    #[arg(long, env = "X402_JOURNAL_URL", hide_env_values = true)]
    journal: Option<String>,
    /// Credit an account in the dev ledger: <address>=<amount>[@<network>], the amount in whole
    /// tokens of each network's default stablecoin (repeatable; implies --dev).
    #[arg(long)]
    fund: Vec<serve::Funding>,
}

/// Arguments of `x402ctl payments`.
#[derive(Debug, Args)]
pub(crate) struct PaymentsArgs {
    /// The journal: sqlite://path/to/journal.db or postgres://user@host/database. It is only
    /// read: nothing is created or upgraded.
    #[arg(long, env = "X402_JOURNAL_URL", hide_env_values = true)]
    journal: String,
    /// Only this route.
    #[arg(long)]
    route: Option<String>,
    /// Only this payer (EVM addresses in any letter case).
    #[arg(long)]
    payer: Option<String>,
    /// Only these states: verified, settling, settled, failed, unknown, released
    /// (repeatable or comma-separated).
    #[arg(long, value_delimiter = ',', value_parser = payments::parse_state)]
    state: Vec<x402_runtime::journal::PaymentState>,
    /// Only this network (name or CAIP-2 id).
    #[arg(long)]
    network: Option<String>,
    /// Only payments admitted at or after this time: unix seconds, RFC 3339 or a UTC date.
    #[arg(long, value_parser = payments::parse_time)]
    since: Option<u64>,
    /// Only payments admitted before this time: unix seconds, RFC 3339 or a UTC date.
    #[arg(long, value_parser = payments::parse_time)]
    until: Option<u64>,
    /// Show at most this many payments, newest first.
    #[arg(long, default_value_t = 50)]
    limit: u32,
    /// Show totals per route, day (UTC), payer or network instead of payments.
    #[arg(long, value_name = "route|day|payer|network", value_parser = payments::parse_group)]
    totals: Option<x402_runtime::journal::GroupBy>,
    /// Print JSON instead of a table (amounts in atomic units, as base-10 strings).
    #[arg(long)]
    json: bool,
}

/// Arguments of `x402ctl dev`.
#[derive(Debug, Args)]
pub(crate) struct DevArgs {
    /// How many paid sellers to start (1 to 8).
    #[arg(long, default_value_t = 1)]
    sellers: usize,
    /// The anvil binary (default: X402_ANVIL_BIN, `anvil` on the PATH, or
    /// .tools/node_modules/.bin/anvil).
    #[arg(long)]
    anvil: Option<std::path::PathBuf>,
    /// Do not start a chain: settle into the facilitator's in-memory dev ledger.
    #[arg(long)]
    no_anvil: bool,
    /// Where to write the configuration, keys, journal and logs (default: a new temporary
    /// directory).
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
    /// Show every process' log here instead of in files.
    #[arg(short, long)]
    verbose: bool,
}

/// Why a command failed, with its exit status.
#[derive(Debug)]
pub(crate) struct Failure {
    code: u8,
    message: Option<String>,
}

impl Failure {
    /// A usage mistake (bad flag, missing key): exit 2.
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Failure {
            code: 2,
            message: Some(message.into()),
        }
    }

    /// A payment the client refused to make: exit 2.
    pub(crate) fn refused(message: impl Into<String>) -> Self {
        Failure {
            code: 2,
            message: Some(message.into()),
        }
    }

    /// The network, the server or the response failed: exit 1.
    pub(crate) fn http(message: impl Into<String>) -> Self {
        Failure {
            code: 1,
            message: Some(message.into()),
        }
    }

    /// Exit 1, everything already said.
    pub(crate) fn silent_http() -> Self {
        Failure {
            code: 1,
            message: None,
        }
    }
}

/// An error and its sources, `a: b: c`, since reqwest's own text alone is terse.
pub(crate) fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

fn keygen(json: bool) {
    let key = x402_protocol::eip3009::LocalSigner::random();
    let secret = zeroize::Zeroizing::new(key.secret_hex());
    if json {
        println!(
            "{}",
            serde_json::json!({"address": key.address().to_checksum(None), "privateKey": *secret})
        );
    } else {
        println!("address      {}", key.address().to_checksum(None));
        println!("private key  {}", *secret);
    }
    eprintln!(
        "x402ctl keygen: this is a development key, printed in clear and stored nowhere; never hold real funds with it.\n\
         x402ctl keygen: to pay with it: export X402_PRIVATE_KEY=<private key>"
    );
}

fn keygen_solana(json: bool) {
    use solana_signer::Signer as _;
    let keypair = solana_keypair::Keypair::new();
    let secret = zeroize::Zeroizing::new(keypair.to_base58_string());
    let address = keypair.pubkey().to_string();
    if json {
        println!(
            "{}",
            serde_json::json!({"address": address, "secretKey": *secret})
        );
    } else {
        println!("address      {address}");
        println!("secret key   {}", *secret);
    }
    eprintln!(
        "x402ctl keygen: this is a development keypair, printed in clear and stored nowhere; never hold real funds with it.\n\
         x402ctl keygen: to pay with it: export X402_SOLANA_KEY=<secret key>"
    );
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Pay(args) => pay::run(args).await,
        Command::Inspect { input } => match inspect::run(&input).await {
            Ok(explained) => {
                print!("{}", explained.text);
                if explained.ok {
                    Ok(())
                } else {
                    Err(Failure::silent_http())
                }
            }
            Err(failure) => Err(failure),
        },
        Command::Keygen { json, solana } => {
            if solana {
                keygen_solana(json);
            } else {
                keygen(json);
            }
            Ok(())
        }
        Command::Serve(args) => serve::run(args).await,
        Command::Dev(args) => dev::run(args).await,
        Command::Seller(args) => seller::run(args).await,
        Command::Payments(args) => payments::run(args).await,
        Command::Discover(args) => discover::run(args).await,
        Command::Mcp {
            command: McpCommand::Call(args),
        } => mcp::call(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            if let Some(message) = failure.message {
                eprintln!("x402ctl: {message}");
            }
            ExitCode::from(failure.code)
        }
    }
}
