//! The journal in Postgres (feature `postgres`), shared by every replica.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Postgres, QueryBuilder};
use x402_protocol::amount::parse_decimal_u256;

use super::keys::new_id;
use super::memory::settled_above_authorized;
use super::sql::{self, DEFAULT_TIMEOUT, REPORT_TIMEOUT, RawRecord};
use super::{
    Filter, GroupBy, JournalError, NewPayment, Page, PaymentRecord, Records, StoredResponse, Total,
    Transition,
};

/// Every column of a record, in [`RawRecord`]'s shape (amounts as text).
const COLUMNS: &str = "id, payment_key, payment_id, fingerprint, route, resource, method, payer, \
    pay_to, amount::text AS amount, settled_amount::text AS settled_amount, asset, network, \
    scheme, x402_version, nonce, valid_before, state, reconciled, attempts, tx, error_reason, \
    error_message, response_status, response_headers, response_body, facilitator_request, \
    created_at, updated_at";

/// Connections per replica.
const MAX_CONNECTIONS: u32 = 10;

/// The schema, embedded.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// A [`Journal`] in Postgres, for several server replicas sharing one record of payments.
///
/// - the schema is created or upgraded by embedded migrations when opened (replicas starting
///   together take turns: the migrator holds an advisory lock);
/// - every change is one statement: inserts use `ON CONFLICT DO NOTHING` on the partial
///   unique indexes, transitions are `UPDATE … WHERE state IN (…)`, so of two replicas racing
///   on one record exactly one wins;
/// - amounts are `NUMERIC(78, 0)`, summed exactly by the database;
/// - an operation on the request path gives up after its timeout (5 s by default,
///   [`with_timeout`](Self::with_timeout)), a listing, totals or reconciliation scan after two
///   minutes, with [`JournalError::Unavailable`].
///
/// The tables live in the connection's current schema (`search_path`): give each deployment
/// its own database or schema (`PgConnectOptions::options([("search_path", "…")])`).
#[derive(Debug, Clone)]
pub struct PostgresJournal {
    pool: PgPool,
    timeout: Duration,
}

impl PostgresJournal {
    /// Connects to `postgres://user:password@host:port/database?sslmode=…` and creates or
    /// upgrades the schema.
    pub async fn connect(url: &str) -> Result<Self, JournalError> {
        let options = PgConnectOptions::from_str(url).map_err(|e| {
            JournalError::Invalid(format!(
                "bad Postgres journal URL {:?}: {e}",
                super::redact(url)
            ))
        })?;
        Self::connect_with(options).await
    }

