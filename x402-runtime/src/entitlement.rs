//! Entitlement tokens: proof that a payment bought repeated access (for a time, for a number of
//! uses, or as a prepaid balance) to a route or a named group of routes.
//!
//! A token is `x402e1.<payload>.<mac>`: the payload is base64url JSON [`Claims`], the mac is
//! HMAC-SHA256 over the encoded payload with the key named in the claims. Keys rotate: tokens
//! signed with the current key or any previous key verify; new tokens use the current key. The
//! mac is checked in constant time, before the payload is parsed. Tokens verified recently are
//! remembered (exactly as presented, until they expire), so a client that sends its token with
//! every request pays for its decoding and mac once.
//!
//! Time limits live in the signed claims; use counts and balances live in an
//! [`EntitlementStore`](crate::store::EntitlementStore) so that every replica sees the same
//! numbers.
//!
//! ```
//! use x402_runtime::entitlement::{Claims, EntitlementKeys, GrantKind};
//!
//! let keys = EntitlementKeys::new("2026-11", b"a secret of at least thirty-two bytes!!")?;
//! let claims = Claims::new(GrantKind::Access, "path:/reports", 1_800_003_600);
//! let token = keys.sign(&claims);
//! assert_eq!(keys.verify(&token, 1_800_000_000)?.scope, "path:/reports");
//! assert!(keys.verify(&token, 1_800_003_600).is_err()); // expired
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use x402_protocol::Reason;

type HmacSha256 = Hmac<Sha256>;

/// Prefix of every token this runtime issues; it tells our tokens from other bearer tokens.
pub const TOKEN_PREFIX: &str = "x402e1.";

/// Response and request header carrying an entitlement token.
pub const ENTITLEMENT_HEADER: &str = "x402-entitlement";

/// Response header telling clients which paths a token is good for (a path prefix).
pub const ENTITLEMENT_SCOPE_HEADER: &str = "x402-entitlement-scope";

/// Shortest secret accepted for a key.
pub const MIN_SECRET_BYTES: usize = 32;

/// What a grant is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GrantKind {
    /// Access for a time and/or a number of uses.
    #[serde(rename = "a")]
    Access,
    /// A prepaid balance each request draws its price from.
    #[serde(rename = "p")]
    Prepaid,
}

/// The signed content of a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Key id used to sign.
    #[serde(rename = "k", default)]
    pub key_id: String,
    /// Grant id: the key of its counter in the entitlement store.
    #[serde(rename = "i")]
    pub id: String,
    /// What it is.
    #[serde(rename = "t")]
    pub kind: GrantKind,
    /// Where it is good: `path:/reports/daily` or `group:reports`.
    #[serde(rename = "s")]
    pub scope: String,
    /// Unix time after which it is no longer good.
    #[serde(rename = "e")]
    pub expires_at: u64,
    /// Whether use counts / balance are kept in the store.
    #[serde(rename = "c", default)]
    pub counted: bool,
    /// Payer of the payment that bought it.
    #[serde(rename = "p", default)]
    pub payer: String,
    /// Settlement transaction of that payment.
    #[serde(rename = "x", default)]
    pub transaction: String,
    /// Network of that payment (CAIP-2).
    #[serde(rename = "n", default)]
    pub network: String,
    /// Token contract of that payment.
    #[serde(rename = "a", default)]
    pub asset: String,
    /// Amount of that payment, atomic units.
    #[serde(rename = "v", default)]
    pub amount: String,
    /// The price of one request when it was bought (for a prepaid session, less than the
    /// amount paid): the grant covers requests up to this price.
    #[serde(rename = "q", default, skip_serializing_if = "String::is_empty")]
    pub price: String,
    /// Protocol generation of that payment.
    #[serde(rename = "g", default)]
    pub version: u8,
    /// The HTTP method it was bought with (upper-case); empty for group grants, which cover
    /// every route of their group.
    #[serde(rename = "m", default, skip_serializing_if = "String::is_empty")]
    pub method: String,
    /// The handler it was bought on (`module::function`, see
    /// [`RouteSpec::handler`](crate::RouteSpec::handler)); empty for group grants or routes
    /// written without a handler name.
    #[serde(rename = "r", default, skip_serializing_if = "String::is_empty")]
    pub route: String,
}

