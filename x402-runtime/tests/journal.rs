//! The journal conformance suite (`support/journal.rs`) against every backend, plus what is
//! particular to each: durability across reopening, timeouts and outages, URLs.

/// The in-process journal; its "replicas" are handles on one journal.
mod memory_journal {
    use std::sync::Arc;

    use x402_runtime::journal::MemoryJournal;

    use crate::support;

    async fn open(replicas: usize) -> Option<Vec<Arc<MemoryJournal>>> {
        let journal = Arc::new(MemoryJournal::new());
        Some(vec![journal; replicas])
    }

    support::journal::journal_conformance!(open);
}

/// A SQLite file; each replica has its own pool on it, as separate processes on one machine
/// would.
#[cfg(feature = "sqlite")]
mod sqlite_journal {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use x402_runtime::journal::{
        self, Filter, Journal, JournalError, Page, PaymentState, SqliteJournal, StoredResponse,
        Transition,
    };
    use x402_runtime::sqlx::{self, Connection, Row, SqliteConnection};

    use crate::support;
    use crate::support::journal::{Guarded, TempDir, payment};

    async fn open(replicas: usize) -> Option<Vec<Guarded<SqliteJournal>>> {
        let dir = Arc::new(TempDir::new("sqlite"));
        let path = dir.0.join("journal.db");
        let mut journals = Vec::new();
        for _ in 0..replicas {
            let journal = SqliteJournal::open(&path)
                .await
                .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
            journals.push(Guarded::new(journal, dir.clone()));
        }
        Some(journals)
    }

    support::journal::journal_conformance!(open);

    /// `sqlite::memory:` — one private database, shared by clones of the journal.
    mod in_memory {
        use x402_runtime::journal::SqliteJournal;

        use crate::support;

        async fn open(replicas: usize) -> Option<Vec<SqliteJournal>> {
            let journal = SqliteJournal::in_memory().await.expect("in-memory SQLite");
            Some(vec![journal; replicas])
        }

        support::journal::journal_conformance!(open);
    }

    #[tokio::test]
    async fn records_survive_closing_and_reopening_the_file() {
        let dir = TempDir::new("sqlite_reopen");
        let path = dir.0.join("journal.db");
        let journal = SqliteJournal::open(&path).await.unwrap();
        let record = journal.insert(payment(1)).await.unwrap().into_record();
        let record = journal
            .transition(
                &record.id,
                Transition::new(
                    &[PaymentState::Verified],
                    PaymentState::Settling,
                    record.updated_at + 1,
                ),
            )
            .await
            .unwrap();
        let stored = journal
            .store_response(
                &record.id,
                StoredResponse {
                    status: 200,
                    headers: vec![("payment-response".into(), "e30=".into())],
                    body: Some(b"{\"ok\":true}".to_vec()),
                },
            )
            .await
            .unwrap();
        journal.close().await;
        drop(journal);

        let reopened = SqliteJournal::open(&path).await.unwrap();
        assert_eq!(
            reopened.get(&record.id).await.unwrap(),
            Some(stored.clone())
        );
        assert_eq!(
            reopened
                .needing_reconciliation(u64::MAX >> 1, 10)
                .await
                .unwrap(),
            vec![stored],
            "a crash mid-settlement leaves the record for reconciliation"
        );
        // The key is still held after the restart.
        assert!(!reopened.insert(payment(1)).await.unwrap().is_created());
    }

