//! The scenario table: each row is a request (or a few) against a paid app, a facilitator
//! behaviour, and what must be observed. Rows know nothing about frameworks; the runner takes
//! a function that launches the app on any framework.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use x402_protocol::ProtocolVersion::{V1, V2};
use x402_protocol::eip3009::LocalSigner;
use x402_protocol::facilitator::SettleResponse;
use x402_protocol::{ProtocolVersion, codec};

use crate::client::{Challenge, Fault, pay};
use crate::facilitator::{Mode, start};

/// How long servers wait for the facilitator in the table.
pub const FACILITATOR_TIMEOUT: Duration = Duration::from_millis(500);

/// What a server under test is configured with.
#[derive(Clone)]
pub struct ServerConfig {
    /// The facilitator's base URL.
    pub facilitator_url: String,
    /// How long to wait for it.
    pub facilitator_timeout: Duration,
    /// Recipient of payments.
    pub pay_to: &'static str,
    /// The account the facilitator settles metered (`upto`) payments from on base-sepolia,
    /// when the test pays the metered route.
    pub upto_facilitator: Option<String>,
    /// The fee payer the facilitator co-signs Solana payments with, when the test pays the
    /// `/sol/…` routes.
    pub fee_payer: Option<String>,
    /// A settler the server asks about contract-wallet signatures before its facilitator
    /// (`X402Builder::chain_checks`).
    pub chain_checks: Option<std::sync::Arc<dyn x402_runtime::facilitator::Settler>>,
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("facilitator_url", &self.facilitator_url)
            .field("facilitator_timeout", &self.facilitator_timeout)
            .field("pay_to", &self.pay_to)
            .field("upto_facilitator", &self.upto_facilitator)
            .field("fee_payer", &self.fee_payer)
            .field("chain_checks", &self.chain_checks.is_some())
            .finish()
    }
}

/// A server under test, running on a loopback port until dropped.
pub struct RunningServer {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// How many times a paid handler has run.
    pub hits: Arc<AtomicUsize>,
    /// Keeps the server alive; dropping it stops the server.
    pub guard: Box<dyn Send>,
}

/// Launches the table's app (see [`crate::apps`]) on one framework.
pub type Launch = fn(ServerConfig) -> BoxFuture<'static, RunningServer>;

/// A raw header value for malformed-input rows.
#[derive(Debug, Clone, Copy)]
pub enum Raw {
    /// Sent as is.
    Text(&'static str),
    /// Base64 of these bytes.
    Base64Of(&'static [u8]),
    /// `n` copies of a character.
    Repeat(char, usize),
}

/// What the client sends.
#[derive(Debug, Clone, Copy)]
pub enum Action {
    /// A request without payment.
    Nothing,
    /// A payment for the route's own 402 (or, with `price_of`, another route's 402), in one
    /// protocol generation, on a chosen network, with a chosen fault.
    Pay {
        /// Protocol generation.
        version: ProtocolVersion,
        /// Network to pay on (default: the first offered).
        network: Option<&'static str>,
        /// What to get wrong.
        fault: Fault,
        /// Pay the 402 of this path instead.
        price_of: Option<&'static str>,
    },
    /// A raw payment header.
    Header(&'static str, Raw),
    /// A valid payment sent twice (a client whose answer was lost); the second answer is
    /// observed.
    Replay,
    /// One valid payment sent by this many concurrent requests; one of the served answers is
    /// observed, and every answer is checked against the others.
    Race(usize),
    /// A valid payment, then a request with the entitlement token it bought; the second answer
    /// is observed.
    PayThenReuse,
}

/// What must be observed.
#[derive(Debug, Clone, Copy)]
pub struct Expect {
    /// Final status.
    pub status: u16,
    /// `error` of the JSON body, if the body is a runtime error.
    pub reason: Option<&'static str>,
    /// Whether the answer carries `PAYMENT-REQUIRED`.
    pub challenge: bool,
    /// Which receipt header the answer carries, if any.
    pub receipt: Option<&'static str>,
    /// Transfers settled in the facilitator's ledger.
    pub settled: usize,
    /// Times the paid handler ran.
    pub handler_runs: usize,
    /// Text the body must contain.
    pub body: Option<&'static str>,
    /// The body must be the settlement transaction from the receipt.
    pub body_is_transaction: bool,
    /// `(network, amount)` of the v2 challenge for the path.
    pub accepts: Option<&'static [(&'static str, u64)]>,
}

/// A row of the table.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    /// Name, for failure messages.
    pub name: &'static str,
    /// How the facilitator behaves.
    pub facilitator: Mode,
    /// Path of the paid route.
    pub path: &'static str,
    /// What to send.
    pub action: Action,
    /// What must be observed.
    pub expect: Expect,
}

