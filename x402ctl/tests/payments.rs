//! `x402ctl payments`, run as a process against a real SQLite journal file and a real Postgres
//! journal (`X402_POSTGRES_URL`, started by `scripts/test`), filled through the runtime's own
//! journal API.

// Without a backend feature some helpers go unused.
#![cfg_attr(
    not(all(feature = "sqlite", feature = "postgres")),
    allow(dead_code, unused_imports)
)]

use std::path::PathBuf;
use std::process::Output;

use serde_json::Value;
use x402_protocol::U256;
use x402_runtime::journal::{Journal, NewPayment, PaymentState, Transition};
use x402_test_support::unique_identifier;

const BIN: &str = env!("CARGO_BIN_EXE_x402ctl");

const PAYER_A: &str = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
const PAYER_B: &str = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";
const USDC_BASE: &str = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913";
const USDC_SEPOLIA: &str = "0x036CbD53842c5426634e7929541eC2318f3dCF7e";
const UNKNOWN_TOKEN: &str = "0x0000000000000000000000000000000000000001";
const TX: &str = "0x0ec72638d9cf4855bab4c1edfebe18c38dfa4e96f5884c22ae272d87c24249b0";
/// 2^70 + 1: no 64-bit integer holds it.
const HUGE: &str = "1180591620717411303425";

/// Unix milliseconds of an RFC 3339 UTC time (values checked with Python's datetime).
const FEB_28_2300: u64 = 1_709_161_200_000;
const FEB_29_1000: u64 = 1_709_200_800_000;
const FEB_29_1200: u64 = 1_709_208_000_000;
const MAR_01_0800: u64 = 1_709_280_000_000;

