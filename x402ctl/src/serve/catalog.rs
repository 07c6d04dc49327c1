//! `/discovery/resources`: the resources this facilitator has seen paid for.
//!
//! [`Catalog`] is the seam: the facilitator tells it about every payment it settled
//! ([`Catalog::record`]) and asks it for pages of resources ([`Catalog::list`]). The built-in
//! [`MemoryCatalog`] keeps, per resource URL, the requirement last paid and the `bazaar`
//! extension's `info` when the payment carried one; a Bazaar catalogue with its own storage
//! and validation plugs in behind the same trait.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use serde_json::{Value, json};
use x402_protocol::facilitator::{FacilitatorRequest, PaymentPayload};

/// Largest page served.
pub(crate) const MAX_LIMIT: usize = 100;

/// What a `/discovery/resources` request asks for.
#[derive(Debug, Clone, Default)]
pub(crate) struct Query {
    /// `type` (`http`, `mcp`), when given.
    pub(crate) kind: Option<String>,
    pub(crate) limit: usize,
    pub(crate) offset: usize,
}

/// A catalogue of paid resources.
pub(crate) trait Catalog: Send + Sync {
    /// A payment for a resource was settled.
    fn record(&self, request: &FacilitatorRequest, at_unix: u64);

    /// One page of resources, and how many match in all.
    fn list(&self, query: &Query) -> (Vec<Value>, usize);
}

/// The resources seen in settled v2 payments (v1 payments name their resource in the
/// requirements, so they are listed too), newest information per URL, in memory.
#[derive(Default)]
pub(crate) struct MemoryCatalog {
    items: Mutex<BTreeMap<String, Value>>,
}

impl Catalog for MemoryCatalog {
    fn record(&self, request: &FacilitatorRequest, at_unix: u64) {
        let (url, accepts, bazaar, version) = match &request.payment_payload {
            PaymentPayload::V2(payload) => {
                let url = payload
                    .resource
                    .as_ref()
                    .map(|r| r.url.clone())
                    .unwrap_or_default();
                let bazaar = payload
                    .extensions
                    .as_ref()
                    .and_then(|e| e.get("bazaar"))
                    .cloned();
                (url, json!([payload.accepted]), bazaar, 2)
            }
            PaymentPayload::V1(_) => {
                let requirements =
                    serde_json::to_value(&request.payment_requirements).unwrap_or(Value::Null);
                let url = requirements["resource"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                (url, json!([requirements]), None, 1)
            }
        };
        if url.is_empty() || !(url.starts_with("http://") || url.starts_with("https://")) {
            return;
        }
        let kind = bazaar
            .as_ref()
            .and_then(|b| b.pointer("/info/input/type"))
            .and_then(Value::as_str)
            .unwrap_or("http")
            .to_owned();
        let mut metadata = json!({});
        if let Some(info) = bazaar.as_ref().and_then(|b| b.get("info")) {
            metadata["bazaar"] = info.clone();
        }
        let item = json!({
            "resource": url,
            "type": kind,
            "x402Version": version,
            "accepts": accepts,
            "lastUpdated": at_unix,
            "metadata": metadata,
        });
        self.items
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(url, item);
    }

    fn list(&self, query: &Query) -> (Vec<Value>, usize) {
        let items = self.items.lock().unwrap_or_else(PoisonError::into_inner);
        let matching: Vec<&Value> = items
            .values()
            .filter(|item| {
                query
                    .kind
                    .as_deref()
                    .is_none_or(|kind| item["type"].as_str() == Some(kind))
            })
            .collect();
        let total = matching.len();
        let page = matching
            .into_iter()
            .skip(query.offset)
            .take(query.limit.min(MAX_LIMIT))
            .cloned()
            .collect();
        (page, total)
    }
}

#[cfg(test)]
mod tests {
    use x402_protocol::U256;
    use x402_protocol::facilitator::PaymentRequirements;
    use x402_protocol::v2;

    use super::*;

    fn request(url: &str, bazaar: Option<Value>) -> FacilitatorRequest {
        let accepted = v2::PaymentRequirements {
            scheme: "exact".into(),
            network: "eip155:84532".into(),
            amount: U256::from(10_000u64),
            asset: "0x036CbD53842c5426634e7929541eC2318f3dCF7e".into(),
            pay_to: "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC".into(),
            max_timeout_seconds: 300,
            extra: None,
        };
        let payload = serde_json::json!({
            "x402Version": 2,
            "resource": {"url": url},
            "accepted": accepted,
            "payload": {"signature": "0x00", "authorization": {
                "from": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
                "to": "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
                "value": "10000", "validAfter": "0", "validBefore": "9999999999",
                "nonce": format!("0x{}", "11".repeat(32))}},
            "extensions": bazaar.map(|b| json!({"bazaar": b})),
        });
        FacilitatorRequest::new(
            serde_json::from_value(payload).unwrap(),
            PaymentRequirements::V2(accepted),
        )
    }

    #[test]
    fn settled_resources_are_listed_with_their_bazaar_info_and_paged() {
        let catalog = MemoryCatalog::default();
        catalog.record(&request("https://api.test/a", None), 10);
        catalog.record(
            &request(
                "https://api.test/b",
                Some(json!({"info": {"input": {"type": "mcp", "tool": "x"}}})),
            ),
            11,
        );
        catalog.record(&request("https://api.test/a", None), 12);
        catalog.record(&request("not a url", None), 13);
        let (all, total) = catalog.list(&Query {
            kind: None,
            limit: 20,
            offset: 0,
        });
        assert_eq!(total, 2);
        assert_eq!(all[0]["resource"], "https://api.test/a");
        assert_eq!(all[0]["lastUpdated"], 12);
        assert_eq!(all[0]["accepts"][0]["amount"], "10000");
        assert_eq!(all[1]["type"], "mcp");
        assert_eq!(all[1]["metadata"]["bazaar"]["input"]["tool"], "x");
        let (mcp, total) = catalog.list(&Query {
            kind: Some("mcp".into()),
            limit: 20,
            offset: 0,
        });
        assert_eq!((mcp.len(), total), (1, 1));
        let (page, total) = catalog.list(&Query {
            kind: None,
            limit: 1,
            offset: 1,
        });
        assert_eq!((page.len(), total), (1, 2));
        assert_eq!(page[0]["resource"], "https://api.test/b");
    }
}