const fn pay_valid(version: ProtocolVersion) -> Action {
    Action::Pay {
        version,
        network: None,
        fault: Fault::None,
        price_of: None,
    }
}

const fn pay_faulty(fault: Fault) -> Action {
    Action::Pay {
        version: V2,
        network: None,
        fault,
        price_of: None,
    }
}

/// Refused before the handler: 402 with the challenge and this reason, nothing settled.
const fn refused(reason: &'static str) -> Expect {
    Expect {
        status: 402,
        reason: Some(reason),
        challenge: true,
        receipt: None,
        settled: 0,
        handler_runs: 0,
        body: None,
        body_is_transaction: false,
        accepts: None,
    }
}

/// An error that is not a payment problem: no challenge, nothing settled, handler not run.
const fn error(status: u16, reason: &'static str) -> Expect {
    Expect {
        status,
        reason: Some(reason),
        challenge: false,
        ..refused(reason)
    }
}

/// Served and settled once.
const fn served(receipt: &'static str, body: &'static str) -> Expect {
    Expect {
        status: 200,
        reason: None,
        challenge: false,
        receipt: Some(receipt),
        settled: 1,
        handler_runs: 1,
        body: Some(body),
        body_is_transaction: false,
        accepts: None,
    }
}

/// The table. Add a row here and it runs on every framework.
pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "no payment: 402 with the v1 body and the v2 header",
        facilitator: Mode::Honest,
        path: "/weather",
        action: Action::Nothing,
        expect: Expect {
            accepts: Some(&[("eip155:84532", 10_000)]),
            ..refused("payment_required")
        },
    },
    Scenario {
        name: "valid v1 payment",
        facilitator: Mode::Honest,
        path: "/weather",
        action: pay_valid(V1),
        expect: served("x-payment-response", "sunny"),
    },
    Scenario {
        name: "valid v2 payment",
        facilitator: Mode::Honest,
        path: "/weather",
        action: pay_valid(V2),
        expect: served("payment-response", "sunny"),
    },
    Scenario {
        // v2 names what it pays in `accepted`: an entry this route does not offer.
        name: "payment for another route's price",
        facilitator: Mode::Honest,
        path: "/weather",
        action: Action::Pay {
            version: V2,
            network: None,
            fault: Fault::None,
            price_of: Some("/cheap"),
        },
        expect: refused("invalid_payload_accepted_mismatch"),
    },
    Scenario {
        // v1 has no `accepted`: the authorization's value is checked against the price.
        name: "v1 payment for another route's price",
        facilitator: Mode::Honest,
        path: "/weather",
        action: Action::Pay {
            version: V1,
            network: None,
            fault: Fault::None,
            price_of: Some("/cheap"),
        },
        expect: refused("invalid_exact_evm_payload_authorization_value"),
    },
    Scenario {
        name: "wrong payTo",
        facilitator: Mode::Honest,
        path: "/weather",
        action: pay_faulty(Fault::WrongPayTo),
        expect: refused("invalid_exact_evm_payload_recipient_mismatch"),
    },
    Scenario {
        name: "wrong network",
        facilitator: Mode::Honest,
        path: "/weather",
        action: pay_faulty(Fault::WrongNetwork),
        expect: refused("invalid_network"),
    },
    Scenario {
        name: "wrong asset",
        facilitator: Mode::Honest,
        path: "/weather",
        action: pay_faulty(Fault::WrongAsset),
        expect: refused("invalid_exact_evm_payload_asset_mismatch"),
    },
    Scenario {
        name: "expired authorization",
        facilitator: Mode::Honest,
        path: "/weather",
        action: pay_faulty(Fault::Expired),
        expect: refused("invalid_exact_evm_payload_authorization_valid_before"),
    },
    Scenario {
        name: "authorization not yet valid",
        facilitator: Mode::Honest,
        path: "/weather",
        action: pay_faulty(Fault::NotYetValid),
        expect: refused("invalid_exact_evm_payload_authorization_valid_after"),
    },
    Scenario {
        name: "bad signature",
        facilitator: Mode::Honest,
        path: "/weather",
        action: pay_faulty(Fault::BadSignature),
        expect: refused("invalid_exact_evm_payload_signature"),
    },
    Scenario {
        name: "a settled payment sent again gets its kept answer, charged once",
        facilitator: Mode::Honest,
        path: "/weather",
        action: Action::Replay,
        expect: served("payment-response", "sunny"),
    },
    Scenario {
        name: "a payment raced by 32 concurrent requests: one handler run, one charge",
        facilitator: Mode::Honest,
        path: "/weather",
        action: Action::Race(32),
        expect: served("payment-response", "sunny"),
    },
    Scenario {
        name: "malformed base64",
        facilitator: Mode::Honest,
        path: "/weather",
        action: Action::Header("payment-signature", Raw::Text("%%% not base64 %%%")),
        expect: error(400, "invalid_payload"),
    },
    Scenario {
        name: "malformed JSON",
        facilitator: Mode::Honest,
        path: "/weather",
        action: Action::Header(
            "x-payment",
            Raw::Base64Of(b"{\"x402Version\": 1, \"scheme\": "),
        ),
        expect: error(400, "invalid_payload"),
    },
    Scenario {
        name: "oversized payment header",
        facilitator: Mode::Honest,
        path: "/weather",
        action: Action::Header("payment-signature", Raw::Repeat('A', 12_000)),
        expect: error(431, "payment_header_too_large"),
    },
    Scenario {
        name: "facilitator unreachable: 502",
        facilitator: Mode::Unreachable,
        path: "/weather",
        action: pay_valid(V2),
        expect: error(502, "facilitator_unavailable"),
    },
    Scenario {
        name: "facilitator slower than the timeout: 504",
        facilitator: Mode::Silent,
        path: "/weather",
        action: pay_valid(V2),
        expect: error(504, "facilitator_timeout"),
    },
    Scenario {
        name: "facilitator answers garbage: 502",
        facilitator: Mode::Garbage,
        path: "/weather",
        action: pay_valid(V2),
        expect: error(502, "facilitator_invalid_response"),
    },
    Scenario {
        name: "verified but settlement fails: 402, handler output withheld",
        facilitator: Mode::SettleFails,
        path: "/weather",
        action: pay_valid(V2),
        expect: Expect {
            receipt: Some("payment-response"),
            handler_runs: 1,
            ..refused("invalid_exact_evm_transaction_failed")
        },
    },
    Scenario {
        name: "handler returns an error: nothing settled",
        facilitator: Mode::Honest,
        path: "/broken",
        action: pay_valid(V2),
        expect: Expect {
            status: 500,
            reason: None,
            challenge: false,
            receipt: None,
            settled: 0,
            handler_runs: 1,
            body: Some("the handler failed"),
            body_is_transaction: false,
            accepts: None,
        },
    },
    Scenario {
        name: "dynamic price",
        facilitator: Mode::Honest,
        path: "/dynamic?cents=7",
        action: pay_valid(V2),
        expect: Expect {
            accepts: Some(&[("eip155:84532", 70_000)]),
            ..served("payment-response", "0.07 USDC")
        },
    },
    Scenario {
        name: "multi-network route, paid on the second network",
        facilitator: Mode::Honest,
        path: "/multi",
        action: Action::Pay {
            version: V2,
            network: Some("eip155:8453"),
            fault: Fault::None,
            price_of: None,
        },
        expect: Expect {
            accepts: Some(&[("eip155:84532", 20_000), ("eip155:8453", 20_000)]),
            ..served("payment-response", "base")
        },
    },
    Scenario {
        name: "settle-before route: receipt present, transaction in Payment",
        facilitator: Mode::Honest,
        path: "/before",
        action: pay_valid(V2),
        expect: Expect {
            body: None,
            body_is_transaction: true,
            ..served("payment-response", "")
        },
    },
    Scenario {
        name: "entitlement bought once, reused without paying",
        facilitator: Mode::Honest,
        path: "/hourly",
        action: Action::PayThenReuse,
        expect: Expect {
            receipt: None,
            handler_runs: 2,
            ..served("", "hourly")
        },
    },
];

