//! Interop with the official `@x402/extensions` 2.27 from npm: its bazaar helpers validate and
//! parse the 402 extensions we produce (and agree with our own extraction), its validators
//! agree with ours on tricky route templates, service names, icon URLs and tags, and its
//! sign-in-with-x code rebuilds the very text we sign and accepts our signatures.
//!
//! The package is installed into `<workspace>/.tools` (as `scripts/test` does) when missing.
//! Without node or npm the test is skipped, and fails under `X402_REQUIRE_BACKENDS=1`.

use crate::common;
use crate::support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use x402_protocol::bazaar::{
    self, BazaarExtension, BodyType, HttpDeclaration, McpDeclaration, McpTransport, ServiceMetadata,
};
use x402_protocol::eip2612;
use x402_protocol::eip3009::LocalSigner;
use x402_protocol::siwx::{self, DeclareOptions};
use x402_protocol::{U256, v2};

const PACKAGE: &str = "@x402/extensions@2.27.0";

fn tools_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools")
}

/// `<workspace>/.tools/node_modules` with the package in it, installing it if needed; `None`
/// (after `skip`) when node or npm cannot be used here.
fn official_package() -> Option<PathBuf> {
    if Command::new("node").arg("--version").output().is_err() {
        support::backends::skip("node is not installed");
        return None;
    }
    let tools = tools_dir();
    let manifest = tools.join("node_modules/@x402/extensions/package.json");
    let installed = std::fs::read_to_string(&manifest)
        .ok()
        .and_then(|text| serde_json::from_str::<Value>(&text).ok())
        .is_some_and(|m| m["version"] == "2.27.0");
    if !installed {
        std::fs::create_dir_all(&tools).unwrap();
        let status = Command::new("npm")
            .args(["install", "--silent", "--no-audit", "--no-fund", "--prefix"])
            .arg(&tools)
            .arg(PACKAGE)
            .status();
        if !status.is_ok_and(|s| s.success()) {
            support::backends::skip(&format!("npm could not install {PACKAGE}"));
            return None;
        }
    }
    Some(tools.join("node_modules"))
}

fn requirement(network: &str) -> v2::PaymentRequirements {
    v2::PaymentRequirements {
        scheme: "exact".into(),
        network: network.into(),
        amount: U256::from(10_000u64),
        asset: "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913".into(),
        pay_to: "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC".into(),
        max_timeout_seconds: 300,
        extra: Some(json!({"name": "USD Coin", "version": "2"})),
    }
}

/// A 402 body as our server writes it, with `ext` as `extensions.bazaar`.
fn payment_required(url: &str, ext: &BazaarExtension, metadata: &ServiceMetadata) -> Value {
    let required = v2::PaymentRequired {
        x402_version: Default::default(),
        error: Some("payment_required".into()),
        resource: Some(v2::ResourceInfo {
            url: url.into(),
            description: "A paid thing".into(),
            mime_type: "application/json".into(),
            ..Default::default()
        }),
        accepts: vec![requirement("eip155:8453")],
        extensions: Some(json!({ bazaar::EXTENSION_KEY: ext.to_value() })),
    };
    let mut value = serde_json::to_value(required).unwrap();
    metadata.apply_to(&mut value["resource"]);
    value
}

fn gate_weather() -> BazaarExtension {
    bazaar::declare_http(&HttpDeclaration {
        input: Some(json!({"city": "Oslo"})),
        output_example: Some(json!({"temperature": 21, "unit": "C"})),
        ..Default::default()
    })
}

/// A discoverable route as a server declares it (what `#[paid(bazaar(...))]` expands to).
static GATE_WEATHER: x402_runtime::RouteSpec = x402_runtime::RouteSpec::fixed("$0.01")
    .networks(&["base-sepolia"])
    .description("Weather by city")
    .discoverable(gate_weather)
    .service_name("Gate Weather")
    .tags(&["weather"]);

/// The v2 402 a gate answers a request to [`GATE_WEATHER`] with, as sent.
fn gate_payment_required() -> Value {
    let gate: x402_runtime::Gate = x402_runtime::X402Builder::new()
        .embedded_facilitator()
        .pay_to(common::PAY_TO)
        .build()
        .unwrap();
    let challenge = gate
        .challenge(&common::Req::get("/weather?city=Oslo"), &GATE_WEATHER)
        .unwrap();
    serde_json::to_value(challenge.v2("payment_required")).unwrap()
}

