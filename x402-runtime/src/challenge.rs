//! A route resolved against the server's networks (prepared once), and the challenge a 402
//! carries.

use std::sync::Arc;

use x402_protocol::facilitator::PaymentRequirements;
use x402_protocol::{Address, AssetInfo, NetworkInfo, ProtocolVersion, U256, v1, v2};

use crate::route::{AccessSpec, SettleMode};

/// One accepted way to pay on a route: network, token, amount and recipient.
#[derive(Debug, Clone)]
pub struct AcceptOption {
    /// The network.
    pub network: Arc<NetworkInfo>,
    /// The token.
    pub asset: Arc<AssetInfo>,
    /// The exact amount, in atomic units.
    pub amount: U256,
    /// The recipient.
    pub pay_to: Address,
    /// Whether this option buys a prepaid balance rather than one request.
    pub prepaid: bool,
}

/// A route's requirements, built once and kept with pre-serialised JSON so that a 402 costs
/// little more than string concatenation.
#[derive(Debug)]
pub(crate) struct PreparedRoute {
    pub(crate) options: Vec<AcceptOption>,
    pub(crate) settle: SettleMode,
    pub(crate) access: Option<AccessSpec>,
    pub(crate) prepay: bool,
    /// Whether the 402 carries the v1 body / the v2 header (and such payments are accepted).
    pub(crate) v1: bool,
    pub(crate) v2: bool,
    /// Both generations' requirements, for matching payments; v1 entries have an empty
    /// `resource`, filled in per request.
    pub(crate) accepts: Vec<PaymentRequirements>,
    /// Which option each entry of `accepts` came from.
    pub(crate) accept_option: Vec<usize>,
    pub(crate) v2_accepts_json: String,
    pub(crate) description_json: String,
    pub(crate) mime_type_json: String,
    /// Each v1 entry's JSON, split where the (per-request) resource URL goes.
    pub(crate) v1_fragments: Vec<(String, String)>,
    /// The last bare challenge rendered, with its resource URL: a paid route asked for
    /// repeatedly without payment answers identically each time.
    pub(crate) last_challenge: std::sync::Mutex<Option<(String, crate::response::ResponseParts)>>,
}

const RESOURCE_SENTINEL: &str = "\u{1}x402-resource\u{1}";

impl PreparedRoute {
    pub(crate) fn new(
        options: Vec<AcceptOption>,
        description: &str,
        mime_type: &str,
        max_timeout_seconds: u64,
        settle: SettleMode,
        access: Option<AccessSpec>,
        only: Option<ProtocolVersion>,
    ) -> Self {
        let (v1, v2) = match only {
            None => (true, true),
            Some(ProtocolVersion::V1) => (true, false),
            Some(ProtocolVersion::V2) => (false, true),
        };
        let prepay = options.iter().any(|o| o.prepaid);
        // `extra` carries the token's EIP-712 domain; prepaid options also say so, so clients
        // can tell a session purchase from a single request (clients echo `extra` unchanged).
        let extra = |option: &AcceptOption| {
            let mut extra = serde_json::json!({
                "name": option.asset.eip712_name,
                "version": option.asset.eip712_version,
            });
            if option.prepaid {
                extra["prepaid"] = serde_json::json!({ "balance": option.amount.to_string() });
            }
            Some(extra)
        };
        // Legacy v1 clients reject a whole 402 that lists a network they do not know; leave
        // such networks out of the v1 body unless nothing else remains.
        let any_legacy = options.iter().any(|o| o.network.legacy_v1);
        let mut accepts = Vec::new();
        let mut accept_option = Vec::new();
        let mut v1_entries = Vec::new();
        for (index, option) in options.iter().enumerate() {
            if v1 && (!any_legacy || option.network.legacy_v1) {
                let entry = v1::PaymentRequirements {
                    scheme: x402_protocol::exact::EXACT.to_owned(),
                    network: option.network.wire_id(ProtocolVersion::V1).to_owned(),
                    max_amount_required: option.amount,
                    resource: String::new(),
                    description: description.to_owned(),
                    mime_type: mime_type.to_owned(),
                    output_schema: None,
                    pay_to: option.pay_to.to_checksum(None),
                    max_timeout_seconds,
                    asset: option.asset.address.to_checksum(None),
                    extra: extra(option),
                };
                v1_entries.push(entry.clone());
                accepts.push(PaymentRequirements::V1(entry));
                accept_option.push(index);
            }
        }
        let mut v2_entries = Vec::new();
        for (index, option) in options.iter().enumerate().filter(|_| v2) {
            let entry = v2::PaymentRequirements {
                scheme: x402_protocol::exact::EXACT.to_owned(),
                network: option.network.wire_id(ProtocolVersion::V2).to_owned(),
                amount: option.amount,
                asset: option.asset.address.to_checksum(None),
                pay_to: option.pay_to.to_checksum(None),
                max_timeout_seconds,
                extra: extra(option),
            };
            v2_entries.push(entry.clone());
            accepts.push(PaymentRequirements::V2(entry));
            accept_option.push(index);
        }
        let sentinel = json(RESOURCE_SENTINEL);
        let v1_fragments = v1_entries
            .into_iter()
            .map(|mut entry| {
                entry.resource = RESOURCE_SENTINEL.to_owned();
                let text = json(&entry);
                match text.split_once(&sentinel) {
                    Some((before, after)) => (before.to_owned(), after.to_owned()),
                    // The sentinel is always present; keep the entry whole rather than panic.
                    None => (text, String::new()),
                }
            })
            .collect();
        PreparedRoute {
            options,
            settle,
            access,
            prepay,
            v1,
            v2,
            accepts,
            accept_option,
            v2_accepts_json: json(&v2_entries),
            description_json: json(description),
            mime_type_json: json(mime_type),
            v1_fragments,
            last_challenge: std::sync::Mutex::new(None),
        }
    }
}