/// What one row produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// Final status.
    pub status: u16,
    /// `error` of a JSON body.
    pub reason: Option<String>,
    /// `PAYMENT-REQUIRED` present.
    pub challenge: bool,
    /// Receipt headers present.
    pub receipts: Vec<&'static str>,
    /// Transfers settled.
    pub settled: usize,
    /// Handler runs.
    pub handler_runs: usize,
    /// Keys and value types of a JSON body (`text` for other bodies).
    pub body_shape: String,
    /// The v2 challenge's `(network, amount)` entries for the path.
    pub accepts: Vec<(String, u64)>,
    /// The body, for content checks (not compared across frameworks).
    pub body: String,
    /// The transaction in the receipt, if any.
    pub transaction: Option<String>,
    /// For races: what went wrong across the answers (several 200s must be the same kept
    /// answer; the rest must say the payment is in progress or pending), if anything.
    pub race_fault: Option<String>,
    /// How long the observed request took.
    pub elapsed: Duration,
}

impl Observed {
    /// The fields every framework must agree on.
    pub fn comparable(&self) -> impl PartialEq + std::fmt::Debug + use<> {
        (
            self.status,
            self.reason.clone(),
            self.challenge,
            self.receipts.clone(),
            self.settled,
            self.handler_runs,
            self.body_shape.clone(),
            self.accepts.clone(),
            self.race_fault.clone(),
        )
    }
}