fn bazaar_cases() -> Vec<(&'static str, Value)> {
    let metadata = ServiceMetadata {
        service_name: Some("Example Weather".into()),
        tags: Some(vec!["weather".into(), "Forecast".into(), "weather".into()]),
        icon_url: Some("https://cdn.example.test/icon.png".into()),
    };
    let query = bazaar::declare_http(&HttpDeclaration {
        input: Some(json!({"city": "Oslo"})),
        input_schema: Some(
            json!({"properties": {"city": {"type": "string"}}, "required": ["city"]}),
        ),
        output_example: Some(json!({"temperature": 21, "unit": "C"})),
        output_schema: Some(json!({"properties": {"temperature": {"type": "number"}}})),
        ..Default::default()
    })
    .for_request("GET", Some("/weather"), "/weather");
    let body = bazaar::declare_http(&HttpDeclaration {
        body_type: Some(BodyType::Json),
        input: Some(json!({"items": [1, 2]})),
        input_schema: Some(json!({"type": "object", "properties": {"items": {"type": "array"}}})),
        path_params_schema: Some(json!({"properties": {"id": {"type": "string"}}})),
        ..Default::default()
    })
    .for_request("POST", Some("/orders/{id}"), "/orders/42");
    let wildcard = bazaar::declare_http(&HttpDeclaration::default()).for_request(
        "DELETE",
        Some("/files/*"),
        "/files/report.pdf",
    );
    let mcp = bazaar::declare_mcp(&McpDeclaration {
        tool_name: "forecast".into(),
        input_schema: json!({"type": "object", "properties": {"place": {"type": "string"}}}),
        description: Some("Weather forecast".into()),
        transport: Some(McpTransport::Sse),
        example: Some(json!({"place": "Oslo"})),
        output_example: Some(json!({"days": []})),
        output_schema: None,
    });
    vec![
        (
            "query",
            payment_required(
                "https://api.example.test/weather?city=Oslo",
                &query,
                &metadata,
            ),
        ),
        (
            "body-dynamic",
            payment_required(
                "https://api.example.test/orders/42",
                &body,
                &ServiceMetadata::default(),
            ),
        ),
        (
            "wildcard",
            payment_required(
                "https://api.example.test:8443/files/report.pdf",
                &wildcard,
                &ServiceMetadata::default(),
            ),
        ),
        (
            "mcp",
            payment_required("https://api.example.test/mcp", &mcp, &metadata),
        ),
        // Last: earlier cases are also checked by position below.
        ("gate", gate_payment_required()),
    ]
}

fn predicates() -> Value {
    let long_icon = format!("https://cdn.example.test/{}", "a".repeat(2100));
    json!({
        "routeTemplate": [
            "/users/:id", "/", "", "users", "/a b", "/../x", "/a/..", "/%2e%2e/x", "/%252e%252e/x",
            "/%25252e%25252e/x", "/%2525252e%2525252e/x", "/%252525252e%252525252e/x",
            "/a%3A%2F%2Fb", "/%zz", "/%ff", "/%C3%A9", "/x/~y/z.json", "/a//b", "/:a/:b", "/%41",
            "/-_.~", "/%25%25", "/a?b", "/a#b", "/http://x"
        ],
        "serviceName": ["Weather", "", "x".repeat(32), "x".repeat(33), "tab\there", "ok name!", "ümlaut", "~", " "],
        "iconUrl": [
            "https://cdn.example.test/i.png", "http://cdn.example.test/i.png", "ftp://x.test/i",
            "https://localhost/i", "https://LOCALHOST/i", "https://localhost.localdomain/i",
            "https://127.0.0.1/i", "https://[::1]/i", "https://2130706433/i", "https://0x7f000001/i",
            "https://1.2.3/i", "https://example.123/i", "https://user:pw@cdn.example.test/i",
            "/rel.png", long_icon, "https://cdn.example.test:8443/i.png", "https://ip6-localhost/i",
            "HTTPS://CDN.EXAMPLE.TEST/I", "https://%6c%6fcalhost/i", "https://cdn.example.test./i",
            "javascript:alert(1)", ""
        ],
        "tags": [["a", "A", "b"], [], ["x".repeat(33), "ok"], [1, "z"], ["1", "2", "3", "4", "5", "6"], ["tab\t", "fine"], "notarray"]
    })
}

struct SiwxCase {
    name: &'static str,
    payload: siwx::SiwxPayload,
}

