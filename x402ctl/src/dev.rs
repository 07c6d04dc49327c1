//! `x402ctl dev`: the whole x402 flow on this machine, with real processes.
//!
//! 1. a chain: `anvil` when it can be found (`--anvil`, `X402_ANVIL_BIN`, `anvil` on the
//!    `PATH`, or `.tools/node_modules/.bin/anvil`), with the workspace's EIP-3009 test token
//!    deployed and demo payers funded; otherwise the embedded dev ledger (no chain at all);
//! 2. the facilitator (`x402ctl serve`), settling on that chain with a signer of its own;
//! 3. one or more paid sellers (`x402ctl seller`);
//!
//! all described by one configuration file it writes (and prints), so `x402ctl pay --config`
//! pays them. It prints every URL and key a person needs, and stops everything on Ctrl-C.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use alloy_sol_types::{SolCall, SolValue};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use x402_protocol::eip3009::LocalSigner;
use x402_protocol::{Address, U256};

use crate::{DevArgs, Failure};

/// Anvil's well-known development keys (public knowledge; never hold real funds with them).
const DEV_KEYS: [&str; 10] = [
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
    "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
    "0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e",
    "0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",
    "0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97",
    "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6",
];
/// Deploys the token and mints (anvil account 0).
const DEPLOYER: usize = 0;
/// The demo payers (anvil accounts 1 and 4).
const PAYERS: [usize; 2] = [1, 4];
/// Receives the payments (anvil account 2).
const SELLER: usize = 2;
/// Pays the facilitator's gas (anvil account 9).
const FACILITATOR: usize = 9;
/// What each demo payer holds at start, in whole tokens.
const FUNDS: u64 = 100;

const TOKEN_ARTIFACT: &str = include_str!("../../contracts/out/X402TestToken.json");
const TOKEN_NAME: &str = "X402 Test USD";
const TOKEN_VERSION: &str = "2";

mod abi {
    #![allow(missing_docs, unreachable_pub)]
    alloy_sol_types::sol! {
        function mint(address to, uint256 value) external;
    }
}

fn address(key: &str) -> Result<Address, Failure> {
    LocalSigner::from_hex(key)
        .map(|k| k.address())
        .map_err(|e| Failure::usage(e.to_string()))
}

/// The anvil binary, if one can be found (see [`native_anvil`]).
fn find_anvil(args: &DevArgs) -> Option<PathBuf> {
    locate_anvil(args).map(native_anvil)
}

/// npm's `anvil` (`@foundry-rs/anvil`) is a node launcher that runs the platform's binary as
/// its child: stopping the launcher would leave the chain running. When `path` is that
/// launcher, this is the binary next to it; otherwise `path`.
fn native_anvil(path: PathBuf) -> PathBuf {
    let Ok(real) = path.canonicalize() else {
        return path;
    };
    if real
        .extension()
        .is_none_or(|ext| ext != "mjs" && ext != "js")
    {
        return path;
    }
    let Some(scope) = real.parent().and_then(Path::parent) else {
        return path;
    };
    std::fs::read_dir(scope)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|entry| entry.path().join("bin/anvil"))
        .find(|candidate| candidate.is_file())
        .unwrap_or(path)
}

fn locate_anvil(args: &DevArgs) -> Option<PathBuf> {
    if args.no_anvil {
        return None;
    }
    if let Some(path) = &args.anvil {
        return Some(path.clone());
    }
    if let Some(path) = std::env::var_os("X402_ANVIL_BIN").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let candidate = dir.join("anvil");
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    let local = PathBuf::from(".tools/node_modules/.bin/anvil");
    local.is_file().then_some(local)
}

/// A JSON-RPC call.
async fn rpc(
    http: &reqwest::Client,
    url: &str,
    method: &str,
    params: Value,
) -> Result<Value, String> {
    let answer: Value = http
        .post(url)
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
        .send()
        .await
        .map_err(|e| format!("{method}: {e}"))?
        .json()
        .await
        .map_err(|e| format!("{method}: {e}"))?;
    match answer.get("error") {
        Some(error) if !error.is_null() => Err(format!("{method}: {error}")),
        _ => Ok(answer.get("result").cloned().unwrap_or(Value::Null)),
    }
}