/// Serialises one of the plain wire structs above; that cannot fail.
fn json<T: serde::Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// What a 402 offers: the resource and the ways to pay for it, in both generations.
#[derive(Debug, Clone)]
pub struct Challenge {
    route: Arc<PreparedRoute>,
    resource: String,
    /// Set when a browser asked and the route has a paywall: the 402 is an HTML page.
    paywall: Option<crate::paywall::Chosen>,
}

impl Challenge {
    pub(crate) fn new(route: Arc<PreparedRoute>, resource: String) -> Self {
        Challenge {
            route,
            resource,
            paywall: None,
        }
    }

    pub(crate) fn with_paywall(mut self, paywall: Option<crate::paywall::Chosen>) -> Self {
        self.paywall = paywall;
        self
    }

    pub(crate) fn paywall(&self) -> Option<&crate::paywall::Chosen> {
        self.paywall.as_ref()
    }

    pub(crate) fn route(&self) -> &Arc<PreparedRoute> {
        &self.route
    }

    /// The absolute URL of the paid resource.
    pub fn resource(&self) -> &str {
        &self.resource
    }

    /// The accepted ways to pay.
    pub fn options(&self) -> &[AcceptOption] {
        &self.route.options
    }

    /// Whether this route grants reusable access or prepaid sessions.
    pub(crate) fn grants(&self) -> bool {
        self.route.access.is_some() || self.route.prepay
    }

    /// The v2 `PaymentRequired` this challenge sends in `PAYMENT-REQUIRED`.
    pub fn v2(&self, error: &str) -> v2::PaymentRequired {
        // The JSON is produced by serde from the same types; reading it back cannot fail.
        serde_json::from_str(&self.v2_json(error)).unwrap_or_else(|_| v2::PaymentRequired {
            x402_version: Default::default(),
            error: Some(error.to_owned()),
            resource: None,
            accepts: Vec::new(),
            extensions: None,
        })
    }

    /// The v1 402 body this challenge sends.
    pub fn v1(&self, error: &str) -> v1::PaymentRequired {
        serde_json::from_str(&self.v1_body(error, "", None)).unwrap_or_else(|_| {
            v1::PaymentRequired {
                x402_version: Default::default(),
                error: error.to_owned(),
                accepts: Vec::new(),
                payer: None,
            }
        })
    }
}