    #[tokio::test]
    async fn the_file_uses_wal_with_full_sync_and_a_busy_timeout() {
        let dir = TempDir::new("sqlite_pragmas");
        let journal = SqliteJournal::open(dir.0.join("journal.db")).await.unwrap();
        let mut connection = journal.pool().acquire().await.unwrap();
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut *connection)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&mut *connection)
            .await
            .unwrap();
        assert_eq!(synchronous, 2, "FULL");
        let busy: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
            .fetch_one(&mut *connection)
            .await
            .unwrap();
        assert_eq!(busy, 5000);
        assert!(dir.0.join("journal.db-wal").exists());
    }

    #[tokio::test]
    async fn connect_takes_sqlite_urls_and_creates_the_file() {
        let dir = TempDir::new("sqlite_url");
        let path = dir.0.join("by-url.db");
        let url = format!("sqlite://{}", path.display());
        let journal = journal::connect(&url).await.unwrap();
        journal.insert(payment(1)).await.unwrap();
        assert!(path.exists(), "{url} created {}", path.display());
        drop(journal);
        let again = journal::connect(&url).await.unwrap();
        assert_eq!(
            again
                .query(&Filter::default(), &Page::first(10))
                .await
                .unwrap()
                .records
                .len(),
            1
        );

        let memory = journal::connect("sqlite::memory:").await.unwrap();
        assert!(memory.insert(payment(1)).await.unwrap().is_created());

        let error = journal::connect(&format!("sqlite://{}/no/such/dir/j.db", dir.0.display()))
            .await
            .err()
            .expect("a file in a missing directory cannot be created");
        assert!(error.is_unavailable(), "{error}");
    }

    #[tokio::test]
    async fn readers_open_only_an_existing_journal_of_their_schema() {
        let dir = TempDir::new("sqlite_existing");
        let path = dir.0.join("journal.db");
        let url = format!("sqlite://{}", path.display());

        let error = journal::connect_existing(&url)
            .await
            .err()
            .expect("no file");
        assert!(error.is_unavailable(), "{error}");
        assert!(!path.exists(), "a reader creates no file");

        // A SQLite file, but not a journal.
        let mut other = SqliteConnection::connect(&format!("{url}?mode=rwc"))
            .await
            .unwrap();
        sqlx::query("CREATE TABLE unrelated (x INTEGER)")
            .execute(&mut other)
            .await
            .unwrap();
        let error = journal::connect_existing(&url)
            .await
            .err()
            .expect("no journal");
        assert!(matches!(error, JournalError::Migration(_)), "{error}");
        assert!(error.to_string().contains("no payment journal"), "{error}");
        drop(other);
        std::fs::remove_file(&path).unwrap();

        let writer = SqliteJournal::open(&path).await.unwrap();
        let record = writer.insert(payment(1)).await.unwrap().into_record();
        let reader = journal::connect_existing(&url).await.unwrap();
        assert_eq!(reader.get(&record.id).await.unwrap(), Some(record));

        // A journal written by a newer release.
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (9999, 'future', TRUE, x'00', 0)",
        )
        .execute(writer.pool())
        .await
        .unwrap();
        let error = journal::connect_existing(&url)
            .await
            .err()
            .expect("newer schema");
        assert!(matches!(error, JournalError::Migration(_)), "{error}");
        assert!(error.to_string().contains("newer"), "{error}");
    }

    #[tokio::test]
    async fn a_locked_database_fails_within_the_timeout() {
        let dir = TempDir::new("sqlite_locked");
        let path = dir.0.join("journal.db");
        let journal = SqliteJournal::open(&path)
            .await
            .unwrap()
            .with_timeout(Duration::from_millis(300));
        assert_eq!(journal.timeout(), Duration::from_millis(300));
        // Another process holds the write lock and does not let go.
        let mut other = SqliteConnection::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut other)
            .await
            .unwrap();

        let started = Instant::now();
        let error = journal.insert(payment(1)).await.unwrap_err();
        assert!(matches!(error, JournalError::Unavailable(_)), "{error}");
        assert!(error.is_unavailable());
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "gave up after {:?}",
            started.elapsed()
        );

        sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();
        // The journal writes again. (The insert that timed out was not withdrawn from SQLite:
        // it may still land once the lock is free, so a new payment shows the recovery.)
        assert!(journal.insert(payment(2)).await.unwrap().is_created());
    }

    /// Every column of a 0001 record, quoted (`quote()` keeps NULLs, blobs and text apart).
    const QUOTED: &str = "quote(id) || ',' || quote(payment_key) || ',' || quote(payment_id) \
        || ',' || quote(fingerprint) || ',' || quote(route) || ',' || quote(resource) || ',' \
        || quote(method) || ',' || quote(payer) || ',' || quote(pay_to) || ',' || quote(amount) \
        || ',' || quote(settled_amount) || ',' || quote(asset) || ',' || quote(network) || ',' \
        || quote(scheme) || ',' || quote(x402_version) || ',' || quote(nonce) || ',' \
        || quote(valid_before) || ',' || quote(state) || ',' || quote(reconciled) || ',' \
        || quote(attempts) || ',' || quote(tx) || ',' || quote(error_reason) || ',' \
        || quote(error_message) || ',' || quote(response_status) || ',' \
        || quote(response_headers) || ',' || quote(response_body) || ',' \
        || quote(facilitator_request) || ',' || quote(created_at) || ',' || quote(updated_at)";

    /// A journal file of the first schema (one wide `payments` table) with records in every
    /// shape opens under this build, is upgraded in place, and reads back the same records.
    #[tokio::test]
    async fn a_journal_of_the_first_schema_upgrades_in_place() {
        let dir = TempDir::new("sqlite_upgrade");
        let path = dir.0.join("journal.db");
        let first = dir.0.join("migrations");
        std::fs::create_dir_all(&first).unwrap();
        std::fs::copy(
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/migrations/sqlite/0001_payments.sql"
            ),
            first.join("0001_payments.sql"),
        )
        .unwrap();
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let mut old = SqliteConnection::connect(&url).await.unwrap();
        sqlx::migrate::Migrator::new(first.as_path())
            .await
            .unwrap()
            .run(&mut old)
            .await
            .unwrap();
        let insert = |id: &str, key: &str, payment_id: Option<&str>, state: &str| {
            format!(
                "INSERT INTO payments (id, payment_key, payment_id, fingerprint, route, resource, \
                 method, payer, pay_to, amount, asset, network, scheme, x402_version, nonce, \
                 valid_before, state, facilitator_request, created_at, updated_at) VALUES \
                 ('{id}', '{key}', {}, 'fp-{id}', '/r/{id}', 'https://api.example/{id}', 'GET', \
                 '0xPayer', '0xPayTo', '10000', '0xAsset', 'eip155:8453', 'exact', 2, '0x{id}', \
                 1900000000, '{state}', '{{\"request\":\"{id}\"}}', 1000{id}, 2000{id})",
                payment_id.map_or("NULL".to_owned(), |p| format!("'{p}'")),
            )
        };
        for statement in [
            insert("1", "key-1", None, "verified"),
            insert("2", "key-2", Some("pid-2"), "settling"),
            insert("3", "key-3", None, "settled"),
            insert("4", "key-4", None, "released"),
            insert("5", "key-4", None, "failed"),
            insert("6", "key-4", Some("pid-6"), "unknown"),
            "UPDATE payments SET attempts = 1, response_status = 200, \
             response_headers = '[[\"content-type\",\"text/plain\"]]', response_body = x'00ff10' \
             WHERE id = '2'"
                .to_owned(),
            "UPDATE payments SET attempts = 1, tx = '0xabc', settled_amount = '9000', \
             reconciled = 1, response_status = 201, response_headers = '[]', response_body = NULL \
             WHERE id = '3'"
                .to_owned(),
            "UPDATE payments SET error_reason = 'insufficient_funds', error_message = 'broke', \
             response_status = 402 WHERE id = '5'"
                .to_owned(),
        ] {
            sqlx::query(&statement).execute(&mut old).await.unwrap();
        }
        let quoted = format!("SELECT {QUOTED} FROM payments ORDER BY id");
        let before: Vec<String> = sqlx::query_scalar(&quoted)
            .fetch_all(&mut old)
            .await
            .unwrap();
        assert_eq!(before.len(), 6);
        old.close().await.unwrap();

        let journal = SqliteJournal::open(&path).await.unwrap();
        let after: Vec<String> = sqlx::query_scalar(&quoted.replace("payments", "payment_records"))
            .fetch_all(journal.pool())
            .await
            .unwrap();
        assert_eq!(after, before, "every column of every record moved");

        let listed = journal
            .query(&Filter::default(), &Page::first(100))
            .await
            .unwrap()
            .records;
        assert_eq!(listed.len(), 6);
        for record in &listed {
            assert_eq!(
                journal.get(&record.id).await.unwrap().as_ref(),
                Some(record)
            );
            assert_eq!(
                record.facilitator_request,
                format!("{{\"request\":\"{}\"}}", record.id)
            );
        }
        let kept = journal.get("2").await.unwrap().unwrap();
        let response = kept.response.expect("the kept response moved");
        assert_eq!(response.status, 200);
        assert_eq!(
            response.headers,
            vec![("content-type".to_owned(), "text/plain".to_owned())]
        );
        assert_eq!(response.body.as_deref(), Some(&[0x00, 0xff, 0x10][..]));
        let settled = journal.get("3").await.unwrap().unwrap();
        assert_eq!(settled.state, PaymentState::Settled);
        assert_eq!(settled.transaction.as_deref(), Some("0xabc"));
        assert!(settled.reconciled);
        let response = settled.response.expect("a response without a body");
        assert_eq!((response.status, response.body), (201, None));
        assert!(journal.get("1").await.unwrap().unwrap().response.is_none());
        // The held key of 0001 still holds: key-4 is held by record 6 (unknown).
        assert_eq!(
            journal
                .find_by_payment_key("key-4")
                .await
                .unwrap()
                .unwrap()
                .id,
            "6"
        );
        assert_eq!(
            journal
                .find_by_payment_id("pid-2")
                .await
                .unwrap()
                .unwrap()
                .id,
            "2"
        );
        let open: Vec<String> = journal
            .needing_reconciliation(10_000_000, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(open, ["1", "2", "6"]);
        // The upgraded journal keeps working: a transition keeps the moved response, and new
        // records are written in the new layout.
        let done = journal
            .transition(
                "2",
                Transition::new(&[PaymentState::Settling], PaymentState::Settled, 5000)
                    .keep_response(StoredResponse {
                        status: 500,
                        headers: Vec::new(),
                        body: None,
                    }),
            )
            .await
            .unwrap();
        assert_eq!(done.response_status, Some(200));
        assert_eq!(
            done.response.unwrap().body.as_deref(),
            Some(&[0x00, 0xff, 0x10][..])
        );
        let fresh = journal.insert(payment(1)).await.unwrap();
        assert!(fresh.is_created());
        assert_eq!(
            journal.get(&fresh.record().id).await.unwrap().as_ref(),
            Some(fresh.record())
        );
        journal.close().await;
    }

    #[tokio::test]
    async fn unreadable_rows_are_reported_not_guessed() {
        let dir = TempDir::new("sqlite_corrupt");
        let path = dir.0.join("journal.db");
        let journal = SqliteJournal::open(&path).await.unwrap();
        let record = journal.insert(payment(1)).await.unwrap().into_record();
        // Something other than this library wrote headers it cannot read.
        sqlx::query(
            "INSERT INTO payment_responses (seq, headers) SELECT seq, 'not json' FROM payments WHERE id = ?",
        )
        .bind(&record.id)
        .execute(journal.pool())
        .await
        .unwrap();
        sqlx::query("UPDATE payments SET response_status = 200 WHERE id = ?")
            .bind(&record.id)
            .execute(journal.pool())
            .await
            .unwrap();
        let error = journal.get(&record.id).await.unwrap_err();
        assert!(matches!(error, JournalError::Corrupt(_)), "{error}");
        assert!(error.is_unavailable());
        // The schema itself refuses amounts that are not base-10 integers.
        let refused = sqlx::query("UPDATE payments SET amount = '0x10' WHERE id = ?")
            .bind(&record.id)
            .execute(journal.pool())
            .await;
        assert!(refused.is_err());
        let amount: String = sqlx::query("SELECT amount FROM payments WHERE id = ?")
            .bind(&record.id)
            .fetch_one(journal.pool())
            .await
            .unwrap()
            .get(0);
        assert_eq!(amount, "10000", "amounts are stored as base-10 text");
    }

    /// The held and open flags (migration 0003) follow the state through every transition,
    /// and the schema refuses a state change that leaves them behind.
    #[tokio::test]
    async fn held_and_open_flags_follow_the_state() {
        let dir = TempDir::new("sqlite_flags");
        let journal = SqliteJournal::open(&dir.0.join("journal.db"))
            .await
            .unwrap();
        let flags = async |id: &str| -> (String, i64, i64) {
            let row = sqlx::query("SELECT state, held, open FROM payments WHERE id = ?")
                .bind(id)
                .fetch_one(journal.pool())
                .await
                .unwrap();
            (row.get(0), row.get(1), row.get(2))
        };
        let settled = journal.insert(payment(1)).await.unwrap().into_record().id;
        let released = journal.insert(payment(2)).await.unwrap().into_record().id;
        let failed = journal.insert(payment(3)).await.unwrap().into_record().id;
        let unknown = journal.insert(payment(4)).await.unwrap().into_record().id;
        assert_eq!(flags(&settled).await, ("verified".to_owned(), 1, 1));
        for (id, path) in [
            (
                &settled,
                &[PaymentState::Settling, PaymentState::Settled][..],
            ),
            (&released, &[PaymentState::Released]),
            (&failed, &[PaymentState::Settling, PaymentState::Failed]),
            (&unknown, &[PaymentState::Settling, PaymentState::Unknown]),
        ] {
            let mut from = PaymentState::Verified;
            for &to in path {
                journal
                    .transition(id, Transition::new(&[from], to, 5000))
                    .await
                    .unwrap();
                from = to;
            }
        }
        assert_eq!(flags(&settled).await, ("settled".to_owned(), 1, 0));
        assert_eq!(flags(&released).await, ("released".to_owned(), 0, 0));
        assert_eq!(flags(&failed).await, ("failed".to_owned(), 0, 0));
        assert_eq!(flags(&unknown).await, ("unknown".to_owned(), 1, 1));
        // Only the unknown record is left to reconcile; the released and failed ones gave their
        // keys back, the settled one keeps its own.
        let open: Vec<String> = journal
            .needing_reconciliation(10_000_000, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(open, std::slice::from_ref(&unknown));
        assert!(journal.insert(payment(2)).await.unwrap().is_created());
        assert!(journal.insert(payment(3)).await.unwrap().is_created());
        assert!(!journal.insert(payment(1)).await.unwrap().is_created());
        // A state written without its flags is refused by the schema.
        for statement in [
            "UPDATE payments SET state = 'released' WHERE id = ?",
            "UPDATE payments SET state = 'settled' WHERE id = ?",
            "UPDATE payments SET held = 0 WHERE id = ?",
        ] {
            let refused = sqlx::query(statement)
                .bind(&unknown)
                .execute(journal.pool())
                .await;
            assert!(refused.is_err(), "{statement} was accepted");
        }
        assert_eq!(flags(&unknown).await, ("unknown".to_owned(), 1, 1));
        journal.close().await;
    }

    /// One index per payment key and per payment id (migration 0004) both refuses a second
    /// holder and finds a key's records, held or not (that the lookups search it rather than
    /// scan is checked next to their SQL, in `journal::sqlite::ops`).
    #[tokio::test]
    async fn one_index_per_key_refuses_a_second_holder_and_finds_every_record() {
        let dir = TempDir::new("sqlite_key_index");
        let journal = SqliteJournal::open(&dir.0.join("journal.db"))
            .await
            .unwrap();
        let indexes: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'payments' \
             AND (sql LIKE '%(payment_key%' OR sql LIKE '%(payment_id%') ORDER BY name",
        )
        .fetch_all(journal.pool())
        .await
        .unwrap();
        assert_eq!(indexes, ["payments_key", "payments_payment_id"]);

        // Held: a second record with the key, or with the payment id, is refused.
        let first = journal.insert(payment(1)).await.unwrap().into_record();
        let mut same_id = payment(2);
        same_id.payment_id = payment(1).payment_id;
        for again in [payment(1), same_id] {
            let existing = journal.insert(again).await.unwrap();
            assert!(!existing.is_created());
            assert_eq!(existing.record().id, first.id);
        }
        // Released, the key and id are free again; both records stay findable, the holder first.
        journal
            .transition(
                &first.id,
                Transition::new(&[PaymentState::Verified], PaymentState::Released, 2),
            )
            .await
            .unwrap();
        let second = journal.insert(payment(1)).await.unwrap().into_record();
        assert_ne!(second.id, first.id);
        let key = &second.payment_key;
        let by_key = journal.find_by_payment_key(key).await.unwrap().unwrap();
        assert_eq!(by_key.id, second.id);
        let id = second.payment_id.as_deref().unwrap();
        let by_id = journal.find_by_payment_id(id).await.unwrap().unwrap();
        assert_eq!(by_id.id, second.id);
        let all = journal
            .query(&Filter::default(), &Page::first(10))
            .await
            .unwrap();
        assert_eq!(all.records.len(), 2);
        journal.close().await;
    }
}

