//! What the journal keeps about one payment, and the states it moves through.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use x402_protocol::U256;
use x402_protocol::serde_util::decimal_u256;

use super::JournalError;
use super::keys::{canonical_address, check_ms, utc_day};

/// Where a journaled payment stands.
///
/// ```text
///             ┌──────────► released        (handler failed; nothing charged, authorization given back)
///             │
///  verified ──┼──────────► failed          (provably not executed)
///             │
///             └─► settling ─┬─► settled    (charged)
///                    ▲      ├─► failed
///                    │      └─► unknown ─┬─► settled / failed   (resolved by asking the chain)
///                    └───────────────────┘   (or settling again: a new attempt)
/// ```
///
/// `settled`, `failed` and `released` are terminal: nothing moves a record out of them.
///
/// Reconciliation is not a state of its own: a record resolved by reconciliation reaches the
/// same final state as one settled on the request path (so `settled` stays the one state that
/// means "charged", for totals and queries) and carries
/// [`PaymentRecord::reconciled`]` = true` to say how its outcome was learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PaymentState {
    /// Verified by the facilitator and admitted; the handler runs (or ran).
    Verified,
    /// Settlement was started and its outcome is not known yet.
    Settling,
    /// Settled on chain: the payer was charged.
    Settled,
    /// Not executed, and provably never will be (the settler said so).
    Failed,
    /// Settlement was submitted or timed out without a verdict; reconciliation asks the chain.
    Unknown,
    /// Not charged: the handler failed before settlement and the authorization was given back,
    /// so the client may send it again.
    Released,
}

impl PaymentState {
    /// Every state, in the order of the diagram above.
    pub const ALL: [PaymentState; 6] = [
        PaymentState::Verified,
        PaymentState::Settling,
        PaymentState::Settled,
        PaymentState::Failed,
        PaymentState::Unknown,
        PaymentState::Released,
    ];

    /// The name stored and shown: `verified`, `settling`, …
    pub const fn as_str(self) -> &'static str {
        match self {
            PaymentState::Verified => "verified",
            PaymentState::Settling => "settling",
            PaymentState::Settled => "settled",
            PaymentState::Failed => "failed",
            PaymentState::Unknown => "unknown",
            PaymentState::Released => "released",
        }
    }

    /// Whether the record can never change state again.
    pub const fn is_terminal(self) -> bool {
        matches!(
            self,
            PaymentState::Settled | PaymentState::Failed | PaymentState::Released
        )
    }

    /// Whether a record may move from `self` to `to` (see the diagram on [`PaymentState`]).
    ///
    /// ```
    /// use x402_runtime::journal::PaymentState::*;
    /// assert!(Verified.can_become(Settling));
    /// assert!(Unknown.can_become(Settled));
    /// assert!(!Settled.can_become(Failed));
    /// assert!(!Settling.can_become(Settling));
    /// ```
    pub const fn can_become(self, to: PaymentState) -> bool {
        use PaymentState::*;
        matches!(
            (self, to),
            (Verified, Settling | Failed | Released)
                | (Settling, Settled | Failed | Unknown)
                | (Unknown, Settling | Settled | Failed)
        )
    }

    /// Whether a record in this state still holds its `payment_key` and `payment_id`: every
    /// state but `released` and `failed`, the two in which nothing was charged and the
    /// authorization is the client's again. At most one such record exists per key and per
    /// payment id.
    pub const fn holds_keys(self) -> bool {
        !matches!(self, PaymentState::Released | PaymentState::Failed)
    }
}

impl fmt::Display for PaymentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PaymentState {
    type Err = JournalError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PaymentState::ALL
            .into_iter()
            .find(|state| state.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                JournalError::Invalid(format!(
                    "unknown payment state {s:?} (one of: verified, settling, settled, failed, unknown, released)"
                ))
            })
    }
}

/// The response sent for a paid request, kept so an idempotent retry (same payment id, same
/// request) or a resend of a settled authorization gets it again without the handler running.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredResponse {
    /// HTTP status.
    pub status: u16,
    /// Response headers in order, receipt (`PAYMENT-RESPONSE`) included.
    pub headers: Vec<(String, String)>,
    /// The body, or `None` when it was not kept (larger than the configured limit); a retry
    /// then gets the status and headers only.
    #[serde(with = "optional_base64", default)]
    pub body: Option<Vec<u8>>,
}

