//! Lifecycle hooks in the gate, with the embedded facilitator and its dev ledger: what each
//! point sees, that an abort or a failure before the handler leaves the payment unused, and
//! that the settlement hooks never change a settlement's outcome.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use x402_protocol::{ProtocolVersion, Reason, U256};
use x402_runtime::hooks::{Abort, FnHooks, HOOK_FAILED, HookContext, Settlement, Verdict};
use x402_runtime::{Completion, RouteSpec};

use crate::common;

use common::{World, pay_to, rejected, world_with};

static WEATHER: RouteSpec = RouteSpec::fixed("0.01 USDC").networks(&["base-sepolia"]);
/// More than half the payer's funds: of two admitted payments, only the first can settle.
static DEAR: RouteSpec = RouteSpec::fixed("0.6 USDC").networks(&["base-sepolia"]);

type Log = Arc<Mutex<Vec<String>>>;

fn push(log: &Log, line: String) {
    log.lock().unwrap().push(line);
}

/// Hooks that record every call, named `name`.
fn recording(name: &'static str, log: &Log) -> FnHooks {
    let (a, b, c, d) = (log.clone(), log.clone(), log.clone(), log.clone());
    FnHooks::new()
        .named(name)
        .before_verify(move |ctx: HookContext| {
            let log = a.clone();
            async move {
                push(
                    &log,
                    format!("{name}:before_verify payer={:?}", ctx.payment.payer),
                );
                Ok(Verdict::Continue)
            }
        })
        .after_verify(move |ctx: HookContext| {
            let log = b.clone();
            async move {
                push(
                    &log,
                    format!(
                        "{name}:after_verify payer={} amount={} path={}",
                        ctx.payment.payer.as_deref().unwrap_or("-"),
                        ctx.payment.amount,
                        ctx.request.path_and_query
                    ),
                );
                Ok(Verdict::Continue)
            }
        })
        .after_settle(move |_ctx: HookContext, s: Settlement| {
            let log = c.clone();
            async move {
                if let Settlement::Settled { amount, .. } = s {
                    push(&log, format!("{name}:after_settle amount={amount}"));
                }
                Ok(())
            }
        })
        .on_settle_failure(move |_ctx: HookContext, s: Settlement| {
            let log = d.clone();
            async move {
                let what = match s {
                    Settlement::Failed { reason, .. } => format!("failed {reason}"),
                    Settlement::Unknown { .. } => "unknown".to_owned(),
                    _ => "something else".to_owned(),
                };
                push(&log, format!("{name}:on_settle_failure {what}"));
                Ok(())
            }
        })
}

fn no_transfers(w: &World) -> bool {
    w.gate.dev_ledger().unwrap().transfers().is_empty()
}

#[tokio::test]
async fn hooks_run_in_order_and_see_the_request_the_payer_and_the_settlement() {
    let log: Log = Arc::default();
    let w = world_with(|b| {
        b.embedded_facilitator()
            .hooks(recording("first", &log))
            .hooks(recording("second", &log))
    });
    let request = w
        .paid(&WEATHER, "/weather", ProtocolVersion::V2, "eip155:84532")
        .await;
    let admission = w
        .gate
        .evaluate(&request, &WEATHER)
        .await
        .into_result()
        .unwrap();
    let payer = w.payer.address().to_string();
    let Completion::Deliver { headers, .. } = w.gate.finish(admission.pending, 200).await else {
        panic!("settlement must succeed")
    };
    assert!(!headers.is_empty(), "the receipt is sent");
    assert_eq!(
        *log.lock().unwrap(),
        [
            "first:before_verify payer=None".to_owned(),
            "second:before_verify payer=None".to_owned(),
            format!("first:after_verify payer={payer} amount=10000 path=/weather"),
            format!("second:after_verify payer={payer} amount=10000 path=/weather"),
            "first:after_settle amount=10000".to_owned(),
            "second:after_settle amount=10000".to_owned(),
        ]
    );
}

