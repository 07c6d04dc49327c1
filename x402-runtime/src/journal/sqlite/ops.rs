//! The journal's operations on SQLite: inserts, transitions, kept responses, queries.

use std::sync::Arc;

use sqlx::SqliteConnection;

use crate::journal::sql::{Param, Sink, Statement};

use super::*;

impl SqliteJournal {
    async fn by_id(&self, id: &str) -> Result<Option<PaymentRecord>, JournalError> {
        sqlx::query_as::<_, RawRecord>(&format!(
            "SELECT {COLUMNS} FROM payment_records WHERE id = ?"
        ))
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
        sqlx::query_as::<_, RawRecord>(&holder_sql())
            .bind(key)
            .bind(payment_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(sql::error)?
            .map(RawRecord::into_record)
            .transpose()
    }

    /// Inserts `payment` unless a record holds its key or payment id; gives it back when one
    /// does. Shared with the writer thread rather than copied: the payment is handed back whole
    /// for the record the caller gets.
    async fn insert_once(
        &self,
        payment: Arc<NewPayment>,
    ) -> Result<Result<PaymentRecord, Arc<NewPayment>>, JournalError> {
        let id = match &payment.id {
            Some(id) => id.clone(),
            None => new_id(payment.at)?,
        };
        let row = Insert {
            id: id.clone(),
            at: sql::ms(payment.at)?,
            valid_before: payment.valid_before.map(sql::ms).transpose()?,
            payment: Arc::clone(&payment),
        };
        if self
            .writer
            .write(Write::Insert(Box::new(row)))
            .await?
            .is_none()
        {
            return Ok(Err(payment));
        }
        // The new record is what was inserted: not read back. The writer dropped its share
        // before answering, so this does not copy (a clone covers any other holder).
        let payment = Arc::try_unwrap(payment).unwrap_or_else(|shared| (*shared).clone());
        Ok(Ok(PaymentRecord::admitted(id, payment)))
    }

    async fn latest(
        &self,
        column: &str,
        value: &str,
    ) -> Result<Option<PaymentRecord>, JournalError> {
        sqlx::query_as::<_, RawRecord>(&latest_sql(column))
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
        match self.transition_once(id, change, true).await? {
            Some(row) => row.into_record(),
            None => Err(JournalError::Corrupt(format!(
                "payment {id}: the changed record did not read back"
            ))),
        }
    }

    /// [`Journal::advance`]: the transition without reading the record back.
    async fn do_advance(&self, id: &str, change: Transition) -> Result<(), JournalError> {
        self.transition_once(id, change, false).await.map(drop)
    }

    /// Applies `change`; the changed row when `read_back`. The errors of
    /// [`Journal::transition`].
    async fn transition_once(
        &self,
        id: &str,
        change: Transition,
        read_back: bool,
    ) -> Result<Option<RawRecord>, JournalError> {
        change.validate()?;
        // What the answer needs when nothing matched; the change itself moves to the writer.
        let (from, settled_amount) = (change.from.clone(), change.settled_amount);
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
                change,
                read_back,
            })
            .await?;
        match updated {
            Some(Written::Row(row)) => return Ok(Some(*row)),
            Some(Written::Applied) => return Ok(None),
            None => {}
        }
        let Some(current) = self.by_id(id).await? else {
            return Err(JournalError::NotFound(id.to_owned()));
        };
        if from.contains(&current.state)
            && let Some(amount) = settled_amount
            && amount > current.amount
        {
            return Err(settled_above_authorized(amount, &current));
        }
        Err(JournalError::Conflict {
            expected: from,
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
            Some(Written::Row(stored)) => stored.into_record(),
            Some(Written::Applied) | None => self
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
            "SELECT {COLUMNS} FROM payment_records \
             WHERE open = 1 AND updated_at < ? \
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
        let mut query = QueryBuilder::<Sqlite>::new(format!(
            "SELECT {COLUMNS} FROM payment_records WHERE 1 = 1"
        ));
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

/// One write, as the writer thread runs it (see [`super::writer`]). Each runs as one unit: in
/// the batch's transaction, or in one of its own.
pub(super) enum Write {
    /// A new record, unless one holds its key or payment id.
    Insert(Box<Insert>),
    /// A state change, if the record is in one of the states it starts from.
    Transition {
        id: String,
        at: i64,
        change: Transition,
        kept_headers: Option<String>,
        /// Whether the caller wants the changed record back (else [`Written::Applied`]).
        read_back: bool,
    },
    /// The handler's response, unless one is kept already.
    StoreResponse {
        id: String,
        status: u16,
        headers: String,
        body: Option<Vec<u8>>,
    },
}

/// What a write did when it applied (a write that matched nothing answers `None`).
pub(super) enum Written {
    /// Applied; the record was not read back (the caller knows it or does not need it).
    Applied,
    /// Applied; the record as it now is.
    Row(Box<RawRecord>),
}

/// A record to insert, its times converted.
pub(super) struct Insert {
    id: String,
    at: i64,
    valid_before: Option<i64>,
    payment: Arc<NewPayment>,
}

/// The hot row's columns an insert sets.
const INSERT_PAYMENT: &str = "INSERT INTO payments (id, payment_key, payment_id, fingerprint, \
    route, resource, method, payer, pay_to, amount, asset, network, scheme, x402_version, nonce, \
    valid_before, state, created_at, updated_at) \
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'verified', ?, ?) \
    ON CONFLICT DO NOTHING";

/// The facilitator request of the record the connection inserted last.
const INSERT_REQUEST: &str =
    "INSERT INTO payment_requests (seq, facilitator_request) VALUES (last_insert_rowid(), ?)";

/// The kept response (headers, body) of record `id`, unless one is kept already.
const INSERT_RESPONSE: &str = "INSERT INTO payment_responses (seq, headers, body) \
    SELECT seq, ?, ? FROM payments WHERE id = ? ON CONFLICT DO NOTHING";

/// The record holding the key `?1` or the payment id `?2`, the key's holder first.
fn holder_sql() -> String {
    format!(
        "SELECT {COLUMNS} FROM payment_records \
         WHERE held = 1 AND (payment_key = ?1 OR payment_id = ?2) \
         ORDER BY payment_key = ?1 DESC LIMIT 1"
    )
}

/// The record of `column` = `?` that holds it, else the most recent one.
fn latest_sql(column: &str) -> String {
    format!(
        "SELECT {COLUMNS} FROM payment_records WHERE {column} = ? \
         ORDER BY held DESC, created_at DESC, id DESC LIMIT 1"
    )
}

/// The record `id`, in `COLUMNS` order.
fn select_by_id() -> String {
    format!("SELECT {COLUMNS} FROM payment_records WHERE id = ?")
}

/// One step of a write: SQL text and its values.
pub(super) type Step<'a> = Statement<'a>;

fn step<'a>(text: impl Into<std::borrow::Cow<'static, str>>, values: Vec<Param<'a>>) -> Step<'a> {
    Step {
        text: text.into(),
        values,
    }
}

impl Write {
    /// The first step: the insert, update or response insert that decides whether the write
    /// applies (it changed a row). No step has a `RETURNING` clause: SQLite buffers what one
    /// returns in a temporary B-tree, built and dropped on every run.
    pub(super) fn first<'a>(&'a self) -> Step<'a> {
        match self {
            Write::Insert(row) => {
                let Insert {
                    id,
                    at,
                    valid_before,
                    payment,
                } = &**row;
                let text = |v: &'a String| Param::Text(Some(v.as_str()));
                step(
                    INSERT_PAYMENT,
                    vec![
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
                        Param::Int(Some(*at)),
                        Param::Int(Some(*at)),
                    ],
                )
            }
            Write::Transition {
                id,
                at,
                change,
                kept_headers,
                ..
            } => transition_update(id, *at, change, kept_headers.is_some()),
            Write::StoreResponse {
                id, headers, body, ..
            } => step(
                INSERT_RESPONSE,
                vec![
                    Param::Text(Some(headers)),
                    Param::Bytes(body.as_deref()),
                    Param::Text(Some(id)),
                ],
            ),
        }
    }

    /// The steps once the first applied, and the read of the record afterwards when the
    /// caller wants it back.
    pub(super) fn rest(&self) -> (Vec<Step<'_>>, Option<Step<'_>>) {
        match self {
            Write::Insert(row) => (
                vec![step(
                    INSERT_REQUEST,
                    vec![Param::Text(Some(&row.payment.facilitator_request))],
                )],
                None,
            ),
            Write::Transition {
                id,
                change,
                kept_headers,
                read_back,
                ..
            } => {
                let mut steps = Vec::new();
                if let (Some(kept), Some(headers)) = (&change.response, kept_headers) {
                    steps.push(step(
                        INSERT_RESPONSE,
                        vec![
                            Param::Text(Some(headers)),
                            Param::Bytes(kept.body.as_deref()),
                            Param::Text(Some(id)),
                        ],
                    ));
                }
                let read = read_back.then(|| step(select_by_id(), vec![Param::Text(Some(id))]));
                (steps, read)
            }
            Write::StoreResponse { id, status, .. } => (
                vec![step(
                    "UPDATE payments SET response_status = ? WHERE id = ?",
                    vec![Param::Int(Some(i64::from(*status))), Param::Text(Some(id))],
                )],
                Some(step(select_by_id(), vec![Param::Text(Some(id))])),
            ),
        }
    }

    /// Runs the write on `connection` (through sqlx, for journals on a caller's pool or in
    /// memory); `None` when nothing matched. The caller runs it inside a transaction.
    pub(super) async fn run(
        &self,
        connection: &mut SqliteConnection,
    ) -> Result<Option<Written>, sqlx::Error> {
        let first = self.first();
        let done = bind_all(sqlx::query(&first.text), &first.values)
            .execute(&mut *connection)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        let (steps, read) = self.rest();
        for step in &steps {
            bind_all(sqlx::query(&step.text), &step.values)
                .execute(&mut *connection)
                .await?;
        }
        Ok(Some(match read {
            None => Written::Applied,
            Some(read) => Written::Row(Box::new(
                bind_all(sqlx::query_as::<_, RawRecord>(&read.text), &read.values)
                    .fetch_one(&mut *connection)
                    .await?,
            )),
        }))
    }
}

/// Binds `values` in order to a sqlx query of any kind.
fn bind_all<'q, Q: Bindable<'q>>(mut query: Q, values: &'q [Param<'q>]) -> Q {
    for value in values {
        query = match value {
            Param::Text(v) => query.bind_value(*v),
            Param::Owned(v) => query.bind_value(v.as_deref()),
            Param::Int(v) => query.bind_value(*v),
            Param::Bool(v) => query.bind_value(*v),
            Param::Bytes(v) => query.bind_value(*v),
        };
    }
    query
}