/// A payment being admitted: what the gate knows before the handler runs.
///
/// [`Journal::insert`](super::Journal::insert) records it in state
/// [`Verified`](PaymentState::Verified) under its `id`, or a fresh [`PaymentRecord::id`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPayment {
    /// The record's id, when the caller chose one ([`new_record_id`]); a fresh one otherwise.
    /// The gate uses it as the owner token of the payment's replay reservation, so that
    /// reconciliation can give the reservation back.
    pub id: Option<String>,
    /// The replay key, unique per authorization: [`evm_payment_key`] for EVM payments.
    pub payment_key: String,
    /// The payment-identifier extension's id, when the client sent one.
    pub payment_id: Option<String>,
    /// The request fingerprint bound to `payment_id` ([`fingerprint`]).
    pub fingerprint: Option<String>,
    /// The route as configured (its path pattern or name), for grouping.
    pub route: String,
    /// The resource URL the payment is for.
    pub resource: String,
    /// HTTP method of the paid request.
    pub method: String,
    /// Who pays: an EVM address (normalised by [`canonical_address`]) or a Solana address.
    pub payer: String,
    /// Who is paid.
    pub pay_to: String,
    /// The amount authorized, in the asset's atomic units.
    pub amount: U256,
    /// The token (contract or mint address).
    pub asset: String,
    /// CAIP-2 network id (`eip155:8453`).
    pub network: String,
    /// Payment scheme (`exact`, `upto`).
    pub scheme: String,
    /// x402 protocol version of the payment (1 or 2).
    pub x402_version: u8,
    /// The authorization's nonce (EVM: `0x` + 64 hex digits).
    pub nonce: String,
    /// Unix seconds after which the authorization can no longer be settled, when known.
    pub valid_before: Option<u64>,
    /// The facilitator request (JSON) that was verified, to settle or reconcile it later.
    pub facilitator_request: String,
    /// When the payment was admitted, unix milliseconds ([`now_ms`]).
    pub at: u64,
}

/// One journaled payment.
///
/// Serialises to JSON with amounts as base-10 strings and the stored body as base64.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRecord {
    /// The record's own id: unique, and sorting like `created_at`.
    pub id: String,
    /// The replay key of the authorization.
    pub payment_key: String,
    /// The payment-identifier extension's id.
    pub payment_id: Option<String>,
    /// The request fingerprint bound to `payment_id`.
    pub fingerprint: Option<String>,
    /// The route, as configured.
    pub route: String,
    /// The resource URL.
    pub resource: String,
    /// HTTP method.
    pub method: String,
    /// Who pays.
    pub payer: String,
    /// Who is paid.
    pub pay_to: String,
    /// Amount authorized, atomic units.
    #[serde(with = "decimal_u256")]
    pub amount: U256,
    /// Amount actually settled (an `upto` payment may settle less than `amount`); set when
    /// the record becomes `settled`.
    #[serde(with = "optional_decimal", default)]
    pub settled_amount: Option<U256>,
    /// The token.
    pub asset: String,
    /// CAIP-2 network id.
    pub network: String,
    /// Payment scheme.
    pub scheme: String,
    /// x402 protocol version.
    pub x402_version: u8,
    /// The authorization's nonce.
    pub nonce: String,
    /// Unix seconds after which the authorization can no longer be settled.
    pub valid_before: Option<u64>,
    /// Current state.
    pub state: PaymentState,
    /// Whether the current outcome was reached by reconciliation rather than on the request
    /// path.
    pub reconciled: bool,
    /// How many times settlement was started (entries into `settling`).
    pub attempts: u32,
    /// The settlement transaction (hash or signature), once known.
    pub transaction: Option<String>,
    /// Machine-readable reason of the last failure or unknown outcome.
    pub error_reason: Option<String>,
    /// Human-readable detail of the last failure or unknown outcome.
    pub error_message: Option<String>,
    /// HTTP status answered to the client, once known.
    pub response_status: Option<u16>,
    /// The response kept for retries ([`Journal::store_response`](super::Journal::store_response)).
    pub response: Option<StoredResponse>,
    /// The verified facilitator request (JSON).
    pub facilitator_request: String,
    /// When the record was created, unix milliseconds.
    pub created_at: u64,
    /// When it last changed, unix milliseconds.
    pub updated_at: u64,
}

