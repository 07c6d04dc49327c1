//! What the SQLite and Postgres journals share: decoding rows, filters, errors, timeouts.

use std::future::Future;
use std::time::Duration;

use sqlx::{Database, Encode, QueryBuilder, Type};
use x402_protocol::U256;
use x402_protocol::amount::parse_decimal_u256;

use super::{Filter, JournalError, PaymentRecord, PaymentState, StoredResponse, Transition};

/// How long one operation on the request path may take by default, waiting for a connection
/// included.
pub(super) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long an operator's listing, totals or the reconciliation scan may take.
pub(super) const REPORT_TIMEOUT: Duration = Duration::from_secs(120);

/// How many times an insert is tried when the record it conflicted with was released before
/// it could be read.
pub(super) const INSERT_TRIES: usize = 5;

/// A row as the databases hand it over; [`RawRecord::into_record`] checks and converts it.
#[derive(sqlx::FromRow)]
pub(super) struct RawRecord {
    id: String,
    payment_key: String,
    payment_id: Option<String>,
    fingerprint: Option<String>,
    route: String,
    resource: String,
    method: String,
    payer: String,
    pay_to: String,
    amount: String,
    settled_amount: Option<String>,
    asset: String,
    network: String,
    scheme: String,
    x402_version: i64,
    nonce: String,
    valid_before: Option<i64>,
    state: String,
    reconciled: bool,
    attempts: i64,
    tx: Option<String>,
    error_reason: Option<String>,
    error_message: Option<String>,
    response_status: Option<i64>,
    response_headers: Option<String>,
    response_body: Option<Vec<u8>>,
    facilitator_request: String,
    created_at: i64,
    updated_at: i64,
}

impl RawRecord {
    pub(super) fn into_record(self) -> Result<PaymentRecord, JournalError> {
        let id = self.id;
        let corrupt = |what: &str, detail: String| {
            JournalError::Corrupt(format!("payment {id}: {what}: {detail}"))
        };
        let amount = |text: &str| {
            parse_decimal_u256(text).map_err(|e| corrupt("amount", format!("{e}: {text:?}")))
        };
        let response_status = self
            .response_status
            .map(|s| u16::try_from(s).map_err(|_| corrupt("response status", s.to_string())))
            .transpose()?;
        let response = match self.response_headers {
            None => None,
            Some(headers) => Some(StoredResponse {
                status: response_status
                    .ok_or_else(|| corrupt("response", "a response without status".to_owned()))?,
                headers: serde_json::from_str(&headers)
                    .map_err(|e| corrupt("response headers", e.to_string()))?,
                body: self.response_body,
            }),
        };
        Ok(PaymentRecord {
            payment_key: self.payment_key,
            payment_id: self.payment_id,
            fingerprint: self.fingerprint,
            route: self.route,
            resource: self.resource,
            method: self.method,
            payer: self.payer,
            pay_to: self.pay_to,
            amount: amount(&self.amount)?,
            settled_amount: self.settled_amount.as_deref().map(amount).transpose()?,
            asset: self.asset,
            network: self.network,
            scheme: self.scheme,
            x402_version: u8::try_from(self.x402_version)
                .map_err(|_| corrupt("x402 version", self.x402_version.to_string()))?,
            nonce: self.nonce,
            valid_before: self
                .valid_before
                .map(|t| u64::try_from(t).map_err(|_| corrupt("valid_before", t.to_string())))
                .transpose()?,
            state: self
                .state
                .parse::<PaymentState>()
                .map_err(|e| corrupt("state", e.to_string()))?,
            reconciled: self.reconciled,
            attempts: u32::try_from(self.attempts)
                .map_err(|_| corrupt("attempts", self.attempts.to_string()))?,
            transaction: self.tx,
            error_reason: self.error_reason,
            error_message: self.error_message,
            response_status,
            response,
            facilitator_request: self.facilitator_request,
            created_at: u64::try_from(self.created_at)
                .map_err(|_| corrupt("created_at", self.created_at.to_string()))?,
            updated_at: u64::try_from(self.updated_at)
                .map_err(|_| corrupt("updated_at", self.updated_at.to_string()))?,
            id,
        })
    }
}

