//! The conformance suite for [`Journal`] backends, written once and run against each.
//!
//! A backend plugs in with an `async fn open(replicas: usize) -> Option<Vec<J>>` returning
//! `replicas` independent handles on one fresh, empty journal — handles that share records the
//! way separate server processes would (for SQLite: separate pools on one file; for Postgres:
//! separate pools on one new schema) — or `None` after [`skip`](super::backends::skip) when
//! the backend is not available. Then, in a test file:
//!
//! ```ignore
//! mod support;
//! support::journal::journal_conformance!(open);
//! ```
//!
//! Expected values are written out by hand (or computed from the test's own inputs), never
//! asked of the code under test.

use std::sync::Arc;

use tokio::sync::Barrier;
use x402_runtime::U256;
use x402_runtime::journal::{
    Cursor, Filter, GroupBy, Inserted, Journal, JournalError, NewPayment, Page, PaymentRecord,
    PaymentState, StoredResponse, Total, Transition,
};

use PaymentState::*;

/// Runs every case against the backend opened by `$open`.
macro_rules! journal_conformance {
    ($open:path) => {
        $crate::support::journal::journal_conformance!(@cases $open:
            insert_records_every_field(1),
            a_duplicate_key_returns_the_existing_record(1),
            a_duplicate_payment_id_returns_the_existing_record(1),
            of_64_concurrent_inserts_of_one_key_exactly_one_creates(1),
            of_64_concurrent_inserts_on_4_replicas_exactly_one_creates(4),
            of_concurrent_inserts_of_one_payment_id_exactly_one_creates(3),
            a_payment_moves_through_the_state_machine(1),
            terminal_states_never_change(1),
            illegal_transitions_change_nothing(1),
            a_lost_compare_and_set_reports_the_current_record(1),
            of_64_concurrent_transitions_exactly_one_wins(1),
            of_concurrent_transitions_on_4_replicas_to_different_states_exactly_one_wins(4),
            settled_amounts_are_at_most_the_authorized_amount(1),
            unknown_ids_are_not_found(1),
            a_released_payment_frees_its_key_and_payment_id(1),
            a_failed_payment_frees_its_key_and_payment_id(1),
            the_first_stored_response_stays(1),
            a_response_kept_with_a_transition_is_kept_once(1),
            advance_is_a_transition_without_the_record(1),
            of_300_concurrent_payments_every_write_lands(1),
            reconciliation_lists_stale_open_records_oldest_first(1),
            queries_filter_and_page(1),
            totals_group_and_sum_exactly(1),
            totals_beyond_256_bits_are_an_error(1),
            replicas_share_records(3),
            bad_input_is_refused(1),
        );
    };
    (@cases $open:path: $($case:ident($replicas:expr)),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                if let Some(journals) = $open($replicas).await {
                    assert_eq!(journals.len(), $replicas, "open() returned the wrong number of replicas");
                    $crate::support::journal::$case(journals).await;
                }
            }
        )*
    };
}
pub(crate) use journal_conformance;

/// 2024-02-29 00:00:00 UTC, in milliseconds.
pub(crate) const LEAP_DAY: u64 = 1_709_164_800_000;
const HOUR: u64 = 3_600_000;

const PAYER_A: &str = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
const PAYER_B: &str = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";
const SOLANA_PAYER: &str = "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin";
const USDC_BASE: &str = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913";
const EURC_BASE: &str = "0x60a3E35Cc302bFA44Cb288Bc5a4F316Fdb1adb42";
const USDC_SEPOLIA: &str = "0x036CbD53842c5426634e7929541eC2318f3dCF7e";