impl PaymentRecord {
    /// The record `new` becomes when inserted under `id`.
    pub(crate) fn admitted(id: String, new: NewPayment) -> Self {
        PaymentRecord {
            id,
            payment_key: new.payment_key,
            payment_id: new.payment_id,
            fingerprint: new.fingerprint,
            route: new.route,
            resource: new.resource,
            method: new.method,
            payer: new.payer,
            pay_to: new.pay_to,
            amount: new.amount,
            settled_amount: None,
            asset: new.asset,
            network: new.network,
            scheme: new.scheme,
            x402_version: new.x402_version,
            nonce: new.nonce,
            valid_before: new.valid_before,
            state: PaymentState::Verified,
            reconciled: false,
            attempts: 0,
            transaction: None,
            error_reason: None,
            error_message: None,
            response_status: None,
            response: None,
            facilitator_request: new.facilitator_request,
            created_at: new.at,
            updated_at: new.at,
        }
    }

    /// The UTC day of `created_at`, `YYYY-MM-DD`.
    pub fn day(&self) -> String {
        utc_day(self.created_at)
    }
}

/// What [`Journal::insert`](super::Journal::insert) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inserted {
    /// The payment was new and is now recorded as `verified`.
    Created(PaymentRecord),
    /// A record already holds this `payment_key` (the same authorization was admitted
    /// before) or this `payment_id`; here it is, unchanged. When both match different
    /// records, the one with the same `payment_key` is returned.
    Existing(PaymentRecord),
}

impl Inserted {
    /// The record, new or existing.
    pub fn record(&self) -> &PaymentRecord {
        match self {
            Inserted::Created(record) | Inserted::Existing(record) => record,
        }
    }

    /// The record, new or existing.
    pub fn into_record(self) -> PaymentRecord {
        match self {
            Inserted::Created(record) | Inserted::Existing(record) => record,
        }
    }

    /// Whether this call created the record.
    pub fn is_created(&self) -> bool {
        matches!(self, Inserted::Created(_))
    }
}

/// A state change, applied atomically by [`Journal::transition`](super::Journal::transition)
/// only if the record is in one of the expected states (compare-and-set).
///
/// ```
/// use x402_runtime::journal::{PaymentState, Transition, now_ms};
/// use x402_runtime::U256;
///
/// let settled = Transition::new(&[PaymentState::Settling, PaymentState::Unknown], PaymentState::Settled, now_ms())
///     .transaction("0xabc…")
///     .settled_amount(U256::from(10_000u64));
/// assert_eq!(settled.to(), PaymentState::Settled);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub(crate) from: Vec<PaymentState>,
    pub(crate) to: PaymentState,
    pub(crate) at: u64,
    pub(crate) transaction: Option<String>,
    pub(crate) settled_amount: Option<U256>,
    pub(crate) error_reason: Option<String>,
    pub(crate) error_message: Option<String>,
    pub(crate) response_status: Option<u16>,
    pub(crate) reconciled: bool,
    pub(crate) response: Option<StoredResponse>,
}

impl Transition {
    /// Move to `to` if the record is in one of `from`, at `at` (unix milliseconds).
    pub fn new(from: &[PaymentState], to: PaymentState, at: u64) -> Self {
        Transition {
            from: from.to_vec(),
            to,
            at,
            transaction: None,
            settled_amount: None,
            error_reason: None,
            error_message: None,
            response_status: None,
            reconciled: false,
            response: None,
        }
    }

    /// Keeps the handler's response with this change, unless one is kept already (what
    /// [`Journal::store_response`](super::Journal::store_response) does, in the same write):
    /// the gate keeps a paid response with the move to `settling`.
    pub fn keep_response(mut self, response: StoredResponse) -> Self {
        self.response = Some(response);
        self
    }

    /// Records the settlement transaction (kept when later changes give none).
    pub fn transaction(mut self, transaction: impl Into<String>) -> Self {
        self.transaction = Some(transaction.into());
        self
    }

