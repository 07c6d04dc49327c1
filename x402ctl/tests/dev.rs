//! `x402ctl dev`: a chain (anvil) with the test token and funded payers, the facilitator and
//! sellers as real processes, everything printed; `x402ctl pay` pays a seller with what it
//! printed; Ctrl-C stops every process. Without anvil, the same flow on the dev ledger.

use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use x402_test_support::anvil::{anvil_bin, rpc};
use x402_test_support::{skip, unique_identifier};

const BIN: &str = env!("CARGO_BIN_EXE_x402ctl");

/// `x402ctl dev` running, and what it printed (first word of a line → the rest).
struct Dev {
    child: tokio::process::Child,
    printed: HashMap<String, Vec<String>>,
    dir: std::path::PathBuf,
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn dev(args: &[&str]) -> Dev {
    let dir = std::env::temp_dir().join(unique_identifier("x402ctl_dev"));
    let mut command = tokio::process::Command::new(BIN);
    command
        .arg("dev")
        .args(args)
        .arg("--dir")
        .arg(&dir)
        .env_remove("X402_CONFIG")
        .env_remove("X402_JOURNAL_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    if let Some(bin) = anvil_bin() {
        command.env("X402_ANVIL_BIN", bin);
    }
    let mut child = command.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed: HashMap<String, Vec<String>> = HashMap::new();
    loop {
        let line = tokio::time::timeout(Duration::from_secs(120), lines.next_line())
            .await
            .expect("x402ctl dev prints its summary")
            .unwrap()
            .expect("x402ctl dev keeps running");
        if line.starts_with("(development keys") {
            break;
        }
        let mut words = line.split_whitespace();
        if let Some(first) = words.next() {
            printed
                .entry(first.to_owned())
                .or_default()
                .push(words.collect::<Vec<_>>().join(" "));
        }
    }
    Dev {
        child,
        printed,
        dir,
    }
}

impl Dev {
    fn first(&self, key: &str) -> String {
        self.printed[key][0]
            .split_whitespace()
            .next()
            .unwrap()
            .to_owned()
    }

    /// `payer <address> key <key> (…)`: the first payer's key.
    fn payer_key(&self) -> String {
        let words: Vec<&str> = self.printed["payer"][0].split_whitespace().collect();
        words[2].to_owned()
    }

    async fn interrupt(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().unwrap();
        assert!(
            std::process::Command::new("kill")
                .args(["-INT", &pid.to_string()])
                .status()
                .unwrap()
                .success()
        );
        tokio::time::timeout(Duration::from_secs(60), self.child.wait())
            .await
            .expect("x402ctl dev stops on Ctrl-C")
            .unwrap()
    }
}

async fn pay(config: &str, url: &str, key: &str) -> std::process::Output {
    tokio::process::Command::new(BIN)
        .args(["pay", "--config", config, url])
        .env("X402_PRIVATE_KEY", key)
        .env_remove("X402_CONFIG")
        .output()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dev_network_on_anvil_in_one_command() {
    if anvil_bin().is_none() {
        skip("anvil is not installed (scripts/test installs it and sets X402_ANVIL_BIN)");
        return;
    }
    let mut dev = dev(&["--sellers", "2"]).await;
    let chain = dev.first("chain");
    let token = dev.first("token");
    // `pay to <address>`.
    let pay_to = dev.printed["pay"][0]
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_owned();
    let config = dev.first("config");
    let facilitator = dev.first("facilitator");
    let sellers: Vec<String> = dev.printed["seller"]
        .iter()
        .map(|l| l.split_whitespace().next().unwrap().to_owned())
        .collect();
    assert_eq!(sellers.len(), 2, "{:?}", dev.printed);
    assert!(sellers[0].ends_with("/weather") && sellers[1].ends_with("/report"));
    assert_eq!(dev.printed["payer"].len(), 2);

    // Pay the second seller ($0.05) with what was printed.
    let out = pay(&config, &sellers[1], &dev.payer_key()).await;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("paid 0.05 USDC on anvil"), "{stderr}");
    // On chain: the recipient holds 0.05 of the token.
    let data = format!("0x70a08231{:0>64}", pay_to.trim_start_matches("0x"));
    let balance = rpc(
        &chain,
        "eth_call",
        json!([{"to": token, "data": data}, "latest"]),
    )
    .unwrap();
    assert_eq!(
        u128::from_str_radix(balance.as_str().unwrap().trim_start_matches("0x"), 16).unwrap(),
        50_000
    );

    // Ctrl-C stops the chain, the facilitator and the sellers.
    let status = dev.interrupt().await;
    assert!(status.success(), "{status}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        rpc(&chain, "eth_chainId", json!([])).is_err(),
        "anvil still runs"
    );
    let http = reqwest::Client::new();
    assert!(
        http.get(format!("{facilitator}/health"))
            .send()
            .await
            .is_err()
    );
    for seller in &sellers {
        assert!(
            http.get(seller).send().await.is_err(),
            "{seller} still runs"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_anvil_the_dev_ledger_settles() {
    let mut dev = dev(&["--no-anvil"]).await;
    assert!(
        dev.printed["chain"][0].starts_with("none"),
        "{:?}",
        dev.printed
    );
    let config = dev.first("config");
    let seller = dev.first("seller");
    let out = pay(&config, &seller, &dev.payer_key()).await;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("paid 0.01 USDC on base-sepolia"),
        "{stderr}"
    );
    assert!(dev.interrupt().await.success());
}