fn siwx_cases() -> Vec<SiwxCase> {
    let url = "https://api.example.test/reports/1";
    let now_ms = 1_796_050_053_926;
    let options = DeclareOptions {
        statement: Some("Sign in to reuse your purchase".into()),
        expiration: Some(std::time::Duration::from_secs(300)),
        networks: None,
    };
    let networks = ["eip155:84532", "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1"];
    let declaration =
        siwx::declare(url, &networks, &options, siwx::random_nonce(), now_ms).unwrap();
    let wallet = LocalSigner::random();
    let evm = siwx::sign_evm(&declaration.info, &declaration.supported_chains[0], &wallet).unwrap();
    let mut cases = vec![SiwxCase {
        name: "evm",
        payload: evm.clone(),
    }];

    let mut bare = declaration.info.clone();
    bare.statement = None;
    bare.expiration_time = None;
    bare.not_before = Some(siwx::format_timestamp(now_ms - 1000));
    bare.request_id = Some("req-1".into());
    let bare = siwx::sign_evm(&bare, &declaration.supported_chains[0], &wallet).unwrap();
    cases.push(SiwxCase {
        name: "evm-bare",
        payload: bare,
    });

    let mut lower = evm.clone();
    lower.address = lower.address.to_ascii_lowercase();
    cases.push(SiwxCase {
        name: "evm-lowercase-address",
        payload: lower,
    });

    let mut tampered = evm;
    tampered.nonce = "ffffffffffffffffffffffffffffffff".into();
    cases.push(SiwxCase {
        name: "evm-tampered",
        payload: tampered,
    });

    #[cfg(feature = "siws")]
    {
        let key = siwx::ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
        let chain = declaration
            .supported_chains
            .iter()
            .find(|c| c.chain_id.starts_with("solana:"))
            .unwrap();
        let solana = siwx::sign_solana(&declaration.info, chain, &key).unwrap();
        let mut forged = solana.clone();
        forged.signature = siwx::sign_solana(
            &declaration.info,
            chain,
            &siwx::ed25519_dalek::SigningKey::from_bytes(&[8u8; 32]),
        )
        .unwrap()
        .signature;
        cases.push(SiwxCase {
            name: "solana",
            payload: solana,
        });
        cases.push(SiwxCase {
            name: "solana-other-wallet",
            payload: forged,
        });
    }
    cases
}

/// A Permit2 payment carrying a signed `eip2612GasSponsoring` permit (deterministic key).
fn eip2612_payment() -> Value {
    use x402_protocol::permit2::{self, ExactPermit2Terms};
    let payer = LocalSigner::from_bytes(&[7u8; 32]).unwrap();
    let token = x402_protocol::Address::repeat_byte(1);
    let payment = permit2::authorize_exact(
        &payer,
        &ExactPermit2Terms {
            chain_id: 84532,
            token,
            pay_to: x402_protocol::Address::repeat_byte(2),
            amount: U256::from(10_000u64),
        },
        1_800_000_000,
        300,
    );
    let domain = x402_protocol::eip3009::TokenDomain {
        name: "USDC",
        version: "2",
        chain_id: 84532,
        verifying_contract: token,
    };
    let info = eip2612::Eip2612GasSponsoring::sign(
        &payer,
        &domain,
        &payment.permit2_authorization,
        U256::ZERO,
    );
    let mut extensions = None;
    info.insert_into(&mut extensions);
    json!({"x402Version": 2, "payload": payment, "extensions": extensions})
}

