//! Loading Solana keypairs: base58 exports, `id.json` files, and errors (an unset variable too) that
//! say what is wrong without repeating the key.

use solana_keypair::Keypair;
use solana_signer::Signer as _;
use x402_svm::wallet::{
    KeypairError, keypair_from_base58, keypair_from_env, keypair_from_file, keypair_from_json,
    load_keypair,
};

#[test]
fn keypairs_load_from_base58_text_and_json_files_and_an_unset_variable_is_named() {
    let keypair = Keypair::new_from_array([11; 32]);
    let base58 = keypair.to_base58_string();
    let json = serde_json::to_string(&keypair.to_bytes().to_vec()).unwrap();

    assert_eq!(
        keypair_from_base58(&base58).unwrap().pubkey(),
        keypair.pubkey()
    );
    assert_eq!(
        load_keypair(&format!("  {base58}\n")).unwrap().pubkey(),
        keypair.pubkey()
    );
    assert_eq!(keypair_from_json(&json).unwrap().pubkey(), keypair.pubkey());
    assert_eq!(load_keypair(&json).unwrap().pubkey(), keypair.pubkey());

    let dir = std::env::temp_dir().join(format!("x402_svm_keys_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let id_json = dir.join("id.json");
    std::fs::write(&id_json, &json).unwrap();
    let exported = dir.join("phantom.txt");
    std::fs::write(&exported, format!("{base58}\n")).unwrap();
    assert_eq!(
        keypair_from_file(&id_json).unwrap().pubkey(),
        keypair.pubkey()
    );
    assert_eq!(
        load_keypair(id_json.to_str().unwrap()).unwrap().pubkey(),
        keypair.pubkey()
    );
    assert_eq!(
        load_keypair(exported.to_str().unwrap()).unwrap().pubkey(),
        keypair.pubkey()
    );

    // (Setting a variable needs `unsafe`, which the workspace forbids: only the unset case.)
    let var = "X402_SVM_TEST_SURELY_UNSET_KEY";
    assert_eq!(
        keypair_from_env(var).unwrap_err(),
        KeypairError::NotSet(var.to_owned())
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_keys_are_refused_with_their_reason_and_never_echoed() {
    let keypair = Keypair::new_from_array([12; 32]);
    let mut bytes = keypair.to_bytes();
    assert_eq!(
        keypair_from_base58(&bs58::encode(&bytes[..32]).into_string()).unwrap_err(),
        KeypairError::Length(32)
    );
    bytes[40] ^= 1; // a public half that is not the secret's
    let mismatched = bs58::encode(bytes).into_string();
    assert_eq!(
        keypair_from_base58(&mismatched).unwrap_err(),
        KeypairError::Mismatch
    );
    assert_eq!(
        keypair_from_base58("not base58: 0OIl").unwrap_err(),
        KeypairError::NotBase58
    );
    assert_eq!(
        keypair_from_json("[1, 2, 300]").unwrap_err(),
        KeypairError::NotJsonBytes
    );
    assert_eq!(
        keypair_from_json("[1, 2, 3]").unwrap_err(),
        KeypairError::Length(3)
    );
    assert_eq!(
        load_keypair("secret/looking.json").unwrap_err(),
        KeypairError::NoSuchFile
    );
    for error in [
        keypair_from_base58(&mismatched).unwrap_err(),
        load_keypair("secret/looking.json").unwrap_err(),
    ] {
        let text = error.to_string();
        assert!(
            !text.contains(&mismatched) && !text.contains("secret/looking"),
            "{text}"
        );
    }
}