impl Claims {
    /// Claims with a fresh random id and empty payment details.
    pub fn new(kind: GrantKind, scope: impl Into<String>, expires_at: u64) -> Self {
        let id = x402_protocol::eip3009::random_nonce();
        Claims {
            key_id: String::new(),
            id: x402_protocol::Bytes::copy_from_slice(&id[..16]).to_string(),
            kind,
            scope: scope.into(),
            expires_at,
            counted: false,
            payer: String::new(),
            transaction: String::new(),
            network: String::new(),
            asset: String::new(),
            amount: String::new(),
            price: String::new(),
            version: 2,
            method: String::new(),
            route: String::new(),
        }
    }
}

/// Why a token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EntitlementError {
    /// Not a token of ours, or damaged.
    #[error("the entitlement token is malformed")]
    Malformed,
    /// Signed with a key this server does not have.
    #[error("the entitlement token is signed with an unknown key")]
    UnknownKey,
    /// The mac does not match: forged or altered.
    #[error("the entitlement token's signature is invalid")]
    BadSignature,
    /// Its time is up.
    #[error("the entitlement expired at {0}")]
    Expired(u64),
    /// Bought for another route or group.
    #[error("the entitlement is for {0}, not this route")]
    OtherScope(String),
    /// Bought with another method or on another handler for the same path.
    #[error("the entitlement was bought for {0}, not this request")]
    OtherRoute(String),
    /// Bought at a lower price than this request costs.
    #[error("the entitlement was bought for {paid} atomic units; this request costs {price}")]
    Dearer {
        /// What was paid.
        paid: String,
        /// What this request costs.
        price: String,
    },
    /// All uses are spent.
    #[error("the entitlement's uses are all spent")]
    Exhausted,
    /// The prepaid balance cannot cover the price.
    #[error("the prepaid balance ({remaining} atomic units) cannot cover {price}")]
    Insufficient {
        /// What is left.
        remaining: u64,
        /// What this request costs.
        price: u64,
    },
}

impl EntitlementError {
    /// The reason code sent to clients.
    pub fn reason(&self) -> Reason {
        match self {
            EntitlementError::Malformed
            | EntitlementError::UnknownKey
            | EntitlementError::BadSignature => Reason::ENTITLEMENT_INVALID,
            EntitlementError::Expired(_) => Reason::ENTITLEMENT_EXPIRED,
            EntitlementError::OtherScope(_) => Reason::ENTITLEMENT_SCOPE_MISMATCH,
            EntitlementError::OtherRoute(_) => Reason::ENTITLEMENT_ROUTE_MISMATCH,
            EntitlementError::Dearer { .. } => Reason::ENTITLEMENT_PRICE_EXCEEDED,
            EntitlementError::Exhausted => Reason::ENTITLEMENT_EXHAUSTED,
            EntitlementError::Insufficient { .. } => Reason::ENTITLEMENT_BALANCE_INSUFFICIENT,
        }
    }
}

/// Why a key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Shorter than [`MIN_SECRET_BYTES`].
    #[error("entitlement key {0:?} is shorter than {MIN_SECRET_BYTES} bytes")]
    TooShort(String),
    /// The secret is not hex.
    #[error("entitlement key {0:?}: the secret must be hex")]
    NotHex(String),
    /// Key ids are 1–32 characters of `[A-Za-z0-9._-]`.
    #[error("entitlement key id {0:?} must be 1-32 characters of letters, digits, '.', '_' or '-'")]
    BadId(String),
}

#[derive(Clone)]
struct Key {
    id: String,
    mac: HmacSha256,
}

/// The keys that sign and check entitlement tokens: one current key and any number of previous
/// ones (still accepted, no longer used to sign).
///
/// Clones share the memory of tokens verified recently.
#[derive(Clone)]
pub struct EntitlementKeys {
    current: Key,
    previous: Vec<Key>,
    verified: Arc<VerifiedTokens>,
}

/// How many verified tokens are remembered; beyond that, expired ones are forgotten, and if
/// none has expired, all of them.
const REMEMBERED_TOKENS: usize = 4096;

/// Tokens that passed [`EntitlementKeys::verify`], keyed by their mac (text after the last
/// `.`) and confirmed by comparing the whole token, with their claims.
#[derive(Default)]
struct VerifiedTokens(Mutex<HashMap<Box<str>, Remembered>>);

/// A verified token, whole, and its claims.
type Remembered = (Box<str>, Arc<Claims>);