/// Decodes rows into records.
pub(super) fn records(rows: Vec<RawRecord>) -> Result<Vec<PaymentRecord>, JournalError> {
    rows.into_iter().map(RawRecord::into_record).collect()
}

/// A response's headers as stored: a JSON array of `[name, value]` pairs.
pub(super) fn headers_json(response: &StoredResponse) -> Result<String, JournalError> {
    headers_text(&response.headers)
}

/// [`headers_json`] of a header list.
pub(super) fn headers_text(headers: &[(String, String)]) -> Result<String, JournalError> {
    serde_json::to_string(headers)
        .map_err(|e| JournalError::Invalid(format!("response headers: {e}")))
}

/// Appends `AND …` conditions for `filter` (already [normalised](Filter::normalized)).
pub(super) fn push_filter<'a, DB>(query: &mut QueryBuilder<'a, DB>, filter: &'a Filter)
where
    DB: Database,
    String: Encode<'a, DB> + Type<DB>,
    &'a str: Encode<'a, DB> + Type<DB>,
    i64: Encode<'a, DB> + Type<DB>,
{
    for (column, value) in [
        ("route", &filter.route),
        ("payer", &filter.payer),
        ("network", &filter.network),
        ("asset", &filter.asset),
    ] {
        if let Some(value) = value {
            query.push(format_args!(" AND {column} = "));
            query.push_bind(value.as_str());
        }
    }
    if !filter.states.is_empty() {
        query.push(" AND state IN (");
        let mut states = query.separated(", ");
        for state in &filter.states {
            states.push_bind(state.as_str());
        }
        query.push(")");
    }
    // Both were checked to fit by `Filter::normalized`.
    if let Some(since) = filter.since.and_then(|t| i64::try_from(t).ok()) {
        query.push(" AND created_at >= ");
        query.push_bind(since);
    }
    if let Some(until) = filter.until.and_then(|t| i64::try_from(t).ok()) {
        query.push(" AND created_at < ");
        query.push_bind(until);
    }
}

/// `UPDATE payments SET … WHERE id = … AND state IN (…)` for `change` of record `id`; the
/// caller appends its backend's settled-amount check and `RETURNING`. `numeric` is the cast a
/// settled amount's text needs (`::numeric` on Postgres, nothing on SQLite); `kept_headers`
/// is the JSON of the response `change` keeps, if any ([`headers_json`]).
pub(super) fn transition_update<'a, DB>(
    id: &'a str,
    at: i64,
    change: &'a Transition,
    settled: Option<String>,
    kept_headers: Option<String>,
    numeric: &str,
) -> QueryBuilder<'a, DB>
where
    DB: Database,
    &'a str: Encode<'a, DB> + Type<DB>,
    Option<&'a str>: Encode<'a, DB> + Type<DB>,
    Option<String>: Encode<'a, DB> + Type<DB>,
    Option<&'a [u8]>: Encode<'a, DB> + Type<DB>,
    i64: Encode<'a, DB> + Type<DB>,
    Option<i64>: Encode<'a, DB> + Type<DB>,
    bool: Encode<'a, DB> + Type<DB>,
{
    let mut update = QueryBuilder::<DB>::new("UPDATE payments SET state = ");
    update.push_bind(change.to.as_str());
    update.push(", updated_at = ");
    update.push_bind(at);
    update.push(", attempts = attempts + ");
    update.push_bind(i64::from(change.starts_attempt()));
    update.push(", reconciled = (reconciled OR ");
    update.push_bind(change.reconciled);
    update.push("), tx = COALESCE(");
    update.push_bind(change.transaction.as_deref());
    update.push(", tx)");
    if change.to == PaymentState::Settled {
        update.push(", settled_amount = COALESCE(");
        update.push_bind(settled);
        update.push(format_args!("{numeric}, amount)"));
    }
    if change.error_reason.is_some() {
        update.push(", error_reason = ");
        update.push_bind(change.error_reason.as_deref());
        update.push(", error_message = ");
        update.push_bind(change.error_message.as_deref());
    }
    // Every SET expression reads the row as it was: a response already kept stays.
    let kept = change.response.as_ref().filter(|_| kept_headers.is_some());
    update.push(", response_status = COALESCE(");
    update.push_bind(change.response_status.map(i64::from));
    update.push(", CASE WHEN response_headers IS NULL THEN ");
    update.push_bind(kept.map(|r| i64::from(r.status)));
    update.push(" END, response_status)");
    if let Some(kept) = kept {
        update.push(", response_body = CASE WHEN response_headers IS NULL THEN ");
        update.push_bind(kept.body.as_deref());
        update.push(" ELSE response_body END, response_headers = COALESCE(response_headers, ");
        update.push_bind(kept_headers);
        update.push(")");
    }
    update.push(" WHERE id = ");
    update.push_bind(id);
    update.push(" AND state IN (");
    let mut states = update.separated(", ");
    for state in state_names(&change.from) {
        states.push_bind(state);
    }
    update.push(")");
    update
}