#[tokio::test]
async fn an_after_verify_abort_refuses_with_its_status_and_leaves_the_payment_unused() {
    let blocking = Arc::new(AtomicBool::new(true));
    let settled: Log = Arc::default();
    let (block, seen) = (blocking.clone(), settled.clone());
    let w = world_with(|b| {
        b.embedded_facilitator().hooks(
            FnHooks::new()
                .after_verify(move |_ctx: HookContext| {
                    let block = block.load(Ordering::SeqCst);
                    async move {
                        Ok(if block {
                            Verdict::Abort(Abort::new(
                                403,
                                Reason::new("payer_blocked"),
                                "this payer is blocked",
                            ))
                        } else {
                            Verdict::Continue
                        })
                    }
                })
                .after_settle(move |_ctx: HookContext, _s: Settlement| {
                    let seen = seen.clone();
                    async move {
                        push(&seen, "settled".into());
                        Ok(())
                    }
                }),
        )
    });
    let request = w
        .paid(&WEATHER, "/weather", ProtocolVersion::V2, "eip155:84532")
        .await;
    let payee_before = w.balance("base-sepolia", pay_to());

    let rejection = rejected(w.gate.evaluate(&request, &WEATHER).await);
    assert_eq!(rejection.status(), 403);
    assert_eq!(rejection.reason().as_str(), "payer_blocked");
    assert_eq!(rejection.message(), "this payer is blocked");
    let response = rejection.to_response();
    assert_eq!(response.status, 403);
    let body: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(body["error"], "payer_blocked", "{body}");
    assert!(no_transfers(&w), "nothing settled");
    assert_eq!(w.balance("base-sepolia", pay_to()), payee_before);
    assert!(settled.lock().unwrap().is_empty());

    // The reservation was released: the same payment is admitted once the hook allows it.
    blocking.store(false, Ordering::SeqCst);
    let admission = w
        .gate
        .evaluate(&request, &WEATHER)
        .await
        .into_result()
        .unwrap_or_else(|r| panic!("the refused payment stays usable: {r}"));
    assert!(matches!(
        w.gate.finish(admission.pending, 200).await,
        Completion::Deliver { .. }
    ));
    assert_eq!(
        w.balance("base-sepolia", pay_to()),
        payee_before + U256::from(10_000u64)
    );
    assert_eq!(*settled.lock().unwrap(), ["settled"]);
}

#[tokio::test]
async fn failing_panicking_or_misbehaving_gating_hooks_fail_closed() {
    let cases: Vec<(&str, FnHooks)> = vec![
        (
            "before_verify error",
            FnHooks::new().before_verify(|_| async { Err("crm unreachable".into()) }),
        ),
        (
            "after_verify error",
            FnHooks::new().after_verify(|_| async { Err("crm unreachable".into()) }),
        ),
        (
            "after_verify panic",
            FnHooks::new().after_verify(|_| async { panic!("hook bug") }),
        ),
        (
            "after_verify abort with 200",
            FnHooks::new().after_verify(|_| async {
                Ok(Verdict::Abort(Abort::new(200, Reason::new("ok"), "ok")))
            }),
        ),
    ];
    for (case, hooks) in cases {
        let w = world_with(|b| b.embedded_facilitator().hooks(hooks));
        let request = w
            .paid(&WEATHER, "/weather", ProtocolVersion::V1, "base-sepolia")
            .await;
        let rejection = rejected(w.gate.evaluate(&request, &WEATHER).await);
        assert_eq!(rejection.status(), 500, "{case}");
        assert_eq!(rejection.reason().as_str(), HOOK_FAILED, "{case}");
        assert!(
            !rejection.message().contains("crm"),
            "{case}: details stay in the log"
        );
        assert!(no_transfers(&w), "{case}: nothing settled");
    }
}

#[tokio::test]
async fn a_before_verify_abort_refuses_before_any_check() {
    let w = world_with(|b| {
        b.embedded_facilitator().hooks(FnHooks::new().before_verify(
            |ctx: HookContext| async move {
                assert!(ctx.payment.payer.is_none(), "not verified yet");
                Ok(Verdict::Abort(Abort::new(
                    429,
                    Reason::new("slow_down"),
                    "too many payments",
                )))
            },
        ))
    });
    let request = w
        .paid(&WEATHER, "/weather", ProtocolVersion::V2, "eip155:84532")
        .await;
    let rejection = rejected(w.gate.evaluate(&request, &WEATHER).await);
    assert_eq!(
        (rejection.status(), rejection.reason().as_str()),
        (429, "slow_down")
    );
    assert!(no_transfers(&w));
}

