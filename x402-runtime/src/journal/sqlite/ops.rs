//! The journal's operations on SQLite: inserts, transitions, kept responses, queries.

use sqlx::SqliteConnection;

use crate::journal::sql::{Param, Sink};

use super::*;

impl SqliteJournal {
    async fn by_id(&self, id: &str) -> Result<Option<PaymentRecord>, JournalError> {
        sqlx::query_as::<_, RawRecord>(&format!("SELECT {COLUMNS} FROM payments WHERE id = ?"))
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
             WHERE state NOT IN ('released', 'failed') AND (payment_key = ?1 OR payment_id = ?2) \
             ORDER BY payment_key = ?1 DESC LIMIT 1"
        ))
        .bind(key)
        .bind(payment_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(sql::error)?
        .map(RawRecord::into_record)
        .transpose()
    }

    async fn insert_once(
        &self,
        payment: &NewPayment,
    ) -> Result<Option<PaymentRecord>, JournalError> {
        let id = match &payment.id {
            Some(id) => id.clone(),
            None => new_id(payment.at)?,
        };
        let row = Insert {
            id,
            at: sql::ms(payment.at)?,
            valid_before: payment.valid_before.map(sql::ms).transpose()?,
            payment: payment.clone(),
        };
        self.writer
            .write(Write::Insert(Box::new(row)))
            .await?
            .map(RawRecord::into_record)
            .transpose()
    }

    async fn latest(
        &self,
        column: &str,
        value: &str,
    ) -> Result<Option<PaymentRecord>, JournalError> {
        sqlx::query_as::<_, RawRecord>(&format!(
            "SELECT {COLUMNS} FROM payments WHERE {column} = ? \
             ORDER BY state NOT IN ('released', 'failed') DESC, created_at DESC, id DESC LIMIT 1"
        ))
        .bind(value)
        .fetch_optional(&self.pool)
        .await
        .map_err(sql::error)?
        .map(RawRecord::into_record)
        .transpose()
    }

    async fn do_transition(
        &self,
        id: &str,
        change: Transition,
    ) -> Result<PaymentRecord, JournalError> {
        change.validate()?;
        let updated = self
            .writer
            .write(Write::Transition {
                id: id.to_owned(),
                at: sql::ms(change.at)?,
                kept_headers: change
                    .response
                    .as_ref()
                    .map(sql::headers_json)
                    .transpose()?,
                change: change.clone(),
            })
            .await?;
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
        let stored = self
            .writer
            .write(Write::StoreResponse {
                id: id.to_owned(),
                status: response.status,
                headers: sql::headers_json(&response)?,
                body: response.body,
            })
            .await?;
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
             WHERE state IN ('verified', 'settling', 'unknown') AND updated_at < ? \
             ORDER BY updated_at, id LIMIT ?"
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
            QueryBuilder::<Sqlite>::new(format!("SELECT {COLUMNS} FROM payments WHERE 1 = 1"));
        sql::push_filter(&mut query, &filter);
        if let Some(cursor) = &page.after {
            let created_at = sql::ms(cursor.created_at)?;
            query.push(" AND (created_at < ");
            query.push_bind(created_at);
            query.push(" OR (created_at = ");
            query.push_bind(created_at);
            query.push(" AND id < ");
            query.push_bind(cursor.id.as_str());
            query.push("))");
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
            GroupBy::Day => "strftime('%Y-%m-%d', created_at / 1000, 'unixepoch')",
        };
        // SQLite has no exact integer for 256-bit amounts: stream the rows and add in Rust.
        let mut query = QueryBuilder::<Sqlite>::new(format!(
            "SELECT {key} AS grp, network, asset, state, amount, settled_amount \
             FROM payments WHERE 1 = 1"
        ));
        sql::push_filter(&mut query, &filter);
        let mut rows = query
            .build_query_as::<(String, String, String, String, String, Option<String>)>()
            .fetch(&self.pool);
        let mut totals = Totals::default();
        while let Some((group, network, asset, state, amount, settled)) =
            rows.try_next().await.map_err(sql::error)?
        {
            let parse = |text: &str| {
                x402_protocol::amount::parse_decimal_u256(text)
                    .map_err(|e| JournalError::Corrupt(format!("amount {text:?}: {e}")))
            };
            totals.add(
                group,
                network,
                asset,
                state
                    .parse()
                    .map_err(|e: JournalError| JournalError::Corrupt(e.to_string()))?,
                parse(&amount)?,
                settled.as_deref().map(parse).transpose()?,
            )?;
        }
        Ok(totals.finish())
    }
}