fn shape(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Object(map) => {
            let fields: BTreeMap<_, _> = map.iter().map(|(k, v)| (k.clone(), shape(v))).collect();
            format!(
                "{{{}}}",
                fields
                    .into_iter()
                    .map(|(k, v)| format!("{k}:{v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            )
        }
        serde_json::Value::Array(items) => format!(
            "[{}]",
            items.iter().map(shape).collect::<Vec<_>>().join(",")
        ),
        serde_json::Value::String(_) => "string".into(),
        serde_json::Value::Number(_) => "number".into(),
        serde_json::Value::Bool(_) => "bool".into(),
        serde_json::Value::Null => "null".into(),
    }
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

async fn get(client: &reqwest::Client, url: &str, headers: &[(&str, String)]) -> Answer {
    let mut request = client.get(url);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.expect("the server answers");
    Answer {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: response.bytes().await.expect("a body").to_vec(),
    }
}

async fn challenge(client: &reqwest::Client, url: &str) -> Challenge {
    let answer = get(client, url, &[]).await;
    assert_eq!(answer.status, 402, "{url} must answer 402 without payment");
    Challenge::parse(
        answer
            .headers
            .get("payment-required")
            .and_then(|v| v.to_str().ok()),
        &answer.body,
    )
}

/// Runs one row against an app launched with `launch`.
pub async fn run(scenario: &Scenario, launch: Launch) -> Observed {
    let facilitator = start(scenario.facilitator).await;
    let payer = LocalSigner::random();
    facilitator.fund_everywhere(payer.address());
    let server = launch(ServerConfig {
        facilitator_url: facilitator.url.clone(),
        facilitator_timeout: FACILITATOR_TIMEOUT,
        pay_to: "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
        upto_facilitator: None,
        fee_payer: None,
        chain_checks: None,
    })
    .await;
    let client = reqwest::Client::new();
    let url = format!("{}{}", server.base, scenario.path);
    let accepts = challenge(&client, &url).await.v2_accepts();

    let mut race_fault = None;
    let started;
    let answer = match scenario.action {
        Action::Nothing => {
            started = Instant::now();
            get(&client, &url, &[]).await
        }
        Action::Header(name, raw) => {
            let value = match raw {
                Raw::Text(text) => text.to_owned(),
                Raw::Base64Of(bytes) => codec::encode_bytes(bytes),
                Raw::Repeat(c, n) => c.to_string().repeat(n),
            };
            started = Instant::now();
            get(&client, &url, &[(name, value)]).await
        }
        Action::Pay {
            version,
            network,
            fault,
            price_of,
        } => {
            let source =
                price_of.map_or_else(|| url.clone(), |path| format!("{}{path}", server.base));
            let (name, value) = pay(
                &challenge(&client, &source).await,
                version,
                network,
                &payer,
                fault,
            );
            started = Instant::now();
            get(&client, &url, &[(name, value)]).await
        }
        Action::Replay => {
            let (name, value) = pay(
                &challenge(&client, &url).await,
                V2,
                None,
                &payer,
                Fault::None,
            );
            let first = get(&client, &url, &[(name, value.clone())]).await;
            assert_eq!(
                first.status, 200,
                "{}: the first use of the payment is served",
                scenario.name
            );
            started = Instant::now();
            get(&client, &url, &[(name, value)]).await
        }
        Action::PayThenReuse => {
            let (name, value) = pay(
                &challenge(&client, &url).await,
                V2,
                None,
                &payer,
                Fault::None,
            );
            let first = get(&client, &url, &[(name, value)]).await;
            assert_eq!(
                first.status, 200,
                "{}: the purchase is served",
                scenario.name
            );
            let token = first
                .headers
                .get("x402-entitlement")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_else(|| panic!("{}: the purchase delivers a token", scenario.name))
                .to_owned();
            started = Instant::now();
            get(&client, &url, &[("x402-entitlement", token)]).await
        }
        Action::Race(copies) => {
            let (name, value) = pay(
                &challenge(&client, &url).await,
                V2,
                None,
                &payer,
                Fault::None,
            );
            started = Instant::now();
            let header = [(name, value)];
            let answers =
                futures_util::future::join_all((0..copies).map(|_| get(&client, &url, &header)))
                    .await;
            let (wins, others): (Vec<_>, Vec<_>) =
                answers.into_iter().partition(|a| a.status == 200);
            let receipt = |a: &Answer| a.headers.get("payment-response").cloned();
            let odd_win = wins
                .iter()
                .find(|a| a.body != wins[0].body || receipt(a) != receipt(&wins[0]));
            let odd_other = others.iter().find(|a| {
                let reason = serde_json::from_slice::<serde_json::Value>(&a.body)
                    .ok()
                    .and_then(|v| v["error"].as_str().map(str::to_owned));
                // A copy that finds the payment reserved before its journal record is written
                // can only be refused as a replay.
                !matches!(
                    (a.status, reason.as_deref()),
                    (409, Some("payment_in_progress"))
                        | (504, Some("settlement_pending"))
                        | (402, Some("invalid_exact_evm_nonce_already_used"))
                )
            });
            race_fault = match (odd_win, odd_other) {
                (Some(a), _) => Some(format!(
                    "two served answers differ: {:?} vs {:?}",
                    String::from_utf8_lossy(&a.body),
                    String::from_utf8_lossy(&wins[0].body)
                )),
                (None, Some(a)) => Some(format!(
                    "an unserved copy got {} {:?}",
                    a.status,
                    String::from_utf8_lossy(&a.body)
                )),
                (None, None) => None,
            };
            let seen: Vec<_> = others
                .iter()
                .map(|a| (a.status, String::from_utf8_lossy(&a.body).into_owned()))
                .collect();
            wins.into_iter()
                .next()
                .unwrap_or_else(|| panic!("{}: no request was served: {seen:?}", scenario.name))
        }
    };
    let elapsed = started.elapsed();
    let json: Option<serde_json::Value> = serde_json::from_slice(&answer.body).ok();
    let receipts: Vec<_> = ["x-payment-response", "payment-response"]
        .into_iter()
        .filter(|h| answer.headers.contains_key(*h))
        .collect();
    let transaction = receipts.first().and_then(|h| {
        let value = answer.headers.get(*h)?.to_str().ok()?;
        codec::decode::<SettleResponse>(value, 4096)
            .ok()
            .map(|r| r.transaction)
    });
    Observed {
        status: answer.status,
        reason: json
            .as_ref()
            .and_then(|j| j.get("error"))
            .and_then(|e| e.as_str())
            .map(String::from),
        challenge: answer.headers.contains_key("payment-required"),
        receipts,
        settled: facilitator.ledger.transfers().len(),
        handler_runs: server.hits.load(Ordering::SeqCst),
        body_shape: json.as_ref().map_or_else(|| "text".to_owned(), shape),
        accepts,
        body: String::from_utf8_lossy(&answer.body).into_owned(),
        transaction,
        race_fault,
        elapsed,
    }
}

/// Checks an observation against the row's expectations; returns what differs.
pub fn check(scenario: &Scenario, observed: &Observed) -> Result<(), String> {
    let e = &scenario.expect;
    let mut problems = Vec::new();
    let mut expect = |ok: bool, what: String| {
        if !ok {
            problems.push(what);
        }
    };
    expect(
        observed.status == e.status,
        format!("status {} (expected {})", observed.status, e.status),
    );
    expect(
        observed.reason.as_deref() == e.reason,
        format!("reason {:?} (expected {:?})", observed.reason, e.reason),
    );
    expect(
        observed.challenge == e.challenge,
        format!(
            "PAYMENT-REQUIRED present: {} (expected {})",
            observed.challenge, e.challenge
        ),
    );
    let receipts: Vec<_> = e.receipt.filter(|r| !r.is_empty()).into_iter().collect();
    expect(
        observed.receipts == receipts,
        format!(
            "receipt headers {:?} (expected {receipts:?})",
            observed.receipts
        ),
    );
    expect(
        observed.settled == e.settled,
        format!(
            "{} transfers settled (expected {})",
            observed.settled, e.settled
        ),
    );
    expect(
        observed.handler_runs == e.handler_runs,
        format!(
            "handler ran {} times (expected {})",
            observed.handler_runs, e.handler_runs
        ),
    );
    if let Some(text) = e.body.filter(|t| !t.is_empty()) {
        expect(
            observed.body.contains(text),
            format!("body {:?} lacks {text:?}", observed.body),
        );
    }
    if e.status != 200 {
        expect(
            !observed.body.contains("sunny"),
            format!("handler output delivered: {:?}", observed.body),
        );
    }
    if e.body_is_transaction {
        expect(
            observed.transaction.as_deref() == Some(observed.body.as_str()),
            format!(
                "body {:?} is not the receipt's transaction {:?}",
                observed.body, observed.transaction
            ),
        );
    }
    if let Some(accepts) = e.accepts {
        let expected: Vec<_> = accepts.iter().map(|(n, a)| ((*n).to_owned(), *a)).collect();
        expect(
            observed.accepts == expected,
            format!("accepts {:?} (expected {expected:?})", observed.accepts),
        );
    }
    if let Action::Race(_) = scenario.action {
        expect(
            observed.race_fault.is_none(),
            observed.race_fault.clone().unwrap_or_default(),
        );
    }
    if scenario.facilitator == Mode::Silent {
        expect(
            observed.elapsed >= FACILITATOR_TIMEOUT
                && observed.elapsed < FACILITATOR_TIMEOUT + Duration::from_secs(2),
            format!(
                "answered after {:?}, not within the {FACILITATOR_TIMEOUT:?} timeout",
                observed.elapsed
            ),
        );
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{}: {}", scenario.name, problems.join("; ")))
    }
}

/// Runs the whole table on one framework and fails with every mismatch at once.
pub async fn run_table(framework: &str, launch: Launch) {
    let mut failures = Vec::new();
    for scenario in SCENARIOS {
        let observed = run(scenario, launch).await;
        if let Err(problem) = check(scenario, &observed) {
            failures.push(problem);
        }
    }
    assert!(
        failures.is_empty(),
        "{framework} failed {} scenarios:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
