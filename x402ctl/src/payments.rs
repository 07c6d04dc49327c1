//! `x402ctl payments`: list journaled payments and their totals, from a SQLite file or
//! Postgres, as a table or JSON.

use std::fmt::Write as _;

use serde::Serialize;
use x402_protocol::amount::format_units;
use x402_protocol::{Address, AssetInfo, NetworkRegistry, U256};
use x402_runtime::journal::{
    self, Filter, GroupBy, Journal as _, MAX_PAGE, Page, PaymentRecord, PaymentState, Total,
};

use crate::{Failure, PaymentsArgs, time};

/// Parses `--state`: one state name.
pub(crate) fn parse_state(value: &str) -> Result<PaymentState, String> {
    value.trim().parse().map_err(|e: journal::JournalError| {
        e.to_string()
            .trim_start_matches("invalid journal input: ")
            .to_owned()
    })
}

/// Parses `--totals`: what to group by.
pub(crate) fn parse_group(value: &str) -> Result<GroupBy, String> {
    value.trim().parse().map_err(|e: journal::JournalError| {
        e.to_string()
            .trim_start_matches("invalid journal input: ")
            .to_owned()
    })
}

/// Parses `--since` / `--until` into unix milliseconds: unix seconds (`1709164800`), RFC 3339
/// (`2024-02-29T00:00:00Z`, `2024-02-29T01:00:00+01:00`) or a UTC date (`2024-02-29`).
pub(crate) fn parse_time(value: &str) -> Result<u64, String> {
    let value = value.trim();
    let millis = if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        value
            .parse::<u64>()
            .ok()
            .and_then(|seconds| seconds.checked_mul(1000))
            .and_then(|ms| i64::try_from(ms).ok())
    } else if let Ok(time) = chrono::DateTime::parse_from_rfc3339(value) {
        Some(time.timestamp_millis())
    } else if let Ok(date) = chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        date.and_hms_opt(0, 0, 0)
            .map(|midnight| midnight.and_utc().timestamp_millis())
    } else {
        return Err(format!(
            "{value:?} is not a time: give unix seconds (1709164800), RFC 3339 \
             (2024-02-29T00:00:00Z) or a UTC date (2024-02-29)"
        ));
    };
    millis
        .and_then(|ms| u64::try_from(ms).ok())
        .ok_or_else(|| format!("{value:?} is out of range (before 1970 or too far ahead)"))
}

/// Turns a network name (`base`) into the CAIP-2 id the journal stores; CAIP-2 ids pass.
fn network_id(registry: &NetworkRegistry, value: &str) -> Result<String, Failure> {
    match registry.network(value) {
        Ok(network) => Ok(network.caip2.to_string()),
        Err(_) if value.contains(':') => Ok(value.to_owned()),
        Err(error) => Err(Failure::usage(format!("--network: {error}"))),
    }
}

/// What the registry knows about an asset on a network.
fn asset_info<'a>(
    registry: &'a NetworkRegistry,
    network: &str,
    asset: &str,
) -> Option<&'a AssetInfo> {
    let network = registry.network(network).ok()?;
    let address: Address = asset.parse().ok()?;
    registry.asset(network, address)
}

/// `0.01 USDC` when the token is known, otherwise `10000 (atomic)`.
fn amount(registry: &NetworkRegistry, network: &str, asset: &str, amount: U256) -> String {
    match asset_info(registry, network, asset) {
        Some(info) => format!("{} {}", format_units(amount, info.decimals), info.symbol),
        None => format!("{amount} (atomic)"),
    }
}

/// `base` for `eip155:8453`, or the id itself when unknown.
fn network_name(registry: &NetworkRegistry, network: &str) -> String {
    registry
        .network(network)
        .map_or_else(|_| network.to_owned(), |n| n.name.to_string())
}

/// `USDC`, or the address when unknown.
fn asset_name(registry: &NetworkRegistry, network: &str, asset: &str) -> String {
    asset_info(registry, network, asset).map_or_else(|| asset.to_owned(), |i| i.symbol.to_string())
}

