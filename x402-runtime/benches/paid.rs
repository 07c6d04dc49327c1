//! Cost of one paid request in the gate, without HTTP: `evaluate` (decode, match, verify,
//! replay check) then `finish` (settle, receipt headers), with
//!
//! - `instant_facilitator`: a facilitator that answers "valid" and "settled" at once, so what
//!   is left is the gate's own work per payment (with its default local checks, which recover
//!   the signer); `instant_facilitator_trusted`: the same with local checks off, every check
//!   left to the facilitator;
//! - `embedded_k256` / `embedded_secp256k1`: the embedded facilitator with real signature
//!   recovery, settling into a dev ledger (compare with `x402-protocol`'s `decode_verify`:
//!   the gate verifies each payment once with its scheme, the facilitator only checks the
//!   ledger);
//! - `entitlement_reuse`: a request carrying the token of a 1 h pass.
//!
//! Every payment is new (its own nonce), so replay protection does its real work: payments
//! are made before the clock starts, and a fresh gate takes each batch.
//!
//! `cargo bench -p x402-runtime --features secp256k1 --bench paid`

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use criterion::{Criterion, criterion_group, criterion_main};
use x402_protocol::client::prepare_payment;
use x402_protocol::eip3009::{LocalSigner, RecoveryBackend};
use x402_protocol::exact::Eip3009Authorization;
use x402_protocol::facilitator::{
    FacilitatorRequest, PaymentRequirements, SettleResponse, SupportedResponse, VerifyResponse,
};
use x402_protocol::{NetworkRegistry, codec, v2};
use x402_runtime::entitlement::EntitlementKeys;
use x402_runtime::facilitator::EmbeddedFacilitator;
use x402_runtime::scheme::{ExactEip3009, Schemes};
use x402_runtime::{
    AccessSpec, Completion, Decision, Facilitator, FacilitatorError, Gate, RequestView, RouteSpec,
    U256,
};

const PAY_TO: &str = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";

static ROUTE: RouteSpec = RouteSpec::fixed("0.01 USDC")
    .networks(&["base-sepolia"])
    .description("Current weather");

static PASS: RouteSpec = RouteSpec::fixed("0.01 USDC")
    .networks(&["base-sepolia"])
    .description("Current weather, an hour of it")
    .access(AccessSpec {
        duration: Some(Duration::from_secs(3600)),
        uses: None,
        scope: None,
    });