    /// The amount settled; at most the authorized amount. A move to `settled` without it
    /// records the authorized amount.
    pub fn settled_amount(mut self, amount: U256) -> Self {
        self.settled_amount = Some(amount);
        self
    }

    /// Why settlement failed or has no verdict (replaces the previous error).
    pub fn error(mut self, reason: impl Into<String>, message: impl Into<String>) -> Self {
        self.error_reason = Some(reason.into());
        self.error_message = Some(message.into());
        self
    }

    /// The HTTP status answered to the client.
    pub fn response_status(mut self, status: u16) -> Self {
        self.response_status = Some(status);
        self
    }

    /// Marks the outcome as found by reconciliation ([`PaymentRecord::reconciled`]).
    pub fn reconciled(mut self) -> Self {
        self.reconciled = true;
        self
    }

    /// The states the record must be in.
    pub fn from_states(&self) -> &[PaymentState] {
        &self.from
    }

    /// The state it moves to.
    pub fn to(&self) -> PaymentState {
        self.to
    }

    /// Checks the transition against the state machine before any backend is asked:
    /// every expected state must be allowed to become `to`, and a settled amount only goes
    /// with a move to `settled`.
    pub(crate) fn validate(&self) -> Result<(), JournalError> {
        if self.from.is_empty() {
            return Err(JournalError::Invalid(
                "a transition needs at least one expected state".to_owned(),
            ));
        }
        if let Some(from) = self.from.iter().find(|from| !from.can_become(self.to)) {
            return Err(JournalError::IllegalTransition {
                from: *from,
                to: self.to,
            });
        }
        if self.settled_amount.is_some() && self.to != PaymentState::Settled {
            return Err(JournalError::Invalid(format!(
                "a settled amount only goes with a move to settled, not to {}",
                self.to
            )));
        }
        check_ms(self.at)?;
        Ok(())
    }

    /// Whether entering the new state starts a settlement attempt.
    pub(crate) fn starts_attempt(&self) -> bool {
        self.to == PaymentState::Settling
    }
}

impl NewPayment {
    /// Checks what a backend cannot (required fields present, times in range) and
    /// normalises EVM addresses.
    pub(crate) fn prepared(mut self) -> Result<Self, JournalError> {
        self.payer = canonical_address(&self.payer);
        self.pay_to = canonical_address(&self.pay_to);
        if self.payment_key.is_empty() {
            return Err(JournalError::Invalid("the payment key is empty".to_owned()));
        }
        if self.payment_id.as_deref() == Some("") {
            return Err(JournalError::Invalid(
                "the payment id is empty (leave it out instead)".to_owned(),
            ));
        }
        check_ms(self.at)?;
        if let Some(valid_before) = self.valid_before {
            i64::try_from(valid_before).map_err(|_| {
                JournalError::Invalid(format!("valid_before {valid_before} is out of range"))
            })?;
        }
        Ok(self)
    }
}

/// `Option<U256>` as an optional base-10 string.
mod optional_decimal {
    use serde::{Deserialize, Deserializer, Serializer};
    use x402_protocol::U256;