/// sqlx's query kinds, for [`bind_all`].
trait Bindable<'q>: Sized {
    fn bind_value<T>(self, value: T) -> Self
    where
        T: 'q + sqlx::Encode<'q, Sqlite> + sqlx::Type<Sqlite>;
}

impl<'q> Bindable<'q> for sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>> {
    fn bind_value<T>(self, value: T) -> Self
    where
        T: 'q + sqlx::Encode<'q, Sqlite> + sqlx::Type<Sqlite>,
    {
        self.bind(value)
    }
}

impl<'q, O> Bindable<'q>
    for sqlx::query::QueryAs<'q, Sqlite, O, sqlx::sqlite::SqliteArguments<'q>>
{
    fn bind_value<T>(self, value: T) -> Self
    where
        T: 'q + sqlx::Encode<'q, Sqlite> + sqlx::Type<Sqlite>,
    {
        self.bind(value)
    }
}

/// `UPDATE payments SET … WHERE id = … AND state IN (…) [AND the settled amount fits]` for
/// `change` of record `id`: SQLite's form of `sql::transition_update`, with
/// the kept response in its own table (`keeps_response`: the change carries one, inserted by
/// the next step unless one is kept already).
fn transition_update<'a>(
    id: &'a str,
    at: i64,
    change: &'a Transition,
    keeps_response: bool,
) -> Step<'a> {
    let settled = change.settled_amount.map(sql::amount_text);
    let mut update = Step::default();
    sql::transition_set(&mut update, at, change, settled.clone(), "");
    // The flags change only when the record leaves their set (migration 0003): a transition
    // that does not name them leaves the held and open indexes untouched.
    if !change.to.holds_keys() {
        update.sql(", held = 0");
    }
    if change.to.is_terminal() {
        update.sql(", open = 0");
    }
    update.sql(", response_status = COALESCE(");
    update.bind(Param::Int(change.response_status.map(i64::from)));
    if keeps_response && let Some(kept) = &change.response {
        // A response kept already stays, and so does the status that came with it.
        update.sql(
            ", CASE WHEN NOT EXISTS (SELECT 1 FROM payment_responses r WHERE r.seq = payments.seq) THEN ",
        );
        update.bind(Param::Int(Some(i64::from(kept.status))));
        update.sql(" END");
    }
    update.sql(", response_status)");
    sql::transition_where(&mut update, id, &change.from);
    if let Some(settled) = settled {
        // Base-10 texts without leading zeros compare as numbers by length, then digits.
        let length = Some(settled.len() as i64);
        update.sql(" AND (length(amount) > ");
        update.bind(Param::Int(length));
        update.sql(" OR (length(amount) = ");
        update.bind(Param::Int(length));
        update.sql(" AND amount >= ");
        update.bind(Param::Owned(Some(settled)));
        update.sql("))");
    }
    update
}