#[test]
fn the_official_extensions_package_reads_what_we_produce() {
    let Some(node_modules) = official_package() else {
        return;
    };
    let bazaar_cases = bazaar_cases();
    let siwx_cases = siwx_cases();
    let predicates = predicates();
    let input = json!({
        "bazaar": bazaar_cases.iter().map(|(name, pr)| json!({"name": name, "paymentRequired": pr})).collect::<Vec<_>>(),
        "predicates": predicates,
        "eip2612": {"payload": eip2612_payment()},
        "siwx": siwx_cases.iter().map(|c| json!({"name": c.name, "header": siwx::encode_header(&c.payload)})).collect::<Vec<_>>(),
    });
    let dir = std::env::temp_dir().join(format!("x402-npm-extensions-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let input_path = dir.join("input.json");
    std::fs::write(&input_path, input.to_string()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js/extensions_check.cjs");
    let output = Command::new("node")
        .arg(&script)
        .arg(&input_path)
        .env("NODE_PATH", &node_modules)
        .output()
        .expect("run node");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        output.status.success(),
        "node failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let answers: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(answers["version"], "2.27.0");

    // eip2612GasSponsoring: our declaration is the reference's, and its facilitator helpers
    // extract and accept the permit we sign.
    assert_eq!(
        answers["eip2612"]["declaration"],
        json!({ eip2612::EXTENSION: eip2612::declaration(eip2612::DESCRIPTION) })
    );
    assert_eq!(
        answers["eip2612"]["extracted"],
        eip2612_payment()["extensions"][eip2612::EXTENSION]["info"]
    );
    assert_eq!(answers["eip2612"]["valid"], true);

    // Bazaar: valid by the spec rules and by Ajv against our own schema; extracted exactly
    // as we extract it.
    for ((name, pr), answer) in bazaar_cases
        .iter()
        .zip(answers["bazaar"].as_array().unwrap())
    {
        assert_eq!(answer["name"], *name);
        assert_eq!(answer["spec"], json!({"valid": true}), "{name}: {answer}");
        assert_eq!(answer["schema"], json!({"valid": true}), "{name}: {answer}");
        let echo = json!({"x402Version": 2, "resource": pr["resource"], "accepted": pr["accepts"][0],
                          "payload": {}, "extensions": pr["extensions"]});
        let ours = bazaar::extract(&echo).unwrap();
        let theirs = &answer["discovered"];
        assert_eq!(theirs["resourceUrl"], ours.resource, "{name}");
        assert_eq!(
            theirs["discoveryInfo"],
            serde_json::to_value(&ours.info).unwrap(),
            "{name}"
        );
        assert_eq!(theirs["x402Version"], 2);
        assert_eq!(
            theirs["method"].as_str(),
            ours.info.input.method(),
            "{name}"
        );
        assert_eq!(
            theirs["toolName"].as_str(),
            ours.info.input.tool_name(),
            "{name}"
        );
        assert_eq!(
            theirs["routeTemplate"].as_str(),
            ours.route_template.as_deref(),
            "{name}"
        );
        assert_eq!(
            answer["metadata"],
            serde_json::to_value(&ours.metadata).unwrap(),
            "{name}"
        );
        assert_eq!(
            theirs["serviceName"].as_str(),
            ours.metadata.service_name.as_deref(),
            "{name}"
        );
    }
    assert_eq!(
        answers["bazaar"][0]["discovered"]["tags"],
        json!(["weather", "Forecast"]),
        "duplicates dropped by both"
    );
    // A gate's own 402 for a discoverable route, as the official helpers read it.
    let gate = answers["bazaar"].as_array().unwrap().last().unwrap();
    assert_eq!(gate["name"], "gate");
    // Listed without its query, by both.
    assert_eq!(gate["discovered"]["resourceUrl"], "http://api.test/weather");
    assert_eq!(gate["discovered"]["method"], "GET");
    assert_eq!(gate["discovered"]["serviceName"], "Gate Weather");
    assert_eq!(
        gate["discovered"]["discoveryInfo"]["input"]["queryParams"],
        json!({"city": "Oslo"})
    );
    assert_eq!(
        answers["bazaar"][1]["discovered"]["routeTemplate"],
        "/orders/:id"
    );

    // Validators agree value by value.
    let p = &answers["predicates"];
    for (value, theirs) in predicates["routeTemplate"]
        .as_array()
        .unwrap()
        .iter()
        .zip(p["routeTemplate"].as_array().unwrap())
    {
        let ours = bazaar::is_valid_route_template(value.as_str().unwrap());
        assert_eq!(Some(ours), theirs.as_bool(), "routeTemplate {value}");
    }
    for (value, theirs) in predicates["serviceName"]
        .as_array()
        .unwrap()
        .iter()
        .zip(p["serviceName"].as_array().unwrap())
    {
        let ours = bazaar::is_valid_service_name(value.as_str().unwrap());
        assert_eq!(Some(ours), theirs.as_bool(), "serviceName {value}");
    }
    for (value, theirs) in predicates["iconUrl"]
        .as_array()
        .unwrap()
        .iter()
        .zip(p["iconUrl"].as_array().unwrap())
    {
        let ours = bazaar::is_valid_icon_url(value.as_str().unwrap());
        assert_eq!(Some(ours), theirs.as_bool(), "iconUrl {value}");
    }
    for (value, theirs) in predicates["tags"]
        .as_array()
        .unwrap()
        .iter()
        .zip(p["tags"].as_array().unwrap())
    {
        let ours = bazaar::sanitize_tags(value);
        assert_eq!(serde_json::to_value(ours).unwrap(), *theirs, "tags {value}");
    }

    // Sign-in-with-x: the same text, and the same verdict on each signature.
    for (case, answer) in siwx_cases.iter().zip(answers["siwx"].as_array().unwrap()) {
        assert_eq!(answer["name"], case.name);
        assert!(answer.get("error").is_none(), "{}: {answer}", case.name);
        assert_eq!(
            answer["message"],
            siwx::message(&case.payload).unwrap(),
            "{}",
            case.name
        );
        let ours = siwx::verify_signature(&case.payload).is_ok();
        assert_eq!(
            answer["verify"]["isValid"].as_bool(),
            Some(ours),
            "{}: {answer}",
            case.name
        );
        assert_eq!(
            ours,
            !case.name.contains("tampered") && !case.name.contains("other"),
            "{}",
            case.name
        );
    }
}