/// Sends a transaction from an unlocked anvil account and waits for its receipt.
async fn transact(http: &reqwest::Client, url: &str, tx: Value) -> Result<Value, String> {
    let hash = rpc(http, url, "eth_sendTransaction", json!([tx])).await?;
    for _ in 0..200 {
        let receipt = rpc(http, url, "eth_getTransactionReceipt", json!([hash])).await?;
        if !receipt.is_null() {
            if receipt["status"] != "0x1" {
                return Err(format!("transaction {hash} reverted"));
            }
            return Ok(receipt);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!("transaction {hash} was not mined"))
}

/// A child process whose first stdout line is its URL.
struct Process {
    name: &'static str,
    child: Child,
    url: String,
}

async fn spawn(
    name: &'static str,
    mut command: Command,
    log: &Path,
    verbose: bool,
) -> Result<Process, Failure> {
    command.stdout(Stdio::piped()).kill_on_drop(true);
    if verbose {
        command.stderr(Stdio::inherit());
    } else {
        let file = std::fs::File::create(log)
            .map_err(|e| Failure::usage(format!("cannot write {}: {e}", log.display())))?;
        command.stderr(file);
    }
    let mut child = command
        .spawn()
        .map_err(|e| Failure::usage(format!("cannot start the {name}: {e}")))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| Failure::usage(format!("the {name} has no stdout")))?;
    let mut lines = BufReader::new(stdout).lines();
    let url = match tokio::time::timeout(Duration::from_secs(60), lines.next_line()).await {
        Ok(Ok(Some(url))) => url,
        _ => {
            let log = std::fs::read_to_string(log).unwrap_or_default();
            return Err(Failure::http(format!(
                "the {name} did not start:\n{}",
                log.lines()
                    .rev()
                    .take(10)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join("\n")
            )));
        }
    };
    Ok(Process { name, child, url })
}

fn free_port() -> Result<u16, Failure> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| Failure::usage(format!("no free port: {e}")))
}

/// Writes a file only this user may read (keys, tokens).
fn write_secret(path: &Path, text: &str) -> Result<(), Failure> {
    std::fs::write(path, text)
        .map_err(|e| Failure::usage(format!("cannot write {}: {e}", path.display())))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    }
    Ok(())
}

