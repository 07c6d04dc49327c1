//! "Never pay twice for one logical request": signed payment headers kept for reuse.
//!
//! A request is identified by its method, URL and body (or by a [`PaymentKey`] the caller
//! attaches). When a paid request fails without an answer (a dropped connection), or the server
//! answers without settling, the signed header is kept; sending the same request again, whether
//! a retry middleware or the caller does it, sends that header instead of signing a new
//! authorization. A payment the server settled or refused is forgotten.

use std::collections::{HashMap, VecDeque};

use alloy_primitives::{B256, Keccak256};
use http::HeaderValue;

use crate::record::PaymentRecord;

/// Seconds of validity a kept authorization must still have to be reused: the verifier wants
/// 6 s of headroom, and the request needs time to get there.
const REUSE_MARGIN_SECONDS: u64 = 20;

/// At most this many authorizations are kept; the oldest go first.
const CAPACITY: usize = 1024;

/// Names a logical request for payment reuse, overriding the default key (method + URL +
/// body). Attach it as a request extension when the same logical request may be sent with a
/// different body (a timestamp in it, say), or when two identical requests are distinct
/// purchases.
///
/// ```no_run
/// # async fn demo(client: reqwest_middleware::ClientWithMiddleware) -> reqwest_middleware::Result<()> {
/// use reqwest_x402::PaymentKey;
///
/// let response = client
///     .post("https://api.example.com/render")
///     .with_extension(PaymentKey::new("order-4711"))
///     .body("…")
///     .send()
///     .await?;
/// # let _ = response; Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PaymentKey(String);

impl PaymentKey {
    /// A key from any text unique to the logical request.
    pub fn new(key: impl Into<String>) -> Self {
        PaymentKey(key.into())
    }
}

/// The identity of a logical request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct RequestId(B256);

impl RequestId {
    pub(crate) fn of(request: &reqwest::Request, key: Option<&PaymentKey>) -> Self {
        let mut hasher = Keccak256::new();
        match key {
            Some(PaymentKey(key)) => {
                hasher.update(b"key\0");
                hasher.update(key.as_bytes());
            }
            None => {
                hasher.update(request.method().as_str().as_bytes());
                hasher.update(b"\0");
                hasher.update(request.url().as_str().as_bytes());
                hasher.update(b"\0");
                match request.body().map(|b| b.as_bytes()) {
                    Some(Some(bytes)) => hasher.update(bytes),
                    // A streamed body cannot be resent, so it can never be retried with a
                    // payment anyway; any key will do.
                    Some(None) => hasher.update(b"\0stream"),
                    None => {}
                }
            }
        }
        RequestId(hasher.finalize())
    }
}

/// A signed payment header, ready to be sent again, with the record of the payment.
#[derive(Debug, Clone)]
pub(crate) struct SignedHeader {
    pub(crate) name: &'static str,
    pub(crate) value: HeaderValue,
    pub(crate) record: PaymentRecord,
}

impl SignedHeader {
    fn valid_before(&self) -> u64 {
        self.record.valid_before
    }
}

/// Signed headers kept for reuse, by request.
#[derive(Debug, Default)]
pub(crate) struct ReuseCache {
    entries: HashMap<RequestId, SignedHeader>,
    order: VecDeque<RequestId>,
}

impl ReuseCache {
    /// Takes the kept header for a request, if it is still valid long enough to be accepted.
    pub(crate) fn take(&mut self, id: &RequestId, now: u64) -> Option<SignedHeader> {
        let header = self.entries.remove(id)?;
        self.order.retain(|k| k != id);
        (header.valid_before() >= now.saturating_add(REUSE_MARGIN_SECONDS)).then_some(header)
    }

    /// Whether nothing is kept (the common case: then requests need not be identified).
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Keeps a header for a request.
    pub(crate) fn put(&mut self, id: RequestId, header: SignedHeader) {
        if self.entries.insert(id, header).is_none() {
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

    fn header(valid_before: u64) -> SignedHeader {
        let network = x402_protocol::network::builtin_network("base")
            .unwrap()
            .clone();
        SignedHeader {
            name: "payment-signature",
            value: HeaderValue::from_static("x"),
            record: PaymentRecord {
                signed_at: std::time::SystemTime::now(),
                method: "GET".into(),
                url: "http://a/".into(),
                resource: "http://a/".into(),
                version: x402_protocol::ProtocolVersion::V2,
                asset: network.default_asset.clone(),
                network,
                amount: alloy_primitives::U256::from(1u8),
                pay_to: alloy_primitives::Address::ZERO,
                payer: alloy_primitives::Address::ZERO,
                nonce: B256::repeat_byte(1),
                valid_before,
                attempts: 1,
                status: crate::record::PaymentStatus::Sent,
                receipt: None,
            },
        }
    }

    fn request(method: reqwest::Method, url: &str, body: &'static str) -> reqwest::Request {
        let mut request = reqwest::Request::new(method, url.parse().unwrap());
        *request.body_mut() = Some(body.into());
        request
    }

    #[test]
    fn requests_are_identified_by_method_url_and_body_or_by_key() {
        let get = |body| RequestId::of(&request(reqwest::Method::POST, "http://a/x", body), None);
        assert_eq!(get("1"), get("1"));
        assert_ne!(get("1"), get("2"));
        let other_url = RequestId::of(&request(reqwest::Method::POST, "http://a/y", "1"), None);
        assert_ne!(get("1"), other_url);
        let key = PaymentKey::new("order-1");
        assert_eq!(
            RequestId::of(
                &request(reqwest::Method::POST, "http://a/x", "1"),
                Some(&key)
            ),
            RequestId::of(&request(reqwest::Method::GET, "http://b/", ""), Some(&key))
        );
    }

    #[test]
    fn takes_once_and_drops_what_is_about_to_expire() {
        let mut cache = ReuseCache::default();
        let id = RequestId(B256::repeat_byte(9));
        cache.put(id, header(1_000));
        assert!(cache.take(&id, 900).is_some());
        assert!(cache.take(&id, 900).is_none(), "taken once");
        cache.put(id, header(1_000));
        assert!(cache.take(&id, 990).is_none(), "too close to validBefore");
    }

    #[test]
    fn is_bounded() {
        let mut cache = ReuseCache::default();
        for i in 0..(CAPACITY + 10) {
            cache.put(
                RequestId(B256::from(alloy_primitives::U256::from(i))),
                header(u64::MAX),
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
