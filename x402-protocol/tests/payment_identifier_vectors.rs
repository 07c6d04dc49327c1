//! The official `payment-identifier` round trips (npm `@x402/extensions` 2.27): our 402
//! declaration equals the official server's, the official client's payments carry ids we read
//! back, and the same client's echo extended by us reads back too.

use serde::Deserialize;
use x402_protocol::codec::{self, DEFAULT_MAX_HEADER_BYTES};
use x402_protocol::payment_identifier::{self as pid, PaymentIdError};

#[derive(Deserialize)]
struct File {
    vectors: Vec<Vector>,
}

#[derive(Deserialize)]
struct Vector {
    name: String,
    kind: String,
    payment_required: serde_json::Value,
    #[serde(default)]
    header_value: String,
    #[serde(default)]
    payment_id: String,
}

#[test]
fn official_declarations_and_payments_round_trip() {
    let file: File = serde_json::from_str(include_str!("data/official-extensions.json")).unwrap();
    let vectors: Vec<_> = file
        .vectors
        .into_iter()
        .filter(|v| v.kind == "extension-payment-identifier")
        .collect();
    assert_eq!(
        vectors.len(),
        2,
        "the vector file changed; review this test"
    );
    for v in vectors {
        let declared = &v.payment_required["extensions"][pid::EXTENSION_KEY];
        let required = declared["info"]["required"].as_bool().unwrap();
        assert_eq!(pid::declare(required), *declared, "{}", v.name);

        let payload: serde_json::Value =
            codec::decode(&v.header_value, DEFAULT_MAX_HEADER_BYTES).unwrap();
        let extensions = payload.get("extensions");
        assert_eq!(
            pid::extract_id(extensions, required).unwrap().as_deref(),
            Some(v.payment_id.as_str()),
            "{}",
            v.name
        );
        // Without the id, a required declaration refuses and an optional one passes.
        let mut stripped = extensions.unwrap().clone();
        stripped[pid::EXTENSION_KEY]["info"]
            .as_object_mut()
            .unwrap()
            .remove("id");
        assert_eq!(
            pid::extract_id(Some(&stripped), required),
            if required {
                Err(PaymentIdError::Missing)
            } else {
                Ok(None)
            }
        );
        // Our client side reproduces the official echo from the bare declaration.
        let mut echo = serde_json::json!({ pid::EXTENSION_KEY: declared.clone() });
        pid::append_id(&mut echo, &v.payment_id).unwrap();
        assert_eq!(&echo, extensions.unwrap(), "{}", v.name);
    }
}
