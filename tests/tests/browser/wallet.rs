//! A test EIP-1193 wallet: `window.ethereum` injected into the page before its scripts run.
//! It answers accounts and chain requests itself and hands `eth_signTypedData_v4` to Rust
//! through a DevTools binding, where the typed data the page built is hashed per EIP-712
//! (alloy-dyn-abi, independent of the project's own code) and signed with a dev key.

use std::sync::Mutex;

use alloy_dyn_abi::eip712::TypedData;
use alloy_primitives::Address;
use serde_json::{Value, json};
use x402_protocol::eip3009::LocalSigner;

/// The binding the injected wallet calls to get a signature.
pub(crate) const SIGN_BINDING: &str = "__x402TestWalletSign";

/// How the wallet behaves when asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Behaviour {
    /// Does what is asked.
    Cooperative,
    /// Declines to sign (EIP-1193 error 4001), as a person pressing "Reject" would.
    RejectsSignature,
    /// Declines to switch chains (4001).
    RefusesToSwitch,
}

/// The wallet's key and behaviour, and what it signed.
pub(crate) struct TestWallet {
    key: LocalSigner,
    /// The chain it is on when the page loads (hex, as `eth_chainId` answers).
    start_chain: u64,
    behaviour: Behaviour,
    signed: Mutex<Vec<Value>>,
}

impl TestWallet {
    /// A wallet with this key, on Ethereum mainnet when the page loads.
    pub(crate) fn new(key: LocalSigner, behaviour: Behaviour) -> Self {
        TestWallet {
            key,
            start_chain: 1,
            behaviour,
            signed: Mutex::new(Vec::new()),
        }
    }

    /// The account it shares.
    pub(crate) fn address(&self) -> Address {
        self.key.address()
    }

    /// The typed data it signed, in order.
    pub(crate) fn signed(&self) -> Vec<Value> {
        self.signed.lock().expect("signed list").clone()
    }

    /// The provider's source, for `Page.addScriptToEvaluateOnNewDocument`.
    pub(crate) fn script(&self) -> String {
        let config = json!({
            "address": self.address().to_checksum(None),
            "chainId": format!("0x{:x}", self.start_chain),
            "rejectSignature": self.behaviour == Behaviour::RejectsSignature,
            "refuseSwitch": self.behaviour == Behaviour::RefusesToSwitch,
            "binding": SIGN_BINDING,
        });
        WALLET_JS.replace("__CONFIG__", &config.to_string())
    }

    /// Signs a request from the page and returns the JS that hands the answer back.
    pub(crate) fn answer(&self, payload: &str) -> String {
        let request: Value = serde_json::from_str(payload).expect("the wallet sends JSON");
        let id = request["id"].as_u64().expect("request id");
        let settle =
            |ok: bool, value: Value| format!("window.__x402TestWallet.settle({id}, {ok}, {value})");
        let params = &request["params"];
        let account = params[0].as_str().unwrap_or_default();
        if !account.eq_ignore_ascii_case(&self.address().to_string()) {
            return settle(
                false,
                json!({ "code": 4100, "message": format!("not this wallet's account: {account}") }),
            );
        }
        let text = params[1].as_str().unwrap_or_default();
        let typed: TypedData = match serde_json::from_str(text) {
            Ok(typed) => typed,
            Err(e) => {
                return settle(
                    false,
                    json!({ "code": -32602, "message": format!("not EIP-712 typed data: {e}") }),
                );
            }
        };
        let hash = match typed.eip712_signing_hash() {
            Ok(hash) => hash,
            Err(e) => {
                return settle(
                    false,
                    json!({ "code": -32602, "message": format!("cannot hash: {e}") }),
                );
            }
        };
        self.signed
            .lock()
            .expect("signed list")
            .push(serde_json::from_str(text).expect("typed data is JSON"));
        let signature = self.key.sign_hash(&hash);
        settle(
            true,
            json!(format!("0x{}", alloy_primitives::hex::encode(signature))),
        )
    }
}

/// The injected provider. `__CONFIG__` becomes the wallet's settings.
const WALLET_JS: &str = r#"
(() => {
  const config = __CONFIG__;
  let chainId = config.chainId;
  const calls = [];
  const pending = new Map();
  let next = 0;
  const failure = (code, message) => Object.assign(new Error(message), { code });
  window.__x402TestWallet = {
    calls,
    settle(id, ok, value) {
      const waiting = pending.get(id);
      pending.delete(id);
      if (ok) waiting.resolve(value); else waiting.reject(failure(value.code, value.message));
    },
  };
  window.ethereum = {
    isX402TestWallet: true,
    on() {},
    removeListener() {},
    async request(args) {
      const { method, params } = args;
      calls.push({ method, params: params === undefined ? null : JSON.parse(JSON.stringify(params)) });
      switch (method) {
        case "eth_requestAccounts":
        case "eth_accounts":
          return [config.address];
        case "eth_chainId":
          return chainId;
        case "wallet_switchEthereumChain":
          if (config.refuseSwitch) throw failure(4001, "User rejected the request.");
          chainId = params[0].chainId;
          return null;
        case "eth_signTypedData_v4":
          if (config.rejectSignature) throw failure(4001, "User rejected the request.");
          return new Promise((resolve, reject) => {
            const id = ++next;
            pending.set(id, { resolve, reject });
            window[config.binding](JSON.stringify({ id, params }));
          });
        default:
          throw failure(4200, "The test wallet does not support " + method);
      }
    },
  };
})();
"#;