impl VerifiedTokens {
    fn get(&self, token: &str) -> Option<Arc<Claims>> {
        let (_, tag) = token.rsplit_once('.')?;
        let map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match map.get(tag) {
            Some((known, claims)) if **known == *token => Some(claims.clone()),
            _ => None,
        }
    }

    fn remember(&self, token: &str, claims: Arc<Claims>, now: u64) {
        let Some((_, tag)) = token.rsplit_once('.') else {
            return;
        };
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= REMEMBERED_TOKENS {
            map.retain(|_, (_, claims)| claims.expires_at > now);
            if map.len() >= REMEMBERED_TOKENS {
                map.clear();
            }
        }
        map.insert(tag.into(), (token.into(), claims));
    }
}

impl fmt::Debug for EntitlementKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EntitlementKeys")
            .field("current", &self.current.id)
            .field(
                "previous",
                &self.previous.iter().map(|k| &k.id).collect::<Vec<_>>(),
            )
            .finish()
    }
}

fn key(id: &str, secret: &[u8]) -> Result<Key, KeyError> {
    let id_ok = (1..=32).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if !id_ok {
        return Err(KeyError::BadId(id.to_owned()));
    }
    if secret.len() < MIN_SECRET_BYTES {
        return Err(KeyError::TooShort(id.to_owned()));
    }
    let mac = HmacSha256::new_from_slice(secret).map_err(|_| KeyError::TooShort(id.to_owned()))?;
    Ok(Key {
        id: id.to_owned(),
        mac,
    })
}

impl EntitlementKeys {
    /// Keys with `secret` (at least 32 bytes) as the current key, named `id`.
    pub fn new(id: &str, secret: &[u8]) -> Result<Self, KeyError> {
        Ok(EntitlementKeys {
            current: key(id, secret)?,
            previous: Vec::new(),
            verified: Arc::default(),
        })
    }

    /// Fresh random keys, for a single server process: tokens do not survive a restart and are
    /// not accepted by other replicas.
    pub fn random() -> Self {
        let mut secret = [0u8; 64];
        secret[..32].copy_from_slice(x402_protocol::eip3009::random_nonce().as_slice());
        secret[32..].copy_from_slice(x402_protocol::eip3009::random_nonce().as_slice());
        let mac = <HmacSha256 as hmac::digest::KeyInit>::new(&secret.into());
        secret.fill(0);
        EntitlementKeys {
            current: Key {
                id: "ephemeral".to_owned(),
                mac,
            },
            previous: Vec::new(),
            verified: Arc::default(),
        }
    }