/// Postgres from `X402_POSTGRES_URL`: each test gets a schema of its own, and each replica its
/// own pool, as separate server processes would.
#[cfg(feature = "postgres")]
mod postgres_journal {
    use std::str::FromStr;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use x402_runtime::U256;
    use x402_runtime::journal::{
        self, Filter, GroupBy, Journal, JournalError, PaymentState, PostgresJournal, Transition,
    };
    use x402_runtime::sqlx::postgres::PgConnectOptions;
    use x402_runtime::sqlx::{self, Connection, PgConnection};

    use crate::support;
    use crate::support::backends::{free_port, postgres_url, unique_identifier};
    use crate::support::journal::{Guarded, payment};

    /// A schema dropped (from a thread of its own) when the last journal using it is gone.
    struct Schema {
        url: String,
        name: String,
    }

    impl Schema {
        async fn create(url: &str) -> Self {
            let name = unique_identifier("journal");
            let mut connection = PgConnection::connect(url)
                .await
                .unwrap_or_else(|e| panic!("connect to {url}: {e}"));
            sqlx::query(&format!("CREATE SCHEMA {name}"))
                .execute(&mut connection)
                .await
                .unwrap();
            Schema {
                url: url.to_owned(),
                name,
            }
        }

        fn options(&self) -> PgConnectOptions {
            PgConnectOptions::from_str(&self.url)
                .unwrap()
                .options([("search_path", self.name.as_str())])
        }
    }