/// The state names of `states`, for binding into `IN (…)`.
pub(super) fn state_names(states: &[PaymentState]) -> Vec<&'static str> {
    states.iter().map(|s| s.as_str()).collect()
}

/// Runs `operation` under `limit`; too slow means unavailable.
pub(super) async fn timed<T>(
    limit: Duration,
    what: &str,
    operation: impl Future<Output = Result<T, JournalError>>,
) -> Result<T, JournalError> {
    tokio::time::timeout(limit, operation)
        .await
        .unwrap_or_else(|_| {
            Err(JournalError::Unavailable(format!(
                "{what} did not finish within {} ms",
                limit.as_millis()
            )))
        })
}

/// Sorts a database error into the journal's kinds.
pub(super) fn error(error: sqlx::Error) -> JournalError {
    use sqlx::Error as E;
    match error {
        E::Configuration(e) => JournalError::Invalid(format!("journal configuration: {e}")),
        E::Database(e) => {
            use sqlx::error::ErrorKind;
            match e.kind() {
                ErrorKind::CheckViolation | ErrorKind::NotNullViolation => {
                    JournalError::Invalid(format!("refused by the journal's schema: {e}"))
                }
                _ => JournalError::Unavailable(format!("database error: {e}")),
            }
        }
        E::ColumnDecode { .. }
        | E::Decode(_)
        | E::ColumnNotFound(_)
        | E::ColumnIndexOutOfBounds { .. }
        | E::TypeNotFound { .. }
        | E::RowNotFound => JournalError::Corrupt(error.to_string()),
        E::Migrate(e) => JournalError::Migration(e.to_string()),
        other => JournalError::Unavailable(other.to_string()),
    }
}

/// The error for a failed migration.
pub(super) fn migration_error(error: sqlx::migrate::MigrateError) -> JournalError {
    JournalError::Migration(error.to_string())
}

/// Checks that a journal opened without migrating has exactly the schema `migrator` makes:
/// `applied` is the highest migration the database recorded (`None`: no journal there).
pub(super) fn check_schema(
    migrator: &sqlx::migrate::Migrator,
    applied: Option<i64>,
    location: &str,
) -> Result<(), JournalError> {
    let expected = migrator.iter().map(|m| m.version).max().unwrap_or(0);
    match applied {
        None => Err(JournalError::Migration(format!(
            "no payment journal at {location} (a server creates it on start)"
        ))),
        Some(version) if version < expected => Err(JournalError::Migration(format!(
            "the journal at {location} has schema version {version}, older than this build's \
             {expected}; start a server of this version on it once to upgrade it"
        ))),
        Some(version) if version > expected => Err(JournalError::Migration(format!(
            "the journal at {location} has schema version {version}, newer than this build's \
             {expected}; use a newer release"
        ))),
        Some(_) => Ok(()),
    }
}