    /// Parses `id:hexsecret[,id:hexsecret…]`: the first key is current, the rest previous (the
    /// format of `X402_ENTITLEMENT_KEYS`).
    ///
    /// ```
    /// use x402_runtime::entitlement::EntitlementKeys;
    /// let secret = "ab".repeat(32);
    /// let keys = EntitlementKeys::parse(&format!("2026-11:{secret}, 2026-10:{secret}"))?;
    /// assert_eq!(keys.current_id(), "2026-11");
    /// # Ok::<(), x402_runtime::entitlement::KeyError>(())
    /// ```
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let mut parsed = Vec::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (id, hex) = entry
                .split_once(':')
                .ok_or_else(|| KeyError::BadId(entry.to_owned()))?;
            let secret = alloy_primitives::hex::decode(hex.trim())
                .map_err(|_| KeyError::NotHex(id.to_owned()))?;
            parsed.push(key(id.trim(), &secret)?);
        }
        let mut keys = parsed.into_iter();
        let current = keys.next().ok_or_else(|| KeyError::BadId(String::new()))?;
        Ok(EntitlementKeys {
            current,
            previous: keys.collect(),
            verified: Arc::default(),
        })
    }

    /// Also accepts tokens signed with a previous key.
    pub fn with_previous(mut self, id: &str, secret: &[u8]) -> Result<Self, KeyError> {
        self.previous.push(key(id, secret)?);
        Ok(self)
    }

    /// The current key's id.
    pub fn current_id(&self) -> &str {
        &self.current.id
    }

    /// Signs claims with the current key (setting their key id).
    pub fn sign(&self, claims: &Claims) -> String {
        let mut claims = claims.clone();
        claims.key_id = self.current.id.clone();
        // Claims hold only strings and numbers; serialising them cannot fail.
        let json = serde_json::to_vec(&claims).unwrap_or_default();
        let payload = URL_SAFE_NO_PAD.encode(json);
        let mut mac = self.current.mac.clone();
        mac.update(payload.as_bytes());
        let tag = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{TOKEN_PREFIX}{payload}.{tag}")
    }

    /// Checks a token's signature and expiry at unix time `now`, and returns its claims.
    pub fn verify(&self, token: &str, now: u64) -> Result<Claims, EntitlementError> {
        self.verify_shared(token, now).map(Arc::unwrap_or_clone)
    }

    /// [`verify`](Self::verify), returning the claims shared with the memory of verified
    /// tokens: a token verified before (and not expired) costs a lookup.
    pub fn verify_shared(&self, token: &str, now: u64) -> Result<Arc<Claims>, EntitlementError> {
        let token = token.trim();
        if let Some(claims) = self.verified.get(token) {
            if now >= claims.expires_at {
                return Err(EntitlementError::Expired(claims.expires_at));
            }
            return Ok(claims);
        }
        let claims = Arc::new(self.verify_uncached(token, now)?);
        self.verified.remember(token, claims.clone(), now);
        Ok(claims)
    }

    fn verify_uncached(&self, token: &str, now: u64) -> Result<Claims, EntitlementError> {
        let rest = token
            .strip_prefix(TOKEN_PREFIX)
            .ok_or(EntitlementError::Malformed)?;
        let (payload, tag) = rest.split_once('.').ok_or(EntitlementError::Malformed)?;
        if payload.len() > 4096 {
            return Err(EntitlementError::Malformed);
        }
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| EntitlementError::Malformed)?;
        let json = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| EntitlementError::Malformed)?;
        #[derive(Deserialize)]
        struct KeyOnly {
            #[serde(rename = "k", default)]
            key_id: String,
        }
        let key_id = serde_json::from_slice::<KeyOnly>(&json)
            .map_err(|_| EntitlementError::Malformed)?
            .key_id;
        let key = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id == key_id)
            .ok_or(EntitlementError::UnknownKey)?;
        let mut mac = key.mac.clone();
        mac.update(payload.as_bytes());
        // `verify_slice` compares in constant time.
        mac.verify_slice(&tag)
            .map_err(|_| EntitlementError::BadSignature)?;
        let claims: Claims =
            serde_json::from_slice(&json).map_err(|_| EntitlementError::Malformed)?;
        if now >= claims.expires_at {
            return Err(EntitlementError::Expired(claims.expires_at));
        }
        Ok(claims)
    }
}

/// The cookie name for a scope: `x402_` and 16 hex digits of the scope's SHA-256, so that grants
/// for different routes live side by side.
pub fn cookie_name(scope: &str) -> String {
    use sha2::Digest;
    let digest = Sha256::digest(scope.as_bytes());
    format!("x402_{}", alloy_primitives::hex::encode(&digest[..8]))
}