/// Starts anvil and waits until it answers.
async fn start_anvil(bin: &Path, verbose: bool) -> Result<(Process, u64), Failure> {
    let port = free_port()?;
    let mut command = Command::new(bin);
    command.args([
        "--host",
        "127.0.0.1",
        "--port",
        &port.to_string(),
        "--silent",
    ]);
    command.stdout(Stdio::null()).kill_on_drop(true);
    if !verbose {
        command.stderr(Stdio::null());
    }
    let child = command
        .spawn()
        .map_err(|e| Failure::usage(format!("cannot start {}: {e}", bin.display())))?;
    let url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    for _ in 0..200 {
        if let Ok(id) = rpc(&http, &url, "eth_chainId", json!([])).await {
            let chain_id = id
                .as_str()
                .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok())
                .unwrap_or(31337);
            return Ok((
                Process {
                    name: "chain",
                    child,
                    url,
                },
                chain_id,
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(Failure::http(format!(
        "anvil ({}) did not answer",
        bin.display()
    )))
}

/// Deploys the test token and funds the demo payers.
async fn deploy_token(url: &str) -> Result<Address, Failure> {
    let http = reqwest::Client::new();
    let artifact: Value = serde_json::from_str(TOKEN_ARTIFACT)
        .map_err(|e| Failure::http(format!("the token artifact: {e}")))?;
    let code = artifact["bytecode"].as_str().unwrap_or_default();
    let args = (TOKEN_NAME, "USDC", TOKEN_VERSION).abi_encode_params();
    let deployer = address(DEV_KEYS[DEPLOYER])?;
    let receipt = transact(
        &http,
        url,
        json!({"from": deployer, "data": format!("{code}{}", x402_protocol::Bytes::from(args).to_string().trim_start_matches("0x"))}),
    )
    .await
    .map_err(Failure::http)?;
    let token: Address = receipt["contractAddress"]
        .as_str()
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| Failure::http("the token deployment created no contract"))?;
    for payer in PAYERS {
        let data = abi::mintCall {
            to: address(DEV_KEYS[payer])?,
            value: U256::from(FUNDS * 1_000_000),
        }
        .abi_encode();
        transact(
            &http,
            url,
            json!({"from": deployer, "to": token, "data": x402_protocol::Bytes::from(data)}),
        )
        .await
        .map_err(Failure::http)?;
    }
    Ok(token)
}

async fn stop(mut process: Process) {
    if let Some(pid) = process.child.id() {
        // SIGTERM first: the facilitator finishes settlements in flight.
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        if tokio::time::timeout(Duration::from_secs(20), process.child.wait())
            .await
            .is_ok()
        {
            return;
        }
    }
    let _ = process.child.kill().await;
    let _ = process.name;
}

pub(crate) async fn run(args: DevArgs) -> Result<(), Failure> {
    let dir = match &args.dir {
        Some(dir) => dir.clone(),
        None => std::env::temp_dir().join(format!("x402-dev-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir)
        .map_err(|e| Failure::usage(format!("cannot create {}: {e}", dir.display())))?;
    let exe = std::env::current_exe()
        .map_err(|e| Failure::usage(format!("cannot find this program: {e}")))?;
    let verbose = args.verbose;
    let sellers = args.sellers.clamp(1, 8);

    // The chain.
    let mut processes = Vec::new();
    let chain = match find_anvil(&args) {
        Some(bin) => {
            let (anvil, chain_id) = start_anvil(&bin, verbose).await?;
            let token = deploy_token(&anvil.url).await?;
            let url = anvil.url.clone();
            processes.push(anvil);
            Some((url, chain_id, token))
        }
        None => None,
    };

    // The configuration every process reads.
    let caller_token = format!(
        "dev-{}",
        LocalSigner::random().secret_hex().trim_start_matches("0x")
    );
    write_secret(&dir.join("caller-tokens"), &format!("dev:{caller_token}\n"))?;
    write_secret(&dir.join("facilitator-token"), &format!("{caller_token}\n"))?;
    let facilitator_port = free_port()?;
    let pay_to = address(DEV_KEYS[SELLER])?;
    let (network_name, network_section) = match &chain {
        Some((url, chain_id, token)) => {
            write_secret(
                &dir.join("signer-key"),
                &format!("{}\n", DEV_KEYS[FACILITATOR]),
            )?;
            (
                "anvil",
                format!(
                    "[[network]]\nname = \"anvil\"\nchain_id = {chain_id}\nrpc_url = \"{url}\"\nsigners = [{{ key_file = \"{key}\" }}]\n\n[[network.token]]\naddress = \"{token}\"\nsymbol = \"USDC\"\ndecimals = 6\neip712_name = \"{TOKEN_NAME}\"\neip712_version = \"{TOKEN_VERSION}\"\nusd = true\n\n[network.settlement]\npoll_interval = \"100ms\"\n\n",
                    key = dir.join("signer-key").display(),
                ),
            )
        }
        None => ("base-sepolia", String::new()),
    };
    let config = format!(
        "# Written by `x402ctl dev`: the chain, the facilitator and the sellers of this session.\n\n{network_section}[server]\nfacilitator = \"http://127.0.0.1:{facilitator_port}\"\nfacilitator_token_file = \"{token}\"\npay_to = \"{pay_to}\"\nnetworks = [\"{network_name}\"]\n\n[facilitator]\nlisten = \"127.0.0.1:{facilitator_port}\"\nauth_tokens_file = \"{callers}\"\njournal = \"sqlite://{journal}\"\n",
        token = dir.join("facilitator-token").display(),
        callers = dir.join("caller-tokens").display(),
        journal = dir.join("journal.db").display(),
    );
    let config_path = dir.join("x402.toml");
    std::fs::write(&config_path, &config)
        .map_err(|e| Failure::usage(format!("cannot write {}: {e}", config_path.display())))?;

    // The facilitator.
    let mut serve = Command::new(&exe);
    serve.arg("serve").arg("--config").arg(&config_path);
    if chain.is_none() {
        serve.arg("--dev");
        for payer in PAYERS {
            serve.arg("--fund").arg(format!(
                "{}={FUNDS}@base-sepolia",
                address(DEV_KEYS[payer])?
            ));
        }
    }
    let facilitator = spawn("facilitator", serve, &dir.join("facilitator.log"), verbose).await?;
    let facilitator_url = facilitator.url.clone();
    processes.push(facilitator);

    // The sellers.
    let mut shops = Vec::new();
    for i in 0..sellers {
        let product = if i % 2 == 0 { "weather" } else { "report" };
        let mut command = Command::new(&exe);
        command
            .args(["seller", "--product", product, "--config"])
            .arg(&config_path);
        let log = dir.join(format!("seller-{}.log", i + 1));
        let seller = spawn("seller", command, &log, verbose).await?;
        let price = if product == "weather" {
            "$0.01"
        } else {
            "$0.05"
        };
        shops.push((format!("{}/{product}", seller.url), price));
        processes.push(seller);
    }

    // What a person needs.
    println!("x402 dev network (Ctrl-C stops everything)");
    println!();
    match &chain {
        Some((url, chain_id, token)) => {
            println!("chain        {url}  (anvil, chain id {chain_id}, eip155:{chain_id})");
            println!("token        {token}  ({TOKEN_NAME}, USDC, 6 decimals, EIP-3009)");
        }
        None => println!(
            "chain        none: anvil was not found; payments settle into the facilitator's in-memory dev ledger on base-sepolia"
        ),
    }
    println!("facilitator  {facilitator_url}  (bearer token {caller_token})");
    println!("             signer {}", address(DEV_KEYS[FACILITATOR])?);
    for (url, price) in &shops {
        println!("seller       {url}  costs {price}");
    }
    println!("pay to       {pay_to}");
    for payer in PAYERS {
        println!(
            "payer        {}  key {}  ({FUNDS} USDC)",
            address(DEV_KEYS[payer])?,
            DEV_KEYS[payer]
        );
    }
    println!("config       {}", config_path.display());
    println!("logs         {}", dir.display());
    println!();
    println!("pay a seller:");
    println!(
        "  X402_PRIVATE_KEY={} x402ctl pay --config {} {}",
        DEV_KEYS[PAYERS[0]],
        config_path.display(),
        shops[0].0
    );
    println!(
        "journal:\n  x402ctl payments --journal sqlite://{}",
        dir.join("journal.db").display()
    );
    println!("(development keys from anvil's public list: never hold real funds with them)");

    // Until Ctrl-C (or SIGTERM), or until a process dies.
    let shutdown = crate::serve::shutdown_signal();
    tokio::pin!(shutdown);
    let died = loop {
        let mut exited = None;
        for process in &mut processes {
            if let Ok(Some(status)) = process.child.try_wait() {
                exited = Some(format!("the {} exited ({status})", process.name));
            }
        }
        if exited.is_some() {
            break exited;
        }
        tokio::select! {
            () = &mut shutdown => break None,
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    };
    eprintln!("x402ctl dev: stopping");
    // Sellers first, then the facilitator (it finishes settlements in flight), then the chain.
    while let Some(process) = processes.pop() {
        stop(process).await;
    }
    match died {
        Some(why) => Err(Failure::http(format!(
            "{why}; see the logs in {}",
            dir.display()
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn the_npm_launcher_is_replaced_by_the_binary_it_runs() {
        let root = std::env::temp_dir().join(format!("x402ctl-anvil-{}", std::process::id()));
        let scope = root.join("node_modules/@foundry-rs");
        std::fs::create_dir_all(scope.join("anvil")).unwrap();
        std::fs::create_dir_all(scope.join("anvil-linux-amd64/bin")).unwrap();
        std::fs::create_dir_all(root.join("node_modules/.bin")).unwrap();
        std::fs::write(scope.join("anvil/bin.mjs"), "#!/usr/bin/env node\n").unwrap();
        std::fs::write(scope.join("anvil-linux-amd64/bin/anvil"), "binary").unwrap();
        let launcher = root.join("node_modules/.bin/anvil");
        std::os::unix::fs::symlink("../@foundry-rs/anvil/bin.mjs", &launcher).unwrap();

        let found = native_anvil(launcher.clone());
        assert_eq!(
            found.canonicalize().unwrap(),
            scope
                .join("anvil-linux-amd64/bin/anvil")
                .canonicalize()
                .unwrap()
        );
        // Anything else is left as it is.
        let binary = scope.join("anvil-linux-amd64/bin/anvil");
        assert_eq!(native_anvil(binary.clone()), binary);
        let missing = root.join("nowhere/anvil");
        assert_eq!(native_anvil(missing.clone()), missing);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
