//! What the SQLite and Postgres journals share: decoding rows, filters, errors, timeouts.

use std::future::Future;
use std::time::Duration;

use sqlx::{Database, Encode, QueryBuilder, Type};
use x402_protocol::U256;
use x402_protocol::amount::parse_decimal_u256;

use super::{Filter, JournalError, PaymentRecord, PaymentState, StoredResponse};

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
    pub(super) id: String,
    pub(super) payment_key: String,
    pub(super) payment_id: Option<String>,
    pub(super) fingerprint: Option<String>,
    pub(super) route: String,
    pub(super) resource: String,
    pub(super) method: String,
    pub(super) payer: String,
    pub(super) pay_to: String,
    pub(super) amount: String,
    pub(super) settled_amount: Option<String>,
    pub(super) asset: String,
    pub(super) network: String,
    pub(super) scheme: String,
    pub(super) x402_version: i64,
    pub(super) nonce: String,
    pub(super) valid_before: Option<i64>,
    pub(super) state: String,
    pub(super) reconciled: bool,
    pub(super) attempts: i64,
    pub(super) tx: Option<String>,
    pub(super) error_reason: Option<String>,
    pub(super) error_message: Option<String>,
    pub(super) response_status: Option<i64>,
    pub(super) response_headers: Option<String>,
    pub(super) response_body: Option<Vec<u8>>,
    pub(super) facilitator_request: String,
    pub(super) created_at: i64,
    pub(super) updated_at: i64,
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

/// A value bound into a statement built by [`transition_update`].
#[derive(Debug, Clone)]
pub(super) enum Param<'a> {
    /// `TEXT` (or `NULL`).
    Text(Option<&'a str>),
    /// An owned `TEXT` (or `NULL`).
    Owned(Option<String>),
    /// `INTEGER`/`BIGINT` (or `NULL`).
    Int(Option<i64>),
    /// `BOOLEAN`.
    Bool(bool),
    /// `BLOB`/`BYTEA` (or `NULL`).
    Bytes(Option<&'a [u8]>),
}

/// Where a statement is written: SQL text and the values bound into it, in order. Implemented
/// for sqlx's `QueryBuilder` (the pooled backends) and for the SQLite writer thread's
/// statements ([`Statement`]).
pub(super) trait Sink<'a> {
    /// Appends SQL text.
    fn sql(&mut self, text: &str);
    /// Appends a placeholder bound to `value`.
    fn bind(&mut self, value: Param<'a>);
}

impl<'a, DB> Sink<'a> for QueryBuilder<'a, DB>
where
    DB: Database,
    Option<&'a str>: Encode<'a, DB> + Type<DB>,
    Option<String>: Encode<'a, DB> + Type<DB>,
    Option<&'a [u8]>: Encode<'a, DB> + Type<DB>,
    Option<i64>: Encode<'a, DB> + Type<DB>,
    bool: Encode<'a, DB> + Type<DB>,
{
    fn sql(&mut self, text: &str) {
        self.push(text);
    }

    fn bind(&mut self, value: Param<'a>) {
        match value {
            Param::Text(v) => self.push_bind(v),
            Param::Owned(v) => self.push_bind(v),
            Param::Int(v) => self.push_bind(v),
            Param::Bool(v) => self.push_bind(v),
            Param::Bytes(v) => self.push_bind(v),
        };
    }
}

/// A statement as SQLite's `?` text and its values, for the SQLite writer thread.
#[cfg(feature = "sqlite")]
#[derive(Debug, Default)]
pub(super) struct Statement<'a> {
    /// Borrowed when the text is a constant, built when it depends on the change.
    pub(super) text: std::borrow::Cow<'static, str>,
    pub(super) values: Vec<Param<'a>>,
}

#[cfg(feature = "sqlite")]
impl<'a> Sink<'a> for Statement<'a> {
    fn sql(&mut self, text: &str) {
        self.text.to_mut().push_str(text);
    }

    fn bind(&mut self, value: Param<'a>) {
        self.text.to_mut().push('?');
        self.values.push(value);
    }
}

