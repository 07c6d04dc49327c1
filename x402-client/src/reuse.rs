//! "Never pay twice for one logical request": signed payments kept for reuse.
//!
//! A transport names each logical request with a [`RequestId`] (`reqwest-x402`: method, URL and
//! body; `rmcp-x402`: tool name and arguments), or the caller attaches a [`PaymentKey`]. When a
//! paid request fails without an answer (a dropped connection), or the server answers without
//! settling, the signed payment is kept; sending the same request again, whether a retry
//! middleware or the caller does it, sends that payment instead of signing a new
//! authorization. A payment the server settled or refused is forgotten.

use std::collections::{HashMap, VecDeque};

use alloy_primitives::{B256, Keccak256};

use crate::payer::SignedPayment;

/// Seconds of validity a kept authorization must still have to be reused: the verifier wants
/// 6 s of headroom, and the request needs time to get there.
const REUSE_MARGIN_SECONDS: u64 = 20;

/// At most this many authorizations are kept; the oldest go first.
const CAPACITY: usize = 1024;

/// Names a logical request for payment reuse, overriding the transport's default key. Use it
/// when the same logical request may be sent with a different body (a timestamp in it, say),
/// or when two identical requests are distinct purchases.
///
/// With `reqwest-x402`, attach it as a request extension
/// (`.with_extension(PaymentKey::new("order-4711"))`); with `rmcp-x402`, pass it to the tool
/// call.
///
/// ```
/// use x402_client::{PaymentKey, RequestId};
///
/// let key = PaymentKey::new("order-4711");
/// assert_eq!(RequestId::from_key(&key), RequestId::from_key(&PaymentKey::new("order-4711")));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PaymentKey(String);

impl PaymentKey {
    /// A key from any text unique to the logical request.
    pub fn new(key: impl Into<String>) -> Self {
        PaymentKey(key.into())
    }
}

/// The identity of a logical request, as a hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestId(B256);

impl RequestId {
    /// The identity a caller chose.
    pub fn from_key(key: &PaymentKey) -> Self {
        let mut hasher = Keccak256::new();
        hasher.update(b"key\0");
        hasher.update(key.0.as_bytes());
        RequestId(hasher.finalize())
    }

    /// The identity of a request made of these parts (method, URL, body…; each part is
    /// delimited, so `["ab", "c"]` and `["a", "bc"]` differ).
    pub fn from_parts<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let mut hasher = Keccak256::new();
        hasher.update(b"parts\0");
        for part in parts {
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part);
        }
        RequestId(hasher.finalize())
    }
}

/// Signed payments kept for reuse, by request. Bounded: the oldest go first.
#[derive(Debug, Default)]
pub struct ReuseCache {
    entries: HashMap<RequestId, SignedPayment>,
    order: VecDeque<RequestId>,
}

impl ReuseCache {
    /// Takes the payment kept for a request, if it is still valid long enough to be accepted
    /// (`now` in unix seconds).
    pub fn take(&mut self, id: &RequestId, now: u64) -> Option<SignedPayment> {
        let payment = self.entries.remove(id)?;
        self.order.retain(|k| k != id);
        (payment.record.valid_before >= now.saturating_add(REUSE_MARGIN_SECONDS)).then_some(payment)
    }

    /// Whether nothing is kept (the common case: then requests need not be identified).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Keeps a payment for a request.
    pub fn put(&mut self, id: RequestId, payment: SignedPayment) {
        if self.entries.insert(id, payment).is_none() {
            self.order.push_back(id);
        }
        while self.order.len() > CAPACITY {
            if let Some(oldest) = self.order.pop_front() {
                self.entries.remove(&oldest);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::PaymentRecord;

    fn payment(valid_before: u64) -> SignedPayment {
        let network = x402_protocol::network::builtin_network("base")
            .unwrap()
            .clone();
        SignedPayment::new(
            x402_protocol::ProtocolVersion::V2,
            serde_json::json!({"x402Version": 2}),
            PaymentRecord {
                signed_at: std::time::SystemTime::now(),
                method: "GET".into(),
                url: "http://a/".into(),
                resource: "http://a/".into(),
                version: x402_protocol::ProtocolVersion::V2,
                asset: network.default_asset.clone(),
                network,
                amount: alloy_primitives::U256::from(1u8),
                pay_to: alloy_primitives::Address::ZERO.into(),
                payer: alloy_primitives::Address::ZERO.into(),
                nonce: B256::repeat_byte(1),
                valid_before,
                attempts: 1,
                status: crate::record::PaymentStatus::Sent,
                receipt: None,
            },
        )
    }

    #[test]
    fn requests_are_identified_by_their_delimited_parts_or_by_key() {
        let id = |parts: &[&str]| RequestId::from_parts(parts.iter().map(|p| p.as_bytes()));
        assert_eq!(
            id(&["POST", "http://a/x", "1"]),
            id(&["POST", "http://a/x", "1"])
        );
        assert_ne!(
            id(&["POST", "http://a/x", "1"]),
            id(&["POST", "http://a/x", "2"])
        );
        assert_ne!(id(&["ab", "c"]), id(&["a", "bc"]), "parts are delimited");
        assert_ne!(id(&["a"]), id(&["a", ""]));
        let key = PaymentKey::new("order-1");
        assert_eq!(RequestId::from_key(&key), RequestId::from_key(&key.clone()));
        assert_ne!(
            RequestId::from_key(&key),
            RequestId::from_key(&PaymentKey::new("order-2"))
        );
        assert_ne!(RequestId::from_key(&key), id(&["order-1"]));
    }

    #[test]
    fn takes_once_and_drops_what_is_about_to_expire() {
        let mut cache = ReuseCache::default();
        let id = RequestId(B256::repeat_byte(9));
        cache.put(id, payment(1_000));
        assert!(cache.take(&id, 900).is_some());
        assert!(cache.take(&id, 900).is_none(), "taken once");
        cache.put(id, payment(1_000));
        assert!(cache.take(&id, 990).is_none(), "too close to validBefore");
    }

    #[test]
    fn is_bounded() {
        let mut cache = ReuseCache::default();
        for i in 0..(CAPACITY + 10) {
            cache.put(
                RequestId(B256::from(alloy_primitives::U256::from(i))),
                payment(u64::MAX),
            );
        }
        assert_eq!(cache.entries.len(), CAPACITY);
        assert!(
            cache
                .take(&RequestId(B256::from(alloy_primitives::U256::from(0))), 0)
                .is_none()
        );
    }
}