/// `0x0ec72638…49b0`.
fn short(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= 16 {
        return text.to_owned();
    }
    let head: String = chars[..10].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}…{tail}")
}

/// Left-aligned columns, two spaces apart, with a header row.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let width = |i: usize| {
        rows.iter()
            .map(|row| row[i].chars().count())
            .chain([header[i].chars().count()])
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..header.len()).map(width).collect();
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                let _ = write!(text, "{cell:<w$}  ", w = widths[i]);
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

fn list_table(registry: &NetworkRegistry, records: &[PaymentRecord]) -> String {
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|r| {
            let shown = match (r.state, r.settled_amount) {
                (PaymentState::Settled, Some(settled)) => settled,
                _ => r.amount,
            };
            let state = if r.reconciled {
                format!("{} (reconciled)", r.state)
            } else {
                r.state.to_string()
            };
            vec![
                time::utc(r.created_at / 1000)
                    .trim_end_matches(" UTC")
                    .to_owned(),
                state,
                r.route.clone(),
                r.payer.clone(),
                amount(registry, &r.network, &r.asset, shown),
                network_name(registry, &r.network),
                r.transaction.as_deref().map(short).unwrap_or_default(),
                r.error_reason.clone().unwrap_or_default(),
                r.id.clone(),
            ]
        })
        .collect();
    table(
        &[
            "CREATED (UTC)",
            "STATE",
            "ROUTE",
            "PAYER",
            "AMOUNT",
            "NETWORK",
            "TRANSACTION",
            "REASON",
            "ID",
        ],
        &rows,
    )
}

fn totals_table(registry: &NetworkRegistry, group: GroupBy, totals: &[Total]) -> String {
    let by_network = group == GroupBy::Network;
    let rows: Vec<Vec<String>> = totals
        .iter()
        .map(|t| {
            let mut row = vec![if by_network {
                network_name(registry, &t.group)
            } else {
                t.group.clone()
            }];
            if !by_network {
                row.push(network_name(registry, &t.network));
            }
            row.extend([
                asset_name(registry, &t.network, &t.asset),
                t.count.to_string(),
                amount(registry, &t.network, &t.asset, t.authorized),
                t.settled_count.to_string(),
                amount(registry, &t.network, &t.asset, t.settled),
            ]);
            row
        })
        .collect();
    let group_header = group.as_str().to_uppercase();
    let mut header = vec![group_header.as_str()];
    if !by_network {
        header.push("NETWORK");
    }
    header.extend([
        "ASSET",
        "PAYMENTS",
        "AUTHORIZED",
        "SETTLED",
        "SETTLED AMOUNT",
    ]);
    table(&header, &rows)
}

/// A total in JSON, with the token's symbol and decimals when known.
#[derive(Serialize)]
struct TotalJson<'a> {
    #[serde(flatten)]
    total: &'a Total,
    #[serde(skip_serializing_if = "Option::is_none")]
    symbol: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    decimals: Option<u8>,
}

fn filter(args: &PaymentsArgs, registry: &NetworkRegistry) -> Result<Filter, Failure> {
    let filter = Filter {
        route: args.route.clone(),
        payer: args.payer.clone(),
        states: args.state.clone(),
        network: args
            .network
            .as_deref()
            .map(|n| network_id(registry, n))
            .transpose()?,
        asset: None,
        since: args.since,
        until: args.until,
    };
    if let (Some(since), Some(until)) = (filter.since, filter.until)
        && since >= until
    {
        return Err(Failure::usage("--since must be before --until"));
    }
    Ok(filter)
}

fn journal_failure(error: journal::JournalError) -> Failure {
    match error {
        journal::JournalError::Invalid(message) => Failure::usage(message),
        other => Failure::http(other.to_string()),
    }
}