/// Writes the start of a transition's statement, the part both backends share:
/// `UPDATE payments SET state = …, updated_at = …, attempts, reconciled, tx[, settled_amount]
/// [, error_reason, error_message]`. `settled` is the settled amount's text and `numeric` the
/// cast it needs (`::numeric` on Postgres). The caller appends its own SET items (the kept
/// response, SQLite's flags) and then [`transition_where`].
pub(super) fn transition_set<'a>(
    update: &mut impl Sink<'a>,
    at: i64,
    change: &'a super::Transition,
    settled: Option<String>,
    numeric: &str,
) {
    update.sql("UPDATE payments SET state = ");
    update.bind(Param::Text(Some(change.to.as_str())));
    update.sql(", updated_at = ");
    update.bind(Param::Int(Some(at)));
    update.sql(", attempts = attempts + ");
    update.bind(Param::Int(Some(i64::from(change.starts_attempt()))));
    update.sql(", reconciled = (reconciled OR ");
    update.bind(Param::Bool(change.reconciled));
    update.sql("), tx = COALESCE(");
    update.bind(Param::Text(change.transaction.as_deref()));
    update.sql(", tx)");
    if change.to == PaymentState::Settled {
        update.sql(", settled_amount = COALESCE(");
        update.bind(Param::Owned(settled));
        update.sql(&format!("{numeric}, amount)"));
    }
    if change.error_reason.is_some() {
        update.sql(", error_reason = ");
        update.bind(Param::Text(change.error_reason.as_deref()));
        update.sql(", error_message = ");
        update.bind(Param::Text(change.error_message.as_deref()));
    }
}

/// Ends a transition's statement: ` WHERE id = … AND state IN (…)` (the states `from`); the
/// caller appends its backend's settled-amount check.
pub(super) fn transition_where<'a>(update: &mut impl Sink<'a>, id: &'a str, from: &[PaymentState]) {
    update.sql(" WHERE id = ");
    update.bind(Param::Text(Some(id)));
    update.sql(" AND state IN (");
    for (i, state) in state_names(from).into_iter().enumerate() {
        if i > 0 {
            update.sql(", ");
        }
        update.bind(Param::Text(Some(state)));
    }
    update.sql(")");
}

/// Writes `UPDATE payments SET … WHERE id = … AND state IN (…)` for `change` of record `id`
/// into `update`, Postgres's form: the kept response in the record's own columns
/// (`kept_headers`: its JSON, [`headers_json`]); the caller appends the settled-amount check
/// and `RETURNING`. SQLite keeps responses in a table of their own (`sqlite/ops.rs`).
#[cfg(feature = "postgres")]
pub(super) fn transition_update<'a>(
    update: &mut impl Sink<'a>,
    id: &'a str,
    at: i64,
    change: &'a super::Transition,
    settled: Option<String>,
    kept_headers: Option<String>,
    numeric: &str,
) {
    transition_set(update, at, change, settled, numeric);
    // Every SET expression reads the row as it was: a response already kept stays.
    let kept = change.response.as_ref().filter(|_| kept_headers.is_some());
    update.sql(", response_status = COALESCE(");
    update.bind(Param::Int(change.response_status.map(i64::from)));
    update.sql(", CASE WHEN response_headers IS NULL THEN ");
    update.bind(Param::Int(kept.map(|r| i64::from(r.status))));
    update.sql(" END, response_status)");
    if let Some(kept) = kept {
        update.sql(", response_body = CASE WHEN response_headers IS NULL THEN ");
        update.bind(Param::Bytes(kept.body.as_deref()));
        update.sql(" ELSE response_body END, response_headers = COALESCE(response_headers, ");
        update.bind(Param::Owned(kept_headers));
        update.sql(")");
    }
    transition_where(update, id, &change.from);
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
                $crate::journal::sql::timed(self.timeout, "journal insert", async {
                    let mut payment = std::sync::Arc::new(payment.prepared()?);
                    for _ in 0..$crate::journal::sql::INSERT_TRIES {
                        payment = match self.insert_once(payment).await? {
                            Ok(created) => return Ok($crate::journal::Inserted::Created(created)),
                            Err(payment) => payment,
                        };
                        if let Some(existing) = self
                            .holder(&payment.payment_key, payment.payment_id.as_deref())
                            .await?
                        {
                            return Ok($crate::journal::Inserted::Existing(existing));
                        }
                        // The record in the way was released in between: try again.
                    }
                    Err($crate::journal::JournalError::Unavailable(format!(
                        "insert of {} kept conflicting with records that went away",
                        payment.payment_key
                    )))
                })
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

            async fn advance(
                &self,
                id: &str,
                change: $crate::journal::Transition,
            ) -> Result<(), $crate::journal::JournalError> {
                $crate::journal::sql::timed(
                    self.timeout,
                    "journal transition",
                    self.do_advance(id, change),
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
