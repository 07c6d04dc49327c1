//! Sign-in-with-x headers made by the official client (npm `@x402/extensions` 2.27) parse,
//! rebuild the exact text that client signed, and verify at the time they were made; and each
//! one is refused once a single thing about it changes.

use serde::Deserialize;
use x402_protocol::eip3009::LocalSigner;
use x402_protocol::siwx::{
    self, DeclareOptions, Expectations, SiwxDeclaration, SiwxError, SiwxPayload, reasons,
};

#[derive(Deserialize)]
struct File {
    vectors: Vec<Vector>,
}

#[derive(Deserialize)]
struct Vector {
    name: String,
    kind: String,
    signed_at_unix: u64,
    #[serde(default)]
    payer: String,
    #[serde(default)]
    request_url: String,
    #[serde(default)]
    payer_seed_hex: Option<String>,
    payment_required: serde_json::Value,
    #[serde(default)]
    header_value: String,
    #[serde(default)]
    decoded_header: serde_json::Value,
    #[serde(default)]
    signed_message: String,
}

fn vectors() -> Vec<Vector> {
    let file: File = serde_json::from_str(include_str!("data/official-extensions.json")).unwrap();
    let siwx: Vec<Vector> = file
        .vectors
        .into_iter()
        .filter(|v| v.kind == "extension-sign-in-with-x")
        .collect();
    assert_eq!(siwx.len(), 3, "the vector file changed; review this test");
    siwx
}

fn declaration(v: &Vector) -> SiwxDeclaration {
    serde_json::from_value(v.payment_required["extensions"][siwx::EXTENSION_KEY].clone()).unwrap()
}

fn expectations(v: &Vector) -> Expectations {
    let chains = declaration(v)
        .supported_chains
        .into_iter()
        .map(|c| c.chain_id);
    Expectations::for_resource(&v.request_url)
        .unwrap()
        .with_chains(chains)
}

fn now_ms(v: &Vector) -> u64 {
    v.signed_at_unix * 1000
}

fn is_solana(v: &Vector) -> bool {
    v.decoded_header["chainId"]
        .as_str()
        .unwrap()
        .starts_with("solana:")
}

/// Parse, rebuild the text, check the fields and verify, as a server would.
fn accept(
    payload: &SiwxPayload,
    expected: &Expectations,
    now_ms: u64,
) -> Result<String, SiwxError> {
    siwx::check_message(payload, expected, now_ms)?;
    Ok(siwx::verify_signature(payload)?.to_string())
}

#[test]
fn official_headers_parse_rebuild_the_signed_text_and_verify() {
    for v in vectors() {
        let payload = siwx::parse_header(&v.header_value).unwrap();
        assert_eq!(
            serde_json::to_value(&payload).unwrap(),
            v.decoded_header,
            "{}: decoded fields",
            v.name
        );
        assert_eq!(
            siwx::message(&payload).unwrap(),
            v.signed_message,
            "{}",
            v.name
        );
        let result = accept(&payload, &expectations(&v), now_ms(&v));
        if is_solana(&v) && !cfg!(feature = "siws") {
            assert_eq!(result.unwrap_err().code(), reasons::UNSUPPORTED_CHAIN);
            continue;
        }
        assert_eq!(result.unwrap(), v.payer, "{}", v.name);
        // Our own encoding of the same payload reads back identically.
        assert_eq!(
            siwx::parse_header(&siwx::encode_header(&payload)).unwrap(),
            payload
        );
    }
}