/// The highest successful migration recorded, `None` when there is no migration table.
pub(super) const APPLIED_VERSION: &str = "SELECT MAX(version) FROM _sqlx_migrations WHERE success";

/// `amount` as stored: base-10 text.
pub(super) fn amount_text(amount: U256) -> String {
    amount.to_string()
}

/// Checks a time for a `BIGINT` column.
pub(super) fn ms(value: u64) -> Result<i64, JournalError> {
    super::keys::check_ms(value)
}

/// The `Journal` impl of a SQL backend: each operation is the backend's own method of the same
/// purpose, bounded by its timeout (one definition for SQLite and Postgres).
macro_rules! timed_journal {
    ($backend:ty) => {
        #[async_trait::async_trait]
        impl $crate::journal::Journal for $backend {
            async fn insert(
                &self,
                payment: $crate::journal::NewPayment,
            ) -> Result<$crate::journal::Inserted, $crate::journal::JournalError> {
                $crate::journal::sql::timed(self.timeout, "journal insert", self.do_insert(payment))
                    .await
            }

            async fn get(
                &self,
                id: &str,
            ) -> Result<Option<$crate::journal::PaymentRecord>, $crate::journal::JournalError> {
                $crate::journal::sql::timed(self.timeout, "journal read", self.by_id(id)).await
            }

            async fn find_by_payment_key(
                &self,
                key: &str,
            ) -> Result<Option<$crate::journal::PaymentRecord>, $crate::journal::JournalError> {
                $crate::journal::sql::timed(
                    self.timeout,
                    "journal read",
                    self.latest("payment_key", key),
                )
                .await
            }

            async fn find_by_payment_id(
                &self,
                payment_id: &str,
            ) -> Result<Option<$crate::journal::PaymentRecord>, $crate::journal::JournalError> {
                $crate::journal::sql::timed(
                    self.timeout,
                    "journal read",
                    self.latest("payment_id", payment_id),
                )
                .await
            }

            async fn transition(
                &self,
                id: &str,
                change: $crate::journal::Transition,
            ) -> Result<$crate::journal::PaymentRecord, $crate::journal::JournalError> {
                $crate::journal::sql::timed(
                    self.timeout,
                    "journal transition",
                    self.do_transition(id, change),
                )
                .await
            }

            async fn store_response(
                &self,
                id: &str,
                response: $crate::journal::StoredResponse,
            ) -> Result<$crate::journal::PaymentRecord, $crate::journal::JournalError> {
                $crate::journal::sql::timed(
                    self.timeout,
                    "journal write",
                    self.do_store_response(id, response),
                )
                .await
            }

            async fn needing_reconciliation(
                &self,
                before: u64,
                limit: u32,
            ) -> Result<Vec<$crate::journal::PaymentRecord>, $crate::journal::JournalError> {
                $crate::journal::sql::timed(
                    REPORT_TIMEOUT,
                    "journal reconciliation scan",
                    self.do_needing_reconciliation(before, limit),
                )
                .await
            }

            async fn query(
                &self,
                filter: &$crate::journal::Filter,
                page: &$crate::journal::Page,
            ) -> Result<$crate::journal::Records, $crate::journal::JournalError> {
                $crate::journal::sql::timed(
                    REPORT_TIMEOUT,
                    "journal query",
                    self.do_query(filter, page),
                )
                .await
            }

            async fn totals(
                &self,
                group: $crate::journal::GroupBy,
                filter: &$crate::journal::Filter,
            ) -> Result<Vec<$crate::journal::Total>, $crate::journal::JournalError> {
                $crate::journal::sql::timed(
                    REPORT_TIMEOUT,
                    "journal totals",
                    self.do_totals(group, filter),
                )
                .await
            }
        }
    };
}
pub(crate) use timed_journal;