/// One write, as the writer thread runs it (see [`super::writer`]).
pub(super) enum Write {
    /// A new record, unless one holds its key or payment id.
    Insert(Box<Insert>),
    /// A state change, if the record is in one of the states it starts from.
    Transition {
        id: String,
        at: i64,
        change: Transition,
        kept_headers: Option<String>,
    },
    /// The handler's response, unless one is kept already.
    StoreResponse {
        id: String,
        status: u16,
        headers: String,
        body: Option<Vec<u8>>,
    },
}

/// A record to insert, its times converted.
pub(super) struct Insert {
    id: String,
    at: i64,
    valid_before: Option<i64>,
    payment: NewPayment,
}

impl Write {
    /// Writes the statement into `sink`: SQL with `?` placeholders and the values bound.
    pub(super) fn statement<'a>(&'a self, sink: &mut impl Sink<'a>) {
        match self {
            Write::Insert(row) => {
                let Insert {
                    id,
                    at,
                    valid_before,
                    payment,
                } = &**row;
                sink.sql(
                    "INSERT INTO payments (id, payment_key, payment_id, fingerprint, route, \
                     resource, method, payer, pay_to, amount, asset, network, scheme, \
                     x402_version, nonce, valid_before, state, facilitator_request, created_at, \
                     updated_at) VALUES (",
                );
                let text = |v: &'a String| Param::Text(Some(v.as_str()));
                let values = [
                    text(id),
                    text(&payment.payment_key),
                    Param::Text(payment.payment_id.as_deref()),
                    Param::Text(payment.fingerprint.as_deref()),
                    text(&payment.route),
                    text(&payment.resource),
                    text(&payment.method),
                    text(&payment.payer),
                    text(&payment.pay_to),
                    Param::Owned(Some(sql::amount_text(payment.amount))),
                    text(&payment.asset),
                    text(&payment.network),
                    text(&payment.scheme),
                    Param::Int(Some(i64::from(payment.x402_version))),
                    text(&payment.nonce),
                    Param::Int(*valid_before),
                    Param::Text(Some("verified")),
                    text(&payment.facilitator_request),
                    Param::Int(Some(*at)),
                    Param::Int(Some(*at)),
                ];
                for (i, value) in values.into_iter().enumerate() {
                    if i > 0 {
                        sink.sql(", ");
                    }
                    sink.bind(value);
                }
                sink.sql(&format!(") ON CONFLICT DO NOTHING RETURNING {COLUMNS}"));
            }
            Write::Transition {
                id,
                at,
                change,
                kept_headers,
            } => {
                let settled = change.settled_amount.map(sql::amount_text);
                sql::transition_update(
                    sink,
                    id,
                    *at,
                    change,
                    settled.clone(),
                    kept_headers.clone(),
                    "",
                );
                if let Some(settled) = settled {
                    // Base-10 texts without leading zeros compare as numbers by length, then
                    // digits.
                    let length = Some(settled.len() as i64);
                    sink.sql(" AND (length(amount) > ");
                    sink.bind(Param::Int(length));
                    sink.sql(" OR (length(amount) = ");
                    sink.bind(Param::Int(length));
                    sink.sql(" AND amount >= ");
                    sink.bind(Param::Owned(Some(settled)));
                    sink.sql("))");
                }
                sink.sql(&format!(" RETURNING {COLUMNS}"));
            }
            Write::StoreResponse {
                id,
                status,
                headers,
                body,
            } => {
                sink.sql("UPDATE payments SET response_status = ");
                sink.bind(Param::Int(Some(i64::from(*status))));
                sink.sql(", response_headers = ");
                sink.bind(Param::Text(Some(headers)));
                sink.sql(", response_body = ");
                sink.bind(Param::Bytes(body.as_deref()));
                sink.sql(" WHERE id = ");
                sink.bind(Param::Text(Some(id)));
                sink.sql(&format!(
                    " AND response_headers IS NULL RETURNING {COLUMNS}"
                ));
            }
        }
    }

    /// Runs the write on `connection` (through sqlx); the changed row, or `None` when nothing
    /// matched.
    pub(super) async fn run(
        &self,
        connection: &mut SqliteConnection,
    ) -> Result<Option<RawRecord>, sqlx::Error> {
        let mut query = QueryBuilder::<Sqlite>::new("");
        self.statement(&mut query);
        query
            .build_query_as::<RawRecord>()
            .fetch_optional(connection)
            .await
    }
}

crate::journal::sql::timed_journal!(SqliteJournal);