/// A payment whose key, nonce and payment id derive from `n`.
pub(crate) fn payment(n: u64) -> NewPayment {
    NewPayment {
        id: None,
        payment_key: format!("eip155:8453:{USDC_BASE}:{PAYER_A}:{n:#066x}").to_lowercase(),
        payment_id: Some(format!("pay_{n:032x}")),
        fingerprint: Some(format!("fp-{n}")),
        route: "/weather".to_owned(),
        resource: format!("https://api.example.com/weather?n={n}"),
        method: "GET".to_owned(),
        payer: PAYER_A.to_owned(),
        pay_to: PAYER_B.to_owned(),
        amount: U256::from(10_000u64),
        asset: USDC_BASE.to_owned(),
        network: "eip155:8453".to_owned(),
        scheme: "exact".to_owned(),
        x402_version: 2,
        nonce: format!("{n:#066x}"),
        valid_before: Some(1_900_000_000),
        facilitator_request: format!(r#"{{"x402Version":2,"n":{n}}}"#),
        at: LEAP_DAY + n,
    }
}

fn single<J>(journals: Vec<J>) -> J {
    let [journal]: [J; 1] = journals
        .try_into()
        .unwrap_or_else(|_| panic!("one journal expected"));
    journal
}

async fn insert<J: Journal + ?Sized>(journal: &J, payment: NewPayment) -> Inserted {
    let key = payment.payment_key.clone();
    journal
        .insert(payment)
        .await
        .unwrap_or_else(|e| panic!("insert {key}: {e}"))
}

async fn created<J: Journal + ?Sized>(journal: &J, payment: NewPayment) -> PaymentRecord {
    match insert(journal, payment).await {
        Inserted::Created(record) => record,
        Inserted::Existing(record) => panic!("expected a new record, found {record:?}"),
    }
}

async fn get<J: Journal + ?Sized>(journal: &J, id: &str) -> PaymentRecord {
    journal
        .get(id)
        .await
        .unwrap_or_else(|e| panic!("get {id}: {e}"))
        .unwrap_or_else(|| panic!("record {id} is missing"))
}

async fn move_to<J: Journal + ?Sized>(
    journal: &J,
    id: &str,
    from: PaymentState,
    to: PaymentState,
    at: u64,
) -> PaymentRecord {
    journal
        .transition(id, Transition::new(&[from], to, at))
        .await
        .unwrap_or_else(|e| panic!("{id}: {from} -> {to}: {e}"))
}

/// Brings a new record to `state` along the shortest legal path.
async fn reach<J: Journal + ?Sized>(journal: &J, n: u64, state: PaymentState) -> PaymentRecord {
    let record = created(journal, payment(n)).await;
    let path: &[PaymentState] = match state {
        Verified => &[],
        Settling => &[Settling],
        Settled => &[Settling, Settled],
        Failed => &[Settling, Failed],
        Unknown => &[Settling, Unknown],
        Released => &[Released],
    };
    let mut current = record;
    for next in path {
        current = move_to(
            journal,
            &current.id,
            current.state,
            *next,
            current.updated_at + 1,
        )
        .await;
    }
    current
}

fn response(status: u16, body: Option<&[u8]>) -> StoredResponse {
    StoredResponse {
        status,
        headers: vec![
            ("content-type".to_owned(), "application/json".to_owned()),
            (
                "payment-response".to_owned(),
                "eyJzdWNjZXNzIjp0cnVlfQ==".to_owned(),
            ),
            ("x-multi".to_owned(), "1".to_owned()),
            ("x-multi".to_owned(), "2".to_owned()),
        ],
        body: body.map(<[u8]>::to_vec),
    }
}

pub(crate) async fn insert_records_every_field<J: Journal>(journals: Vec<J>) {
    let journal = single(journals);
    let mut new = payment(1);
    // EVM addresses in any case are stored checksummed; other addresses as given.
    new.payer = PAYER_A.to_lowercase();
    new.pay_to = SOLANA_PAYER.to_owned();
    new.amount = U256::MAX;
    new.x402_version = 1;
    new.valid_before = None;
    let record = created(&journal, new.clone()).await;
    let expected = PaymentRecord {
        id: record.id.clone(),
        payment_key: new.payment_key.clone(),
        payment_id: new.payment_id.clone(),
        fingerprint: Some("fp-1".to_owned()),
        route: "/weather".to_owned(),
        resource: "https://api.example.com/weather?n=1".to_owned(),
        method: "GET".to_owned(),
        payer: PAYER_A.to_owned(),
        pay_to: SOLANA_PAYER.to_owned(),
        amount: U256::MAX,
        settled_amount: None,
        asset: USDC_BASE.to_owned(),
        network: "eip155:8453".to_owned(),
        scheme: "exact".to_owned(),
        x402_version: 1,
        nonce: format!("{:#066x}", 1),
        valid_before: None,
        state: Verified,
        reconciled: false,
        attempts: 0,
        transaction: None,
        error_reason: None,
        error_message: None,
        response_status: None,
        response: None,
        facilitator_request: r#"{"x402Version":2,"n":1}"#.to_owned(),
        created_at: LEAP_DAY + 1,
        updated_at: LEAP_DAY + 1,
    };
    assert_eq!(record, expected);
    assert_eq!(get(&journal, &record.id).await, expected);
    assert_eq!(
        journal.find_by_payment_key(&new.payment_key).await.unwrap(),
        Some(expected.clone())
    );
    assert_eq!(
        journal
            .find_by_payment_id(new.payment_id.as_deref().unwrap())
            .await
            .unwrap(),
        Some(expected.clone())
    );
    assert_eq!(
        journal.find_by_payment_key("eip155:1:none").await.unwrap(),
        None
    );
    assert_eq!(journal.find_by_payment_id("pay_none").await.unwrap(), None);

    // Without a payment id, and with valid_before: both stored as given.
    let mut other = payment(2);
    other.payment_id = None;
    other.fingerprint = None;
    let second = created(&journal, other).await;
    assert_ne!(second.id, record.id, "every record gets a fresh id");
    assert_eq!(second.payment_id, None);
    assert_eq!(second.valid_before, Some(1_900_000_000));
    assert_eq!(get(&journal, &second.id).await, second);
}

pub(crate) async fn a_duplicate_key_returns_the_existing_record<J: Journal>(journals: Vec<J>) {
    let journal = single(journals);
    let first = created(&journal, payment(1)).await;
    let mut again = payment(1);
    again.route = "/other".to_owned();
    again.payment_id = Some("pay_a_different_id_entirely".to_owned());
    again.at += 500;
    match insert(&journal, again).await {
        Inserted::Existing(existing) => assert_eq!(existing, first),
        Inserted::Created(record) => panic!("a second record for one key: {record:?}"),
    }
    // Still once the record has moved on.
    let settled = reach_from(&journal, &first, &[Settling, Settled]).await;
    match insert(&journal, payment(1)).await {
        Inserted::Existing(existing) => assert_eq!(existing, settled),
        Inserted::Created(record) => panic!("a settled key was admitted again: {record:?}"),
    }
    let all = journal
        .query(&Filter::default(), &Page::first(100))
        .await
        .unwrap();
    assert_eq!(all.records.len(), 1);
}

async fn reach_from<J: Journal + ?Sized>(
    journal: &J,
    record: &PaymentRecord,
    path: &[PaymentState],
) -> PaymentRecord {
    let mut current = record.clone();
    for next in path {
        current = move_to(
            journal,
            &current.id,
            current.state,
            *next,
            current.updated_at + 1,
        )
        .await;
    }
    current
}

pub(crate) async fn a_duplicate_payment_id_returns_the_existing_record<J: Journal>(
    journals: Vec<J>,
) {
    let journal = single(journals);
    let first = created(&journal, payment(1)).await;
    // Another authorization (a client that re-signed on retry) with the same payment id.
    let mut retry = payment(2);
    retry.payment_id = first.payment_id.clone();
    match insert(&journal, retry).await {
        Inserted::Existing(existing) => assert_eq!(existing, first),
        Inserted::Created(record) => panic!("a second record for one payment id: {record:?}"),
    }
    // A key held by one record and a payment id held by another: the key's record answers.
    let second = created(&journal, payment(3)).await;
    let mut both = payment(3);
    both.payment_id = first.payment_id.clone();
    match insert(&journal, both).await {
        Inserted::Existing(existing) => assert_eq!(existing.id, second.id),
        Inserted::Created(record) => panic!("{record:?}"),
    }
    // Payments without an id never collide on it.
    for n in [10, 11] {
        let mut anonymous = payment(n);
        anonymous.payment_id = None;
        created(&journal, anonymous).await;
    }
}

/// 64 tasks insert `make(i)` at once, round-robin over `journals`; returns the records.
async fn insert_race<J: Journal>(
    journals: Vec<J>,
    make: impl Fn(u64) -> NewPayment,
) -> Vec<Inserted> {
    let journals: Vec<Arc<J>> = journals.into_iter().map(Arc::new).collect();
    let start = Arc::new(Barrier::new(64));
    let tasks: Vec<_> = (0..64u64)
        .map(|i| {
            let journal = journals[i as usize % journals.len()].clone();
            let (start, payment) = (start.clone(), make(i));
            tokio::spawn(async move {
                start.wait().await;
                insert(&*journal, payment).await
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.expect("insert task panicked"));
    }
    results
}

fn exactly_one_created(results: &[Inserted]) {
    let created: Vec<_> = results.iter().filter(|r| r.is_created()).collect();
    assert_eq!(
        created.len(),
        1,
        "{} inserts created a record",
        created.len()
    );
    let winner = created[0].record();
    for result in results {
        assert_eq!(
            result.record().id,
            winner.id,
            "every loser sees the winner's record"
        );
    }
}

pub(crate) async fn of_64_concurrent_inserts_of_one_key_exactly_one_creates<J: Journal>(
    journals: Vec<J>,
) {
    let results = insert_race(journals, |i| {
        let mut p = payment(7);
        p.route = format!("/racer-{i}");
        p
    })
    .await;
    exactly_one_created(&results);
}

pub(crate) async fn of_64_concurrent_inserts_on_4_replicas_exactly_one_creates<J: Journal>(
    journals: Vec<J>,
) {
    let results = insert_race(journals, |_| payment(8)).await;
    exactly_one_created(&results);
}

pub(crate) async fn of_concurrent_inserts_of_one_payment_id_exactly_one_creates<J: Journal>(
    journals: Vec<J>,
) {
    // Different authorizations, one payment id: a client retrying with fresh signatures.
    let results = insert_race(journals, |i| {
        let mut p = payment(100 + i);
        p.payment_id = Some("pay_one_id_for_all_of_them".to_owned());
        p
    })
    .await;
    exactly_one_created(&results);
}

pub(crate) async fn a_payment_moves_through_the_state_machine<J: Journal>(journals: Vec<J>) {
    let journal = single(journals);
    let record = created(&journal, payment(1)).await;
    let id = record.id.as_str();
    let t0 = record.created_at;

    let settling = journal
        .transition(id, Transition::new(&[Verified], Settling, t0 + 10))
        .await
        .unwrap();
    assert_eq!((settling.state, settling.attempts), (Settling, 1));
    assert_eq!((settling.created_at, settling.updated_at), (t0, t0 + 10));

    let unknown = journal
        .transition(
            id,
            Transition::new(&[Settling], Unknown, t0 + 20)
                .transaction("0xfeed")
                .error("settlement_pending", "no receipt within 30 s")
                .response_status(504),
        )
        .await
        .unwrap();
    assert_eq!(unknown.state, Unknown);
    assert_eq!(unknown.transaction.as_deref(), Some("0xfeed"));
    assert_eq!(unknown.error_reason.as_deref(), Some("settlement_pending"));
    assert_eq!(
        unknown.error_message.as_deref(),
        Some("no receipt within 30 s")
    );
    assert_eq!(unknown.response_status, Some(504));
    assert_eq!(unknown.settled_amount, None);
    assert!(!unknown.reconciled);

    // A second attempt (reconciliation re-submits) counts.
    let retry = journal
        .transition(
            id,
            Transition::new(&[Unknown], Settling, t0 + 30).reconciled(),
        )
        .await
        .unwrap();
    assert_eq!((retry.state, retry.attempts), (Settling, 2));
    assert!(retry.reconciled);
    assert_eq!(
        retry.transaction.as_deref(),
        Some("0xfeed"),
        "fields a change does not set keep their values"
    );
    assert_eq!(retry.error_reason.as_deref(), Some("settlement_pending"));

    let settled = journal
        .transition(
            id,
            Transition::new(&[Settling, Unknown], Settled, t0 + 40).transaction("0xbeef"),
        )
        .await
        .unwrap();
    assert_eq!(settled.state, Settled);
    assert_eq!(settled.transaction.as_deref(), Some("0xbeef"));
    assert_eq!(
        settled.settled_amount,
        Some(U256::from(10_000u64)),
        "settling without an amount records the authorized amount"
    );
    assert!(settled.reconciled, "the reconciled flag stays once set");
    assert_eq!(settled.attempts, 2);
    assert_eq!(settled.updated_at, t0 + 40);
    assert_eq!(settled.response_status, Some(504));
    assert_eq!(get(&journal, id).await, settled);

    // Verified → failed and verified → released are single steps.
    let failed = created(&journal, payment(2)).await;
    let failed = journal
        .transition(
            &failed.id,
            Transition::new(&[Verified], Failed, t0 + 50).error("invalid_payload", "expired"),
        )
        .await
        .unwrap();
    assert_eq!((failed.state, failed.attempts), (Failed, 0));
    let released = reach(&journal, 3, Released).await;
    assert_eq!(released.state, Released);
}

pub(crate) async fn terminal_states_never_change<J: Journal>(journals: Vec<J>) {
    let journal = single(journals);
    for (n, terminal) in [(1, Settled), (2, Failed), (3, Released)] {
        let record = reach(&journal, n, terminal).await;
        for to in PaymentState::ALL {
            // Asked from the terminal state: illegal.
            let error = journal
                .transition(
                    &record.id,
                    Transition::new(&[terminal], to, record.updated_at + 5),
                )
                .await
                .unwrap_err();
            assert!(
                matches!(error, JournalError::IllegalTransition { from, to: t } if from == terminal && t == to),
                "{terminal} -> {to}: {error}"
            );
            // Asked from a state it could have come from: the compare-and-set fails.
            let sources: Vec<PaymentState> = PaymentState::ALL
                .into_iter()
                .filter(|from| from.can_become(to))
                .collect();
            if sources.is_empty() {
                continue;
            }
            let error = journal
                .transition(
                    &record.id,
                    Transition::new(&sources, to, record.updated_at + 5),
                )
                .await
                .unwrap_err();
            match error {
                JournalError::Conflict { current, expected } => {
                    assert_eq!(*current, record);
                    assert_eq!(expected, sources);
                }
                other => panic!("{terminal} -> {to}: {other}"),
            }
        }
        assert_eq!(
            get(&journal, &record.id).await,
            record,
            "{terminal} unchanged"
        );
    }
}

pub(crate) async fn illegal_transitions_change_nothing<J: Journal>(journals: Vec<J>) {
    let journal = single(journals);
    let record = created(&journal, payment(1)).await;
    for (from, to) in [
        (Verified, Settled),
        (Verified, Unknown),
        (Verified, Verified),
        (Settling, Released),
        (Settling, Verified),
        (Unknown, Released),
    ] {
        let error = journal
            .transition(
                &record.id,
                Transition::new(&[from], to, record.updated_at + 1),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(error, JournalError::IllegalTransition { .. }),
            "{from} -> {to}: {error}"
        );
    }
    // One illegal source among legal ones spoils the whole change.
    assert!(matches!(
        journal
            .transition(
                &record.id,
                Transition::new(&[Verified, Settled], Failed, record.updated_at + 1)
            )
            .await,
        Err(JournalError::IllegalTransition {
            from: Settled,
            to: Failed
        })
    ));
    assert_eq!(get(&journal, &record.id).await, record);
}

pub(crate) async fn a_lost_compare_and_set_reports_the_current_record<J: Journal>(
    journals: Vec<J>,
) {
    let journal = single(journals);
    let record = created(&journal, payment(1)).await;
    let error = journal
        .transition(
            &record.id,
            Transition::new(&[Settling, Unknown], Settled, record.updated_at + 1)
                .transaction("0x01"),
        )
        .await
        .unwrap_err();
    match &error {
        JournalError::Conflict { expected, current } => {
            assert_eq!(expected, &[Settling, Unknown]);
            assert_eq!(**current, record);
        }
        other => panic!("{other}"),
    }
    assert!(
        error
            .to_string()
            .contains("is verified, not settling or unknown"),
        "{error}"
    );
    assert_eq!(
        get(&journal, &record.id).await,
        record,
        "nothing was written"
    );
}

/// `tasks` tasks apply `change(i)` to one record at once, round-robin over `journals`.
async fn transition_race<J: Journal>(
    journals: Vec<J>,
    record: &PaymentRecord,
    tasks: usize,
    change: impl Fn(usize) -> Transition,
) -> (Vec<PaymentRecord>, Vec<JournalError>) {
    let journals: Vec<Arc<J>> = journals.into_iter().map(Arc::new).collect();
    let start = Arc::new(Barrier::new(tasks));
    let handles: Vec<_> = (0..tasks)
        .map(|i| {
            let journal = journals[i % journals.len()].clone();
            let (start, id, change) = (start.clone(), record.id.clone(), change(i));
            tokio::spawn(async move {
                start.wait().await;
                journal.transition(&id, change).await
            })
        })
        .collect();
    let (mut won, mut lost) = (Vec::new(), Vec::new());
    for handle in handles {
        match handle.await.expect("transition task panicked") {
            Ok(record) => won.push(record),
            Err(error) => lost.push(error),
        }
    }
    (won, lost)
}

pub(crate) async fn of_64_concurrent_transitions_exactly_one_wins<J: Journal>(journals: Vec<J>) {
    let journal = Arc::new(single(journals));
    let record = created(&*journal, payment(1)).await;
    let (won, lost) = transition_race(vec![journal.clone()], &record, 64, |i| {
        Transition::new(&[Verified], Settling, record.updated_at + 1 + i as u64)
    })
    .await;
    assert_eq!(won.len(), 1, "{} transitions won", won.len());
    assert_eq!(lost.len(), 63);
    for error in &lost {
        assert!(
            matches!(error, JournalError::Conflict { current, .. } if current.state == Settling),
            "{error}"
        );
    }
    let now = get(&*journal, &record.id).await;
    assert_eq!(now, won[0]);
    assert_eq!(now.attempts, 1, "only the winner counted an attempt");
}

pub(crate) async fn of_concurrent_transitions_on_4_replicas_to_different_states_exactly_one_wins<
    J: Journal,
>(
    journals: Vec<J>,
) {
    let record = reach(&journals[0], 1, Settling).await;
    // Replicas disagree about the outcome; the first to write it decides.
    let (won, lost) = transition_race(journals, &record, 48, |i| {
        let at = record.updated_at + 1;
        match i % 3 {
            0 => Transition::new(&[Settling], Settled, at).transaction(format!("0x{i:02x}")),
            1 => Transition::new(&[Settling], Failed, at).error("reverted", format!("task {i}")),
            _ => Transition::new(&[Settling], Unknown, at).error("timeout", format!("task {i}")),
        }
    })
    .await;
    assert_eq!(won.len(), 1, "{} transitions won", won.len());
    assert_eq!(lost.len(), 47);
    for error in &lost {
        match error {
            JournalError::Conflict { current, .. } => assert_eq!(**current, won[0]),
            other => panic!("{other}"),
        }
    }
}

pub(crate) async fn settled_amounts_are_at_most_the_authorized_amount<J: Journal>(
    journals: Vec<J>,
) {
    let journal = single(journals);
    let big = U256::from(1u8) << 200;
    // (authorized, settled, accepted?)
    let cases = [
        (U256::from(100u64), U256::from(99u64), true),
        (U256::from(100u64), U256::from(100u64), true),
        (U256::from(100u64), U256::from(101u64), false),
        (U256::from(100u64), U256::from(1000u64), false),
        (U256::from(100u64), U256::ZERO, true),
        (big, big >> 1, true),
        (big, big + U256::from(1u8), false),
        (U256::MAX, U256::MAX, true),
        (U256::MAX - U256::from(1u8), U256::MAX, false),
    ];
    for (n, (authorized, settled, accepted)) in cases.into_iter().enumerate() {
        let mut new = payment(n as u64);
        new.amount = authorized;
        let record = created(&journal, new).await;
        let record = move_to(
            &journal,
            &record.id,
            Verified,
            Settling,
            record.updated_at + 1,
        )
        .await;
        let result = journal
            .transition(
                &record.id,
                Transition::new(&[Settling], Settled, record.updated_at + 1)
                    .settled_amount(settled),
            )
            .await;
        if accepted {
            let done = result.unwrap_or_else(|e| panic!("settle {settled} of {authorized}: {e}"));
            assert_eq!(done.settled_amount, Some(settled));
            assert_eq!(
                get(&journal, &record.id).await.settled_amount,
                Some(settled)
            );
        } else {
            let error = result.unwrap_err();
            assert!(
                matches!(error, JournalError::Invalid(_)),
                "settle {settled} of {authorized}: {error}"
            );
            assert_eq!(
                get(&journal, &record.id).await,
                record,
                "nothing was written"
            );
        }
    }
}

pub(crate) async fn unknown_ids_are_not_found<J: Journal>(journals: Vec<J>) {
    let journal = single(journals);
    created(&journal, payment(1)).await;
    let missing = "0000000000000000000000000000dead";
    assert_eq!(journal.get(missing).await.unwrap(), None);
    assert!(matches!(
        journal
            .transition(missing, Transition::new(&[Verified], Settling, 1))
            .await,
        Err(JournalError::NotFound(id)) if id == missing
    ));
    assert!(matches!(
        journal.store_response(missing, response(200, None)).await,
        Err(JournalError::NotFound(_))
    ));
}

pub(crate) async fn a_released_payment_frees_its_key_and_payment_id<J: Journal>(journals: Vec<J>) {
    frees_its_key_and_payment_id(single(journals), Released).await;
}

/// A settlement that provably failed charged nothing: the authorization is the client's again.
pub(crate) async fn a_failed_payment_frees_its_key_and_payment_id<J: Journal>(journals: Vec<J>) {
    frees_its_key_and_payment_id(single(journals), Failed).await;
}

async fn frees_its_key_and_payment_id<J: Journal>(journal: J, end: PaymentState) {
    let first = created(&journal, payment(1)).await;
    let first = move_to(&journal, &first.id, Verified, end, first.updated_at + 1).await;
    assert_eq!(first.state, end);
    // The client sends the same authorization (and payment id) again: a new admission.
    let mut again = payment(1);
    again.at = first.updated_at + 10;
    let second = created(&journal, again).await;
    assert_ne!(second.id, first.id);
    let key = &first.payment_key;
    let payment_id = first.payment_id.as_deref().unwrap();
    assert_eq!(
        journal.find_by_payment_key(key).await.unwrap(),
        Some(second.clone())
    );
    assert_eq!(
        journal.find_by_payment_id(payment_id).await.unwrap(),
        Some(second.clone())
    );
    // While the second holds the key, nothing else gets it.
    assert!(!insert(&journal, payment(1)).await.is_created());
    // Released too: the latest record of the key answers.
    let second = move_to(
        &journal,
        &second.id,
        Verified,
        Released,
        second.updated_at + 1,
    )
    .await;
    assert_eq!(
        journal.find_by_payment_key(key).await.unwrap(),
        Some(second.clone())
    );
    assert_eq!(
        journal.find_by_payment_id(payment_id).await.unwrap(),
        Some(second)
    );
    assert_eq!(get(&journal, &first.id).await, first, "history is kept");
}

pub(crate) async fn the_first_stored_response_stays<J: Journal>(journals: Vec<J>) {
    let journal = single(journals);
    let record = reach(&journal, 1, Settled).await;
    let body: Vec<u8> = (0..=255u8).chain([0, 0, 255]).collect();
    let first = response(200, Some(&body));
    let stored = journal
        .store_response(&record.id, first.clone())
        .await
        .unwrap();
    assert_eq!(stored.response.as_ref(), Some(&first));
    assert_eq!(stored.response_status, Some(200));
    assert_eq!(stored.state, Settled, "storing a response changes no state");
    let again = journal
        .store_response(&record.id, response(500, Some(b"late")))
        .await
        .unwrap();
    assert_eq!(
        again.response.as_ref(),
        Some(&first),
        "the first response stays"
    );
    assert_eq!(get(&journal, &record.id).await.response, Some(first));

    // A response kept without its body (too large), and one with an empty body.
    let other = reach(&journal, 2, Settled).await;
    let headers_only = response(201, None);
    let stored = journal
        .store_response(&other.id, headers_only.clone())
        .await
        .unwrap();
    assert_eq!(stored.response, Some(headers_only.clone()));
    assert_eq!(get(&journal, &other.id).await.response, Some(headers_only));
    let third = reach(&journal, 3, Settled).await;
    let empty = StoredResponse {
        status: 204,
        headers: Vec::new(),
        body: Some(Vec::new()),
    };
    journal
        .store_response(&third.id, empty.clone())
        .await
        .unwrap();
    assert_eq!(get(&journal, &third.id).await.response, Some(empty));
}

pub(crate) async fn reconciliation_lists_stale_open_records_oldest_first<J: Journal>(
    journals: Vec<J>,
) {
    let journal = single(journals);
    let mut expected = Vec::new();
    // One record per state, each last changed at a known time.
    for (n, state) in PaymentState::ALL.into_iter().enumerate() {
        let record = reach(&journal, n as u64, state).await;
        let record = if state.is_terminal() {
            record
        } else {
            // Change it again at `LEAP_DAY + 1000 - n`: the later in `ALL`, the older the
            // change, so the order listed differs from the order created.
            let again = match state {
                Verified => None,
                Settling => Some((Settling, Unknown)),
                Unknown => Some((Unknown, Settling)),
                _ => unreachable!(),
            };
            match again {
                None => record,
                Some((from, to)) => {
                    move_to(&journal, &record.id, from, to, LEAP_DAY + 1000 - n as u64).await
                }
            }
        };
        if !record.state.is_terminal() {
            expected.push(record);
        }
    }
    expected.sort_by_key(|r| (r.updated_at, r.id.clone()));
    assert_eq!(expected.len(), 3);

    let all = journal
        .needing_reconciliation(LEAP_DAY + HOUR, 100)
        .await
        .unwrap();
    assert_eq!(all, expected);
    let first_two = journal
        .needing_reconciliation(LEAP_DAY + HOUR, 2)
        .await
        .unwrap();
    assert_eq!(first_two, expected[..2]);
    // Only records last changed strictly before the cutoff.
    let cutoff = expected[1].updated_at;
    let older = journal.needing_reconciliation(cutoff, 100).await.unwrap();
    assert_eq!(older, expected[..1]);
    assert!(
        journal
            .needing_reconciliation(0, 100)
            .await
            .unwrap()
            .is_empty()
    );
}

/// The records of [`queries_filter_and_page`] and [`totals_group_and_sum_exactly`]: routes,
/// payers, networks, assets, days and states mixed, with amounts above 2^64.
struct Fixture {
    records: Vec<PaymentRecord>,
}

/// 2^70, an amount no 64-bit sum could hold.
fn huge() -> U256 {
    U256::from(1u8) << 70
}

/// One record of the fixture: where it goes and how far it gets.
struct Row {
    route: &'static str,
    payer: &'static str,
    network: &'static str,
    asset: &'static str,
    amount: U256,
    /// Hours after 22:00 on 2024-02-28.
    hours: u64,
    state: PaymentState,
    settled: Option<U256>,
}

#[allow(clippy::too_many_arguments)]
fn row(
    route: &'static str,
    payer: &'static str,
    network: &'static str,
    asset: &'static str,
    amount: U256,
    hours: u64,
    state: PaymentState,
    settled: Option<U256>,
) -> Row {
    Row {
        route,
        payer,
        network,
        asset,
        amount,
        hours,
        state,
        settled,
    }
}

async fn fixture<J: Journal + ?Sized>(journal: &J) -> Fixture {
    let (base, sepolia) = ("eip155:8453", "eip155:84532");
    let n = |v: u64| U256::from(v);
    // Hours 0–1 fall on 2024-02-28, 3–5 on the 29th, 26–28 on 2024-03-01.
    #[rustfmt::skip]
    let rows = [
        row("/weather", PAYER_A,      base,    USDC_BASE,    huge(),    0,  Settled,  None),
        row("/weather", PAYER_A,      base,    USDC_BASE,    huge(),    1,  Settled,  Some(n(5))),
        row("/weather", PAYER_B,      base,    USDC_BASE,    n(10_000), 3,  Failed,   None),
        row("/weather", PAYER_B,      base,    EURC_BASE,    n(7),      4,  Settled,  None),
        row("/report",  PAYER_A,      sepolia, USDC_SEPOLIA, n(1),      5,  Verified, None),
        row("/report",  SOLANA_PAYER, base,    USDC_BASE,    huge(),    26, Settled,  None),
        row("/report",  PAYER_B,      base,    USDC_BASE,    n(3),      27, Released, None),
        row("/weather", PAYER_A,      sepolia, USDC_SEPOLIA, n(2),      28, Unknown,  None),
    ];
    let mut records = Vec::new();
    for (i, row) in rows.into_iter().enumerate() {
        let mut new = payment(i as u64);
        new.route = row.route.to_owned();
        new.payer = row.payer.to_owned();
        new.network = row.network.to_owned();
        new.asset = row.asset.to_owned();
        new.amount = row.amount;
        new.at = LEAP_DAY - 2 * HOUR + row.hours * HOUR;
        let record = created(journal, new).await;
        let path: &[PaymentState] = match row.state {
            Verified => &[],
            Settled => &[Settling, Settled],
            Failed => &[Settling, Failed],
            Unknown => &[Settling, Unknown],
            Released => &[Released],
            Settling => &[Settling],
        };
        let mut current = record;
        for next in path {
            let mut change = Transition::new(&[current.state], *next, current.updated_at + 1);
            if *next == Settled
                && let Some(settled) = row.settled
            {
                change = change.settled_amount(settled);
            }
            current = journal.transition(&current.id, change).await.unwrap();
        }
        records.push(current);
    }
    Fixture { records }
}

/// Every page of `filter`, `size` records at a time.
async fn all_pages<J: Journal + ?Sized>(
    journal: &J,
    filter: &Filter,
    size: u32,
) -> Vec<PaymentRecord> {
    let mut page = Page::first(size);
    let mut out = Vec::new();
    loop {
        let records = journal.query(filter, &page).await.unwrap();
        assert!(records.records.len() <= size as usize);
        out.extend(records.records.iter().cloned());
        match records.next {
            Some(cursor) => {
                assert_eq!(
                    records.records.len(),
                    size as usize,
                    "only full pages continue"
                );
                assert_eq!(
                    Some(&cursor),
                    records.records.last().map(Cursor::after).as_ref()
                );
                page = Page::after(cursor, size);
            }
            None => return out,
        }
    }
}

pub(crate) async fn queries_filter_and_page<J: Journal>(journals: Vec<J>) {
    let journal = single(journals);
    let fixture = fixture(&journal).await;
    let ids = |indices: &[usize]| -> Vec<String> {
        // Newest first: the fixture is in creation order.
        let mut chosen: Vec<&PaymentRecord> =
            indices.iter().map(|i| &fixture.records[*i]).collect();
        chosen.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        chosen.into_iter().map(|r| r.id.clone()).collect()
    };
    let query = |filter: Filter| {
        let journal = &journal;
        async move {
            journal
                .query(&filter, &Page::first(100))
                .await
                .unwrap()
                .records
                .into_iter()
                .map(|r| r.id)
                .collect::<Vec<_>>()
        }
    };

    assert_eq!(
        query(Filter::default()).await,
        ids(&[0, 1, 2, 3, 4, 5, 6, 7])
    );
    assert_eq!(
        query(Filter::default().route("/report")).await,
        ids(&[4, 5, 6])
    );
    assert_eq!(
        query(Filter::default().payer(PAYER_A)).await,
        ids(&[0, 1, 4, 7])
    );
    assert_eq!(
        query(Filter::default().payer(PAYER_A.to_lowercase())).await,
        ids(&[0, 1, 4, 7]),
        "an EVM payer matches in any letter case"
    );
    assert_eq!(
        query(Filter::default().payer(SOLANA_PAYER)).await,
        ids(&[5])
    );
    assert!(
        query(Filter::default().payer(SOLANA_PAYER.to_lowercase()))
            .await
            .is_empty(),
        "base58 is case-sensitive"
    );
    assert_eq!(
        query(Filter::default().state(Settled)).await,
        ids(&[0, 1, 3, 5])
    );
    assert_eq!(
        query(Filter::default().state(Verified).state(Unknown)).await,
        ids(&[4, 7])
    );
    assert_eq!(
        query(Filter::default().network("eip155:84532")).await,
        ids(&[4, 7])
    );
    assert_eq!(query(Filter::default().asset(EURC_BASE)).await, ids(&[3]));
    // since is inclusive, until exclusive.
    let start_29 = LEAP_DAY;
    let start_1 = LEAP_DAY + 24 * HOUR;
    assert_eq!(
        query(Filter::default().since(start_29).until(start_1)).await,
        ids(&[2, 3, 4])
    );
    assert_eq!(
        query(Filter::default().since(fixture.records[2].created_at)).await,
        ids(&[2, 3, 4, 5, 6, 7])
    );
    assert_eq!(
        query(Filter::default().until(fixture.records[2].created_at)).await,
        ids(&[0, 1])
    );
    assert_eq!(
        query(
            Filter::default()
                .route("/weather")
                .payer(PAYER_A)
                .state(Settled)
                .network("eip155:8453")
        )
        .await,
        ids(&[0, 1])
    );
    assert!(query(Filter::default().route("/nowhere")).await.is_empty());

    // Pages of every size cover everything once, in order.
    let everything = ids(&[0, 1, 2, 3, 4, 5, 6, 7]);
    for size in [1, 3, 7, 8, 9] {
        let paged: Vec<String> = all_pages(&journal, &Filter::default(), size)
            .await
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(paged, everything, "page size {size}");
    }
    let paged: Vec<String> = all_pages(&journal, &Filter::default().route("/weather"), 2)
        .await
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(paged, ids(&[0, 1, 2, 3, 7]));
    // Records with the same creation time are paged by id without loss.
    let mut same_time = Vec::new();
    for n in 50..55 {
        let mut new = payment(n);
        new.route = "/same-ms".to_owned();
        new.at = LEAP_DAY + 99 * HOUR;
        same_time.push(created(&journal, new).await.id);
    }
    same_time.sort();
    same_time.reverse();
    let paged: Vec<String> = all_pages(&journal, &Filter::default().route("/same-ms"), 2)
        .await
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(paged, same_time);
    // Returned records are whole.
    let whole = journal
        .query(&Filter::default().asset(EURC_BASE), &Page::first(5))
        .await
        .unwrap();
    assert_eq!(whole.records, vec![fixture.records[3].clone()]);
    assert_eq!(whole.next, None);
}

fn total(
    group: &str,
    network: &str,
    asset: &str,
    count: u64,
    authorized: U256,
    settled_count: u64,
    settled: U256,
) -> Total {
    Total {
        group: group.to_owned(),
        network: network.to_owned(),
        asset: asset.to_owned(),
        count,
        authorized,
        settled_count,
        settled,
    }
}

pub(crate) async fn totals_group_and_sum_exactly<J: Journal>(journals: Vec<J>) {
    let journal = single(journals);
    fixture(&journal).await;
    let all = Filter::default();
    let base = "eip155:8453";
    let sepolia = "eip155:84532";
    let n = |v: u64| U256::from(v);
    let h = huge();

    assert_eq!(
        journal.totals(GroupBy::Route, &all).await.unwrap(),
        vec![
            total("/report", base, USDC_BASE, 2, h + n(3), 1, h),
            total("/report", sepolia, USDC_SEPOLIA, 1, n(1), 0, n(0)),
            total("/weather", base, EURC_BASE, 1, n(7), 1, n(7)),
            total(
                "/weather",
                base,
                USDC_BASE,
                3,
                h + h + n(10_000),
                2,
                h + n(5)
            ),
            total("/weather", sepolia, USDC_SEPOLIA, 1, n(2), 0, n(0)),
        ]
    );
    assert_eq!(
        journal.totals(GroupBy::Day, &all).await.unwrap(),
        vec![
            total("2024-02-28", base, USDC_BASE, 2, h + h, 2, h + n(5)),
            total("2024-02-29", base, EURC_BASE, 1, n(7), 1, n(7)),
            total("2024-02-29", base, USDC_BASE, 1, n(10_000), 0, n(0)),
            total("2024-02-29", sepolia, USDC_SEPOLIA, 1, n(1), 0, n(0)),
            total("2024-03-01", base, USDC_BASE, 2, h + n(3), 1, h),
            total("2024-03-01", sepolia, USDC_SEPOLIA, 1, n(2), 0, n(0)),
        ]
    );
    assert_eq!(
        journal
            .totals(GroupBy::Payer, &all.clone().state(Settled))
            .await
            .unwrap(),
        vec![
            total(PAYER_B, base, EURC_BASE, 1, n(7), 1, n(7)),
            total(PAYER_A, base, USDC_BASE, 2, h + h, 2, h + n(5)),
            total(SOLANA_PAYER, base, USDC_BASE, 1, h, 1, h),
        ]
    );
    assert_eq!(
        journal.totals(GroupBy::Network, &all).await.unwrap(),
        vec![
            total(base, base, EURC_BASE, 1, n(7), 1, n(7)),
            total(
                base,
                base,
                USDC_BASE,
                5,
                h + h + h + n(10_003),
                3,
                h + h + n(5)
            ),
            total(sepolia, sepolia, USDC_SEPOLIA, 2, n(3), 0, n(0)),
        ]
    );
    assert_eq!(
        journal
            .totals(
                GroupBy::Route,
                &all.clone().payer(PAYER_A.to_lowercase()).since(LEAP_DAY)
            )
            .await
            .unwrap(),
        vec![
            total("/report", sepolia, USDC_SEPOLIA, 1, n(1), 0, n(0)),
            total("/weather", sepolia, USDC_SEPOLIA, 1, n(2), 0, n(0)),
        ]
    );
    assert!(
        journal
            .totals(GroupBy::Route, &all.clone().route("/nowhere"))
            .await
            .unwrap()
            .is_empty()
    );
}

pub(crate) async fn totals_beyond_256_bits_are_an_error<J: Journal>(journals: Vec<J>) {
    let journal = single(journals);
    let half = (U256::MAX >> 1) + U256::from(1u8);
    for n in 0..2 {
        let mut new = payment(n);
        new.amount = half;
        created(&journal, new).await;
    }
    let error = journal
        .totals(GroupBy::Route, &Filter::default())
        .await
        .unwrap_err();
    assert!(matches!(error, JournalError::Overflow(_)), "{error}");
    // One of them alone still sums.
    let one = journal
        .totals(GroupBy::Route, &Filter::default().until(LEAP_DAY + 1))
        .await
        .unwrap();
    assert_eq!(one[0].authorized, half);
}

pub(crate) async fn replicas_share_records<J: Journal>(journals: Vec<J>) {
    let record = created(&journals[0], payment(1)).await;
    assert_eq!(get(&journals[1], &record.id).await, record);
    let settling = move_to(
        &journals[2],
        &record.id,
        Verified,
        Settling,
        record.updated_at + 1,
    )
    .await;
    for (i, journal) in journals.iter().enumerate() {
        assert_eq!(get(journal, &record.id).await, settling, "replica {i}");
        assert!(
            !insert(journal, payment(1)).await.is_created(),
            "replica {i}"
        );
    }
    let stored = journals[1]
        .store_response(&record.id, response(200, Some(b"{}")))
        .await
        .unwrap();
    assert_eq!(get(&journals[0], &record.id).await, stored);
    let totals = journals[2]
        .totals(GroupBy::Route, &Filter::default())
        .await
        .unwrap();
    assert_eq!(totals.len(), 1);
    assert_eq!(totals[0].count, 1);
}

pub(crate) async fn bad_input_is_refused<J: Journal>(journals: Vec<J>) {
    let journal = single(journals);
    let mut empty_key = payment(1);
    empty_key.payment_key.clear();
    let mut empty_id = payment(2);
    empty_id.payment_id = Some(String::new());
    let mut far_future = payment(3);
    far_future.at = u64::MAX;
    for bad in [empty_key, empty_id, far_future] {
        let error = journal.insert(bad.clone()).await.unwrap_err();
        assert!(
            matches!(error, JournalError::Invalid(_)),
            "{bad:?}: {error}"
        );
    }
    assert!(
        journal
            .query(&Filter::default(), &Page::first(10))
            .await
            .unwrap()
            .records
            .is_empty(),
        "nothing was recorded"
    );
    let error = journal
        .query(&Filter::default().since(u64::MAX), &Page::first(10))
        .await
        .unwrap_err();
    assert!(matches!(error, JournalError::Invalid(_)), "{error}");
    // A page of zero records is empty, not an error.
    created(&journal, payment(4)).await;
    let zero = journal
        .query(&Filter::default(), &Page::first(0))
        .await
        .unwrap();
    assert!(zero.records.is_empty());
}

/// A journal handle that keeps something alive (a temporary directory, a schema to drop)
/// until the last handle is gone.
pub(crate) struct Guarded<J> {
    journal: J,
    _guard: Arc<dyn Send + Sync>,
}

impl<J> Guarded<J> {
    pub(crate) fn new(journal: J, guard: Arc<dyn Send + Sync>) -> Self {
        Guarded {
            journal,
            _guard: guard,
        }
    }

    pub(crate) fn inner(&self) -> &J {
        &self.journal
    }
}

#[async_trait::async_trait]
impl<J: Journal> Journal for Guarded<J> {
    async fn insert(&self, payment: NewPayment) -> Result<Inserted, JournalError> {
        self.journal.insert(payment).await
    }
    async fn get(&self, id: &str) -> Result<Option<PaymentRecord>, JournalError> {
        self.journal.get(id).await
    }
    async fn find_by_payment_key(&self, key: &str) -> Result<Option<PaymentRecord>, JournalError> {
        self.journal.find_by_payment_key(key).await
    }
    async fn find_by_payment_id(&self, id: &str) -> Result<Option<PaymentRecord>, JournalError> {
        self.journal.find_by_payment_id(id).await
    }
    async fn transition(
        &self,
        id: &str,
        change: Transition,
    ) -> Result<PaymentRecord, JournalError> {
        self.journal.transition(id, change).await
    }
    async fn advance(&self, id: &str, change: Transition) -> Result<(), JournalError> {
        self.journal.advance(id, change).await
    }
    async fn store_response(
        &self,
        id: &str,
        response: StoredResponse,
    ) -> Result<PaymentRecord, JournalError> {
        self.journal.store_response(id, response).await
    }
    async fn needing_reconciliation(
        &self,
        before: u64,
        limit: u32,
    ) -> Result<Vec<PaymentRecord>, JournalError> {
        self.journal.needing_reconciliation(before, limit).await
    }
    async fn query(
        &self,
        filter: &Filter,
        page: &Page,
    ) -> Result<x402_runtime::journal::Records, JournalError> {
        self.journal.query(filter, page).await
    }
    async fn totals(&self, group: GroupBy, filter: &Filter) -> Result<Vec<Total>, JournalError> {
        self.journal.totals(group, filter).await
    }
}

/// A directory removed when dropped.
pub(crate) struct TempDir(pub(crate) std::path::PathBuf);

impl TempDir {
    pub(crate) fn new(what: &str) -> Self {
        let dir = std::env::temp_dir().join(super::backends::unique_identifier(what));
        std::fs::create_dir_all(&dir).expect("create a temporary directory");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(crate) async fn a_response_kept_with_a_transition_is_kept_once<J: Journal>(journals: Vec<J>) {
    let journal = single(journals);
    let Inserted::Created(record) = insert(&journal, payment(41)).await else {
        panic!("a fresh payment is created");
    };
    let first = response(200, Some(b"the paid answer"));
    let settling = journal
        .transition(
            &record.id,
            Transition::new(&[Verified], Settling, LEAP_DAY + 50).keep_response(first.clone()),
        )
        .await
        .unwrap();
    assert_eq!(settling.state, Settling);
    assert_eq!(settling.response.as_ref(), Some(&first));
    assert_eq!(settling.response_status, Some(200));
    // Neither a later store nor a later transition replaces it.
    let stored = journal
        .store_response(&record.id, response(500, Some(b"late")))
        .await
        .unwrap();
    assert_eq!(stored.response.as_ref(), Some(&first));
    let settled = journal
        .transition(
            &record.id,
            Transition::new(&[Settling], Settled, LEAP_DAY + 60)
                .transaction("0xabc")
                .keep_response(response(201, Some(b"other"))),
        )
        .await
        .unwrap();
    assert_eq!(settled.state, Settled);
    assert_eq!(settled.response, Some(first.clone()));
    assert_eq!(settled.response_status, Some(200));
    assert_eq!(get(&journal, &record.id).await.response, Some(first));
    // A transition that does not apply keeps nothing.
    let Inserted::Created(other) = insert(&journal, payment(42)).await else {
        panic!("a fresh payment is created");
    };
    let refused = journal
        .transition(
            &other.id,
            Transition::new(&[Settling], Settled, LEAP_DAY + 70)
                .keep_response(response(200, Some(b"never"))),
        )
        .await;
    assert!(
        matches!(refused, Err(JournalError::Conflict { .. })),
        "{refused:?}"
    );
    assert_eq!(get(&journal, &other.id).await.response, None);
}

/// `advance` applies what `transition` would, with its errors, and answers without the record:
/// the gate's path (settling with the kept response, then settled).
pub(crate) async fn advance_is_a_transition_without_the_record<J: Journal>(journals: Vec<J>) {
    let journal = single(journals);
    let Inserted::Created(record) = insert(&journal, payment(43)).await else {
        panic!("a fresh payment is created");
    };
    let kept = response(200, Some(b"the paid answer"));
    journal
        .advance(
            &record.id,
            Transition::new(&[Verified], Settling, LEAP_DAY + 50).keep_response(kept.clone()),
        )
        .await
        .unwrap();
    let settling = get(&journal, &record.id).await;
    assert_eq!((settling.state, settling.attempts), (Settling, 1));
    assert_eq!(settling.response.as_ref(), Some(&kept));
    assert_eq!(settling.response_status, Some(200));
    journal
        .advance(
            &record.id,
            Transition::new(&[Settling], Settled, LEAP_DAY + 60).transaction("0xabc"),
        )
        .await
        .unwrap();
    let settled = get(&journal, &record.id).await;
    assert_eq!(settled.state, Settled);
    assert_eq!(settled.transaction.as_deref(), Some("0xabc"));
    assert_eq!(settled.settled_amount, Some(settled.amount));
    assert_eq!(settled.updated_at, LEAP_DAY + 60);
    assert_eq!(settled.response, Some(kept));
    assert_eq!(settled.facilitator_request, record.facilitator_request);
    let error = journal
        .advance(
            &record.id,
            Transition::new(&[Settling], Settled, LEAP_DAY + 70),
        )
        .await
        .unwrap_err();
    match error {
        JournalError::Conflict { current, .. } => assert_eq!(*current, settled),
        other => panic!("{other}"),
    }
    let missing = journal
        .advance(
            "no-such-id",
            Transition::new(&[Verified], Settling, LEAP_DAY),
        )
        .await
        .unwrap_err();
    assert!(matches!(missing, JournalError::NotFound(_)), "{missing}");
}

/// Many payments written at once (what group commit batches): every insert, transition and
/// kept response lands on its own record.
pub(crate) async fn of_300_concurrent_payments_every_write_lands<J: Journal>(journals: Vec<J>) {
    let journal = Arc::new(single(journals));
    let tasks: Vec<_> = (1000..1300u64)
        .map(|n| {
            let journal = journal.clone();
            tokio::spawn(async move {
                let Inserted::Created(record) = insert(&*journal, payment(n)).await else {
                    panic!("payment {n} is new");
                };
                let body = format!("answer {n}").into_bytes();
                journal
                    .transition(
                        &record.id,
                        Transition::new(&[Verified], Settling, LEAP_DAY + n)
                            .keep_response(response(200, Some(&body))),
                    )
                    .await
                    .unwrap();
                journal
                    .transition(
                        &record.id,
                        Transition::new(&[Settling], Settled, LEAP_DAY + n + 1)
                            .transaction(format!("0x{n:x}")),
                    )
                    .await
                    .unwrap();
                (n, record.id)
            })
        })
        .collect();
    for task in tasks {
        let (n, id) = task.await.unwrap();
        let record = get(&*journal, &id).await;
        assert_eq!(record.state, Settled, "payment {n}");
        assert_eq!(
            record.transaction.as_deref(),
            Some(format!("0x{n:x}").as_str())
        );
        let kept = record.response.expect("kept");
        assert_eq!(
            kept.body,
            Some(format!("answer {n}").into_bytes()),
            "payment {n}"
        );
        assert_eq!(record.nonce, format!("{n:#066x}"));
    }
    let all = journal
        .query(&Filter::default(), &Page::first(500))
        .await
        .unwrap();
    assert_eq!(all.records.len(), 300);
}
