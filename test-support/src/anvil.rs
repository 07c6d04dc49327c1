//! A local EVM chain owned by one test: `anvil` (npm `@foundry-rs/anvil`, which `scripts/test`
//! installs into `.tools/` and names in `X402_ANVIL_BIN`) on its own loopback port, plus the
//! workspace's EIP-3009 test token deployed on it and a few JSON-RPC helpers.
//!
//! For Permit2 payments, [`Anvil::install_permit2`] puts the workspace's own Permit2 and x402
//! proxies (`contracts/`) at their canonical addresses; [`Anvil::approve`] lets a payer approve
//! Permit2 and [`Anvil::permit2_nonce_used`] reads Permit2's nonce bitmap.
//!
//! A chain of its own lets a test kill processes, stop mining or fill blocks without
//! disturbing any other test.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use alloy_primitives::{Address, B256, U256};
use alloy_sol_types::{SolCall, SolValue, sol};
use serde_json::{Value, json};

use crate::{free_port, skip};

/// Anvil's well-known development keys (public knowledge: never hold real funds with them).
/// Each account starts with 10 000 ETH.
pub const DEV_KEYS: [&str; 10] = [
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

/// The addresses of [`DEV_KEYS`], in order.
pub const DEV_ADDRESSES: [&str; 10] = [
    "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
    "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
    "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
    "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65",
    "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc",
    "0x976EA74026E726554dB657fA54763abd0C3a0aa9",
    "0x14dC79964da2C08b23698B3D3cc7Ca32193d9955",
    "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f",
    "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720",
];

/// The EIP-712 name the test token is deployed with.
pub const TOKEN_NAME: &str = "X402 Test USD";
/// The test token's symbol.
pub const TOKEN_SYMBOL: &str = "USDC";
/// The EIP-712 version the test token is deployed with.
pub const TOKEN_VERSION: &str = "2";

const ARTIFACT: &str = include_str!("../../contracts/out/X402TestToken.json");
const PERMIT2_ARTIFACT: &str = include_str!("../../contracts/out/Permit2SignatureTransfer.json");
const EXACT_PROXY_ARTIFACT: &str = include_str!("../../contracts/out/X402ExactPermit2Proxy.json");
const UPTO_PROXY_ARTIFACT: &str = include_str!("../../contracts/out/X402UptoPermit2Proxy.json");

/// Uniswap's canonical Permit2 address, where [`Anvil::install_permit2`] puts the workspace's
/// `Permit2SignatureTransfer`.
pub const PERMIT2: Address =
    alloy_primitives::address!("0x000000000022D473030F116dDEE9F6B43aC78BA3");
/// The x402 exact Permit2 proxy's address.
pub const EXACT_PERMIT2_PROXY: Address =
    alloy_primitives::address!("0x402085c248EeA27D92E8b30b2C58ed07f9E20001");
/// The x402 upto Permit2 proxy's address.
pub const UPTO_PERMIT2_PROXY: Address =
    alloy_primitives::address!("0x4020A4f3b7b90ccA423B9fabCc0CE57C6C240002");

sol! {
    function mint(address to, uint256 value) external;
    function balanceOf(address account) external view returns (uint256);
    function authorizationState(address authorizer, bytes32 nonce) external view returns (bool);
    function approve(address spender, uint256 value) external returns (bool);
    function allowance(address owner, address spender) external view returns (uint256);
    function nonceBitmap(address owner, uint256 word) external view returns (uint256);
}

/// The runtime bytecode of a committed artifact (`contracts/out/<name>.json`).
fn deployed_code(artifact: &str) -> String {
    let artifact: Value = serde_json::from_str(artifact).expect("the artifact is JSON");
    artifact["deployedBytecode"]
        .as_str()
        .expect("the artifact has deployed bytecode")
        .to_owned()
}

/// The anvil binary: `X402_ANVIL_BIN`, else the copy `scripts/test` installs in `.tools/`
/// (its platform binary).
pub fn anvil_bin() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("X402_ANVIL_BIN").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let modules = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.tools/node_modules");
    // The platform binary rather than npm's node launcher, which would outlive a kill of
    // the launcher.
    let native = std::fs::read_dir(modules.join("@foundry-rs"))
        .ok()?
        .filter_map(Result::ok)
        .map(|entry| entry.path().join("bin/anvil"))
        .find(|path| path.is_file());
    native.or_else(|| {
        let launcher = modules.join(".bin/anvil");
        launcher.exists().then_some(launcher)
    })
}