    pub(super) fn serialize<S: Serializer>(
        value: &Option<U256>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(value) => serializer.collect_str(value),
            None => serializer.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<U256>, D::Error> {
        let text = Option::<String>::deserialize(deserializer)?;
        text.map(|text| {
            x402_protocol::amount::parse_decimal_u256(&text)
                .map_err(|e| serde::de::Error::custom(format!("{e}: {text:?}")))
        })
        .transpose()
    }
}

/// `Option<Vec<u8>>` as optional standard base64.
mod optional_base64 {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        value: &Option<Vec<u8>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(bytes) => serializer.serialize_str(&STANDARD.encode(bytes)),
            None => serializer.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Vec<u8>>, D::Error> {
        let text = Option::<String>::deserialize(deserializer)?;
        text.map(|text| STANDARD.decode(text).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::keys::new_id;

    #[test]
    fn only_the_diagrams_transitions_are_legal() {
        use PaymentState::*;
        let legal = [
            (Verified, Settling),
            (Verified, Failed),
            (Verified, Released),
            (Settling, Settled),
            (Settling, Failed),
            (Settling, Unknown),
            (Unknown, Settling),
            (Unknown, Settled),
            (Unknown, Failed),
        ];
        for from in PaymentState::ALL {
            for to in PaymentState::ALL {
                assert_eq!(
                    from.can_become(to),
                    legal.contains(&(from, to)),
                    "{from} -> {to}"
                );
            }
            if from.is_terminal() {
                assert!(PaymentState::ALL.iter().all(|to| !from.can_become(*to)));
            }
        }
    }

    #[test]
    fn states_round_trip_through_their_names() {
        for state in PaymentState::ALL {
            assert_eq!(state.as_str().parse::<PaymentState>().unwrap(), state);
            assert_eq!(
                serde_json::to_string(&state).unwrap(),
                format!("\"{state}\"")
            );
        }
        assert!("SETTLED".parse::<PaymentState>().is_ok());
        assert!("reconciled".parse::<PaymentState>().is_err());
    }

    #[test]
    fn days_match_known_dates() {
        // Computed independently with Python's datetime.utcfromtimestamp.
        for (ms, day) in [
            (0, "1970-01-01"),
            (86_399_999, "1970-01-01"),
            (86_400_000, "1970-01-02"),
            (1_709_164_800_000, "2024-02-29"),
            (1_735_689_599_999, "2024-12-31"),
            (1_735_689_600_000, "2025-01-01"),
            (4_102_444_799_000, "2099-12-31"),
        ] {
            assert_eq!(utc_day(ms), day, "{ms}");
        }
    }

    #[test]
    fn ids_are_unique_and_sort_by_time() {
        let a = new_id(1_000).unwrap();
        let b = new_id(1_000).unwrap();
        let c = new_id(2_000).unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(a < c && b < c);
        // The time (12 hex digits), then 80 random bits, all lower-case hex.
        assert!(a.starts_with("0000000003e8"), "{a}");
        assert!(
            a.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
            "{a}"
        );
    }

    #[test]
    fn transitions_are_checked_before_any_backend() {
        use PaymentState::*;
        let error = Transition::new(&[Settled], Failed, 1)
            .validate()
            .unwrap_err();
        assert!(
            matches!(
                error,
                JournalError::IllegalTransition {
                    from: Settled,
                    to: Failed
                }
            ),
            "{error}"
        );
        assert!(Transition::new(&[], Settled, 1).validate().is_err());
        assert!(
            Transition::new(&[Settling], Unknown, 1)
                .settled_amount(U256::from(1))
                .validate()
                .is_err()
        );
        assert!(
            Transition::new(&[Settling], Settled, u64::MAX)
                .validate()
                .is_err()
        );
        assert!(
            Transition::new(&[Settling, Unknown], Settled, 1)
                .validate()
                .is_ok()
        );
    }

    #[test]
    fn records_serialise_amounts_as_decimal_strings_and_bodies_as_base64() {
        let mut record = PaymentRecord::admitted(
            "id".to_owned(),
            NewPayment {
                id: None,
                payment_key: "k".to_owned(),
                payment_id: None,
                fingerprint: None,
                route: "/r".to_owned(),
                resource: "http://x/r".to_owned(),
                method: "GET".to_owned(),
                payer: "p".to_owned(),
                pay_to: "q".to_owned(),
                amount: U256::MAX,
                asset: "a".to_owned(),
                network: "eip155:1".to_owned(),
                scheme: "exact".to_owned(),
                x402_version: 2,
                nonce: "n".to_owned(),
                valid_before: None,
                facilitator_request: "{}".to_owned(),
                at: 5,
            },
        );
        record.settled_amount = Some(U256::from(7));
        record.response = Some(StoredResponse {
            status: 200,
            headers: vec![("content-type".to_owned(), "text/plain".to_owned())],
            body: Some(b"hi".to_vec()),
        });
        let json = serde_json::to_value(&record).unwrap();
        assert_eq!(json["amount"], U256::MAX.to_string());
        assert_eq!(json["settled_amount"], "7");
        assert_eq!(json["state"], "verified");
        assert_eq!(json["response"]["body"], "aGk=");
        let back: PaymentRecord = serde_json::from_value(json).unwrap();
        assert_eq!(back, record);
    }
}