crate::journal::sql::timed_journal!(SqliteJournal);

#[cfg(test)]
mod tests {
    use sqlx::Row as _;

    use super::*;

    /// The lookups a payment's admission makes (the holder of its key or payment id, the
    /// latest record of either) search the key and payment-id indexes; none scans `payments`.
    #[tokio::test]
    async fn key_and_payment_id_lookups_search_an_index() {
        let journal = SqliteJournal::in_memory().await.unwrap();
        for (sql, binds) in [
            (holder_sql(), 2),
            (latest_sql("payment_key"), 1),
            (latest_sql("payment_id"), 1),
        ] {
            let explain = format!("EXPLAIN QUERY PLAN {sql}");
            let mut query = sqlx::query(&explain).bind("key");
            if binds == 2 {
                query = query.bind("pay_0123456789abcdef");
            }
            let plan: Vec<String> = query
                .fetch_all(&journal.pool)
                .await
                .unwrap()
                .iter()
                .map(|row| row.get::<String, _>(3))
                .collect();
            let on_payments: Vec<&String> =
                plan.iter().filter(|step| step.contains(" p ")).collect();
            assert!(!on_payments.is_empty(), "{sql}: {plan:?}");
            for step in on_payments {
                assert!(step.starts_with("SEARCH p USING INDEX"), "{sql}: {plan:?}");
            }
        }
    }
}