/// Finds a cookie's value in a `Cookie` request header.
pub(crate) fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (key, value) = pair.trim().split_once('=')?;
        (key.trim() == name).then(|| value.trim().trim_matches('"'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn tokens_round_trip_and_rotate() {
        let old = EntitlementKeys::new("old", SECRET).unwrap();
        let token = old.sign(&Claims::new(GrantKind::Prepaid, "group:reports", 100));
        let rotated = EntitlementKeys::new("new", b"another secret of thirty-two bytes!!")
            .unwrap()
            .with_previous("old", SECRET)
            .unwrap();
        assert_eq!(rotated.verify(&token, 99).unwrap().kind, GrantKind::Prepaid);
        // Without the previous key the old token is unknown.
        let fresh = EntitlementKeys::new("new", b"another secret of thirty-two bytes!!").unwrap();
        assert_eq!(fresh.verify(&token, 99), Err(EntitlementError::UnknownKey));
        assert!(
            rotated
                .sign(&Claims::new(GrantKind::Access, "x", 1))
                .contains('.')
        );
    }

    #[test]
    fn forged_altered_and_expired_tokens_are_refused_with_reasons() {
        let keys = EntitlementKeys::new("k1", SECRET).unwrap();
        let token = keys.sign(&Claims::new(GrantKind::Access, "path:/a", 100));
        assert_eq!(
            keys.verify(&token, 100),
            Err(EntitlementError::Expired(100))
        );

        // Same key id, different secret: a forgery.
        let forger = EntitlementKeys::new("k1", b"not the server's secret, 32 bytes").unwrap();
        let forged = forger.sign(&Claims::new(GrantKind::Access, "path:/a", 1000));
        assert_eq!(keys.verify(&forged, 1), Err(EntitlementError::BadSignature));

        // Altering the payload (a longer expiry) breaks the mac.
        let mut claims = keys.verify(&token, 1).unwrap();
        claims.expires_at = u64::MAX;
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
        let tag = token.rsplit_once('.').unwrap().1;
        let altered = format!("{TOKEN_PREFIX}{payload}.{tag}");
        assert_eq!(
            keys.verify(&altered, 1),
            Err(EntitlementError::BadSignature)
        );

        for garbage in [
            "",
            "x402e1.",
            "x402e1.abc",
            "Bearer xyz",
            "x402e1.!!!.???",
            "eyJhbGciOi.eyJzdWIi.sig",
        ] {
            assert_eq!(
                keys.verify(garbage, 1),
                Err(EntitlementError::Malformed),
                "{garbage:?}"
            );
        }
        assert_eq!(
            EntitlementError::Exhausted.reason(),
            Reason::ENTITLEMENT_EXHAUSTED
        );
    }

    #[test]
    fn keys_must_be_long_enough_and_well_named() {
        assert!(matches!(
            EntitlementKeys::new("k", b"short"),
            Err(KeyError::TooShort(_))
        ));
        assert!(matches!(
            EntitlementKeys::new("a b", SECRET),
            Err(KeyError::BadId(_))
        ));
        let debug = format!("{:?}", EntitlementKeys::new("k", SECRET).unwrap());
        assert!(!debug.contains("0123456789"), "{debug}");
    }

    /// A remembered token is the token exactly as verified: a copy with another payload and
    /// the same mac, one signed by another key, or the same token after expiry are judged as
    /// if never seen.
    #[test]
    fn remembered_tokens_are_exactly_the_ones_verified() {
        let keys = EntitlementKeys::new("k1", SECRET).unwrap();
        let token = keys.sign(&Claims::new(GrantKind::Access, "path:/a", 100));
        let first = keys.verify_shared(&token, 1).unwrap();
        let again = keys.verify_shared(&format!(" {token} "), 2).unwrap();
        assert!(Arc::ptr_eq(&first, &again), "the second check is a lookup");
        assert_eq!(keys.clone().verify(&token, 3).unwrap(), *first);

        // Same mac, another payload (a longer expiry): refused.
        let mut claims = (*first).clone();
        claims.expires_at = u64::MAX;
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
        let tag = token.rsplit_once('.').unwrap().1;
        let altered = format!("{TOKEN_PREFIX}{payload}.{tag}");
        assert_eq!(
            keys.verify_shared(&altered, 4),
            Err(EntitlementError::BadSignature)
        );
        // Keys that never verified it do not know it, even sharing nothing but the id.
        let forger = EntitlementKeys::new("k1", b"not the server's secret, 32 bytes").unwrap();
        assert_eq!(
            forger.verify(&token, 5),
            Err(EntitlementError::BadSignature)
        );
        // Expiry still applies to a remembered token.
        assert_eq!(
            keys.verify_shared(&token, 100),
            Err(EntitlementError::Expired(100))
        );
    }

    #[test]
    fn the_memory_of_verified_tokens_stays_bounded() {
        let keys = EntitlementKeys::new("k1", SECRET).unwrap();
        let tokens: Vec<String> = (0..REMEMBERED_TOKENS + 10)
            .map(|i| keys.sign(&Claims::new(GrantKind::Access, format!("path:/{i}"), 1000)))
            .collect();
        for token in &tokens {
            keys.verify_shared(token, 1).unwrap();
        }
        let remembered = keys.verified.0.lock().unwrap().len();
        assert!(remembered <= REMEMBERED_TOKENS, "{remembered}");
        // Forgotten or not, every token still verifies.
        for token in tokens.iter().step_by(97) {
            assert_eq!(keys.verify(token, 2).unwrap().expires_at, 1000);
        }
    }

    #[test]
    fn cookies_are_named_per_scope_and_found_in_headers() {
        assert_ne!(cookie_name("path:/a"), cookie_name("path:/b"));
        let name = cookie_name("path:/a");
        let header = format!("theme=dark; {name}=x402e1.abc.def; other=1");
        assert_eq!(cookie_value(&header, &name), Some("x402e1.abc.def"));
        assert_eq!(cookie_value(&header, "missing"), None);
    }
}
