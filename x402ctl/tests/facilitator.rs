//! `x402ctl serve` as a production facilitator: a real process, configured only by a file,
//! settling on a real chain (an anvil of the test's own with the workspace's EIP-3009 token),
//! journaling in SQLite or Postgres, with bearer auth, rate limits and metrics.
//!
//! - auth: no token → 401, wrong token → 401, right token → served; `/metrics` counts them;
//! - a payment verified and settled on chain; a retried `/settle` returns the same
//!   transaction without a second transfer; another payload reusing the nonce is refused;
//! - 500 settlements at once for one signer: all mined, one transaction each, no nonce retry;
//! - kill -9 in the middle of a batch, restart: every payment settled exactly once or
//!   reported failed, none lost (SQLite and Postgres journals);
//! - SIGTERM lets the settlements in flight finish;
//! - per-caller rate limits and body-size limits.

mod support;

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use x402_protocol::U256;
use x402_protocol::eip3009::LocalSigner;
use x402_runtime::journal::{Filter, Journal as _, Page, PaymentState};
use x402_test_support::anvil::{Anvil, DEV_KEYS, TOKEN_NAME};
use x402_test_support::unique_identifier;

use support::{
    BIN, PRICE, Setup, TOKEN_A, TOKEN_B, TempDir, metric, post, settle_until_final, setup,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settles_on_chain_once_per_payment_behind_bearer_auth() {
    let Some(setup) = setup(&[1], None, "") else {
        return;
    };
    let facilitator = setup.start(&[1]).await;
    let http = reqwest::Client::new();
    let url = &facilitator.url;

    // Auth: no token, a wrong token, a right one (either caller's).
    let missing = http.get(format!("{url}/supported")).send().await.unwrap();
    assert_eq!(missing.status(), 401);
    assert_eq!(missing.headers()["www-authenticate"], "Bearer");
    let wrong = http
        .get(format!("{url}/supported"))
        .bearer_auth("not-a-token-not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let body: Value = wrong.json().await.unwrap();
    assert_eq!(body["error"], "unauthorized");
    let supported: Value = http
        .get(format!("{url}/supported"))
        .bearer_auth(TOKEN_B)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kinds = supported["kinds"].as_array().unwrap();
    assert!(
        kinds.iter().any(|k| k["network"] == "eip155:31337"
            && k["scheme"] == "exact"
            && k["x402Version"] == 2),
        "{supported}"
    );
    assert!(
        kinds
            .iter()
            .any(|k| k["network"] == "anvil" && k["x402Version"] == 1)
    );
    assert!(
        !kinds.iter().any(|k| k["network"] == "eip155:8453"),
        "only configured chains are listed: {supported}"
    );
    assert_eq!(
        supported["signers"]["eip155:*"],
        json!([setup.signers[0].to_checksum(None)])
    );
    // Open endpoints.
    let health: Value = http
        .get(format!("{url}/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    let metrics = facilitator.metrics(&http).await;
    assert_eq!(
        metric(
            &metrics,
            "x402_facilitator_auth_total",
            &["result=\"missing\""]
        ),
        1.0,
        "{metrics}"
    );
    assert_eq!(
        metric(
            &metrics,
            "x402_facilitator_auth_total",
            &["result=\"invalid\""]
        ),
        1.0
    );
    assert_eq!(
        metric(&metrics, "x402_facilitator_auth_total", &["result=\"ok\""]),
        1.0
    );
    assert_eq!(
        metric(
            &metrics,
            "x402_facilitator_requests_total",
            &["endpoint=\"supported\"", "status=\"401\""]
        ),
        2.0
    );

    // A payment: verified, settled on chain.
    let pay_to = LocalSigner::random().address();
    let mut payments = setup.payments(2, pay_to);
    let request = payments.remove(0);
    let (status, verdict) = post(&http, url, "/verify", &request).await;
    assert_eq!(status, 200, "{verdict}");
    assert_eq!(verdict["isValid"], true, "{verdict}");
    let (status, settled) = post(&http, url, "/settle", &request).await;
    assert_eq!(status, 200, "{settled}");
    assert_eq!(
        settled["success"],
        true,
        "{settled}\n{}",
        facilitator.logs()
    );
    let transaction = settled["transaction"].as_str().unwrap().to_owned();
    let receipt = setup
        .anvil
        .call("eth_getTransactionReceipt", json!([transaction]));
    assert_eq!(receipt["status"], "0x1");
    assert!(
        receipt["from"]
            .as_str()
            .unwrap()
            .eq_ignore_ascii_case(&setup.signers[0].to_string())
    );
    assert_eq!(setup.anvil.balance(setup.token, pay_to), U256::from(PRICE));

    // Retried: the same transaction, no second transfer, no second transaction.
    let sent = setup.sent();
    let (_, again) = post(&http, url, "/settle", &request).await;
    assert_eq!(again["success"], true, "{again}");
    assert_eq!(again["transaction"], transaction.as_str());
    assert_eq!(setup.sent(), sent);
    assert_eq!(setup.anvil.balance(setup.token, pay_to), U256::from(PRICE));

    // Another authorization reusing the nonce (a different amount) is refused.
    let mut forged = serde_json::to_value(&request).unwrap();
    forged["paymentPayload"]["payload"]["authorization"]["value"] = json!("20000");
    let (_, refused) = post(&http, url, "/settle", &forged).await;
    assert_eq!(refused["success"], false, "{refused}");

    // Verify after settlement: the nonce is used on chain.
    let (_, verdict) = post(&http, url, "/verify", &request).await;
    assert_eq!(verdict["isValid"], false);
    assert_eq!(
        verdict["invalidReason"],
        "invalid_exact_evm_nonce_already_used"
    );

    // Malformed and oversized bodies.
    let malformed = http
        .post(format!("{url}/settle"))
        .bearer_auth(TOKEN_A)
        .header("content-type", "application/json")
        .body("{\"x402Version\": 2}")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    // (On a connection of its own: the server answers before reading the body, then closes.)
    let huge = reqwest::Client::new()
        .post(format!("{url}/settle"))
        .bearer_auth(TOKEN_A)
        .header("content-type", "application/json")
        .body(vec![b' '; 200_000])
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status(), 413);

    // The settled resource is in the discovery catalogue? Only with a resource URL; the v2
    // payment here names none, so the list stays empty but well-formed.
    let discovery: Value = http
        .get(format!("{url}/discovery/resources?limit=5"))
        .bearer_auth(TOKEN_A)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["pagination"]["limit"], 5);

    let metrics = facilitator.metrics(&http).await;
    assert_eq!(
        metric(
            &metrics,
            "x402_facilitator_settle_total",
            &["outcome=\"settled\"", "network=\"eip155:31337\""]
        ),
        2.0,
        "{metrics}"
    );
    assert_eq!(
        metric(
            &metrics,
            "x402_facilitator_settlements_total",
            &["outcome=\"settled\""]
        ),
        1.0
    );
    assert!(metric(&metrics, "x402_facilitator_settle_seconds_count", &[]) >= 2.0);
    assert!(metric(&metrics, "x402_evm_transactions_sent_total", &[]) >= 1.0);
    assert_eq!(
        metric(
            &metrics,
            "x402_facilitator_requests_total",
            &["endpoint=\"settle\"", "status=\"413\""]
        ),
        1.0
    );
    let logs = facilitator.logs();
    assert!(
        !logs.contains(&DEV_KEYS[1][2..20]),
        "a signer key reached the log"
    );
    assert!(!logs.contains(TOKEN_A), "a caller token reached the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_settlements_at_once_from_one_signer() {
    let Some(setup) = setup(&[2], None, "") else {
        return;
    };
    let facilitator = setup.start(&[2]).await;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(600)
        .build()
        .unwrap();
    let pay_to = LocalSigner::random().address();
    let payments = setup.payments(500, pay_to);
    let before = setup.sent();

    let started = Instant::now();
    let tasks: Vec<_> = payments
        .into_iter()
        .map(|request| {
            let (http, url) = (http.clone(), facilitator.url.clone());
            tokio::spawn(async move { post(&http, &url, "/settle", &request).await })
        })
        .collect();
    let mut transactions = HashSet::new();
    for task in tasks {
        let (status, answer) = task.await.unwrap();
        assert_eq!(status, 200, "{answer}\n{}", facilitator.logs());
        assert_eq!(answer["success"], true, "{answer}\n{}", facilitator.logs());
        assert!(transactions.insert(answer["transaction"].as_str().unwrap().to_owned()));
    }
    eprintln!("500 settlements from one signer in {:?}", started.elapsed());
    assert_eq!(
        transactions.len(),
        500,
        "each reported once, each its own transaction"
    );
    // All mined, one transaction per payment: no nonce collided, none was retried.
    assert_eq!(setup.sent() - before, 500);
    assert_eq!(
        setup.anvil.balance(setup.token, pay_to),
        U256::from(500 * PRICE)
    );
    for transaction in transactions.iter().take(20) {
        let receipt = setup
            .anvil
            .call("eth_getTransactionReceipt", json!([transaction]));
        assert_eq!(receipt["status"], "0x1");
    }
    let metrics = facilitator.metrics(&http).await;
    assert_eq!(
        metric(&metrics, "x402_evm_nonce_retries_total", &[]),
        0.0,
        "{metrics}"
    );
    assert_eq!(
        metric(
            &metrics,
            "x402_facilitator_settle_total",
            &["outcome=\"settled\""]
        ),
        500.0
    );
    assert_eq!(
        metric(
            &metrics,
            "x402_facilitator_settle_total",
            &["outcome=\"failed\""]
        ),
        0.0
    );
}

/// Kill -9 in the middle of a batch, restart on the same journal: every payment is settled
/// exactly once or reported failed; none is lost.
async fn crash_in_the_middle_of_a_batch(setup: Setup) {
    let mut facilitator = setup.start(&[3]).await;
    let http = reqwest::Client::new();
    let pay_to = LocalSigner::random().address();
    let payments = Arc::new(setup.payments(150, pay_to));
    let before = setup.sent();

    // Every payment posted at once; the answers are lost with the process.
    let first: Vec<_> = payments
        .iter()
        .cloned()
        .map(|request| {
            let (http, url) = (http.clone(), facilitator.url.clone());
            tokio::spawn(async move {
                let _ = http
                    .post(format!("{url}/settle"))
                    .bearer_auth(TOKEN_A)
                    .json(&request)
                    .send()
                    .await;
            })
        })
        .collect();
    // Kill it once part of the batch is on chain.
    let waited = Instant::now();
    while setup.sent() - before < 20 {
        assert!(
            waited.elapsed() < Duration::from_secs(60),
            "nothing was settled"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    facilitator.kill9().await;
    let at_kill = setup.sent() - before;
    eprintln!("killed with {at_kill} of 150 transactions mined");
    assert!(
        at_kill < 150,
        "the batch was over before the kill; kill earlier"
    );
    for task in first {
        task.abort();
    }

    // Restart on the same journal: what was open is reconciled; the clients retry (as a
    // resource server does after a broken connection) until the answer is final.
    let deadline = Instant::now() + Duration::from_secs(240);
    let restarted = setup.start(&[3]).await;
    let retries: Vec<_> = (0..payments.len())
        .map(|i| {
            let (http, url, payments) = (http.clone(), restarted.url.clone(), payments.clone());
            tokio::spawn(
                async move { settle_until_final(&http, &url, &payments[i], deadline).await },
            )
        })
        .collect();
    let mut settled = 0u64;
    let mut transactions = HashSet::new();
    for (i, retry) in retries.into_iter().enumerate() {
        let answer = retry.await.unwrap();
        let used = setup.used(&payments[i]);
        if answer["success"] == true {
            settled += 1;
            assert!(used, "reported settled but unused on chain: {answer}");
            assert!(transactions.insert(answer["transaction"].as_str().unwrap().to_owned()));
        } else {
            assert!(!used, "reported failed but used on chain: {answer}");
        }
    }
    // Exactly once: the recipient holds one price per payment reported settled.
    assert_eq!(
        setup.anvil.balance(setup.token, pay_to),
        U256::from(PRICE * settled)
    );
    assert_eq!(
        settled,
        150,
        "every payment settles on a healthy chain\n{}",
        restarted.logs()
    );

    // The journal agrees: nothing left open, one settled record per payment.
    let journal = x402_runtime::journal::connect_existing(&setup.journal)
        .await
        .unwrap();
    let open = journal
        .query(
            &Filter::default()
                .state(PaymentState::Verified)
                .state(PaymentState::Settling)
                .state(PaymentState::Unknown),
            &Page::first(100),
        )
        .await
        .unwrap();
    assert!(open.records.is_empty(), "{:?}", open.records);
    let done = journal
        .query(
            &Filter::default().state(PaymentState::Settled),
            &Page::first(500),
        )
        .await
        .unwrap();
    assert_eq!(done.records.len(), 150);
    let metrics = restarted.metrics(&http).await;
    eprintln!(
        "after the restart: {} settlements reconciled, {} sent again",
        metric(
            &metrics,
            "x402_facilitator_settlements_total",
            &["reconciled=\"true\""]
        ),
        metric(
            &metrics,
            "x402_evm_transactions_sent_total",
            &["kind=\"payment\""]
        ),
    );
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_facilitator_loses_no_payment_sqlite() {
    let Some(setup) = setup(&[3], None, "") else {
        return;
    };
    crash_in_the_middle_of_a_batch(setup).await;
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_facilitator_loses_no_payment_postgres() {
    use x402_runtime::sqlx::{self, Connection, PgConnection};
    let Some(url) = x402_test_support::postgres_url() else {
        return;
    };
    let schema = unique_identifier("facilitator");
    let mut admin = PgConnection::connect(&url).await.unwrap();
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut admin)
        .await
        .unwrap();
    let separator = if url.contains('?') { '&' } else { '?' };
    let journal = format!("{url}{separator}options[search_path]={schema}");
    let Some(setup) = setup(&[3], Some(journal), "") else {
        return;
    };
    crash_in_the_middle_of_a_batch(setup).await;
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&mut admin)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_settlements_in_flight_finish() {
    // Blocks every 2 s: settlements are in flight when the signal comes.
    let Some(setup) = setup(&[4], None, "") else {
        return;
    };
    setup.anvil.call("evm_setAutomine", json!([false]));
    setup.anvil.call("evm_setIntervalMining", json!([2]));
    let mut facilitator = setup.start(&[4]).await;
    let http = reqwest::Client::new();
    let pay_to = LocalSigner::random().address();
    let payments = setup.payments(20, pay_to);
    let tasks: Vec<_> = payments
        .iter()
        .cloned()
        .map(|request| {
            let (http, url) = (http.clone(), facilitator.url.clone());
            tokio::spawn(async move { post(&http, &url, "/settle", &request).await })
        })
        .collect();
    // Wait until all are submitted (in the pool), then ask it to stop.
    let waited = Instant::now();
    loop {
        let status = setup.anvil.call("txpool_status", json!([]));
        let pending = u64::from_str_radix(
            status["pending"].as_str().unwrap().trim_start_matches("0x"),
            16,
        )
        .unwrap();
        let mined = setup.sent();
        if pending + mined >= 20 {
            break;
        }
        assert!(
            waited.elapsed() < Duration::from_secs(60),
            "never submitted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(setup.sent() < 20, "everything was mined before the signal");
    let status = facilitator.terminate().await;
    assert!(status.success(), "{status}\n{}", facilitator.logs());
    for task in tasks {
        let (code, answer) = task.await.unwrap();
        assert_eq!(code, 200);
        assert_eq!(answer["success"], true, "{answer}");
    }
    assert_eq!(
        setup.anvil.balance(setup.token, pay_to),
        U256::from(20 * PRICE)
    );
    assert!(
        facilitator
            .logs()
            .contains("every settlement in flight finished")
    );
    // After the signal, nobody is listening.
    assert!(
        http.get(format!("{}/health", facilitator.url))
            .send()
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_caller_has_its_own_rate_limit() {
    let Some(setup) = setup(
        &[5],
        None,
        "rate_limit_per_second = 0.5\nrate_limit_burst = 2",
    ) else {
        return;
    };
    let facilitator = setup.start(&[5]).await;
    let http = reqwest::Client::new();
    let get = |token: &'static str| {
        let http = http.clone();
        let url = format!("{}/supported", facilitator.url);
        async move { http.get(url).bearer_auth(token).send().await.unwrap() }
    };
    assert_eq!(get(TOKEN_A).await.status(), 200);
    assert_eq!(get(TOKEN_A).await.status(), 200);
    let limited = get(TOKEN_A).await;
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().contains_key("retry-after"));
    // The other caller is not affected.
    assert_eq!(get(TOKEN_B).await.status(), 200);
    let metrics = facilitator.metrics(&http).await;
    assert_eq!(
        metric(
            &metrics,
            "x402_facilitator_rate_limited_total",
            &["caller=\"shop\""]
        ),
        1.0
    );
}

#[tokio::test]
async fn start_up_mistakes_are_sentences() {
    let dir = TempDir::new("facilitator_mistakes");
    let run = |args: Vec<String>, env: Vec<(&'static str, String)>| async move {
        let mut command = tokio::process::Command::new(BIN);
        command
            .args(&args)
            .env_remove("X402_CONFIG")
            .env_remove("X402_JOURNAL_URL");
        for (k, v) in env {
            command.env(k, v);
        }
        command.output().await.unwrap()
    };
    let stderr = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).into_owned();

    // No chain configured.
    let out = run(vec!["serve".into(), "--port".into(), "0".into()], vec![]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--config") && stderr(&out).contains("--dev"),
        "{}",
        stderr(&out)
    );

    // A typo in the file: file, line and key.
    let bad = dir.0.join("bad.toml");
    std::fs::write(&bad, "[[network]]\nname = \"anvil\"\nchainid = 31337\n").unwrap();
    let out = run(
        vec!["serve".into(), "--config".into(), bad.display().to_string()],
        vec![],
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    let text = stderr(&out);
    assert!(
        text.contains("bad.toml") && text.contains("line 3") && text.contains("chainid"),
        "{text}"
    );
    assert!(!text.contains("ConfigFileError"), "no Debug output: {text}");

    // A signer key that is not set.
    let unset = dir.0.join("unset.toml");
    write_minimal(&unset, "http://127.0.0.1:1", "X402_TEST_SURELY_UNSET_KEY");
    let out = run(
        vec![
            "serve".into(),
            "--config".into(),
            unset.display().to_string(),
        ],
        vec![],
    )
    .await;
    let text = stderr(&out);
    assert!(
        text.contains("network[0].signers[0]")
            && text.contains("X402_TEST_SURELY_UNSET_KEY is not set"),
        "{text}"
    );

    // No caller tokens: refused unless --no-auth.
    let Some(anvil) = Anvil::start() else { return };
    let open = dir.0.join("open.toml");
    write_minimal(&open, &anvil.url(), "X402_TEST_KEY");
    let out = run(
        vec![
            "serve".into(),
            "--config".into(),
            open.display().to_string(),
        ],
        vec![("X402_TEST_KEY", DEV_KEYS[6].to_owned())],
    )
    .await;
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("no caller tokens") && text.contains("--no-auth"),
        "{text}"
    );
    assert!(!text.contains(&DEV_KEYS[6][2..20]));

    // An RPC node of another chain.
    let wrong = dir.0.join("wrong.toml");
    std::fs::write(
        &wrong,
        std::fs::read_to_string(&open)
            .unwrap()
            .replace("chain_id = 31337", "chain_id = 8453")
            .replace("name = \"anvil\"", "name = \"base\""),
    )
    .unwrap();
    let out = run(
        vec![
            "serve".into(),
            "--config".into(),
            wrong.display().to_string(),
            "--no-auth".into(),
        ],
        vec![("X402_TEST_KEY", DEV_KEYS[6].to_owned())],
    )
    .await;
    let text = stderr(&out);
    assert!(
        text.contains("network[0].rpc_url") && text.contains("serves chain 31337"),
        "{text}"
    );
}

fn write_minimal(path: &Path, rpc: &str, key_env: &str) {
    std::fs::write(
        path,
        format!(
            "[[network]]\nname = \"anvil\"\nchain_id = 31337\nrpc_url = \"{rpc}\"\nsigners = [{{ key_env = \"{key_env}\" }}]\n[[network.token]]\naddress = \"0x5FbDB2315678afecb367f032d93F642f64180aa3\"\nsymbol = \"USDC\"\ndecimals = 6\neip712_name = \"{TOKEN_NAME}\"\neip712_version = \"2\"\n[facilitator]\njournal = \"memory:\"\n"
        ),
    )
    .unwrap();
}

/// While a settlement's transaction is not mined, `/settle` answers `settlement_pending` with
/// its transaction, and a retried `/settle` for the same payment returns that same
/// transaction instead of submitting another; once mined, the retry gets the success.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_settle_while_unmined_is_pending_on_the_same_transaction() {
    let Some(setup) = setup(&[4], None, "") else {
        return;
    };
    // Answer after a short wait instead of waiting for the receipt.
    let config = std::fs::read_to_string(&setup.config).unwrap();
    assert!(config.contains("settle_wait = \"90s\""));
    std::fs::write(
        &setup.config,
        config.replace("settle_wait = \"90s\"", "settle_wait = \"300ms\""),
    )
    .unwrap();
    let facilitator = setup.start(&[4]).await;
    let http = reqwest::Client::new();
    let url = &facilitator.url;
    let pay_to = LocalSigner::random().address();
    let request = setup.payments(1, pay_to).remove(0);
    setup.anvil.call("evm_setAutomine", json!([false]));

    let (status, first) = post(&http, url, "/settle", &request).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["success"], false, "{first}\n{}", facilitator.logs());
    assert_eq!(first["errorReason"], "settlement_pending", "{first}");
    let transaction = first["transaction"].as_str().unwrap().to_owned();
    assert!(
        transaction.starts_with("0x") && transaction.len() == 66,
        "{first}"
    );
    let (_, again) = post(&http, url, "/settle", &request).await;
    assert_eq!(again["errorReason"], "settlement_pending", "{again}");
    assert_eq!(again["transaction"], transaction.as_str());
    // Nothing mined, one transaction waiting: the retry submitted nothing.
    let pool = setup.anvil.call("txpool_status", json!([]));
    assert_eq!(pool["pending"], "0x1", "{pool}");
    assert_eq!(setup.anvil.balance(setup.token, pay_to), U256::ZERO);

    setup.anvil.call("evm_mine", json!([]));
    setup.anvil.call("evm_setAutomine", json!([true]));
    let deadline = Instant::now() + Duration::from_secs(60);
    let done = settle_until_final(&http, url, &request, deadline).await;
    assert_eq!(done["success"], true, "{done}\n{}", facilitator.logs());
    assert_eq!(done["transaction"], transaction.as_str());
    assert_eq!(setup.anvil.balance(setup.token, pay_to), U256::from(PRICE));
    let receipt = setup
        .anvil
        .call("eth_getTransactionReceipt", json!([transaction]));
    assert_eq!(receipt["status"], "0x1");
}