    /// Connects with options configured by the caller.
    pub async fn connect_with(options: PgConnectOptions) -> Result<Self, JournalError> {
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(DEFAULT_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(sql::error)?;
        Self::from_pool(pool).await
    }

    /// Connects to an existing journal without creating or upgrading anything: for tools that
    /// only read (`x402ctl payments`), which may hold read-only credentials. A missing journal
    /// or a schema other than this build's is [`JournalError::Migration`].
    pub async fn connect_existing(url: &str) -> Result<Self, JournalError> {
        let options = PgConnectOptions::from_str(url).map_err(|e| {
            JournalError::Invalid(format!(
                "bad Postgres journal URL {:?}: {e}",
                super::redact(url)
            ))
        })?;
        Self::connect_existing_with(options).await
    }

    /// [`connect_existing`](Self::connect_existing) with options configured by the caller.
    pub async fn connect_existing_with(options: PgConnectOptions) -> Result<Self, JournalError> {
        let location = format!(
            "postgres://{}:{}/{}",
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or_default()
        );
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(DEFAULT_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(sql::error)?;
        let has_journal: bool =
            sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
                .fetch_one(&pool)
                .await
                .map_err(sql::error)?;
        let applied = if has_journal {
            sqlx::query_scalar::<_, Option<i64>>(sql::APPLIED_VERSION)
                .fetch_one(&pool)
                .await
                .map_err(sql::error)?
        } else {
            None
        };
        sql::check_schema(&MIGRATOR, applied, &location)?;
        Ok(PostgresJournal {
            pool,
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// Uses a pool configured by the caller, creating or upgrading the schema.
    pub async fn from_pool(pool: PgPool) -> Result<Self, JournalError> {
        MIGRATOR.run(&pool).await.map_err(sql::migration_error)?;
        Ok(PostgresJournal {
            pool,
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// Sets how long one request-path operation (insert, read, transition, storing a
    /// response) may take before it fails with [`JournalError::Unavailable`].
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The per-operation timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The connection pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Closes every connection, waiting for operations in progress.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn by_id(&self, id: &str) -> Result<Option<PaymentRecord>, JournalError> {
        sqlx::query_as::<_, RawRecord>(&format!("SELECT {COLUMNS} FROM payments WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(sql::error)?
            .map(RawRecord::into_record)
            .transpose()
    }

    /// The record holding `key` or `payment_id`, preferring the one holding `key`.
    async fn holder(
        &self,
        key: &str,
        payment_id: Option<&str>,
    ) -> Result<Option<PaymentRecord>, JournalError> {
        sqlx::query_as::<_, RawRecord>(&format!(
            "SELECT {COLUMNS} FROM payments \
             WHERE state NOT IN ('released', 'failed') AND (payment_key = $1 OR payment_id = $2) \
             ORDER BY payment_key = $1 DESC LIMIT 1"
        ))
        .bind(key)
        .bind(payment_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(sql::error)?
        .map(RawRecord::into_record)
        .transpose()
    }

    /// Inserts `payment` unless a record holds its key or payment id; gives it back when one
    /// does.
    async fn insert_once(
        &self,
        payment: std::sync::Arc<NewPayment>,
    ) -> Result<Result<PaymentRecord, std::sync::Arc<NewPayment>>, JournalError> {
        let id = match &payment.id {
            Some(id) => id.clone(),
            None => new_id(payment.at)?,
        };
        let at = sql::ms(payment.at)?;
        let valid_before = payment.valid_before.map(sql::ms).transpose()?;
        let created = sqlx::query_as::<_, RawRecord>(&format!(
            "INSERT INTO payments (id, payment_key, payment_id, fingerprint, route, resource, \
             method, payer, pay_to, amount, asset, network, scheme, x402_version, nonce, \
             valid_before, state, facilitator_request, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::numeric, $11, $12, $13, $14, $15, \
             $16, 'verified', $17, $18, $18) \
             ON CONFLICT DO NOTHING RETURNING {COLUMNS}"
        ))
        .bind(&id)
        .bind(&payment.payment_key)
        .bind(&payment.payment_id)
        .bind(&payment.fingerprint)
        .bind(&payment.route)
        .bind(&payment.resource)
        .bind(&payment.method)
        .bind(&payment.payer)
        .bind(&payment.pay_to)
        .bind(sql::amount_text(payment.amount))
        .bind(&payment.asset)
        .bind(&payment.network)
        .bind(&payment.scheme)
        .bind(i64::from(payment.x402_version))
        .bind(&payment.nonce)
        .bind(valid_before)
        .bind(&payment.facilitator_request)
        .bind(at)
        .fetch_optional(&self.pool)
        .await
        .map_err(sql::error)?;
        match created {
            Some(row) => row.into_record().map(Ok),
            None => Ok(Err(payment)),
        }
    }

    async fn latest(
        &self,
        column: &str,
        value: &str,
    ) -> Result<Option<PaymentRecord>, JournalError> {
        sqlx::query_as::<_, RawRecord>(&format!(
            "SELECT {COLUMNS} FROM payments WHERE {column} = $1 \
             ORDER BY state NOT IN ('released', 'failed') DESC, created_at DESC, id DESC LIMIT 1"
        ))
        .bind(value)
        .fetch_optional(&self.pool)
        .await
        .map_err(sql::error)?
        .map(RawRecord::into_record)
        .transpose()
    }

    /// [`Journal::advance`]: Postgres returns the row in the same round trip anyway.
    async fn do_advance(&self, id: &str, change: Transition) -> Result<(), JournalError> {
        self.do_transition(id, change).await.map(drop)
    }

    async fn do_transition(
        &self,
        id: &str,
        change: Transition,
    ) -> Result<PaymentRecord, JournalError> {
        change.validate()?;
        let settled = change.settled_amount.map(sql::amount_text);
        let kept_headers = change
            .response
            .as_ref()
            .map(sql::headers_json)
            .transpose()?;
        let mut update = QueryBuilder::<Postgres>::new("");
        sql::transition_update(
            &mut update,
            id,
            sql::ms(change.at)?,
            &change,
            settled.clone(),
            kept_headers,
            "::numeric",
        );
        if let Some(settled) = &settled {
            update.push(" AND amount >= ");
            update.push_bind(settled.clone());
            update.push("::numeric");
        }
        update.push(format_args!(" RETURNING {COLUMNS}"));
        let updated = update
            .build_query_as::<RawRecord>()
            .fetch_optional(&self.pool)
            .await
            .map_err(sql::error)?;
        if let Some(updated) = updated {
            return updated.into_record();
        }
        let Some(current) = self.by_id(id).await? else {
            return Err(JournalError::NotFound(id.to_owned()));
        };
        if change.from.contains(&current.state)
            && let Some(amount) = change.settled_amount
            && amount > current.amount
        {
            return Err(settled_above_authorized(amount, &current));
        }
        Err(JournalError::Conflict {
            expected: change.from,
            current: Box::new(current),
        })
    }

    async fn do_store_response(
        &self,
        id: &str,
        response: StoredResponse,
    ) -> Result<PaymentRecord, JournalError> {
        let headers = sql::headers_json(&response)?;
        let stored = sqlx::query_as::<_, RawRecord>(&format!(
            "UPDATE payments SET response_status = $1, response_headers = $2, response_body = $3 \
             WHERE id = $4 AND response_headers IS NULL RETURNING {COLUMNS}"
        ))
        .bind(i64::from(response.status))
        .bind(headers)
        .bind(response.body)
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(sql::error)?;
        match stored {
            Some(stored) => stored.into_record(),
            None => self
                .by_id(id)
                .await?
                .ok_or_else(|| JournalError::NotFound(id.to_owned())),
        }
    }

    async fn do_needing_reconciliation(
        &self,
        before: u64,
        limit: u32,
    ) -> Result<Vec<PaymentRecord>, JournalError> {
        let rows = sqlx::query_as::<_, RawRecord>(&format!(
            "SELECT {COLUMNS} FROM payments \
             WHERE state IN ('verified', 'settling', 'unknown') AND updated_at < $1 \
             ORDER BY updated_at, id LIMIT $2"
        ))
        .bind(sql::ms(before)?)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(sql::error)?;
        sql::records(rows)
    }

    async fn do_query(&self, filter: &Filter, page: &Page) -> Result<Records, JournalError> {
        let filter = filter.normalized()?;
        let limit = page.effective_limit();
        let mut query =
            QueryBuilder::<Postgres>::new(format!("SELECT {COLUMNS} FROM payments WHERE TRUE"));
        sql::push_filter(&mut query, &filter);
        if let Some(cursor) = &page.after {
            query.push(" AND (created_at, id) < (");
            query.push_bind(sql::ms(cursor.created_at)?);
            query.push(", ");
            query.push_bind(cursor.id.as_str());
            query.push(")");
        }
        query.push(" ORDER BY created_at DESC, id DESC LIMIT ");
        query.push_bind(i64::from(limit) + 1);
        let rows = query
            .build_query_as::<RawRecord>()
            .fetch_all(&self.pool)
            .await
            .map_err(sql::error)?;
        Ok(Records::from_overfetch(sql::records(rows)?, limit))
    }

    async fn do_totals(&self, group: GroupBy, filter: &Filter) -> Result<Vec<Total>, JournalError> {
        let filter = filter.normalized()?;
        let key = match group {
            GroupBy::Route => "route",
            GroupBy::Payer => "payer",
            GroupBy::Network => "network",
            GroupBy::Day => {
                "to_char(to_timestamp(created_at / 1000) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
            }
        };
        let mut query = QueryBuilder::<Postgres>::new(format!(
            "SELECT {key} AS grp, network, asset, COUNT(*), SUM(amount)::text, \
             COUNT(*) FILTER (WHERE state = 'settled'), \
             COALESCE(SUM(COALESCE(settled_amount, amount)) FILTER (WHERE state = 'settled'), 0)::text \
             FROM payments WHERE TRUE"
        ));
        sql::push_filter(&mut query, &filter);
        query.push(" GROUP BY 1, 2, 3");
        let rows = query
            .build_query_as::<(String, String, String, i64, String, i64, String)>()
            .fetch_all(&self.pool)
            .await
            .map_err(sql::error)?;
        let sum = |text: &str| {
            parse_decimal_u256(text).map_err(|e| {
                JournalError::Overflow(format!("a total of {text} does not fit 256 bits: {e}"))
            })
        };
        let count =
            |n: i64| u64::try_from(n).map_err(|_| JournalError::Corrupt(format!("a count of {n}")));
        let mut totals = rows
            .into_iter()
            .map(
                |(group, network, asset, n, authorized, settled_n, settled)| {
                    Ok(Total {
                        group,
                        network,
                        asset,
                        count: count(n)?,
                        authorized: sum(&authorized)?,
                        settled_count: count(settled_n)?,
                        settled: sum(&settled)?,
                    })
                },
            )
            .collect::<Result<Vec<_>, JournalError>>()?;
        // Byte order, as the other backends sort, whatever the database's collation.
        totals.sort_by(|a, b| {
            (&a.group, &a.network, &a.asset).cmp(&(&b.group, &b.network, &b.asset))
        });
        Ok(totals)
    }
}

super::sql::timed_journal!(PostgresJournal);