/// A GET with at most one extra header.
struct Get {
    path: &'static str,
    header: Option<(&'static str, String)>,
}

impl RequestView for Get {
    fn method(&self) -> &str {
        "GET"
    }
    fn path_and_query(&self) -> &str {
        self.path
    }
    fn header(&self, name: &str) -> Option<&str> {
        if name.eq_ignore_ascii_case("host") {
            return Some("api.example.com");
        }
        self.header
            .as_ref()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn authorization(request: &FacilitatorRequest) -> Result<&Eip3009Authorization, FacilitatorError> {
    request
        .payment_payload
        .payload()
        .as_eip3009()
        .map(|p| &p.authorization)
        .ok_or_else(|| FacilitatorError::Internal("not an EIP-3009 payment".to_owned()))
}

/// Answers every call as valid / settled, echoing the payer: the gate's cost alone.
struct Instantly;

#[async_trait]
impl Facilitator for Instantly {
    async fn verify(
        &self,
        request: &FacilitatorRequest,
    ) -> Result<VerifyResponse, FacilitatorError> {
        let payer = authorization(request)?.from;
        Ok(VerifyResponse::valid(payer.to_checksum(None)))
    }
    async fn settle(
        &self,
        request: &FacilitatorRequest,
    ) -> Result<SettleResponse, FacilitatorError> {
        let authorization = authorization(request)?;
        Ok(SettleResponse {
            success: true,
            error_reason: None,
            error_message: None,
            payer: Some(authorization.from.to_checksum(None)),
            transaction: authorization.nonce.to_string(),
            network: request.payment_payload.network().to_owned(),
            amount: None,
            extensions: None,
        })
    }
    async fn supported(&self) -> Result<SupportedResponse, FacilitatorError> {
        Err(FacilitatorError::Internal("not needed".to_owned()))
    }
}

fn keys() -> EntitlementKeys {
    EntitlementKeys::new("bench", b"a bench key of at least thirty-two bytes").expect("key")
}

/// A gate on the instant facilitator; `local_checks` as [`X402Builder::local_checks`]
/// (on by default: the gate verifies each signature itself before asking the facilitator).
///
/// [`X402Builder::local_checks`]: x402_runtime::X402Builder::local_checks
fn instant_gate_with(local_checks: bool) -> Gate {
    Gate::builder()
        .facilitator_client(Arc::new(Instantly))
        .local_checks(local_checks)
        .pay_to(PAY_TO)
        .entitlement_keys(keys())
        .build()
        .expect("gate")
}

fn instant_gate() -> Gate {
    instant_gate_with(true)
}

/// The embedded facilitator verifying with `backend`, the gate's scheme the same: each payment
/// is verified once, in the gate.
fn embedded_gate(backend: RecoveryBackend, payer: &LocalSigner) -> Gate {
    let registry = Arc::new(NetworkRegistry::builtin());
    let scheme = Arc::new(ExactEip3009::new(backend));
    let mut schemes = Schemes::default();
    schemes.add(scheme.clone());
    let facilitator = EmbeddedFacilitator::builder()
        .registry(registry.clone())
        .schemes(schemes)
        .build();
    let network = registry.network("base-sepolia").expect("network");
    facilitator.dev_ledger().expect("ledger").fund(
        &network.caip2,
        network.default_asset.address,
        payer.address(),
        U256::from(u128::MAX),
    );
    Gate::builder()
        .embedded_facilitator_with(facilitator)
        .scheme(scheme)
        .pay_to(PAY_TO)
        .entitlement_keys(keys())
        .build()
        .expect("gate")
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// The route's v2 requirement, from its real 402.
fn requirement(
    runtime: &tokio::runtime::Runtime,
    gate: &Gate,
    spec: &'static RouteSpec,
) -> v2::PaymentRequirements {
    let view = Get {
        path: "/weather",
        header: None,
    };
    let Decision::Challenge(rejection) = runtime.block_on(gate.evaluate(&view, spec)) else {
        panic!("expected a challenge");
    };
    let parts = rejection.to_response();
    let (_, header) = parts
        .headers
        .iter()
        .find(|(name, _)| *name == "payment-required")
        .expect("PAYMENT-REQUIRED");
    let required: v2::PaymentRequired = codec::decode(header, 64 * 1024).expect("decode");
    required.accepts[0].clone()
}

/// `count` payment headers with distinct nonces; signed by `payer` when `sign`, else carrying
/// a dummy signature (for facilitators that do not look at it).
fn payments(
    requirement: &v2::PaymentRequirements,
    payer: &LocalSigner,
    count: usize,
    sign: bool,
) -> Vec<String> {
    let registry = NetworkRegistry::builtin();
    let requirement = PaymentRequirements::V2(requirement.clone());
    let now = now();
    (0..count)
        .map(|_| {
            let prepared = prepare_payment(&requirement, None, payer.address(), &registry, now)
                .expect("prepare");
            let signature = if sign {
                payer.sign_hash(&prepared.digest())
            } else {
                [1u8; 65]
            };
            codec::encode(&prepared.finish(signature.to_vec()))
        })
        .collect()
}

/// Admits and finishes one paid request; panics unless it was delivered.
async fn pay(gate: &Gate, header: String) {
    let view = Get {
        path: "/weather",
        header: Some(("payment-signature", header)),
    };
    let admission = gate
        .evaluate(&view, &ROUTE)
        .await
        .into_result()
        .expect("admitted");
    let completion = gate.finish(admission.pending, 200).await;
    assert!(matches!(completion, Completion::Deliver { .. }));
    black_box(completion);
}

/// Times `iters` paid requests, each with a new payment, making payments (and a fresh gate)
/// in untimed batches.
fn timed_payments(
    runtime: &tokio::runtime::Runtime,
    iters: u64,
    make_gate: &dyn Fn() -> Gate,
    make_payments: &dyn Fn(usize) -> Vec<String>,
) -> Duration {
    const BATCH: u64 = 2_000;
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let count = left.min(BATCH);
        let gate = make_gate();
        let headers = make_payments(count as usize);
        let started = Instant::now();
        runtime.block_on(async {
            for header in headers {
                pay(&gate, header).await;
            }
        });
        total += started.elapsed();
        left -= count;
    }
    total
}

fn paid(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let payer = LocalSigner::random();
    let probe = instant_gate();
    let weather = requirement(&runtime, &probe, &ROUTE);

    let mut group = c.benchmark_group("paid");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(4));
    // The default: the gate checks each payment (signature included) before the facilitator.
    group.bench_function("admit_finish/instant_facilitator", |b| {
        b.iter_custom(|iters| {
            timed_payments(&runtime, iters, &instant_gate, &|n| {
                payments(&weather, &payer, n, true)
            })
        });
    });
    // Local checks off: every check is the facilitator's (what x402-axum does).
    group.bench_function("admit_finish/instant_facilitator_trusted", |b| {
        b.iter_custom(|iters| {
            timed_payments(&runtime, iters, &|| instant_gate_with(false), &|n| {
                payments(&weather, &payer, n, false)
            })
        });
    });
    let mut backends = vec![("k256", RecoveryBackend::K256)];
    #[cfg(feature = "secp256k1")]
    backends.push(("secp256k1", RecoveryBackend::Secp256k1));
    for (name, backend) in backends {
        group.bench_function(format!("admit_finish/embedded_{name}"), |b| {
            b.iter_custom(|iters| {
                timed_payments(&runtime, iters, &|| embedded_gate(backend, &payer), &|n| {
                    payments(&weather, &payer, n, true)
                })
            });
        });
    }

    // A 1 h pass, bought once, then presented on every request.
    let gate = instant_gate();
    let pass = requirement(&runtime, &gate, &PASS);
    let header = payments(&pass, &payer, 1, true).remove(0);
    let token = runtime.block_on(async {
        let view = Get {
            path: "/weather",
            header: Some(("payment-signature", header)),
        };
        let admission = gate
            .evaluate(&view, &PASS)
            .await
            .into_result()
            .expect("admitted");
        let Completion::Deliver { headers, .. } = gate.finish(admission.pending, 200).await else {
            panic!("not delivered");
        };
        headers
            .into_iter()
            .find(|(name, _)| *name == "x402-entitlement")
            .expect("a token")
            .1
    });
    let view = Get {
        path: "/weather",
        header: Some(("x402-entitlement", token)),
    };
    group.bench_function("entitlement_reuse", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let admission = gate
                    .evaluate(&view, &PASS)
                    .await
                    .into_result()
                    .expect("entitled");
                black_box(gate.finish(admission.pending, 200).await)
            })
        });
    });
    group.finish();
}

criterion_group!(benches, paid);
criterion_main!(benches);
