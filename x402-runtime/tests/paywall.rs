//! The browser paywall as the runtime renders it: who gets the page, what it carries, and that
//! nothing a route says can break out of it. The page itself is driven in a real browser by
//! `x402-tests/tests/paywall_browser.rs`.

use crate::common;

use std::time::Duration;

use common::{Req, World, rejected, world, world_with};
use x402_protocol::{ProtocolVersion, codec, headers};
use x402_runtime::paywall::PaywallConfig;
use x402_runtime::{AccessSpec, Decision, ResponseParts, RouteSpec};

const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
const CHROME: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36";

/// Everything a route author controls that ends up in the page, made as hostile as possible.
const HOSTILE: &str =
    "</script><script>alert(1)</script><!-- \"quoted\" & 'single' {{x402:script}} \u{2028}</title>";

static REPORT: RouteSpec = RouteSpec::fixed("0.01 USDC")
    .networks(&["base-sepolia"])
    .description(HOSTILE);
static MULTI: RouteSpec = RouteSpec::fixed("$0.02").networks(&["base-sepolia", "base"]);
static JSON_ONLY: RouteSpec = RouteSpec::fixed("0.01 USDC")
    .networks(&["base-sepolia"])
    .no_paywall();
static V1_ONLY: RouteSpec = RouteSpec::fixed("0.01 USDC")
    .networks(&["base-sepolia"])
    .only(ProtocolVersion::V1);

static CUSTOM_LOOK: PaywallConfig = PaywallConfig::new()
    .app_name("Reports & Co")
    .template(
        "<!doctype html><html><head><title>{{title}}</title>{{x402:head}}</head>\
         <body><header class=\"brand\">{{app_name}} sells {{description}} for {{price}} on {{network}}</header>\
         {{x402:body}}<footer>{{unknown}}</footer></body></html>",
    );
static CUSTOM: RouteSpec = RouteSpec::fixed("0.05 USDC")
    .networks(&["base-sepolia"])
    .description("Annual report")
    .paywall(&CUSTOM_LOOK);

fn browser(path: &'static str) -> Req {
    Req::get(path)
        .with("accept", BROWSER_ACCEPT)
        .with("user-agent", CHROME)
}

fn with_paywall(config: PaywallConfig) -> World {
    world_with(|b| b.embedded_facilitator().paywall(config))
}

async fn respond(world: &World, spec: &'static RouteSpec, request: Req) -> ResponseParts {
    rejected(world.gate.evaluate(&request, spec).await).to_response()
}

fn body(parts: &ResponseParts) -> &str {
    std::str::from_utf8(&parts.body).unwrap()
}

/// The page's data block, parsed.
fn page_data(page: &str) -> serde_json::Value {
    let start = page.find("id=\"x402-data\">").expect("data block") + "id=\"x402-data\">".len();
    let end = start + page[start..].find("</script>").expect("data block end");
    serde_json::from_str(&page[start..end]).expect("the data block is JSON")
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.to_ascii_lowercase().matches(needle).count()
}

#[tokio::test]
async fn off_by_default_browsers_get_json_like_everyone() {
    let world = world();
    let parts = respond(&world, &REPORT, browser("/report")).await;
    assert_eq!(parts.status, 402);
    assert_eq!(parts.header("content-type"), Some("application/json"));
    assert!(body(&parts).starts_with('{'));
}

