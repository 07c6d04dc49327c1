//! Fills the page template: escaped text, the inline style and script, and the page's data.

use std::borrow::Cow;
use std::sync::LazyLock;

use serde::Deserialize;
use x402_protocol::NetworkInfo;
use x402_protocol::amount::format_units;

use super::{DEFAULT_PRIMARY_COLOR, PaywallConfig, chains};
use crate::Challenge;

/// The default page; its `{{…}}` placeholders are those of the module docs.
const PAGE: &str = include_str!("page.html");
/// The payment card (`{{x402:body}}`).
const CARD: &str = include_str!("card.html");
/// The script and style, without indentation and comment lines.
static SCRIPT: LazyLock<String> = LazyLock::new(|| compact(include_str!("paywall.js")));
static STYLE: LazyLock<String> = LazyLock::new(|| compact(include_str!("paywall.css")));

/// Drops indentation, blank lines and whole-line comments. Lines stay lines, so JavaScript's
/// semicolon insertion sees the same code.
fn compact(source: &str) -> String {
    source
        .lines()
        .map(str::trim)
        .filter(|line| {
            let comment =
                line.starts_with("//") || (line.starts_with("/*") && line.ends_with("*/"));
            !(line.is_empty() || comment)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Renders the page for a challenge; `required` is its v2 `PaymentRequired` JSON.
pub(super) fn page(config: &PaywallConfig, challenge: &Challenge, required: &str) -> String {
    let context = Context::new(config, challenge, required);
    let template = match config.template_str() {
        Some(template) => complete(template),
        None => Cow::Borrowed(PAGE),
    };
    fill(&template, &context)
}

/// Adds what a custom template must have and lacks: the card when it has no pay button, and
/// the script.
fn complete(template: &str) -> Cow<'_, str> {
    let needs_card = !template.contains("{{x402:body}}") && !template.contains("x402-pay");
    let needs_script = !template.contains("{{x402:script}}");
    if !needs_card && !needs_script {
        return Cow::Borrowed(template);
    }
    if needs_card {
        tracing::warn!(
            target: "x402::paywall",
            "the paywall template has neither {{{{x402:body}}}} nor an x402-pay button; adding the default card"
        );
    }
    let insert = format!(
        "{}{}",
        if needs_card { "{{x402:body}}" } else { "" },
        if needs_script { "{{x402:script}}" } else { "" }
    );
    let at = template
        .to_ascii_lowercase()
        .rfind("</body>")
        .unwrap_or(template.len());
    Cow::Owned(format!("{}{insert}{}", &template[..at], &template[at..]))
}

/// Replaces each `{{name}}` the context knows; values are not scanned again.
fn fill(template: &str, context: &Context<'_>) -> String {
    let mut out = String::with_capacity(template.len() + 16 * 1024);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let value = after
            .find("}}")
            .and_then(|end| context.value(after[..end].trim()).map(|v| (v, end)));
        match value {
            Some((value, end)) => {
                out.push_str(&value);
                rest = &after[end + 2..];
            }
            None => {
                out.push_str("{{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[derive(Deserialize)]
struct Required {
    #[serde(default)]
    resource: Option<Resource>,
}

#[derive(Deserialize)]
struct Resource {
    #[serde(default)]
    url: String,
    #[serde(default)]
    description: Option<String>,
}

struct Context<'a> {
    config: &'a PaywallConfig,
    description: String,
    resource: String,
    price: String,
    network: String,
    testnet: bool,
    color: &'a str,
    logo: Option<&'a str>,
    data: String,
}

impl<'a> Context<'a> {
    fn new(config: &'a PaywallConfig, challenge: &Challenge, required: &str) -> Self {
        let resource = serde_json::from_str::<Required>(required)
            .ok()
            .and_then(|r| r.resource);
        let (resource, description) = match resource {
            Some(r) => (r.url, r.description.unwrap_or_default()),
            None => (challenge.resource().to_owned(), String::new()),
        };
        let options = challenge.options();
        let first = options.first();
        let price = first.map_or_else(String::new, |o| {
            format!(
                "{} {}",
                format_units(o.amount, o.asset.decimals),
                o.asset.symbol
            )
        });
        let network = first.map_or_else(String::new, |o| network_name(&o.network).into_owned());
        let testnet = config
            .testnet
            .unwrap_or_else(|| first.is_some_and(|o| o.network.testnet));
        let color = if is_plain_color(config.primary_color) {
            config.primary_color.trim()
        } else {
            tracing::warn!(target: "x402::paywall", color = %config.primary_color, "ignoring a primary colour that is not a plain CSS colour");
            DEFAULT_PRIMARY_COLOR
        };
        let logo = config.logo_url.map(str::trim).filter(|url| {
            let ok = is_safe_image_url(url);
            if !ok {
                tracing::warn!(target: "x402::paywall", %url, "ignoring a logo URL that is not http(s), data:image or a path");
            }
            ok
        });
        let option_data: Vec<serde_json::Value> = options
            .iter()
            .enumerate()
            .map(|(index, option)| {
                serde_json::json!({
                    // v2 `accepts` lists the route's options in order.
                    "index": index,
                    // The CAIP-2 namespace (`eip155`, `solana`) picks the page's payment builder.
                    "family": option.network.caip2.split(':').next().unwrap_or_default(),
                    "network": option.network.caip2,
                    "chainId": option.network.chain_id(),
                    "networkName": network_name(&option.network),
                    "symbol": option.asset.symbol,
                    "decimals": option.asset.decimals,
                    "price": format_units(option.amount, option.asset.decimals),
                    "testnet": option.network.testnet,
                    "prepaid": option.prepaid,
                    "addChain": option.network.chain_id().and_then(chains::known).map(chains::add_chain_params),
                })
            })
            .collect();
        let mut data = String::with_capacity(required.len() + 512 * options.len() + 128);
        data.push_str("{\"paymentRequired\":");
        data.push_str(required);
        data.push_str(",\"options\":");
        data.push_str(&serde_json::Value::from(option_data).to_string());
        data.push_str(",\"appName\":");
        data.push_str(&serde_json::Value::from(config.app_name).to_string());
        data.push_str(",\"testnet\":");
        data.push_str(if testnet { "true" } else { "false" });
        data.push('}');
        Context {
            config,
            description,
            resource,
            price,
            network,
            testnet,
            color,
            logo,
            data: escape_script_json(&data),
        }
    }

    fn heading(&self) -> &str {
        if self.description.is_empty() {
            "Paid content"
        } else {
            &self.description
        }
    }

    fn value(&self, name: &str) -> Option<Cow<'_, str>> {
        let text = |s: &str| Some(Cow::Owned(escape_html(s)));
        match name {
            "x402:head" => Some(Cow::Owned(format!(
                "<style>:root{{--x402-primary:{}}}\n{}</style>",
                self.color, *STYLE
            ))),
            "x402:body" => Some(Cow::Owned(fill(CARD, self))),
            "x402:script" => Some(Cow::Owned(format!(
                "<script type=\"application/json\" id=\"x402-data\">{}</script>\n<script>\n{}\n</script>",
                self.data, *SCRIPT
            ))),
            "x402:logo" => Some(Cow::Owned(self.logo.map_or_else(String::new, |url| {
                format!(
                    "<img class=\"x402-logo\" src=\"{}\" alt=\"\">",
                    escape_html(url)
                )
            }))),
            "x402:app" => Some(Cow::Owned(if self.config.app_name.is_empty() {
                String::new()
            } else {
                format!(
                    "<p class=\"x402-app\">{}</p>",
                    escape_html(self.config.app_name)
                )
            })),
            "x402:testnet" => Some(Cow::Borrowed(if self.testnet {
                " <span class=\"x402-badge\">Testnet</span>"
            } else {
                ""
            })),
            "title" => {
                let title = if !self.description.is_empty() {
                    &self.description
                } else if !self.config.app_name.is_empty() {
                    self.config.app_name
                } else {
                    "Payment required"
                };
                text(title)
            }
            "description" => text(self.heading()),
            "app_name" => text(self.config.app_name),
            "resource" => text(&self.resource),
            "price" => text(&self.price),
            "network" => text(&self.network),
            "logo_url" => text(self.logo.unwrap_or("")),
            "primary_color" => text(self.color),
            _ => None,
        }
    }
}

/// What people call a network: "Base Sepolia" rather than `base-sepolia`.
fn network_name(network: &NetworkInfo) -> Cow<'static, str> {
    match network.chain_id().and_then(chains::display_name) {
        Some(name) => Cow::Borrowed(name),
        None => Cow::Owned(network.name.to_string()),
    }
}

/// Escapes text for element content and quoted attribute values.
pub(super) fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Makes JSON safe inside `<script type="application/json">`: no `<` (so no `</script>` and no
/// `<!--`), no `>` or `&`, and no U+2028/U+2029. These characters can only occur inside JSON
/// strings, where the `\u` escapes mean the same.
pub(super) fn escape_script_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len() + 32);
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// A colour that cannot leave its CSS declaration: `#hex`, a name, or `rgb()`/`hsl()` with
/// numbers.
fn is_plain_color(color: &str) -> bool {
    let color = color.trim().to_ascii_lowercase();
    if let Some(hex) = color.strip_prefix('#') {
        return matches!(hex.len(), 3 | 4 | 6 | 8) && hex.bytes().all(|b| b.is_ascii_hexdigit());
    }
    if !color.is_empty() && color.len() <= 32 && color.bytes().all(|b| b.is_ascii_alphabetic()) {
        return true;
    }
    ["rgb(", "rgba(", "hsl(", "hsla("].iter().any(|function| {
        color
            .strip_prefix(function)
            .and_then(|rest| rest.strip_suffix(')'))
            .is_some_and(|inner| {
                inner
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b" .,%/-".contains(&b))
            })
    })
}

/// A logo URL: `https:`, `http:`, `data:image/`, or one without a scheme (a path).
fn is_safe_image_url(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("https://")
        || lower.starts_with("http://")
        || lower.starts_with("data:image/")
    {
        return true;
    }
    // No scheme: a path such as `/logo.svg` or `img/logo.png` (a colon before any slash would
    // be a scheme).
    !url.is_empty()
        && url
            .split('/')
            .next()
            .is_none_or(|first| !first.contains(':'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_cannot_escape_their_declaration() {
        for good in [
            "#fff",
            "#0f766e",
            "#0f766eaa",
            "teal",
            "rgb(1, 2, 3)",
            "hsl(200deg 50% 40%)",
        ] {
            assert!(is_plain_color(good), "{good}");
        }
        for bad in [
            "red;}body{display:none",
            "#12345",
            "</style>",
            "url(x)",
            "rgb(1,2,3);x",
            "",
        ] {
            assert!(!is_plain_color(bad), "{bad}");
        }
    }

    #[test]
    fn logos_are_images_not_scripts() {
        for good in [
            "https://cdn.example/logo.png",
            "/logo.svg",
            "img/logo.png",
            "data:image/png;base64,AA==",
        ] {
            assert!(is_safe_image_url(good), "{good}");
        }
        for bad in [
            "javascript:alert(1)",
            "JaVaScRiPt:alert(1)",
            "data:text/html,<b>",
            "vbscript:x",
            "",
        ] {
            assert!(!is_safe_image_url(bad), "{bad}");
        }
    }

    #[test]
    fn fills_known_placeholders_once_and_keeps_unknown_ones() {
        let config = PaywallConfig::new();
        let context = Context {
            config: &config,
            description: "{{x402:script}} & <b>".into(),
            resource: String::new(),
            price: "1 USDC".into(),
            network: String::new(),
            testnet: false,
            color: DEFAULT_PRIMARY_COLOR,
            logo: None,
            data: "{}".into(),
        };
        let out = fill("<h1>{{ description }}</h1>{{price}}{{nope}}{{", &context);
        assert_eq!(
            out,
            "<h1>{{x402:script}} &amp; &lt;b&gt;</h1>1 USDC{{nope}}{{"
        );
    }

    #[test]
    fn script_json_has_no_markup_characters_and_means_the_same() {
        let json = r#"{"d":"</script><!-- & \u2028 '"}"#;
        let json = json.replace("\\u2028", "\u{2028}");
        let escaped = escape_script_json(&json);
        assert!(!escaped.contains('<') && !escaped.contains('>') && !escaped.contains('&'));
        assert!(!escaped.contains('\u{2028}'));
        let a: serde_json::Value = serde_json::from_str(&json).unwrap();
        let b: serde_json::Value = serde_json::from_str(&escaped).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn compacting_keeps_code_lines() {
        let js =
            "// comment\n  const a = 1;\n\n  /* note */\n  const url = \"https://x\"; // tail\n";
        assert_eq!(
            compact(js),
            "const a = 1;\nconst url = \"https://x\"; // tail"
        );
    }
}