#[tokio::test]
async fn settlement_hooks_are_told_of_failures_and_their_own_failures_change_nothing() {
    let log: Log = Arc::default();
    let w = world_with(|b| {
        b.embedded_facilitator()
            .hooks(
                FnHooks::new()
                    .named("broken")
                    .after_settle(|_, _| async { Err("crm unreachable".into()) })
                    .on_settle_failure(|_, _| async { panic!("hook bug") }),
            )
            .hooks(recording("log", &log))
    });
    // Two payments of 0.6 USDC from a payer holding 1 USDC: both verify, one can settle.
    let first = w
        .paid(&DEAR, "/dear", ProtocolVersion::V2, "eip155:84532")
        .await;
    let second = w
        .paid(&DEAR, "/dear", ProtocolVersion::V2, "eip155:84532")
        .await;
    let first = w.gate.evaluate(&first, &DEAR).await.into_result().unwrap();
    let second = w.gate.evaluate(&second, &DEAR).await.into_result().unwrap();

    let Completion::Deliver { headers, .. } = w.gate.finish(first.pending, 200).await else {
        panic!("a failing after_settle hook must not withdraw a settled response")
    };
    assert!(!headers.is_empty(), "the receipt is sent");
    assert_eq!(
        w.balance("base-sepolia", pay_to()),
        U256::from(600_000u64),
        "settled"
    );

    let Completion::Replace(response) = w.gate.finish(second.pending, 200).await else {
        panic!("the second settlement cannot succeed")
    };
    assert_eq!(response.status, 402);
    assert_eq!(w.gate.dev_ledger().unwrap().transfers().len(), 1);

    let log = log.lock().unwrap();
    assert!(
        log.contains(&"log:after_settle amount=600000".to_owned()),
        "{log:?}"
    );
    assert!(
        log.iter()
            .any(|l| l.starts_with("log:on_settle_failure failed")),
        "the hook after a panicking one still runs: {log:?}"
    );
}

static TWO_USES: RouteSpec = RouteSpec::fixed("0.05 USDC")
    .networks(&["base-sepolia"])
    .access(x402_runtime::AccessSpec {
        duration: None,
        uses: Some(2),
        scope: None,
    });

#[tokio::test]
async fn a_redemption_hook_refusing_a_grant_takes_nothing_from_it() {
    let blocking = Arc::new(AtomicBool::new(true));
    let seen: Log = Arc::default();
    let (block, log) = (blocking.clone(), seen.clone());
    let w = world_with(|b| {
        b.embedded_facilitator()
            .hooks(FnHooks::new().on_entitlement_redemption(
                move |r: x402_runtime::hooks::Redemption| {
                    let block = block.load(Ordering::SeqCst);
                    let log = log.clone();
                    async move {
                        push(
                            &log,
                            format!(
                                "{} {:?} {}",
                                r.payer, r.grant.remaining, r.request.path_and_query
                            ),
                        );
                        Ok(if block {
                            Verdict::Abort(Abort::new(403, Reason::new("grant_paused"), "paused"))
                        } else {
                            Verdict::Continue
                        })
                    }
                },
            ))
    });
    let request = w
        .paid(&TWO_USES, "/two", ProtocolVersion::V2, "eip155:84532")
        .await;
    let admission = w
        .gate
        .evaluate(&request, &TWO_USES)
        .await
        .into_result()
        .unwrap();
    let Completion::Deliver { headers, .. } = w.gate.finish(admission.pending, 200).await else {
        panic!("settlement must succeed")
    };
    let token = headers
        .iter()
        .find(|(n, _)| *n == "x402-entitlement")
        .map(|(_, v)| v.clone())
        .expect("a grant is delivered");
    let with_token = || common::Req::get("/two").with("x402-entitlement", token.clone());

    let refused = rejected(w.gate.evaluate(&with_token(), &TWO_USES).await);
    assert_eq!(
        (refused.status(), refused.reason().as_str()),
        (403, "grant_paused")
    );

    // The grant's last use survived the refusal (without it, this would be `exhausted`).
    blocking.store(false, Ordering::SeqCst);
    let served = w
        .gate
        .evaluate(&with_token(), &TWO_USES)
        .await
        .into_result()
        .unwrap_or_else(|r| panic!("the grant is usable again: {r}"));
    assert_eq!(
        served.payment.grant().unwrap().remaining,
        Some(0),
        "the paying request was the first use, this the second: the refused one took none"
    );
    let payer = w.payer.address().to_string();
    assert_eq!(
        *seen.lock().unwrap(),
        [
            format!("{payer} Some(0) /two"),
            format!("{payer} Some(0) /two")
        ]
    );
}
