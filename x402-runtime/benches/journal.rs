//! What the payment journal adds to a paid request: one insert (before the handler) and two
//! transitions (verified → settling → settled), on each backend.
//!
//! - `memory`: the in-process journal, the floor;
//! - `sqlite_file`: a SQLite file as shipped (WAL, `synchronous = FULL`: every change is on
//!   disk before the call returns), in the target directory (a real disk, not tmpfs);
//! - `sqlite_file_sync_normal`: the same with `synchronous = NORMAL` (WAL only fsynced at
//!   checkpoints: a power loss may drop the last changes, a process crash does not), to show
//!   what FULL costs;
//! - `postgres`: when built with `postgres` and `X402_POSTGRES_URL` is set (a loopback
//!   server; `scripts/test`'s throwaway cluster runs with `fsync = off`, so that number is
//!   the round trips, not the disk).
//!
//! `cargo bench -p x402-runtime --features sqlite --bench journal`
//! (`--features sqlite,postgres` with `X402_POSTGRES_URL` for Postgres too)

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use x402_runtime::U256;
use x402_runtime::journal::{
    Journal, MemoryJournal, NewPayment, PaymentState, SqliteJournal, Transition, now_ms,
};
use x402_runtime::sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};

/// A payment no other iteration used.
fn payment() -> NewPayment {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let nonce = format!("{n:#066x}");
    NewPayment {
        id: None,
        payment_key: format!(
            "eip155:8453:0x833589fcd6edb6e08f4c7c32d4f71b54bda02913:0x70997970c51812dc3a010c7d01b50e0d17dc79c8:{nonce}"
        ),
        payment_id: None,
        fingerprint: None,
        route: "/weather".to_owned(),
        resource: "https://api.example.com/weather".to_owned(),
        method: "GET".to_owned(),
        payer: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8".to_owned(),
        pay_to: "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC".to_owned(),
        amount: U256::from(10_000u64),
        asset: "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913".to_owned(),
        network: "eip155:8453".to_owned(),
        scheme: "exact".to_owned(),
        x402_version: 2,
        nonce,
        valid_before: Some(1_900_000_000),
        // About the size of a real v2 facilitator request.
        facilitator_request: "x".repeat(1200),
        at: now_ms(),
    }
}

/// The journal's work for one paid request.
async fn insert_and_settle(journal: &dyn Journal) {
    use PaymentState::*;
    let record = journal
        .insert(payment())
        .await
        .expect("insert")
        .into_record();
    journal
        .transition(&record.id, Transition::new(&[Verified], Settling, now_ms()))
        .await
        .expect("settling");
    let settled = journal
        .transition(
            &record.id,
            Transition::new(&[Settling], Settled, now_ms())
                .transaction("0x0ec72638d9cf4855bab4c1edfebe18c38dfa4e96f5884c22ae272d87c24249b0"),
        )
        .await
        .expect("settled");
    black_box(settled);
}

fn journal(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("journal");

    group.bench_function("memory/insert_and_2_transitions", |b| {
        // A fresh journal every 10 000 payments, so memory stays small; only the payments are
        // timed.
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let journal = MemoryJournal::new();
                let batch = left.min(10_000);
                let start = Instant::now();
                runtime.block_on(async {
                    for _ in 0..batch {
                        insert_and_settle(&journal).await;
                    }
                });
                spent += start.elapsed();
                left -= batch;
            }
            spent
        })
    });

    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("journal-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("bench directory");
    group.sample_size(30);
    group.measurement_time(Duration::from_secs(10));

    let full = runtime
        .block_on(SqliteJournal::open(dir.join("full.db")))
        .expect("open the SQLite journal");
    group.bench_function("sqlite_file/insert_and_2_transitions", |b| {
        b.iter(|| runtime.block_on(insert_and_settle(&full)))
    });

    let normal = runtime
        .block_on(async {
            let options = SqliteConnectOptions::new()
                .filename(dir.join("normal.db"))
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(5));
            let pool = SqlitePoolOptions::new()
                .max_connections(8)
                .connect_with(options)
                .await
                .expect("pool");
            SqliteJournal::from_pool(pool).await
        })
        .expect("open the SQLite journal");
    group.bench_function("sqlite_file_sync_normal/insert_and_2_transitions", |b| {
        b.iter(|| runtime.block_on(insert_and_settle(&normal)))
    });

    #[cfg(feature = "postgres")]
    if let Ok(url) = std::env::var("X402_POSTGRES_URL") {
        use std::str::FromStr;
        use x402_runtime::journal::PostgresJournal;
        use x402_runtime::sqlx::postgres::PgConnectOptions;
        use x402_runtime::sqlx::{self, Connection, PgConnection};

        // A schema of its own, dropped afterwards.
        let schema = format!("x402_journal_bench_{}", std::process::id());
        let ddl = |statement: String| {
            let url = url.clone();
            async move {
                let mut connection = PgConnection::connect(&url).await.expect("connect");
                sqlx::query(&statement)
                    .execute(&mut connection)
                    .await
                    .expect("schema");
            }
        };
        runtime.block_on(ddl(format!("CREATE SCHEMA {schema}")));
        let options = PgConnectOptions::from_str(&url)
            .expect("X402_POSTGRES_URL")
            .options([("search_path", schema.as_str())]);
        let postgres = runtime
            .block_on(PostgresJournal::connect_with(options))
            .expect("open the Postgres journal");
        group.bench_function("postgres/insert_and_2_transitions", |b| {
            b.iter(|| runtime.block_on(insert_and_settle(&postgres)))
        });
        runtime.block_on(postgres.close());
        runtime.block_on(ddl(format!("DROP SCHEMA {schema} CASCADE")));
    }
    group.finish();
    runtime.block_on(async {
        full.close().await;
        normal.close().await;
    });
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, journal);
criterion_main!(benches);
