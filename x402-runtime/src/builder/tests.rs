use super::*;

#[test]
fn refuses_to_guess_a_facilitator() {
    let err = X402Builder::<Gate>::new()
        .pay_to("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC")
        .build()
        .unwrap_err();
    assert_eq!(err, ConfigError::MissingFacilitator);
    assert!(err.to_string().contains("embedded_facilitator"));
}

#[test]
fn reads_the_environment_and_reports_bad_values() {
    let env: HashMap<&str, &str> = [
        ("X402_FACILITATOR_URL", "embedded"),
        ("X402_PAY_TO", "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"),
        ("X402_NETWORKS", "base, base-sepolia"),
    ]
    .into();
    let gate: Gate = X402Builder::new()
        .read_env_with(|k| env.get(k).map(|v| v.to_string()))
        .build()
        .unwrap();
    assert!(gate.dev_ledger().is_some());
    assert_eq!(gate.default_networks, ["base", "base-sepolia"]);

    let bad: HashMap<&str, &str> = [
        ("X402_FACILITATOR_URL", "embedded"),
        ("X402_FACILITATOR_TIMEOUT_MS", "soon"),
    ]
    .into();
    let err = X402Builder::<Gate>::new()
        .read_env_with(|k| bad.get(k).map(|v| v.to_string()))
        .build()
        .unwrap_err();
    assert!(matches!(
        err,
        ConfigError::Env {
            var: "X402_FACILITATOR_TIMEOUT_MS",
            ..
        }
    ));

    let err = X402Builder::<Gate>::new()
        .embedded_facilitator()
        .pay_to("bob!")
        .build()
        .unwrap_err();
    assert_eq!(err, ConfigError::InvalidPayTo("bob!".into()));
    let err = X402Builder::<Gate>::new()
        .embedded_facilitator()
        .default_network("mars")
        .build()
        .unwrap_err();
    assert!(matches!(err, ConfigError::Network(_)));
}

const ANVIL: &str = "[[network]]\nname = \"anvil\"\nchain_id = 31337\n[[network.token]]\naddress = \"0x5FbDB2315678afecb367f032d93F642f64180aa3\"\nsymbol = \"USDC\"\ndecimals = 6\neip712_name = \"X402 Test USD\"\neip712_version = \"2\"\nusd = true\n";

#[test]
fn a_local_chain_comes_from_the_configuration_alone() {
    // Without a configuration, the chain is unknown and the message says how to declare it.
    let bare: HashMap<&str, &str> = [
        ("X402_FACILITATOR_URL", "embedded"),
        ("X402_NETWORKS", "eip155:31337"),
    ]
    .into();
    let err = X402Builder::<Gate>::new()
        .read_env_with(|k| bare.get(k).map(|v| v.to_string()))
        .build()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("[[network]]") && err.contains("X402_CONFIG"),
        "{err}"
    );

    let env: HashMap<&str, &str> = [
        ("X402_CONFIG_TOML", ANVIL),
        ("X402_FACILITATOR_URL", "embedded"),
        ("X402_NETWORKS", "eip155:31337"),
        ("X402_PAY_TO", "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"),
    ]
    .into();
    let gate: Gate = X402Builder::new()
        .read_env_with(|k| env.get(k).map(|v| v.to_string()))
        .build()
        .unwrap();
    let anvil = gate.registry().network("eip155:31337").unwrap();
    assert_eq!(anvil.name, "anvil");
    assert_eq!(anvil.default_asset.eip712_name, "X402 Test USD");

    let dir = std::env::temp_dir().join(format!("x402-builder-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("x402.toml");
    std::fs::write(&path, format!("{ANVIL}\n[server]\nfacilitator = \"embedded\"\nnetworks = \"anvil\"\npay_to = \"0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC\"\n")).unwrap();
    let gate: Gate = X402Builder::new().config_file(&path).build().unwrap();
    assert_eq!(gate.default_networks, ["anvil"]);
    assert!(gate.dev_ledger().is_some());

    std::fs::write(&path, "[server]\nfacilitator = \"ftp://x\"\n").unwrap();
    let err = X402Builder::<Gate>::new()
        .config_file(&path)
        .build()
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("x402.toml") && text.contains("server.facilitator"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(dir);
}