#[tokio::test]
async fn browsers_get_the_page_and_programs_keep_json() {
    let world = with_paywall(PaywallConfig::new().app_name("Example Shop"));
    let page = respond(&world, &REPORT, browser("/report")).await;
    assert_eq!(page.status, 402);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(page.header("cache-control"), Some("no-store"));
    for name in ["content-type", "cache-control"] {
        let count = page.headers.iter().filter(|(n, _)| *n == name).count();
        assert_eq!(count, 1, "{name} is set once");
    }
    assert!(page.header("access-control-expose-headers").is_some());
    assert!(body(&page).starts_with("<!doctype html>"));
    assert!(body(&page).contains("Example Shop"));
    assert!(body(&page).contains("0.01 USDC"));
    assert!(body(&page).contains("Base Sepolia"));
    assert!(body(&page).contains(">Testnet<"));

    // Programs asking the same URL get the same challenge as JSON.
    let api = respond(&world, &REPORT, Req::get("/report")).await;
    assert_eq!(api.header("content-type"), Some("application/json"));
    assert_eq!(
        page.header(headers::PAYMENT_REQUIRED),
        api.header(headers::PAYMENT_REQUIRED)
    );
    let no_mozilla = Req::get("/report")
        .with("accept", "text/html")
        .with("user-agent", "curl/8.5.0");
    let wants_json = Req::get("/report")
        .with("accept", "application/json")
        .with("user-agent", CHROME);
    for request in [no_mozilla, wants_json] {
        let parts = respond(&world, &REPORT, request).await;
        assert_eq!(parts.header("content-type"), Some("application/json"));
        // Like every 402 (main's rule since the core refactor), not only the page.
        assert_eq!(parts.header("cache-control"), Some("no-store"));
    }
    // And the page was not cached in place of the JSON (nor the other way round).
    let again = respond(&world, &REPORT, browser("/report")).await;
    assert_eq!(again, page);
}

#[tokio::test]
async fn nothing_a_route_says_escapes_its_place_in_the_page() {
    let world = with_paywall(PaywallConfig::new());
    let parts = respond(&world, &REPORT, browser("/report?q=</script>")).await;
    let page = body(&parts);
    // Our two scripts (data and code) and nothing else; no comment was opened.
    assert_eq!(count(page, "<script"), 2, "{page}");
    assert_eq!(count(page, "</script"), 2, "{page}");
    assert_eq!(count(page, "<!--"), 0);
    assert_eq!(count(page, "</title"), 1);
    // The description is text in the heading, and its placeholder lookalike was not expanded.
    assert!(page.contains(
        "<h1 id=\"x402-description\">&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;&lt;!-- \
         &quot;quoted&quot; &amp; &#39;single&#39; {{x402:script}} \u{2028}&lt;/title&gt;</h1>"
    ));
    // The data block means exactly what the PAYMENT-REQUIRED header says, and holds no
    // character a script parser could take for more than a string.
    let block = &page[page.find("id=\"x402-data\">").unwrap()..];
    let block = &block[..block.find("</script>").unwrap()];
    assert!(
        !block.contains('\u{2028}') && !block[1..].contains('<'),
        "{block}"
    );
    let data = page_data(page);
    let header: serde_json::Value =
        codec::decode(parts.header(headers::PAYMENT_REQUIRED).unwrap(), 1 << 16).unwrap();
    assert_eq!(data["paymentRequired"], header);
    assert_eq!(data["paymentRequired"]["resource"]["description"], HOSTILE);
    assert_eq!(
        data["paymentRequired"]["resource"]["url"],
        "http://api.test/report?q=</script>"
    );
}

#[tokio::test]
async fn the_page_lists_every_way_to_pay_in_accepts_order() {
    let world = with_paywall(PaywallConfig::new());
    let parts = respond(&world, &MULTI, browser("/multi")).await;
    let data = page_data(body(&parts));
    let options = data["options"].as_array().unwrap();
    let accepts = data["paymentRequired"]["accepts"].as_array().unwrap();
    assert_eq!(options.len(), 2);
    assert_eq!(accepts.len(), 2);
    for (i, option) in options.iter().enumerate() {
        assert_eq!(option["index"], i);
        assert_eq!(option["network"], accepts[i]["network"]);
        assert_eq!(option["family"], "eip155");
        assert_eq!(option["price"], "0.02");
        assert_eq!(option["symbol"], "USDC");
        assert!(option["addChain"]["rpcUrls"][0].is_string());
    }
    assert_eq!(options[0]["chainId"], 84532);
    assert_eq!(options[0]["networkName"], "Base Sepolia");
    assert_eq!(options[0]["testnet"], true);
    assert_eq!(options[1]["chainId"], 8453);
    assert_eq!(options[1]["networkName"], "Base");
    assert_eq!(options[1]["testnet"], false);
}

