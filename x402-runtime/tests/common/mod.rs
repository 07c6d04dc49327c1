//! Shared test support: a plain request type, a gate with a funded payer on a manual clock, and
//! a client that reads a challenge and signs a payment for it.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;

use x402_protocol::client::sign_payment;
use x402_protocol::codec;
use x402_protocol::eip3009::LocalSigner;
use x402_protocol::facilitator::PaymentRequirements;
use x402_protocol::{Address, NetworkRegistry, ProtocolVersion, U256, headers, v1, v2};
use x402_runtime::clock::ManualClock;
use x402_runtime::{Decision, Gate, RequestView, RouteSpec};

pub const PAY_TO: &str = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";
pub const NOW: u64 = 1_800_000_000;

#[derive(Clone, Default)]
pub struct Req {
    pub path: &'static str,
    pub headers: Vec<(String, String)>,
}

impl Req {
    pub fn get(path: &'static str) -> Self {
        Req {
            path,
            headers: vec![("host".into(), "api.test".into())],
        }
    }
    pub fn with(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }
}

impl RequestView for Req {
    fn method(&self) -> &str {
        "GET"
    }
    fn path_and_query(&self) -> &str {
        self.path
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub struct World {
    pub gate: Arc<Gate>,
    pub clock: Arc<ManualClock>,
    pub payer: LocalSigner,
}

pub fn world() -> World {
    world_with(|b| b.embedded_facilitator())
}

pub fn world_with(
    configure: impl FnOnce(x402_runtime::X402Builder) -> x402_runtime::X402Builder,
) -> World {
    let clock = Arc::new(ManualClock::new(NOW));
    let gate = configure(Gate::builder().pay_to(PAY_TO).clock(clock.clone()))
        .build()
        .unwrap();
    let payer = LocalSigner::random();
    if let Some(ledger) = gate.dev_ledger() {
        for network in gate.registry().networks() {
            ledger.fund(
                &network.caip2,
                network.default_asset.address,
                payer.address(),
                U256::from(1_000_000u64),
            );
        }
    }
    World {
        gate: Arc::new(gate),
        clock,
        payer,
    }
}

impl World {
    /// What a client does with a 402: read the challenge, pick the entry for `network` in the
    /// chosen generation, sign, and return the header to retry with.
    pub async fn pay(
        &self,
        spec: &'static RouteSpec,
        request: Req,
        version: ProtocolVersion,
        network: &str,
    ) -> (&'static str, String) {
        self.pay_entry(spec, request, version, |n, _| n == network)
            .await
    }

    /// The request to `path` with a valid payment for `spec`'s challenge there attached.
    pub async fn paid(
        &self,
        spec: &'static RouteSpec,
        path: &'static str,
        version: ProtocolVersion,
        network: &str,
    ) -> Req {
        let (name, value) = self.pay(spec, Req::get(path), version, network).await;
        Req::get(path).with(name, value)
    }

    /// Like [`World::pay`], choosing the first entry for which `pick(network, amount)` holds.
    pub async fn pay_entry(
        &self,
        spec: &'static RouteSpec,
        request: Req,
        version: ProtocolVersion,
        pick: impl Fn(&str, U256) -> bool,
    ) -> (&'static str, String) {
        let Decision::Challenge(rejection) = self.gate.evaluate(&request, spec).await else {
            panic!("expected a challenge");
        };
        let response = rejection.to_response();
        let requirements = match version {
            ProtocolVersion::V1 => {
                let body: v1::PaymentRequired = serde_json::from_slice(&response.body).unwrap();
                let entry = body
                    .accepts
                    .into_iter()
                    .find(|r| pick(&r.network, r.max_amount_required));
                (PaymentRequirements::V1(entry.expect("entry offered")), None)
            }
            ProtocolVersion::V2 => {
                let header = response.header(headers::PAYMENT_REQUIRED).unwrap();
                let required: v2::PaymentRequired = codec::decode(header, 1 << 16).unwrap();
                let entry = required
                    .accepts
                    .into_iter()
                    .find(|r| pick(&r.network, r.amount));
                (
                    PaymentRequirements::V2(entry.expect("entry offered")),
                    required.resource,
                )
            }
        };
        let payment = sign_payment(
            &requirements.0,
            requirements.1.as_ref(),
            &self.payer,
            &NetworkRegistry::builtin(),
            self.clock_now(),
        )
        .unwrap();
        (version.payment_header(), codec::encode(&payment))
    }

    pub fn clock_now(&self) -> u64 {
        use x402_runtime::clock::Clock;
        self.clock.now_unix()
    }

    pub fn balance(&self, network: &str, who: Address) -> U256 {
        let network = self.gate.registry().network(network).unwrap();
        self.gate
            .dev_ledger()
            .unwrap()
            .balance(&network.caip2, network.default_asset.address, who)
    }
}

pub fn pay_to() -> Address {
    PAY_TO.parse().unwrap()
}

pub fn rejected(decision: Decision) -> x402_runtime::Rejection {
    match decision {
        Decision::Rejected(r) | Decision::Challenge(r) => r,
        Decision::Admitted(a) => panic!(
            "expected a rejection, got a payment from {}",
            a.payment.payer()
        ),
    }
}