async fn x402ctl(args: &[&str]) -> Output {
    tokio::process::Command::new(BIN)
        .args(args)
        .env_remove("X402_JOURNAL_URL")
        .output()
        .await
        .expect("x402ctl runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "status {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        text(&output.stdout),
        text(&output.stderr)
    );
    text(&output.stdout)
}

fn payment(
    n: u64,
    route: &str,
    payer: &str,
    network: &str,
    asset: &str,
    amount: U256,
    at: u64,
) -> NewPayment {
    NewPayment {
        id: None,
        payment_key: format!("{network}:{asset}:{payer}:{n}").to_lowercase(),
        payment_id: None,
        fingerprint: None,
        route: route.to_owned(),
        resource: format!("https://api.example.com{route}"),
        method: "GET".to_owned(),
        payer: payer.to_owned(),
        pay_to: PAYER_B.to_owned(),
        amount,
        asset: asset.to_owned(),
        network: network.to_owned(),
        scheme: "exact".to_owned(),
        x402_version: 2,
        nonce: format!("{n:#066x}"),
        valid_before: None,
        facilitator_request: "{}".to_owned(),
        at,
    }
}

/// Four payments: settled, failed, still verified (unknown token), settled by reconciliation.
/// Returns their ids in creation order.
async fn fill(journal: &dyn Journal) -> Vec<String> {
    use PaymentState::*;
    let huge: U256 = HUGE.parse().unwrap();
    let rows = [
        payment(
            1,
            "/weather",
            PAYER_A,
            "eip155:8453",
            USDC_BASE,
            U256::from(10_000u64),
            FEB_28_2300,
        ),
        payment(
            2,
            "/weather",
            PAYER_B,
            "eip155:8453",
            USDC_BASE,
            U256::from(20_000u64),
            FEB_29_1000,
        ),
        payment(
            3,
            "/report",
            PAYER_A,
            "eip155:8453",
            UNKNOWN_TOKEN,
            U256::from(5u64),
            FEB_29_1200,
        ),
        payment(
            4,
            "/report",
            PAYER_B,
            "eip155:84532",
            USDC_SEPOLIA,
            huge,
            MAR_01_0800,
        ),
    ];
    let mut ids = Vec::new();
    for row in rows {
        ids.push(journal.insert(row).await.unwrap().into_record().id);
    }
    let step = |id: &str, from, to, at| {
        let change = Transition::new(&[from], to, at);
        (id.to_owned(), change)
    };
    let changes = [
        step(&ids[0], Verified, Settling, FEB_28_2300 + 1),
        (
            ids[0].clone(),
            Transition::new(&[Settling], Settled, FEB_28_2300 + 2).transaction(TX),
        ),
        step(&ids[1], Verified, Settling, FEB_29_1000 + 1),
        (
            ids[1].clone(),
            Transition::new(&[Settling], Failed, FEB_29_1000 + 2)
                .error("insufficient_funds", "the payer holds 0.01 USDC"),
        ),
        step(&ids[3], Verified, Settling, MAR_01_0800 + 1),
        step(&ids[3], Settling, Unknown, MAR_01_0800 + 2),
        (
            ids[3].clone(),
            Transition::new(&[Unknown], Settled, MAR_01_0800 + 3)
                .transaction("0xabc")
                .reconciled(),
        ),
    ];
    for (id, change) in changes {
        journal.transition(&id, change).await.unwrap();
    }
    ids
}

/// The checks shared by both backends, against a journal `fill` wrote at `url`.
async fn check_listing_and_totals(url: &str, ids: &[String]) {
    // The table: newest first, amounts in token units where the token is known.
    let table = ok(&x402ctl(&["payments", "--journal", url]).await);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 5, "{table}");
    assert!(lines[0].starts_with("CREATED (UTC)"), "{table}");
    for (line, id) in lines[1..].iter().zip(ids.iter().rev()) {
        assert!(line.ends_with(id.as_str()), "{line} should end with {id}");
    }
    let words = |line: &str| {
        line.split("  ")
            .map(str::trim)
            .filter(|w| !w.is_empty())
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        words(lines[1]),
        [
            "2024-03-01 08:00:00",
            "settled (reconciled)",
            "/report",
            PAYER_B,
            "1180591620717411.303425 USDC",
            "base-sepolia",
            "0xabc",
            ids[3].as_str(),
        ]
    );
    assert_eq!(
        words(lines[2]),
        [
            "2024-02-29 12:00:00",
            "verified",
            "/report",
            PAYER_A,
            "5 (atomic)",
            "base",
            ids[2].as_str()
        ]
    );
    assert_eq!(
        words(lines[3]),
        [
            "2024-02-29 10:00:00",
            "failed",
            "/weather",
            PAYER_B,
            "0.02 USDC",
            "base",
            "insufficient_funds",
            ids[1].as_str(),
        ]
    );
    assert_eq!(
        words(lines[4]),
        [
            "2024-02-28 23:00:00",
            "settled",
            "/weather",
            PAYER_A,
            "0.01 USDC",
            "base",
            "0x0ec72638…49b0",
            ids[0].as_str()
        ]
    );

    // Filters.
    let listed = |args: Vec<&'static str>| {
        let url = url.to_owned();
        async move {
            let mut all = vec!["payments", "--journal", url.as_str(), "--json"];
            all.extend(args);
            let json: Value = serde_json::from_str(&ok(&x402ctl(&all).await)).unwrap();
            json["payments"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["id"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    let expect = |indices: &[usize]| indices.iter().map(|i| ids[*i].clone()).collect::<Vec<_>>();
    assert_eq!(listed(vec![]).await, expect(&[3, 2, 1, 0]));
    assert_eq!(listed(vec!["--route", "/report"]).await, expect(&[3, 2]));
    assert_eq!(
        listed(vec![
            "--payer",
            "0x70997970c51812dc3a010c7d01b50e0d17dc79c8"
        ])
        .await,
        expect(&[2, 0])
    );
    assert_eq!(listed(vec!["--state", "settled"]).await, expect(&[3, 0]));
    assert_eq!(
        listed(vec!["--state", "failed,verified"]).await,
        expect(&[2, 1])
    );
    assert_eq!(
        listed(vec!["--state", "failed", "--state", "verified"]).await,
        expect(&[2, 1])
    );
    assert_eq!(
        listed(vec!["--network", "base-sepolia"]).await,
        expect(&[3])
    );
    assert_eq!(
        listed(vec!["--network", "eip155:8453"]).await,
        expect(&[2, 1, 0])
    );
    assert_eq!(
        listed(vec!["--since", "2024-02-29", "--until", "2024-03-01"]).await,
        expect(&[2, 1])
    );
    assert_eq!(
        listed(vec!["--since", "2024-02-29T11:00:00+01:00"]).await,
        expect(&[3, 2, 1])
    );
    assert_eq!(
        listed(vec!["--until", "1709200800"]).await,
        expect(&[0]),
        "until is exclusive"
    );
    assert!(listed(vec!["--route", "/nowhere"]).await.is_empty());

    // --limit keeps the newest and says more match.
    let limited = x402ctl(&["payments", "--journal", url, "--limit", "2"]).await;
    assert_eq!(ok(&limited).lines().count(), 3);
    assert!(
        text(&limited.stderr).contains("more match"),
        "{}",
        text(&limited.stderr)
    );

    // JSON records are whole, with exact amounts.
    let json: Value = serde_json::from_str(&ok(&x402ctl(&[
        "payments",
        "--journal",
        url,
        "--json",
        "--route",
        "/report",
    ])
    .await))
    .unwrap();
    assert_eq!(json["more"], false);
    let newest = &json["payments"][0];
    assert_eq!(newest["amount"], HUGE);
    assert_eq!(newest["settled_amount"], HUGE);
    assert_eq!(newest["state"], "settled");
    assert_eq!(newest["reconciled"], true);
    assert_eq!(newest["attempts"], 1);
    assert_eq!(newest["created_at"], MAR_01_0800);
    assert_eq!(newest["network"], "eip155:84532");

    // Totals, exact, per route / day / payer / network.
    let totals = |group: &'static str, extra: Vec<&'static str>| {
        let url = url.to_owned();
        async move {
            let mut all = vec![
                "payments",
                "--journal",
                url.as_str(),
                "--totals",
                group,
                "--json",
            ];
            all.extend(extra);
            let json: Value = serde_json::from_str(&ok(&x402ctl(&all).await)).unwrap();
            assert_eq!(json["group_by"], group);
            json["totals"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| {
                    format!(
                        "{} {} {} n={} auth={} settled={}/{}",
                        t["group"].as_str().unwrap(),
                        t["network"].as_str().unwrap(),
                        t["symbol"].as_str().unwrap_or(t["asset"].as_str().unwrap()),
                        t["count"],
                        t["authorized"].as_str().unwrap(),
                        t["settled_count"],
                        t["settled"].as_str().unwrap(),
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        totals("route", vec![]).await,
        [
            format!("/report eip155:8453 {UNKNOWN_TOKEN} n=1 auth=5 settled=0/0"),
            format!("/report eip155:84532 USDC n=1 auth={HUGE} settled=1/{HUGE}"),
            "/weather eip155:8453 USDC n=2 auth=30000 settled=1/10000".to_owned(),
        ]
    );
    assert_eq!(
        totals("day", vec![]).await,
        [
            "2024-02-28 eip155:8453 USDC n=1 auth=10000 settled=1/10000".to_owned(),
            format!("2024-02-29 eip155:8453 {UNKNOWN_TOKEN} n=1 auth=5 settled=0/0"),
            "2024-02-29 eip155:8453 USDC n=1 auth=20000 settled=0/0".to_owned(),
            format!("2024-03-01 eip155:84532 USDC n=1 auth={HUGE} settled=1/{HUGE}"),
        ]
    );
    assert_eq!(
        totals("payer", vec!["--state", "settled"]).await,
        [
            format!("{PAYER_B} eip155:84532 USDC n=1 auth={HUGE} settled=1/{HUGE}"),
            format!("{PAYER_A} eip155:8453 USDC n=1 auth=10000 settled=1/10000"),
        ]
    );
    assert_eq!(
        totals("network", vec!["--route", "/weather"]).await,
        ["eip155:8453 eip155:8453 USDC n=2 auth=30000 settled=1/10000".to_owned()]
    );

    // The totals table, in token units.
    let table = ok(&x402ctl(&["payments", "--journal", url, "--totals", "route"]).await);
    let lines: Vec<Vec<String>> = table
        .lines()
        .map(|l| {
            l.split("  ")
                .map(str::trim)
                .filter(|w| !w.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .collect();
    assert_eq!(
        lines,
        [
            vec![
                "ROUTE",
                "NETWORK",
                "ASSET",
                "PAYMENTS",
                "AUTHORIZED",
                "SETTLED",
                "SETTLED AMOUNT"
            ],
            vec![
                "/report",
                "base",
                UNKNOWN_TOKEN,
                "1",
                "5 (atomic)",
                "0",
                "0 (atomic)"
            ],
            vec![
                "/report",
                "base-sepolia",
                "USDC",
                "1",
                "1180591620717411.303425 USDC",
                "1",
                "1180591620717411.303425 USDC"
            ],
            vec![
                "/weather",
                "base",
                "USDC",
                "2",
                "0.03 USDC",
                "1",
                "0.01 USDC"
            ],
        ]
    );
    let by_network = ok(&x402ctl(&["payments", "--journal", url, "--totals", "network"]).await);
    let header: Vec<&str> = by_network
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "NETWORK",
            "ASSET",
            "PAYMENTS",
            "AUTHORIZED",
            "SETTLED",
            "SETTLED",
            "AMOUNT"
        ],
        "no second network column when grouping by network"
    );
    let last: Vec<&str> = by_network
        .lines()
        .last()
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(
        last[..4],
        ["base-sepolia", "USDC", "1", "1180591620717411.303425"]
    );
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn temp_dir() -> TempDir {
    let dir = std::env::temp_dir().join(unique_identifier("x402ctl_payments"));
    std::fs::create_dir_all(&dir).unwrap();
    TempDir(dir)
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn lists_and_totals_a_sqlite_journal() {
    use x402_runtime::journal::SqliteJournal;

    let dir = temp_dir();
    let path = dir.0.join("journal.db");
    let journal = SqliteJournal::open(&path).await.unwrap();
    let ids = fill(&journal).await;
    // The server keeps running while the operator reads (WAL).
    check_listing_and_totals(&format!("sqlite://{}", path.display()), &ids).await;
    journal.close().await;
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn lists_and_totals_a_postgres_journal() {
    use x402_runtime::journal::PostgresJournal;
    use x402_runtime::sqlx::{self, Connection, PgConnection};

    let Some(url) = x402_test_support::postgres_url() else {
        return;
    };
    let schema = unique_identifier("x402ctl");
    let mut admin = PgConnection::connect(&url).await.unwrap();
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut admin)
        .await
        .unwrap();
    let separator = if url.contains('?') { '&' } else { '?' };
    let journal_url = format!("{url}{separator}options[search_path]={schema}");
    let journal = PostgresJournal::connect(&journal_url).await.unwrap();
    let ids = fill(&journal).await;
    check_listing_and_totals(&journal_url, &ids).await;
    journal.close().await;
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&mut admin)
        .await
        .unwrap();
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn mistakes_are_explained_with_the_right_exit_status() {
    let dir = temp_dir();
    let missing = dir.0.join("missing.db");
    let url = format!("sqlite://{}", missing.display());

    // A journal that is not there: exit 1, and no empty file left behind.
    let output = x402ctl(&["payments", "--journal", &url]).await;
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    assert!(
        !missing.exists(),
        "the reader created {}",
        missing.display()
    );
    assert!(
        text(&output.stderr).starts_with("x402ctl: "),
        "{}",
        text(&output.stderr)
    );

    // Usage mistakes: exit 2, naming what was wrong.
    for (args, says) in [
        (vec!["--state", "pending"], "unknown payment state"),
        (vec!["--since", "yesterday"], "is not a time"),
        (vec!["--totals", "week"], "cannot group by"),
        (vec!["--network", "nonet"], "--network"),
        (
            vec!["--since", "2024-03-01", "--until", "2024-02-01"],
            "--since must be before --until",
        ),
        (vec!["--limit", "10001"], "--limit is at most 10000"),
    ] {
        let mut all = vec!["payments", "--journal", url.as_str()];
        all.extend(&args);
        let output = x402ctl(&all).await;
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&output.stderr)
        );
        assert!(
            text(&output.stderr).contains(says),
            "{args:?}: {}",
            text(&output.stderr)
        );
    }
    let output = x402ctl(&["payments", "--journal", "mysql://db/payments"]).await;
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).contains("sqlite://"),
        "{}",
        text(&output.stderr)
    );
    // No journal named at all.
    let output = x402ctl(&["payments"]).await;
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).contains("--journal"),
        "{}",
        text(&output.stderr)
    );
    // X402_JOURNAL_URL names it instead of the flag.
    let output = tokio::process::Command::new(BIN)
        .args(["payments", "--json"])
        .env("X402_JOURNAL_URL", &url)
        .output()
        .await
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(1),
        "the env variable was used: {}",
        text(&output.stderr)
    );
    assert!(
        text(&output.stderr).contains("missing.db"),
        "{}",
        text(&output.stderr)
    );
}