    impl Drop for Schema {
        fn drop(&mut self) {
            let (url, name) = (self.url.clone(), self.name.clone());
            let dropper = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async {
                    if let Ok(mut connection) = PgConnection::connect(&url).await {
                        let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                            .execute(&mut connection)
                            .await;
                    }
                });
            });
            let _ = dropper.join();
        }
    }

    async fn open(replicas: usize) -> Option<Vec<Guarded<PostgresJournal>>> {
        let url = postgres_url()?;
        let schema = Arc::new(Schema::create(&url).await);
        let mut journals = Vec::new();
        for _ in 0..replicas {
            let journal = PostgresJournal::connect_with(schema.options())
                .await
                .unwrap_or_else(|e| panic!("open the journal in {}: {e}", schema.name));
            journals.push(Guarded::new(journal, schema.clone()));
        }
        Some(journals)
    }

    support::journal::journal_conformance!(open);

    #[tokio::test]
    async fn records_survive_a_new_pool() {
        let Some(url) = postgres_url() else { return };
        let schema = Schema::create(&url).await;
        let journal = PostgresJournal::connect_with(schema.options())
            .await
            .unwrap();
        let record = journal.insert(payment(1)).await.unwrap().into_record();
        let settled = journal
            .transition(
                &record.id,
                Transition::new(
                    &[PaymentState::Verified],
                    PaymentState::Settling,
                    record.updated_at + 1,
                ),
            )
            .await
            .unwrap();
        journal.close().await;
        drop(journal);
        let fresh = PostgresJournal::connect_with(schema.options())
            .await
            .unwrap();
        assert_eq!(fresh.get(&record.id).await.unwrap(), Some(settled));
        fresh.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn replicas_starting_together_migrate_once() {
        let Some(url) = postgres_url() else { return };
        let schema = Arc::new(Schema::create(&url).await);
        let starts: Vec<_> = (0..6)
            .map(|_| {
                let options = schema.options();
                tokio::spawn(async move { PostgresJournal::connect_with(options).await })
            })
            .collect();
        let mut journals = Vec::new();
        for start in starts {
            journals.push(start.await.unwrap().expect("every replica starts"));
        }
        let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
            .fetch_one(journals[0].pool())
            .await
            .unwrap();
        assert_eq!(applied, 1);
        for journal in &journals {
            journal.close().await;
        }
    }

    #[tokio::test]
    async fn amounts_are_numeric_and_summed_by_the_database() {
        let Some(url) = postgres_url() else { return };
        let schema = Schema::create(&url).await;
        let journal = PostgresJournal::connect_with(schema.options())
            .await
            .unwrap();
        let big = U256::from(1u8) << 255;
        for n in 0..2 {
            let mut new = payment(n);
            new.amount = big - U256::from(1u8);
            journal.insert(new).await.unwrap();
        }
        let (kind, sum): (String, String) = sqlx::query_as(
            "SELECT pg_typeof(amount)::text, SUM(amount)::text FROM payments GROUP BY 1",
        )
        .fetch_one(journal.pool())
        .await
        .unwrap();
        assert_eq!(kind, "numeric");
        let expected =
            "115792089237316195423570985008687907853269984665640564039457584007913129639934";
        assert_eq!(sum, expected, "2^256 - 2");
        assert_eq!(
            journal
                .totals(GroupBy::Route, &Filter::default())
                .await
                .unwrap()[0]
                .authorized,
            U256::MAX - U256::from(1u8)
        );
        journal.close().await;
    }

    #[tokio::test]
    async fn connect_takes_postgres_urls_with_a_schema() {
        let Some(url) = postgres_url() else { return };
        let schema = Schema::create(&url).await;
        let separator = if url.contains('?') { '&' } else { '?' };
        let with_schema = format!("{url}{separator}options[search_path]={}", schema.name);
        let journal = journal::connect(&with_schema).await.unwrap();
        let record = journal.insert(payment(1)).await.unwrap().into_record();
        let mut raw = PgConnection::connect(&url).await.unwrap();
        let found: i64 = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM {}.payments WHERE id = $1",
            schema.name
        ))
        .bind(&record.id)
        .fetch_one(&mut raw)
        .await
        .unwrap();
        assert_eq!(found, 1, "the journal used the schema the URL named");
        let postgresql = with_schema.replacen("postgres://", "postgresql://", 1);
        assert!(journal::connect(&postgresql).await.is_ok());
    }

    #[tokio::test]
    async fn readers_with_select_only_rights_open_an_existing_journal() {
        let Some(url) = postgres_url() else { return };
        let schema = Schema::create(&url).await;
        let mut admin = PgConnection::connect(&url).await.unwrap();
        let role = unique_identifier("reader");
        sqlx::query(&format!("CREATE ROLE {role} LOGIN"))
            .execute(&mut admin)
            .await
            .unwrap();
        sqlx::query(&format!("GRANT USAGE ON SCHEMA {} TO {role}", schema.name))
            .execute(&mut admin)
            .await
            .unwrap();
        let as_reader = || schema.options().username(&role);

        let error = PostgresJournal::connect_existing_with(as_reader())
            .await
            .expect_err("nothing there yet");
        assert!(matches!(error, JournalError::Migration(_)), "{error}");

        let writer = PostgresJournal::connect_with(schema.options())
            .await
            .unwrap();
        let record = writer.insert(payment(1)).await.unwrap().into_record();
        sqlx::query(&format!(
            "GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {role}",
            schema.name
        ))
        .execute(&mut admin)
        .await
        .unwrap();
        let reader = PostgresJournal::connect_existing_with(as_reader())
            .await
            .unwrap();
        assert_eq!(reader.get(&record.id).await.unwrap(), Some(record.clone()));
        assert_eq!(
            reader
                .totals(GroupBy::Payer, &Filter::default())
                .await
                .unwrap()[0]
                .count,
            1
        );
        // It really is read-only.
        let error = reader.insert(payment(2)).await.unwrap_err();
        assert!(error.to_string().contains("permission denied"), "{error}");
        reader.close().await;
        writer.close().await;
        drop(schema);
        sqlx::query(&format!("DROP ROLE {role}"))
            .execute(&mut admin)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn an_unreachable_server_is_unavailable_and_the_password_stays_secret() {
        let started = Instant::now();
        let url = format!("postgres://app:hunter2@127.0.0.1:{}/payments", free_port());
        let error = journal::connect(&url)
            .await
            .err()
            .expect("nothing listens there");
        assert!(error.is_unavailable(), "{error}");
        assert!(!error.to_string().contains("hunter2"), "{error}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );

        let error = journal::connect("postgres://app:hunter2@[bad/payments")
            .await
            .err()
            .expect("not a URL");
        assert!(matches!(error, JournalError::Invalid(_)), "{error}");
        assert!(!error.to_string().contains("hunter2"), "{error}");
    }

    #[tokio::test]
    async fn a_locked_table_fails_within_the_timeout() {
        let Some(url) = postgres_url() else { return };
        let schema = Schema::create(&url).await;
        let journal = PostgresJournal::connect_with(schema.options())
            .await
            .unwrap()
            .with_timeout(Duration::from_millis(300));
        let mut other = PgConnection::connect_with(&schema.options()).await.unwrap();
        sqlx::query("BEGIN").execute(&mut other).await.unwrap();
        sqlx::query("LOCK TABLE payments IN ACCESS EXCLUSIVE MODE")
            .execute(&mut other)
            .await
            .unwrap();
        let started = Instant::now();
        let error = journal.insert(payment(1)).await.unwrap_err();
        assert!(matches!(error, JournalError::Unavailable(_)), "{error}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();
        // The pool recovers once the lock is gone.
        let mut created = false;
        for _ in 0..20 {
            match journal.insert(payment(2)).await {
                Ok(inserted) => {
                    created = inserted.is_created();
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        assert!(created, "the journal works again after the lock");
        journal.close().await;
    }

    #[tokio::test]
    async fn a_database_that_goes_away_makes_every_operation_fail() {
        let Some(url) = postgres_url() else { return };
        let mut admin = PgConnection::connect(&url).await.unwrap();
        let database = unique_identifier("gone");
        sqlx::query(&format!("CREATE DATABASE {database}"))
            .execute(&mut admin)
            .await
            .unwrap();
        let options = PgConnectOptions::from_str(&url)
            .unwrap()
            .database(&database);
        let journal = PostgresJournal::connect_with(options)
            .await
            .unwrap()
            .with_timeout(Duration::from_secs(2));
        let record = journal.insert(payment(1)).await.unwrap().into_record();

        // The database refuses connections and its sessions are ended: an outage.
        sqlx::query(&format!(
            "ALTER DATABASE {database} ALLOW_CONNECTIONS false"
        ))
        .execute(&mut admin)
        .await
        .unwrap();
        sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
            .bind(&database)
            .execute(&mut admin)
            .await
            .unwrap();
        let started = Instant::now();
        let insert = journal.insert(payment(2)).await;
        let transition = journal
            .transition(
                &record.id,
                Transition::new(
                    &[PaymentState::Verified],
                    PaymentState::Settling,
                    record.updated_at + 1,
                ),
            )
            .await;
        let read = journal.get(&record.id).await;
        for error in [insert.err(), transition.err(), read.err()] {
            let error = error.expect("nothing succeeds while the database is gone");
            assert!(error.is_unavailable(), "{error}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        journal.close().await;
        sqlx::query(&format!("DROP DATABASE {database}"))
            .execute(&mut admin)
            .await
            .unwrap();
    }
}

/// Without a feature there is no backend to test: say so (or fail when backends are required)
/// rather than pass silently.
#[cfg(not(feature = "sqlite"))]
#[test]
fn sqlite_journal() {
    crate::support::backends::skip(
        "the sqlite feature is off (run with --features sqlite or --all-features, as scripts/test does)",
    );
}

#[cfg(not(feature = "postgres"))]
#[test]
fn postgres_journal() {
    crate::support::backends::skip(
        "the postgres feature is off (run with --features postgres or --all-features, as scripts/test does)",
    );
}
