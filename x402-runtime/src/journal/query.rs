//! Listing and totals: filters, pages, groupings.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use x402_protocol::U256;
use x402_protocol::serde_util::decimal_u256;

use super::{JournalError, PaymentRecord, PaymentState, canonical_address};

/// Which records a query or a total looks at. Empty fields match everything; set fields must
/// all match.
///
/// ```
/// use x402_runtime::journal::{Filter, PaymentState};
/// let filter = Filter::default()
///     .route("/weather")
///     .state(PaymentState::Settled)
///     .since(1_700_000_000_000);
/// assert_eq!(filter.states, vec![PaymentState::Settled]);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Exactly this route.
    pub route: Option<String>,
    /// Exactly this payer (EVM addresses in any letter case).
    pub payer: Option<String>,
    /// Any of these states (all states when empty).
    pub states: Vec<PaymentState>,
    /// Exactly this CAIP-2 network.
    pub network: Option<String>,
    /// Exactly this asset.
    pub asset: Option<String>,
    /// Created at or after this time, unix milliseconds.
    pub since: Option<u64>,
    /// Created before this time, unix milliseconds.
    pub until: Option<u64>,
}

impl Filter {
    /// Only this route.
    pub fn route(mut self, route: impl Into<String>) -> Self {
        self.route = Some(route.into());
        self
    }

    /// Only this payer.
    pub fn payer(mut self, payer: impl Into<String>) -> Self {
        self.payer = Some(payer.into());
        self
    }

    /// Also this state (call again for more).
    pub fn state(mut self, state: PaymentState) -> Self {
        if !self.states.contains(&state) {
            self.states.push(state);
        }
        self
    }

    /// Only this network.
    pub fn network(mut self, network: impl Into<String>) -> Self {
        self.network = Some(network.into());
        self
    }

    /// Only this asset.
    pub fn asset(mut self, asset: impl Into<String>) -> Self {
        self.asset = Some(asset.into());
        self
    }

    /// Created at or after `ms`.
    pub fn since(mut self, ms: u64) -> Self {
        self.since = Some(ms);
        self
    }

    /// Created before `ms`.
    pub fn until(mut self, ms: u64) -> Self {
        self.until = Some(ms);
        self
    }

    /// Whether `record` passes the filter (what the SQL backends express in `WHERE`).
    pub fn matches(&self, record: &PaymentRecord) -> bool {
        let payer = self.payer.as_deref().map(canonical_address);
        self.route.as_ref().is_none_or(|r| *r == record.route)
            && payer.is_none_or(|p| p == record.payer)
            && (self.states.is_empty() || self.states.contains(&record.state))
            && self.network.as_ref().is_none_or(|n| *n == record.network)
            && self.asset.as_ref().is_none_or(|a| *a == record.asset)
            && self.since.is_none_or(|since| record.created_at >= since)
            && self.until.is_none_or(|until| record.created_at < until)
    }

    /// The filter as the SQL backends bind it: payer normalised, times checked.
    pub(crate) fn normalized(&self) -> Result<Filter, JournalError> {
        for time in [self.since, self.until].into_iter().flatten() {
            super::keys::check_ms(time)?;
        }
        Ok(Filter {
            payer: self.payer.as_deref().map(canonical_address),
            ..self.clone()
        })
    }
}

/// Where a page of records starts: after this record, in the listing's order (newest first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// `created_at` of the last record of the previous page.
    pub created_at: u64,
    /// `id` of the last record of the previous page.
    pub id: String,
}

impl Cursor {
    /// The cursor that continues after `record`.
    pub fn after(record: &PaymentRecord) -> Self {
        Cursor {
            created_at: record.created_at,
            id: record.id.clone(),
        }
    }

    /// Whether `record` comes after the cursor, newest first.
    pub(crate) fn admits(&self, record: &PaymentRecord) -> bool {
        (record.created_at, record.id.as_str()) < (self.created_at, self.id.as_str())
    }
}

/// One page of a listing, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Page {
    /// At most this many records (capped at [`MAX_PAGE`]).
    pub limit: u32,
    /// Start after this record; `None` for the first page.
    pub after: Option<Cursor>,
}

/// The largest page a query returns.
pub const MAX_PAGE: u32 = 10_000;

impl Page {
    /// The first `limit` records.
    pub fn first(limit: u32) -> Self {
        Page { limit, after: None }
    }

