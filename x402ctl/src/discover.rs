//! `x402ctl discover <facilitator>`: what a facilitator's Bazaar catalogue lists for sale
//! (`GET /discovery/resources`, or `/discovery/search` with `--search`).

use std::fmt::Write as _;
use std::str::FromStr;

use serde_json::Value;
use x402_protocol::amount::format_units;
use x402_protocol::bazaar::DiscoveredResource;
use x402_protocol::{Address, NetworkRegistry, U256};
use x402_runtime::discovery::{DiscoveryClient, Filters, ListQuery, MAX_LIMIT, SearchQuery};

use crate::{DiscoverArgs, Failure};

/// Most entries `--all` fetches.
const ALL_CAP: u64 = 10_000;

/// One `accepts` entry for people: `0.01 USDC on base` or `10000 atomic units of <asset> on
/// <network>`.
fn price(accept: &Value, registry: &NetworkRegistry) -> String {
    let text = |key: &str| accept.get(key).and_then(Value::as_str).unwrap_or("?");
    let amount = accept
        .get("amount")
        .or_else(|| accept.get("maxAmountRequired"))
        .and_then(Value::as_str)
        .and_then(|a| U256::from_str_radix(a, 10).ok());
    let network = text("network");
    let known = registry.network(network).ok().and_then(|n| {
        let asset = Address::from_str(text("asset")).ok()?;
        let info = registry.asset(n, asset)?;
        Some((n.name.to_string(), info.symbol.to_string(), info.decimals))
    });
    match (amount, known) {
        (Some(amount), Some((name, symbol, decimals))) => format!(
            "{} {symbol} on {name} ({})",
            format_units(amount, decimals),
            text("scheme")
        ),
        (Some(amount), None) => format!(
            "{amount} atomic units of {} on {network} ({})",
            text("asset"),
            text("scheme")
        ),
        (None, _) => format!("? on {network}"),
    }
}

fn describe(resources: &[DiscoveredResource], registry: &NetworkRegistry) -> String {
    let mut text = String::new();
    for r in resources {
        let tool = r
            .extensions
            .as_ref()
            .and_then(|e| e.pointer("/bazaar/info/input/toolName"))
            .and_then(Value::as_str);
        let method = r
            .extensions
            .as_ref()
            .and_then(|e| e.pointer("/bazaar/info/input/method"))
            .and_then(Value::as_str);
        let _ = match (tool, method) {
            (Some(tool), _) => writeln!(text, "{} (mcp tool {tool})", r.resource),
            (None, Some(method)) => writeln!(text, "{method} {}", r.resource),
            (None, None) => writeln!(text, "{} ({})", r.resource, r.kind),
        };
        if let Some(name) = &r.service_name {
            let _ = writeln!(text, "  service      {name}");
        }
        if let Some(description) = r.description.as_deref().filter(|d| !d.is_empty()) {
            let _ = writeln!(text, "  description  {description}");
        }
        for accept in &r.accepts {
            let _ = writeln!(text, "  price        {}", price(accept, registry));
        }
        if let Some(tags) = &r.tags {
            let _ = writeln!(text, "  tags         {}", tags.join(", "));
        }
    }
    text
}

fn filters(args: &DiscoverArgs) -> Filters {
    Filters {
        kind: args.kind.clone(),
        pay_to: args.pay_to.clone(),
        scheme: args.scheme.clone(),
        network: args.network.clone(),
        extensions: args.extension.clone(),
    }
}

pub(crate) async fn run(args: DiscoverArgs) -> Result<(), Failure> {
    if args
        .kind
        .as_deref()
        .is_some_and(|k| k != "http" && k != "mcp")
    {
        return Err(Failure::usage("--type is http or mcp"));
    }
    let client =
        DiscoveryClient::new(&args.facilitator).map_err(|e| Failure::usage(e.to_string()))?;
    let registry = NetworkRegistry::builtin();
    let limit = args.limit.clamp(1, MAX_LIMIT);
    if let Some(words) = &args.search {
        let query = SearchQuery {
            query: words.clone(),
            filters: filters(&args),
            limit,
            cursor: None,
        };
        let found = client
            .search(&query)
            .await
            .map_err(|e| Failure::http(format!("{}: {e}", args.facilitator)))?;
        if args.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&found).unwrap_or_default()
            );
        } else {
            print!("{}", describe(&found.resources, &registry));
            eprintln!(
                "x402ctl discover: {} match(es) for {words:?}",
                found.resources.len()
            );
        }
        return Ok(());
    }
    let mut query = ListQuery {
        filters: filters(&args),
        limit,
        offset: args.offset,
    };
    let mut items = Vec::new();
    let mut total;
    loop {
        let page = client
            .list(&query)
            .await
            .map_err(|e| Failure::http(format!("{}: {e}", args.facilitator)))?;
        total = page.pagination.total;
        let got = page.items.len() as u64;
        items.extend(page.items);
        query.offset += got;
        if !args.all || got == 0 || query.offset >= total || items.len() as u64 >= ALL_CAP {
            break;
        }
    }
    if args.json {
        let body = serde_json::json!({"x402Version": 2, "items": items, "total": total});
        println!(
            "{}",
            serde_json::to_string_pretty(&body).unwrap_or_default()
        );
    } else {
        print!("{}", describe(&items, &registry));
        eprintln!(
            "x402ctl discover: {} of {total} resource(s) from offset {}",
            items.len(),
            args.offset
        );
    }
    Ok(())
}