/// Runs `x402ctl payments`.
pub(crate) async fn run(args: PaymentsArgs) -> Result<(), Failure> {
    let registry = NetworkRegistry::builtin();
    let filter = filter(&args, &registry)?;
    if args.limit > MAX_PAGE {
        return Err(Failure::usage(format!("--limit is at most {MAX_PAGE}")));
    }
    let journal = journal::connect_existing(&args.journal)
        .await
        .map_err(journal_failure)?;
    let mut out = String::new();
    if let Some(group) = args.totals {
        let totals = journal
            .totals(group, &filter)
            .await
            .map_err(journal_failure)?;
        if args.json {
            let totals: Vec<TotalJson<'_>> = totals
                .iter()
                .map(|total| {
                    let info = asset_info(&registry, &total.network, &total.asset);
                    TotalJson {
                        total,
                        symbol: info.map(|i| i.symbol.as_ref()),
                        decimals: info.map(|i| i.decimals),
                    }
                })
                .collect();
            let json = serde_json::json!({ "group_by": group, "totals": totals });
            let _ = writeln!(out, "{json}");
        } else if totals.is_empty() {
            out.push_str("no payments match\n");
        } else {
            out.push_str(&totals_table(&registry, group, &totals));
        }
    } else {
        let page = journal
            .query(&filter, &Page::first(args.limit))
            .await
            .map_err(journal_failure)?;
        let more = page.next.is_some();
        if args.json {
            let json = serde_json::json!({ "payments": page.records, "more": more });
            let _ = writeln!(out, "{json}");
        } else if page.records.is_empty() {
            out.push_str("no payments match\n");
        } else {
            out.push_str(&list_table(&registry, &page.records));
        }
        if more {
            eprintln!(
                "x402ctl: showing the newest {} matching payments; more match (raise --limit, up to {MAX_PAGE}, or narrow the filters)",
                page.records.len()
            );
        }
    }
    print!("{out}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_in_every_accepted_form() {
        // 2024-02-29T00:00:00Z, checked with Python's datetime.
        let leap_day = 1_709_164_800_000;
        assert_eq!(parse_time("1709164800"), Ok(leap_day));
        assert_eq!(parse_time("2024-02-29T00:00:00Z"), Ok(leap_day));
        assert_eq!(parse_time("2024-02-29T01:00:00+01:00"), Ok(leap_day));
        assert_eq!(parse_time("2024-02-28T19:00:00-05:00"), Ok(leap_day));
        assert_eq!(parse_time("2024-02-29T00:00:00.250Z"), Ok(leap_day + 250));
        assert_eq!(parse_time("2024-02-29"), Ok(leap_day));
        assert_eq!(parse_time("0"), Ok(0));
        for bad in [
            "",
            "yesterday",
            "2024-02-30",
            "1969-12-31T23:59:59Z",
            "-5",
            "99999999999999999999",
        ] {
            assert!(parse_time(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn amounts_use_token_units_when_the_token_is_known() {
        let registry = NetworkRegistry::builtin();
        let usdc_base = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913";
        assert_eq!(
            amount(&registry, "eip155:8453", usdc_base, U256::from(10_000u64)),
            "0.01 USDC"
        );
        assert_eq!(
            amount(
                &registry,
                "eip155:8453",
                &usdc_base.to_lowercase(),
                U256::from(1u64)
            ),
            "0.000001 USDC"
        );
        assert_eq!(
            amount(
                &registry,
                "eip155:8453",
                "0x0000000000000000000000000000000000000001",
                U256::from(5u64)
            ),
            "5 (atomic)"
        );
        assert_eq!(
            amount(&registry, "solana:mainnet", "EPjFWdd5", U256::from(5u64)),
            "5 (atomic)"
        );
        assert_eq!(network_name(&registry, "eip155:8453"), "base");
        assert_eq!(network_name(&registry, "eip155:999999"), "eip155:999999");
    }

    #[test]
    fn tables_align_columns() {
        let text = table(
            &["A", "LONG HEADER", "C"],
            &[
                vec!["wide value".into(), "x".into(), "end".into()],
                vec!["y".into(), "z".into(), "".into()],
            ],
        );
        assert_eq!(
            text,
            "A           LONG HEADER  C\nwide value  x            end\ny           z\n"
        );
        assert_eq!(
            short("0x0ec72638d9cf4855bab4c1edfebe18c38dfa4e96f5884c22ae272d87c24249b0"),
            "0x0ec72638…49b0"
        );
        assert_eq!(short("0xabc"), "0xabc");
    }
}
