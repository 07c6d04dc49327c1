use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

fn context() -> HookContext {
    let requirements: PaymentRequirements = serde_json::from_value(serde_json::json!({
        "scheme": "exact", "network": "eip155:84532", "amount": "10000",
        "asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
        "payTo": "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC", "maxTimeoutSeconds": 300,
        "extra": {"name": "USDC", "version": "2"}
    }))
    .unwrap();
    let payload: PaymentPayload = serde_json::from_value(serde_json::json!({
        "x402Version": 2,
        "accepted": serde_json::to_value(&requirements).unwrap(),
        "payload": {
            "signature": "0x00",
            "authorization": {
                "from": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
                "to": "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
                "value": "10000", "validAfter": "0", "validBefore": "1796050353",
                "nonce": "0x0b2d310c2d4b1269293f47cafc9cd5af7e909374030962752891a4c612d61f3c"
            }
        }
    }))
    .unwrap();
    let request = RequestSummary {
        method: "GET".into(),
        path_and_query: "/report".into(),
        resource: "https://api.example.test/report".into(),
        host: Some("api.example.test".into()),
        user_agent: None,
    };
    HookContext::new(
        request,
        HookPayment::new(Arc::new(payload), Arc::new(requirements)),
    )
    .with_payer_for_tests()
}

impl HookContext {
    fn with_payer_for_tests(mut self) -> Self {
        self.payment = self
            .payment
            .with_payer("0x70997970C51812dc3A010C7d01b50e0d17dc79C8");
        self
    }
}

fn redemption() -> Redemption {
    Redemption::new(
        context().request,
        "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
        Grant {
            id: "g1".into(),
            scope: "path:/report".into(),
            transaction: "0xabc".into(),
            paid: U256::from(10_000u64),
            expires_at: 2_000_000_000,
            remaining: Some(2),
        },
    )
}

/// Records each call, then behaves as told.
#[derive(Clone, Copy)]
enum Act {
    Continue,
    Abort(u16),
    Fail,
    Panic,
    Hang,
}

struct Scripted {
    name: &'static str,
    act: Act,
    log: Arc<Mutex<Vec<String>>>,
}

impl Scripted {
    async fn run(&self, point: &str) -> Result<Verdict, HookError> {
        self.log
            .lock()
            .unwrap()
            .push(format!("{}:{point}", self.name));
        match self.act {
            Act::Continue => Ok(Verdict::Continue),
            Act::Abort(status) => Ok(Verdict::Abort(Abort::new(
                status,
                Reason::new("payer_blocked"),
                "blocked",
            ))),
            Act::Fail => Err("crm unreachable".into()),
            Act::Panic => panic!("hook bug"),
            Act::Hang => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok(Verdict::Continue)
            }
        }
    }
}

#[async_trait]
impl Hooks for Scripted {
    fn name(&self) -> &str {
        self.name
    }
    async fn before_verify(&self, _: &HookContext) -> Result<Verdict, HookError> {
        self.run("before_verify").await
    }
    async fn after_verify(&self, _: &HookContext) -> Result<Verdict, HookError> {
        self.run("after_verify").await
    }
    async fn after_settle(&self, _: &HookContext, _: &Settlement) -> Result<(), HookError> {
        self.run("after_settle").await.map(|_| ())
    }
    async fn on_settle_failure(&self, _: &HookContext, _: &Settlement) -> Result<(), HookError> {
        self.run("on_settle_failure").await.map(|_| ())
    }
    async fn on_entitlement_redemption(&self, _: &Redemption) -> Result<Verdict, HookError> {
        self.run("redemption").await
    }
}