#[test]
fn our_declaration_matches_the_official_servers() {
    for v in vectors() {
        let official = declaration(&v);
        let info = &official.info;
        let issued = siwx::parse_timestamp(&info.issued_at).unwrap() as u64;
        let options = DeclareOptions {
            statement: info.statement.clone(),
            expiration: info.expiration_time.as_ref().map(|e| {
                std::time::Duration::from_millis(siwx::parse_timestamp(e).unwrap() as u64 - issued)
            }),
            networks: None,
        };
        // The route's networks: what its `accepts` offer, or (siwx-evm-base) the networks the
        // official server was configured with.
        let mut networks: Vec<String> = v.payment_required["accepts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["network"].as_str().unwrap().to_owned())
            .collect();
        if v.name == "siwx-evm-base" {
            networks = official
                .supported_chains
                .iter()
                .map(|c| c.chain_id.clone())
                .collect();
        }
        let ours = siwx::declare(
            &v.request_url,
            &networks,
            &options,
            info.nonce.clone(),
            issued,
        )
        .unwrap();
        assert_eq!(ours.info, official.info, "{}", v.name);
        assert_eq!(ours.schema, official.schema, "{}", v.name);
        let official_chains: Vec<_> = official
            .supported_chains
            .iter()
            .filter(|c| cfg!(feature = "siws") || c.chain_id.starts_with("eip155:"))
            .cloned()
            .collect();
        assert_eq!(ours.supported_chains, official_chains, "{}", v.name);
    }
}

/// Re-signs a changed payload with the vector's own wallet, so that only the change matters.
fn resign(v: &Vector, mut payload: SiwxPayload) -> SiwxPayload {
    let declaration = SiwxDeclaration {
        info: siwx::SiwxInfo {
            domain: payload.domain.clone(),
            uri: payload.uri.clone(),
            version: payload.version.clone(),
            nonce: payload.nonce.clone(),
            issued_at: payload.issued_at.clone(),
            resources: payload.resources.clone(),
            expiration_time: payload.expiration_time.clone(),
            statement: payload.statement.clone(),
            not_before: payload.not_before.clone(),
            request_id: payload.request_id.clone(),
        },
        supported_chains: vec![siwx::SupportedChain {
            chain_id: payload.chain_id.clone(),
            signature_type: payload.signature_type,
            signature_scheme: None,
        }],
        schema: siwx::schema(),
    };
    let chain = &declaration.supported_chains[0];
    if let Some(seed) = &v.payer_seed_hex {
        #[cfg(feature = "siws")]
        {
            let mut bytes = [0u8; 32];
            alloy_primitives::hex::decode_to_slice(seed, &mut bytes).unwrap();
            let key = ed25519_dalek::SigningKey::from_bytes(&bytes);
            return siwx::sign_solana(&declaration.info, chain, &key).unwrap();
        }
        #[cfg(not(feature = "siws"))]
        {
            let _ = seed;
            payload.signature = "unsigned".into();
            return payload;
        }
    }
    // The EVM vectors' payer is the dev key anvil/hardhat #1.
    let key =
        LocalSigner::from_hex("0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d")
            .unwrap();
    assert_eq!(key.address().to_checksum(None), v.payer);
    payload = siwx::sign_evm(&declaration.info, chain, &key).unwrap();
    payload
}

#[test]
fn re_signing_an_unchanged_payload_reproduces_a_valid_sign_in() {
    for v in vectors()
        .into_iter()
        .filter(|v| cfg!(feature = "siws") || !is_solana(v))
    {
        let payload = siwx::parse_header(&v.header_value).unwrap();
        let again = resign(&v, payload.clone());
        assert_eq!(
            accept(&again, &expectations(&v), now_ms(&v)).unwrap(),
            v.payer
        );
        if is_solana(&v) {
            // ed25519 is deterministic: the very same signature.
            assert_eq!(again.signature, payload.signature, "{}", v.name);
        }
    }
}

#[test]
fn each_change_is_refused_with_its_own_reason() {
    for v in vectors()
        .into_iter()
        .filter(|v| cfg!(feature = "siws") || !is_solana(v))
    {
        let original = siwx::parse_header(&v.header_value).unwrap();
        let expected = expectations(&v);
        let now = now_ms(&v);
        let issued = siwx::parse_timestamp(&original.issued_at).unwrap() as u64;
        let refuse = |payload: &SiwxPayload, expected: &Expectations, now: u64, code: &str| {
            let error = accept(payload, expected, now).expect_err(code);
            assert_eq!(error.code(), code, "{}: {error}", v.name);
        };

        // Another wallet's signature over the same message.
        let mut other = original.clone();
        if is_solana(&v) {
            #[cfg(feature = "siws")]
            {
                let key = ed25519_dalek::SigningKey::from_bytes(&[2u8; 32]);
                let forged =
                    siwx::sign_solana(&resign_info(&original), &chain_of(&original), &key).unwrap();
                other.signature = forged.signature;
            }
        } else {
            let forged = siwx::sign_evm(
                &resign_info(&original),
                &chain_of(&original),
                &LocalSigner::random(),
            )
            .unwrap();
            other.signature = forged.signature;
        }
        refuse(&other, &expected, now, reasons::SIGNATURE);

        // One signed field changed after signing (here the nonce): the signature no longer
        // covers the text.
        let mut changed = original.clone();
        changed.nonce = "0123456789abcdef0123456789abcdef".into();
        refuse(&changed, &expected, now, reasons::SIGNATURE);

        // Expired: past expirationTime, or (without one) older than the maximum age.
        match &original.expiration_time {
            Some(expiration) => {
                let at = siwx::parse_timestamp(expiration).unwrap() as u64;
                // With an age limit that alone would still accept it.
                let mut generous = expected.clone();
                generous.max_age = std::time::Duration::from_secs(3600);
                refuse(&original, &generous, at + 1, reasons::EXPIRED);
                // Fine up to that instant.
                assert!(accept(&original, &generous, at).is_ok(), "{}", v.name);
            }
            None => refuse(
                &original,
                &expected,
                issued + 5 * 60 * 1000 + 1,
                reasons::ISSUED_AT_TOO_OLD,
            ),
        }
        // Too old even while unexpired.
        let mut strict = expected.clone();
        strict.max_age = std::time::Duration::from_secs(1);
        refuse(
            &original,
            &strict,
            issued + 1_001,
            reasons::ISSUED_AT_TOO_OLD,
        );
        // Issued in the future (beyond the skew).
        refuse(
            &original,
            &expected,
            issued - 6_000,
            reasons::ISSUED_AT_IN_FUTURE,
        );

        // Another domain: the server of another host receives it…
        let elsewhere = Expectations::for_resource("https://other.example.test/reports/x")
            .unwrap()
            .with_chains(expected.chains.clone());
        refuse(&original, &elsewhere, now, reasons::DOMAIN_MISMATCH);
        // …or the message names another host, correctly signed by the payer.
        let mut domain = original.clone();
        domain.domain = "evil.example.test".into();
        refuse(
            &resign(&v, domain),
            &expected,
            now,
            reasons::DOMAIN_MISMATCH,
        );
        // Right host, another origin (scheme) in the URI.
        let mut uri = original.clone();
        uri.uri = uri.uri.replacen("https://", "http://", 1);
        refuse(&resign(&v, uri), &expected, now, reasons::URI_MISMATCH);

        // notBefore ahead.
        let mut early = original.clone();
        early.not_before = Some(siwx::format_timestamp(now + 60_000));
        refuse(&resign(&v, early), &expected, now, reasons::NOT_YET_VALID);

        // A chain the route does not offer.
        let narrow = expected.clone().with_chains(["eip155:1"]);
        refuse(&original, &narrow, now, reasons::UNSUPPORTED_CHAIN);

        // A line smuggled into the statement.
        let mut injected = original.clone();
        injected.statement = Some("hello\nURI: https://evil.example.test/".into());
        refuse(&injected, &expected, now, reasons::MESSAGE);
    }
}

fn resign_info(p: &SiwxPayload) -> siwx::SiwxInfo {
    siwx::SiwxInfo {
        domain: p.domain.clone(),
        uri: p.uri.clone(),
        version: p.version.clone(),
        nonce: p.nonce.clone(),
        issued_at: p.issued_at.clone(),
        resources: p.resources.clone(),
        expiration_time: p.expiration_time.clone(),
        statement: p.statement.clone(),
        not_before: p.not_before.clone(),
        request_id: p.request_id.clone(),
    }
}

fn chain_of(p: &SiwxPayload) -> siwx::SupportedChain {
    siwx::SupportedChain {
        chain_id: p.chain_id.clone(),
        signature_type: p.signature_type,
        signature_scheme: None,
    }
}

#[test]
fn malformed_headers_and_fields_are_refused_before_any_signature_work() {
    assert_eq!(
        siwx::parse_header("!!!").unwrap_err().code(),
        reasons::HEADER
    );
    assert_eq!(
        siwx::parse_header(&x402_protocol::codec::encode(
            &serde_json::json!({"domain": "a"})
        ))
        .unwrap_err()
        .code(),
        reasons::HEADER
    );
    let v = &vectors()[0];
    let original = siwx::parse_header(&v.header_value).unwrap();
    type Change = fn(&mut SiwxPayload);
    let cases: Vec<(Change, &str)> = vec![
        (|p| p.version = "2".into(), reasons::MESSAGE),
        (|p| p.nonce = "short".into(), reasons::MESSAGE),
        (|p| p.nonce = "not-alphanumeric!".into(), reasons::MESSAGE),
        (
            |p| p.domain = "api.example.test\nx".into(),
            reasons::MESSAGE,
        ),
        (|p| p.address = "0x1234".into(), reasons::ADDRESS),
        // A mixed-case address with a wrong checksum.
        (
            |p| p.address = "0x70997970c51812dc3A010C7d01b50e0d17dc79C8".into(),
            reasons::ADDRESS,
        ),
        (|p| p.chain_id = "eip155:base".into(), reasons::CHAIN_ID),
        (
            |p| p.chain_id = "cosmos:hub".into(),
            reasons::UNSUPPORTED_CHAIN,
        ),
        (
            |p| p.signature_type = siwx::SignatureType::Ed25519,
            reasons::TYPE_MISMATCH,
        ),
        (|p| p.issued_at = "yesterday".into(), reasons::ISSUED_AT),
        (
            |p| p.expiration_time = Some("soon".into()),
            reasons::EXPIRATION_TIME,
        ),
        (|p| p.not_before = Some("later".into()), reasons::NOT_BEFORE),
        (
            |p| p.signature = "ca71".into(),
            reasons::MALFORMED_SIGNATURE,
        ),
        (
            |p| p.signature = "0xzz".into(),
            reasons::MALFORMED_SIGNATURE,
        ),
        (|p| p.signature = "0x1234".into(), reasons::SIGNATURE),
    ];
    let expected = Expectations::for_resource(&v.request_url).unwrap();
    for (change, code) in cases {
        let mut p = original.clone();
        change(&mut p);
        let error = accept(&p, &expected, now_ms(v)).unwrap_err();
        assert_eq!(error.code(), code, "{error}");
    }
    // The all-lower-case spelling of the address is fine: the message uses the checksum form.
    let mut lower = original.clone();
    lower.address = lower.address.to_ascii_lowercase();
    assert_eq!(accept(&lower, &expected, now_ms(v)).unwrap(), v.payer);
}