/// An anvil process on its own port, killed when dropped.
#[derive(Debug)]
pub struct Anvil {
    child: Option<Child>,
    port: u16,
}

impl Anvil {
    /// Starts anvil with automatic mining, or returns `None` (after [`skip`]) when it is not
    /// installed.
    pub fn start() -> Option<Anvil> {
        Self::start_with(&[])
    }

    /// Starts anvil with extra arguments (`--block-time 1`, `--no-mining`, …).
    pub fn start_with(args: &[&str]) -> Option<Anvil> {
        let Some(bin) = anvil_bin() else {
            skip(
                "anvil is not installed (scripts/test installs it into .tools/ and sets X402_ANVIL_BIN)",
            );
            return None;
        };
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port();
            let child = Command::new(&bin)
                .args([
                    "--host",
                    "127.0.0.1",
                    "--port",
                    &port.to_string(),
                    "--silent",
                ])
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn();
            let child = match child {
                Ok(child) => child,
                Err(error) => panic!("cannot run {}: {error}", bin.display()),
            };
            let mut anvil = Anvil {
                child: Some(child),
                port,
            };
            match anvil.wait_until_ready() {
                Ok(()) => return Some(anvil),
                Err(error) => last = error,
            }
        }
        panic!("anvil did not start: {last}");
    }

    fn wait_until_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(format!("anvil exited with {status}"));
            }
            if rpc(&self.url(), "eth_chainId", json!([])).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err("anvil did not answer eth_chainId".to_owned());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `http://127.0.0.1:<port>`
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The chain id (31337).
    pub fn chain_id(&self) -> u64 {
        rpc(&self.url(), "eth_chainId", json!([]))
            .ok()
            .and_then(|v| {
                v.as_str()
                    .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok())
            })
            .unwrap_or(31337)
    }

    /// Calls a JSON-RPC method, panicking on error.
    pub fn call(&self, method: &str, params: Value) -> Value {
        rpc(&self.url(), method, params).unwrap_or_else(|e| panic!("{method}: {e}"))
    }

    /// Deploys the workspace's EIP-3009 test token from dev account 0 (which may then mint).
    pub fn deploy_token(&self) -> Address {
        let artifact: Value = serde_json::from_str(ARTIFACT).expect("the token artifact is JSON");
        let code = artifact["bytecode"]
            .as_str()
            .expect("the artifact has bytecode");
        let args = (TOKEN_NAME, TOKEN_SYMBOL, TOKEN_VERSION).abi_encode_params();
        let data = format!("{code}{}", alloy_primitives::hex::encode(args));
        let receipt = self.transact(json!({"from": DEV_ADDRESSES[0], "data": data}));
        receipt["contractAddress"]
            .as_str()
            .and_then(|a| a.parse().ok())
            .expect("a deployment has a contract address")
    }

    /// Mints `value` atomic units of `token` to `to`.
    pub fn mint(&self, token: Address, to: Address, value: U256) {
        let data = mintCall { to, value }.abi_encode();
        self.transact(json!({"from": DEV_ADDRESSES[0], "to": token, "data": alloy_primitives::hex::encode_prefixed(data)}));
    }

    /// `token.balanceOf(who)`.
    pub fn balance(&self, token: Address, who: Address) -> U256 {
        let data = balanceOfCall { account: who }.abi_encode();
        let out = self.call(
            "eth_call",
            json!([{"to": token, "data": alloy_primitives::hex::encode_prefixed(data)}, "latest"]),
        );
        let bytes =
            alloy_primitives::hex::decode(out.as_str().unwrap_or_default()).unwrap_or_default();
        balanceOfCall::abi_decode_returns(&bytes).unwrap_or_default()
    }

    /// `token.authorizationState(authorizer, nonce)`: whether an EIP-3009 authorization was
    /// used.
    pub fn authorization_used(&self, token: Address, authorizer: Address, nonce: B256) -> bool {
        let data = authorizationStateCall { authorizer, nonce }.abi_encode();
        let out = self.call(
            "eth_call",
            json!([{"to": token, "data": alloy_primitives::hex::encode_prefixed(data)}, "latest"]),
        );
        let bytes =
            alloy_primitives::hex::decode(out.as_str().unwrap_or_default()).unwrap_or_default();
        authorizationStateCall::abi_decode_returns(&bytes).unwrap_or_default()
    }

    /// Puts runtime `code` (`0x` hex) at `address` (`anvil_setCode`).
    pub fn set_code(&self, address: Address, code: &str) {
        self.call("anvil_setCode", json!([address, code]));
    }

    /// Installs the workspace's Permit2 (`Permit2SignatureTransfer`) and x402 exact and upto
    /// proxies at their canonical addresses ([`PERMIT2`], [`EXACT_PERMIT2_PROXY`],
    /// [`UPTO_PERMIT2_PROXY`]).
    pub fn install_permit2(&self) {
        self.set_code(PERMIT2, &deployed_code(PERMIT2_ARTIFACT));
        self.set_code(EXACT_PERMIT2_PROXY, &deployed_code(EXACT_PROXY_ARTIFACT));
        self.set_code(UPTO_PERMIT2_PROXY, &deployed_code(UPTO_PROXY_ARTIFACT));
    }

    /// `owner` approves `spender` for `value` of `token`, sent as `owner` (impersonated, and
    /// given gas money first), so `owner` may be any address, a random payer included.
    pub fn approve(&self, token: Address, owner: Address, spender: Address, value: U256) {
        self.call("anvil_setBalance", json!([owner, "0x56bc75e2d63100000"]));
        self.call("anvil_impersonateAccount", json!([owner]));
        let data = approveCall { spender, value }.abi_encode();
        self.transact(json!({"from": owner, "to": token, "data": alloy_primitives::hex::encode_prefixed(data)}));
        self.call("anvil_stopImpersonatingAccount", json!([owner]));
    }

    /// `token.allowance(owner, spender)`.
    pub fn allowance(&self, token: Address, owner: Address, spender: Address) -> U256 {
        let data = allowanceCall { owner, spender }.abi_encode();
        let out = self.call(
            "eth_call",
            json!([{"to": token, "data": alloy_primitives::hex::encode_prefixed(data)}, "latest"]),
        );
        let bytes =
            alloy_primitives::hex::decode(out.as_str().unwrap_or_default()).unwrap_or_default();
        allowanceCall::abi_decode_returns(&bytes).unwrap_or_default()
    }

    /// Whether Permit2 has marked `owner`'s unordered `nonce` used (bit `nonce & 0xff` of word
    /// `nonce >> 8` of `nonceBitmap`).
    pub fn permit2_nonce_used(&self, owner: Address, nonce: U256) -> bool {
        let data = nonceBitmapCall {
            owner,
            word: nonce >> 8,
        }
        .abi_encode();
        let out = self.call(
            "eth_call",
            json!([{"to": PERMIT2, "data": alloy_primitives::hex::encode_prefixed(data)}, "latest"]),
        );
        let bytes =
            alloy_primitives::hex::decode(out.as_str().unwrap_or_default()).unwrap_or_default();
        let word = nonceBitmapCall::abi_decode_returns(&bytes).expect("nonceBitmap answers a word");
        let bit = (nonce & U256::from(0xff)).to::<usize>();
        word.bit(bit)
    }

    /// How many transactions `who` has sent (mined).
    pub fn nonce(&self, who: Address) -> u64 {
        let out = self.call("eth_getTransactionCount", json!([who, "latest"]));
        u64::from_str_radix(out.as_str().unwrap_or("0x0").trim_start_matches("0x"), 16).unwrap_or(0)
    }

    /// Sends a transaction from an unlocked dev account and waits for its receipt.
    pub fn transact(&self, tx: Value) -> Value {
        let hash = self.call("eth_sendTransaction", json!([tx]));
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let receipt = self.call("eth_getTransactionReceipt", json!([hash]));
            if !receipt.is_null() {
                assert_eq!(receipt["status"], "0x1", "transaction {hash} reverted");
                return receipt;
            }
            assert!(
                Instant::now() < deadline,
                "transaction {hash} was not mined"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the process now.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One JSON-RPC call over a fresh HTTP/1.1 connection; the `result`, or the error as text.
pub fn rpc(url: &str, method: &str, params: Value) -> Result<Value, String> {
    let authority = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url} is not an http:// URL"))?
        .trim_end_matches('/');
    let port: u16 = authority
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .ok_or_else(|| format!("{url} has no port"))?;
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string();
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "POST / HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&response);
    let (_, payload) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| "no HTTP body".to_owned())?;
    let answer: Value =
        serde_json::from_str(payload.trim()).map_err(|e| format!("{e}: {payload}"))?;
    match answer.get("error") {
        Some(error) if !error.is_null() => Err(error.to_string()),
        _ => Ok(answer.get("result").cloned().unwrap_or(Value::Null)),
    }
}