#[tokio::test]
async fn routes_opt_out_or_bring_their_own_look() {
    // The server serves the paywall, this route does not.
    let world = with_paywall(PaywallConfig::new());
    let parts = respond(&world, &JSON_ONLY, browser("/json")).await;
    assert_eq!(parts.header("content-type"), Some("application/json"));

    // The server has none, this route has its own template.
    let plain = common::world();
    let parts = respond(&plain, &CUSTOM, browser("/annual")).await;
    assert_eq!(
        parts.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let page = body(&parts);
    assert!(page.contains(
        "<header class=\"brand\">Reports &amp; Co sells Annual report for 0.05 USDC on Base Sepolia</header>"
    ));
    assert!(page.contains("<title>Annual report</title>"));
    assert!(page.contains("<footer>{{unknown}}</footer>"));
    assert!(page.contains("id=\"x402-pay\""));
    // The template forgot {{x402:script}}: it goes before </body>.
    let script = page.find("id=\"x402-data\"").expect("the script was added");
    assert!(script > page.find("<footer>").unwrap());
    assert!(script < page.find("</body>").unwrap());
    assert_eq!(page_data(page)["appName"], "Reports & Co");
}

#[tokio::test]
async fn only_the_bare_v2_challenge_becomes_a_page() {
    let world = with_paywall(PaywallConfig::new());
    // A v1-only route: the page pays with v2, so browsers get the v1 JSON.
    let parts = respond(&world, &V1_ONLY, browser("/v1")).await;
    assert_eq!(parts.header("content-type"), Some("application/json"));

    // A payment that fails is answered in JSON, for the page's script to read.
    let (name, value) = world
        .pay(
            &REPORT,
            Req::get("/report"),
            ProtocolVersion::V2,
            "eip155:84532",
        )
        .await;
    let paid = browser("/report").with(name, value.clone());
    let Decision::Admitted(_) = world.gate.evaluate(&paid, &REPORT).await else {
        panic!("the first use of the payment is accepted");
    };
    // (Sent to another resource, so that it is a plain replay, not a copy the journal
    // recognises as being served.)
    let replayed = browser("/elsewhere").with(name, value);
    let parts = respond(&world, &REPORT, replayed).await;
    assert_eq!(parts.status, 402);
    assert_eq!(parts.header("content-type"), Some("application/json"));
    let json: serde_json::Value = serde_json::from_slice(&parts.body).unwrap();
    assert_eq!(
        json["error"], "invalid_exact_evm_nonce_already_used",
        "{json}"
    );
}

#[tokio::test]
async fn a_browser_whose_access_lapsed_gets_the_page_with_the_reason() {
    static HOURLY: RouteSpec = RouteSpec::fixed("0.05 USDC")
        .networks(&["base-sepolia"])
        .access(AccessSpec {
            duration: Some(Duration::from_secs(3600)),
            uses: None,
            scope: None,
        });
    let world = with_paywall(PaywallConfig::new());
    let lapsed = browser("/hourly").with("x402-entitlement", "x402e1.forged.token");
    let parts = respond(&world, &HOURLY, lapsed).await;
    assert_eq!(
        parts.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let reason = page_data(body(&parts))["paymentRequired"]["error"].clone();
    assert!(
        reason
            .as_str()
            .is_some_and(|r| r.starts_with("entitlement_")),
        "{reason}"
    );
    // A program with the same token gets the JSON with the same reason.
    let program = Req::get("/hourly").with("x402-entitlement", "x402e1.forged.token");
    let parts = respond(&world, &HOURLY, program).await;
    assert_eq!(parts.header("content-type"), Some("application/json"));
    let json: serde_json::Value = serde_json::from_slice(&parts.body).unwrap();
    assert_eq!(json["error"], reason);
}

#[tokio::test]
async fn unsafe_colours_and_logos_are_left_out() {
    let world = with_paywall(
        PaywallConfig::new()
            .primary_color("red;}</style><script>alert(1)</script>")
            .logo_url("javascript:alert(1)"),
    );
    let parts = respond(&world, &REPORT, browser("/report")).await;
    let page = body(&parts);
    assert!(page.contains(&format!(
        "--x402-primary:{}",
        x402_runtime::paywall::DEFAULT_PRIMARY_COLOR
    )));
    assert!(!page.contains("javascript:"));
    assert!(!page.contains("x402-logo\" src"));
    assert_eq!(count(page, "<script"), 2);

    let world = with_paywall(
        PaywallConfig::new()
            .primary_color("#0f766e")
            .logo_url("/logo.svg"),
    );
    let page = respond(&world, &REPORT, browser("/report")).await;
    assert!(body(&page).contains("--x402-primary:#0f766e"));
    assert!(body(&page).contains("<img class=\"x402-logo\" src=\"/logo.svg\" alt=\"\">"));
}

#[tokio::test]
async fn the_default_page_stays_small() {
    let world = with_paywall(PaywallConfig::new());
    let parts = respond(&world, &MULTI, browser("/multi")).await;
    let required = parts.header(headers::PAYMENT_REQUIRED).unwrap().len() * 3 / 4;
    let page = parts.body.len();
    eprintln!("paywall page: {page} bytes, of which ~{required} are the PaymentRequired");
    assert!(page - required < 20 * 1024, "the page grew to {page} bytes");
}

#[tokio::test]
async fn reloads_get_the_kept_page_and_other_urls_their_own() {
    static BRIEF: RouteSpec = RouteSpec::fixed("0.01 USDC")
        .networks(&["base-sepolia"])
        .description("Daily brief")
        .access(AccessSpec {
            duration: Some(Duration::from_secs(3600)),
            uses: None,
            scope: None,
        });
    let world = with_paywall(PaywallConfig::new());
    let first = respond(&world, &BRIEF, browser("/brief")).await;
    assert_eq!(
        first.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let reload = respond(&world, &BRIEF, browser("/brief")).await;
    assert_eq!(reload, first);
    // The same buffer: served from the route's cache, not rendered again.
    assert_eq!(reload.body.as_ptr(), first.body.as_ptr());

    // Another URL of the route is rendered for its own resource.
    let other = respond(&world, &BRIEF, browser("/brief?day=monday")).await;
    assert_ne!(other.body.as_ptr(), first.body.as_ptr());
    let url = page_data(body(&other))["paymentRequired"]["resource"]["url"].clone();
    assert!(
        url.as_str()
            .is_some_and(|u| u.ends_with("/brief?day=monday")),
        "{url}"
    );

    // A lapsed entitlement's page carries its reason and is not kept as the bare page.
    let lapsed = browser("/brief").with("x402-entitlement", "x402e1.forged.token");
    let lapsed = respond(&world, &BRIEF, lapsed).await;
    let bare_error = page_data(body(&first))["paymentRequired"]["error"].clone();
    let lapsed_error = page_data(body(&lapsed))["paymentRequired"]["error"].clone();
    assert!(
        lapsed_error
            .as_str()
            .is_some_and(|r| r.starts_with("entitlement_")),
        "{lapsed_error}"
    );
    let again = respond(&world, &BRIEF, browser("/brief")).await;
    assert_eq!(again, first);
    assert_eq!(
        page_data(body(&again))["paymentRequired"]["error"],
        bare_error
    );

    // Programs still get JSON for the URL whose page is kept.
    let api = respond(&world, &BRIEF, Req::get("/brief")).await;
    assert_eq!(api.header("content-type"), Some("application/json"));
}