fn runner(acts: &[(&'static str, Act)]) -> (HookRunner, Arc<Mutex<Vec<String>>>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut runner = HookRunner::new().timeout(Duration::from_millis(100));
    for (name, act) in acts {
        runner = runner.with(Scripted {
            name,
            act: *act,
            log: log.clone(),
        });
    }
    (runner, log)
}

fn settled() -> Settlement {
    Settlement::Settled {
        transaction: "0xabc".into(),
        amount: U256::from(10_000u64),
    }
}

#[tokio::test]
async fn no_hooks_and_continuing_hooks_let_the_request_through_in_order() {
    assert_eq!(HookRunner::new().before_verify(&context()).await, Ok(()));
    let (hooks, log) = runner(&[("a", Act::Continue), ("b", Act::Continue)]);
    let ctx = context();
    assert_eq!(hooks.before_verify(&ctx).await, Ok(()));
    assert_eq!(hooks.after_verify(&ctx).await, Ok(()));
    assert_eq!(hooks.after_settle(&ctx, &settled()).await, Ok(()));
    assert_eq!(hooks.on_entitlement_redemption(&redemption()).await, Ok(()));
    assert_eq!(
        *log.lock().unwrap(),
        [
            "a:before_verify",
            "b:before_verify",
            "a:after_verify",
            "b:after_verify",
            "a:after_settle",
            "b:after_settle",
            "a:redemption",
            "b:redemption",
        ]
    );
}

#[tokio::test]
async fn an_abort_stops_the_request_with_its_status_and_later_hooks_do_not_run() {
    let (hooks, log) = runner(&[("a", Act::Abort(403)), ("b", Act::Continue)]);
    let abort = hooks.after_verify(&context()).await.unwrap_err();
    assert_eq!(abort.status, 403);
    assert_eq!(abort.reason.as_str(), "payer_blocked");
    assert_eq!(*log.lock().unwrap(), ["a:after_verify"]);
}

#[tokio::test]
async fn failing_panicking_hanging_or_non_error_aborts_fail_closed() {
    for act in [
        Act::Fail,
        Act::Panic,
        Act::Hang,
        Act::Abort(200),
        Act::Abort(302),
    ] {
        let (hooks, log) = runner(&[("bad", act), ("never", Act::Continue)]);
        let ctx = context();
        for result in [
            hooks.before_verify(&ctx).await,
            hooks.after_verify(&ctx).await,
            hooks.on_entitlement_redemption(&redemption()).await,
        ] {
            let abort = result.unwrap_err();
            assert_eq!(abort.status, 500);
            assert_eq!(abort.reason.as_str(), HOOK_FAILED);
            assert!(
                !abort.message.contains("crm"),
                "internal details stay in the log"
            );
        }
        assert!(
            !log.lock().unwrap().iter().any(|l| l.starts_with("never")),
            "nothing runs after a failed gating hook"
        );
    }
}

#[tokio::test]
async fn observers_all_run_and_their_failures_are_reported() {
    let (hooks, log) = runner(&[
        ("panics", Act::Panic),
        ("fails", Act::Fail),
        ("hangs", Act::Hang),
        ("fine", Act::Continue),
    ]);
    let failure = Settlement::Unknown {
        transaction: None,
        detail: "timeout".into(),
    };
    let failures = hooks
        .on_settle_failure(&context(), &failure)
        .await
        .unwrap_err();
    let names: Vec<_> = failures.0.iter().map(|f| f.hook.as_str()).collect();
    assert_eq!(names, ["panics", "fails", "hangs"]);
    assert!(failures.0[0].error.contains("hook bug"), "{failures}");
    assert!(failures.0[1].error.contains("crm unreachable"));
    assert!(failures.0[2].error.contains("timed out"));
    assert!(
        log.lock()
            .unwrap()
            .contains(&"fine:on_settle_failure".to_owned())
    );
}

#[tokio::test]
async fn closures_see_the_payment_and_the_settlement() {
    let settled_seen = Arc::new(AtomicUsize::new(0));
    let seen = settled_seen.clone();
    let hooks = HookRunner::new().with(
        FnHooks::new()
            .named("crm")
            .after_verify(|ctx: HookContext| async move {
                Ok(if ctx.payment.amount > U256::from(5_000u64) {
                    Verdict::Abort(Abort::new(402, Reason::new("too_expensive"), "no"))
                } else {
                    Verdict::Continue
                })
            })
            .after_settle(move |ctx: HookContext, s: Settlement| {
                let seen = seen.clone();
                async move {
                    assert_eq!(ctx.payment.network, "eip155:84532");
                    if let Settlement::Settled { amount, .. } = s {
                        seen.fetch_add(amount.to::<usize>(), Ordering::SeqCst);
                    }
                    Ok(())
                }
            }),
    );
    let abort = hooks.after_verify(&context()).await.unwrap_err();
    assert_eq!(
        (abort.status, abort.reason.as_str()),
        (402, "too_expensive")
    );
    assert_eq!(
        hooks.before_verify(&context()).await,
        Ok(()),
        "unset points continue"
    );
    hooks.after_settle(&context(), &settled()).await.unwrap();
    assert_eq!(settled_seen.load(Ordering::SeqCst), 10_000);
    assert!(format!("{hooks:?}").contains("crm"));
}
