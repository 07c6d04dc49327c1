//! `/discovery/resources` and `/discovery/search`: the Bazaar catalogue of the resources this
//! facilitator has settled payments for.
//!
//! [`Catalog`] is the seam: the facilitator tells it about every payment it settled
//! ([`Catalog::record`]) and hands it the query strings of the discovery endpoints. The
//! runtime's [`DiscoveryCatalog`] (bounded, in memory) is the one in use: it lists a resource
//! once a settled payment carried a valid `bazaar` declaration, with the requirements that
//! were paid, and answers the filters, paging and search of the Bazaar spec. A catalogue with
//! its own storage plugs in behind the same trait.

use x402_protocol::facilitator::FacilitatorRequest;
use x402_runtime::ResponseParts;
use x402_runtime::discovery::{DiscoveryCatalog, resources_endpoint, search_endpoint};

/// A catalogue of paid resources.
pub(crate) trait Catalog: Send + Sync {
    /// A payment for a resource was settled.
    fn record(&self, request: &FacilitatorRequest);

    /// `GET /discovery/resources?<query>`.
    fn resources_answer(&self, query: &str) -> ResponseParts;

    /// `GET /discovery/search?<query>`.
    fn search_answer(&self, query: &str) -> ResponseParts;
}

impl Catalog for DiscoveryCatalog {
    fn record(&self, request: &FacilitatorRequest) {
        let body = match serde_json::to_value(request) {
            Ok(body) => body,
            Err(error) => {
                tracing::debug!(target: "x402::discovery", %error, "a settled request could not be catalogued");
                return;
            }
        };
        // Payments without a (valid) bazaar declaration are simply not listed.
        if let Err(error) = self.record_facilitator_request(&body) {
            tracing::debug!(target: "x402::discovery", %error, "a settled payment is not catalogued");
        }
    }

    fn resources_answer(&self, query: &str) -> ResponseParts {
        resources_endpoint(self, query)
    }

    fn search_answer(&self, query: &str) -> ResponseParts {
        search_endpoint(self, query)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};
    use x402_protocol::U256;
    use x402_protocol::bazaar::{self, HttpDeclaration};
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
        let payload = json!({
            "x402Version": 2,
            "resource": {"url": url, "description": "Current weather"},
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

    fn body(parts: &ResponseParts) -> Value {
        serde_json::from_slice(&parts.body).unwrap()
    }

    #[test]
    fn settled_resources_with_a_bazaar_declaration_are_listed_and_searchable() {
        let catalog = DiscoveryCatalog::new();
        let declared = bazaar::declare_http(&HttpDeclaration::default())
            .for_request("GET", None, "/weather")
            .to_value();
        catalog.record(&request("https://api.test/weather", Some(declared)));
        // No declaration: not listed.
        catalog.record(&request("https://api.test/hidden", None));

        let listed = catalog.resources_answer("limit=5");
        assert_eq!(listed.status, 200);
        let listed = body(&listed);
        assert_eq!(listed["pagination"]["total"], 1);
        assert_eq!(listed["pagination"]["limit"], 5);
        assert_eq!(listed["items"][0]["resource"], "https://api.test/weather");
        assert_eq!(listed["items"][0]["accepts"][0]["amount"], "10000");

        let found = body(&catalog.search_answer("query=weather"));
        assert_eq!(
            found["resources"][0]["resource"],
            "https://api.test/weather"
        );
        assert_eq!(
            body(&catalog.search_answer("query=nothing-like-it"))["resources"],
            json!([])
        );

        assert_eq!(catalog.resources_answer("limit=abc").status, 400);
        assert_eq!(catalog.search_answer("").status, 400);
    }
}