    /// The `limit` records after `cursor`.
    pub fn after(cursor: Cursor, limit: u32) -> Self {
        Page {
            limit,
            after: Some(cursor),
        }
    }

    pub(crate) fn effective_limit(&self) -> u32 {
        self.limit.min(MAX_PAGE)
    }
}

/// Records of one page, and where the next page starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Records {
    /// The records, newest first.
    pub records: Vec<PaymentRecord>,
    /// The cursor for the next page; `None` when this page was the last.
    pub next: Option<Cursor>,
}

impl Records {
    /// Builds a page from up to `limit + 1` records read: the extra one only says whether
    /// another page follows.
    pub(crate) fn from_overfetch(mut records: Vec<PaymentRecord>, limit: u32) -> Self {
        let limit = limit as usize;
        let more = records.len() > limit;
        records.truncate(limit);
        let next = if more {
            records.last().map(Cursor::after)
        } else {
            None
        };
        Records { records, next }
    }
}

/// What totals are grouped by, besides network and asset (amounts of different tokens are
/// never added together).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    /// The route.
    Route,
    /// The UTC day the payment was admitted (`YYYY-MM-DD`).
    Day,
    /// The payer.
    Payer,
    /// The network only.
    Network,
}

impl GroupBy {
    /// `route`, `day`, `payer` or `network`.
    pub const fn as_str(self) -> &'static str {
        match self {
            GroupBy::Route => "route",
            GroupBy::Day => "day",
            GroupBy::Payer => "payer",
            GroupBy::Network => "network",
        }
    }

    /// The group a record falls in.
    pub fn key(self, record: &PaymentRecord) -> String {
        match self {
            GroupBy::Route => record.route.clone(),
            GroupBy::Day => record.day(),
            GroupBy::Payer => record.payer.clone(),
            GroupBy::Network => record.network.clone(),
        }
    }
}

impl fmt::Display for GroupBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for GroupBy {
    type Err = JournalError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            GroupBy::Route,
            GroupBy::Day,
            GroupBy::Payer,
            GroupBy::Network,
        ]
        .into_iter()
        .find(|g| g.as_str().eq_ignore_ascii_case(s))
        .ok_or_else(|| {
            JournalError::Invalid(format!(
                "cannot group by {s:?} (one of: route, day, payer, network)"
            ))
        })
    }
}

/// The sums for one group, one network and one asset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Total {
    /// The group's value (a route, a day, a payer or a network).
    pub group: String,
    /// CAIP-2 network.
    pub network: String,
    /// The token; amounts are in its atomic units.
    pub asset: String,
    /// Records counted.
    pub count: u64,
    /// Sum of the amounts authorized.
    #[serde(with = "decimal_u256")]
    pub authorized: U256,
    /// Records that are `settled`.
    pub settled_count: u64,
    /// Sum of the amounts settled (settled records only).
    #[serde(with = "decimal_u256")]
    pub settled: U256,
}

/// Adds records up into totals, exactly; the memory backend and SQLite use it.
#[derive(Debug, Default)]
pub(crate) struct Totals {
    groups: BTreeMap<(String, String, String), Total>,
}

impl Totals {
    /// Counts one record of `group`.
    pub(crate) fn add(
        &mut self,
        group: String,
        network: String,
        asset: String,
        state: PaymentState,
        amount: U256,
        settled_amount: Option<U256>,
    ) -> Result<(), JournalError> {
        let total = self
            .groups
            .entry((group.clone(), network.clone(), asset.clone()))
            .or_insert_with(|| Total {
                group,
                network,
                asset,
                count: 0,
                authorized: U256::ZERO,
                settled_count: 0,
                settled: U256::ZERO,
            });
        total.count += 1;
        total.authorized = checked_sum(total.authorized, amount)?;
        if state == PaymentState::Settled {
            total.settled_count += 1;
            total.settled = checked_sum(total.settled, settled_amount.unwrap_or(amount))?;
        }
        Ok(())
    }

    /// The totals ordered by group, network and asset.
    pub(crate) fn finish(self) -> Vec<Total> {
        self.groups.into_values().collect()
    }
}

fn checked_sum(a: U256, b: U256) -> Result<U256, JournalError> {
    a.checked_add(b)
        .ok_or_else(|| JournalError::Overflow("a total exceeds 2^256 - 1".to_owned()))
}
