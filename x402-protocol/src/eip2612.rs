//! The `eip2612GasSponsoring` extension of Permit2 `exact` payments: an EIP-2612 `permit`
//! that approves Permit2 for the payer's token, so a payer without a Permit2 allowance can
//! still pay without gas (schemes notes §1.7). The facilitator submits it with the payment
//! (`settleWithPermit` of the x402 proxy).
//!
//! The reference facilitator reads it only when the payer's Permit2 allowance is short (a
//! chain question) and checks, in order: format, `from`, `asset`, `spender`, `deadline`. This
//! module runs those checks offline, and two more the chain would otherwise reveal late: the
//! permitted value must equal the Permit2 amount (the deployed proxy reverts otherwise), and
//! the EIP-2612 signature must recover to the payer in the token's domain.

use alloy_primitives::{Address, B256, Bytes, U256, keccak256};
use serde::{Deserialize, Serialize};

use crate::eip3009::{LocalSigner, RecoveryBackend, SignatureError, TokenDomain};
use crate::permit2::{DEADLINE_GRACE_SECONDS, PERMIT2_ADDRESS, Permit2Authorization};
use crate::reason::Reason;
use crate::serde_util::checksummed;

/// The extension's key in `PaymentPayload.extensions` (and in the 402's `extensions`).
pub const EXTENSION: &str = "eip2612GasSponsoring";

/// The fields of a signed `info`; without all of them an entry is only an echoed declaration.
const INFO_FIELDS: [&str; 8] = [
    "from",
    "asset",
    "spender",
    "amount",
    "nonce",
    "deadline",
    "signature",
    "version",
];

/// The EIP-712 type an EIP-2612 `permit` signs.
pub const PERMIT_TYPE: &str =
    "Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)";

/// The extension's `info.version`.
pub const VERSION: &str = "1";

/// The `info.description` the reference resource server declares.
pub const DESCRIPTION: &str =
    "The facilitator accepts EIP-2612 gasless Permit to `Permit2` canonical contract.";

/// The declaration a server puts in a 402's `extensions.eip2612GasSponsoring`:
/// `{info: {description, version: "1"}, schema}`, where `schema` is the JSON Schema (draft
/// 2020-12) of the `info` a client returns (schemes notes §1.7). With [`DESCRIPTION`] it is
/// what the reference `declareEip2612GasSponsoringExtension()` returns.
pub fn declaration(description: &str) -> serde_json::Value {
    serde_json::json!({
        "info": { "description": description, "version": VERSION },
        "schema": schema(),
    })
}

/// The JSON Schema of the `info` object a paying client fills in (the reference's, field for
/// field).
pub fn schema() -> serde_json::Value {
    let field = |pattern: &str, description: &str| serde_json::json!({ "type": "string", "pattern": pattern, "description": description });
    let address = "^0x[a-fA-F0-9]{40}$";
    let decimal = "^[0-9]+$";
    serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "from": field(address, "The address of the sender."),
            "asset": field(address, "The address of the ERC-20 token contract."),
            "spender": field(address, "The address of the spender (Canonical Permit2)."),
            "amount": field(decimal, "The amount to approve (uint256). Typically MaxUint."),
            "nonce": field(decimal, "The current nonce of the sender."),
            "deadline": field(decimal, "The timestamp at which the signature expires."),
            "signature": field(
                "^0x[a-fA-F0-9]+$",
                "The 65-byte concatenated signature (r, s, v) as a hex string."
            ),
            "version": field("^[0-9]+(\\.[0-9]+)*$", "Schema version identifier."),
        },
        "required": ["from", "asset", "spender", "amount", "nonce", "deadline", "signature", "version"],
    })
}

/// `extensions.eip2612GasSponsoring.info` of a payment: the signed EIP-2612 permit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Eip2612GasSponsoring {
    /// Free text copied from the 402.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Schema version, `"1"`.
    pub version: String,
    /// The token owner; must be the Permit2 payer.
    #[serde(with = "checksummed")]
    pub from: Address,
    /// The token; must be the requirement's asset.
    #[serde(with = "checksummed")]
    pub asset: Address,
    /// Who is approved; must be Permit2.
    #[serde(with = "checksummed")]
    pub spender: Address,
    /// The approved value; must equal the Permit2 permitted amount.
    #[serde(with = "strict_decimal")]
    pub amount: U256,
    /// The token's `nonces(owner)` when signed.
    #[serde(with = "strict_decimal")]
    pub nonce: U256,
    /// Unix time (seconds) after which the permit is void.
    #[serde(with = "strict_decimal")]
    pub deadline: U256,
    /// The owner's 65-byte `r‖s‖v` signature.
    pub signature: Bytes,
}

/// Why an `eip2612GasSponsoring` extension is refused. Each variant maps to a reason code with
/// [`SponsoringError::reason`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SponsoringError {
    /// A field is missing or malformed.
    #[error("malformed eip2612GasSponsoring extension: {0}")]
    Format(String),
    /// The permit's owner is not the payer.
    #[error("the EIP-2612 permit is from {found}, but the payer is {expected}")]
    FromMismatch {
        /// The Permit2 payer.
        expected: Address,
        /// The permit's `from`.
        found: Address,
    },
    /// The permit is for another token.
    #[error("the EIP-2612 permit is for token {found}, but the payment is in {expected}")]
    AssetMismatch {
        /// The payment's token.
        expected: Address,
        /// The permit's `asset`.
        found: Address,
    },
    /// The permit approves someone other than Permit2.
    #[error("the EIP-2612 permit approves {0}, not Permit2")]
    SpenderNotPermit2(Address),
    /// The permit's deadline is past or less than 6 s away.
    #[error("the EIP-2612 permit's deadline {deadline} is past or too close: now {now}")]
    DeadlineExpired {
        /// The permit's deadline.
        deadline: U256,
        /// The verifier's clock.
        now: u64,
    },
    /// The approved value is not the Permit2 amount (the x402 proxy reverts
    /// `Permit2612AmountMismatch`).
    #[error("the EIP-2612 permit approves {found}, but the Permit2 transfer is for {expected}")]
    AmountMismatch {
        /// `permitted.amount` of the Permit2 authorization.
        expected: U256,
        /// The permit's `amount`.
        found: U256,
    },
    /// The signature is malformed or malleable.
    #[error("invalid EIP-2612 permit signature: {0}")]
    Signature(#[from] SignatureError),
    /// The requirement names no token EIP-712 domain (`extra.name`/`extra.version`), so the
    /// permit's signature cannot be checked.
    #[error(
        "the requirement names no token EIP-712 domain (extra.name, extra.version) to check the EIP-2612 permit under"
    )]
    NoTokenDomain,
    /// The signature was made by someone other than `from` (or in another token domain).
    #[error("the EIP-2612 permit was signed by {recovered}, not by {from}")]
    WrongSigner {
        /// The permit's `from`.
        from: Address,
        /// Who signed.
        recovered: Address,
    },
}

impl SponsoringError {
    /// The reason code for this failure.
    pub fn reason(&self) -> Reason {
        match self {
            SponsoringError::Format(_) => Reason::EIP2612_EXTENSION_FORMAT,
            SponsoringError::FromMismatch { .. } => Reason::EIP2612_FROM_MISMATCH,
            SponsoringError::AssetMismatch { .. } => Reason::EIP2612_ASSET_MISMATCH,
            SponsoringError::SpenderNotPermit2(_) => Reason::EIP2612_SPENDER_NOT_PERMIT2,
            SponsoringError::DeadlineExpired { .. } => Reason::EIP2612_DEADLINE_EXPIRED,
            SponsoringError::AmountMismatch { .. } => Reason::EIP2612_AMOUNT_MISMATCH,
            SponsoringError::Signature(_)
            | SponsoringError::WrongSigner { .. }
            | SponsoringError::NoTokenDomain => Reason::EIP2612_INVALID_SIGNATURE,
        }
    }
}

impl Eip2612GasSponsoring {
    /// The client side: signs, as `signer` (the Permit2 payer), an EIP-2612 permit approving
    /// Permit2 for exactly the permitted amount of `authorization`, valid until its deadline
    /// (what the reference client does). `token` is the token's EIP-712 domain (the
    /// requirement's `extra.name`/`extra.version`, the chain, the token); `token_nonce` is the
    /// token's current `nonces(owner)`.
    pub fn sign<W>(
        signer: &LocalSigner,
        token: &TokenDomain<'_>,
        authorization: &Permit2Authorization<W>,
        token_nonce: U256,
    ) -> Self {
        let mut info = Eip2612GasSponsoring {
            description: None,
            version: VERSION.to_owned(),
            from: signer.address(),
            asset: token.verifying_contract,
            spender: PERMIT2_ADDRESS,
            amount: authorization.permitted.amount,
            nonce: token_nonce,
            deadline: authorization.deadline,
            signature: Bytes::new(),
        };
        info.signature = Bytes::copy_from_slice(&signer.sign_hash(&info.signing_hash(token)));
        info
    }

    /// Puts this permit into a payment's `extensions` (creating the object if needed) as
    /// `eip2612GasSponsoring: {info}`, keeping the other extensions.
    pub fn insert_into(&self, extensions: &mut Option<serde_json::Value>) {
        let object = extensions.get_or_insert_with(|| serde_json::json!({}));
        if !object.is_object() {
            *object = serde_json::json!({});
        }
        if let Some(map) = object.as_object_mut() {
            map.insert(
                EXTENSION.to_owned(),
                serde_json::json!({ "info": serde_json::to_value(self).unwrap_or_default() }),
            );
        }
    }

    /// Reads the extension from a payment's `extensions`: `Ok(None)` when the payment carries
    /// none, an error when it is malformed.
    ///
    /// As in the reference facilitator (`extractEip2612GasSponsoringInfo`), an entry whose
    /// `info` lacks any of the eight fields (or is empty: `""`) counts as absent: clients echo
    /// the 402's declaration (`info: {description, version}`) when they do not sign a permit.
    /// Only a complete `info` with a malformed field is an error.
    pub fn from_extensions(
        extensions: Option<&serde_json::Value>,
    ) -> Result<Option<Self>, SponsoringError> {
        let Some(info) = extensions
            .and_then(|e| e.get(EXTENSION))
            .and_then(|entry| entry.get("info"))
        else {
            return Ok(None);
        };
        let present = |key: &str| match info.get(key) {
            None | Some(serde_json::Value::Null) => false,
            Some(serde_json::Value::String(text)) => !text.is_empty(),
            Some(_) => true,
        };
        if !INFO_FIELDS.iter().all(|key| present(key)) {
            return Ok(None);
        }
        let parsed = Self::deserialize(info).map_err(|e| SponsoringError::Format(e.to_string()))?;
        if !is_version(&parsed.version) {
            return Err(SponsoringError::Format(format!(
                "version {:?} is not dotted digits",
                parsed.version
            )));
        }
        Ok(Some(parsed))
    }

    /// The EIP-712 `hashStruct` of the permit:
    /// `keccak256(typeHash ‖ owner ‖ spender ‖ value ‖ nonce ‖ deadline)`.
    pub fn hash_struct(&self) -> B256 {
        let mut buf = [0u8; 6 * 32];
        buf[0..32].copy_from_slice(keccak256(PERMIT_TYPE).as_slice());
        buf[44..64].copy_from_slice(self.from.as_slice());
        buf[76..96].copy_from_slice(self.spender.as_slice());
        buf[96..128].copy_from_slice(&self.amount.to_be_bytes::<32>());
        buf[128..160].copy_from_slice(&self.nonce.to_be_bytes::<32>());
        buf[160..192].copy_from_slice(&self.deadline.to_be_bytes::<32>());
        keccak256(buf)
    }

    /// The digest the owner signed in the token's EIP-712 domain (the requirement's
    /// `extra.name`/`extra.version`, the chain, the token).
    pub fn signing_hash(&self, token: &TokenDomain<'_>) -> B256 {
        let mut buf = [0u8; 66];
        buf[0..2].copy_from_slice(&[0x19, 0x01]);
        buf[2..34].copy_from_slice(token.separator().as_slice());
        buf[34..66].copy_from_slice(self.hash_struct().as_slice());
        keccak256(buf)
    }

    /// Checks the permit against the Permit2 authorization it funds, at unix time `now`, in
    /// the reference's order (`from`, `asset`, `spender`, `deadline ≥ now + 6`), then that it
    /// approves exactly the permitted amount.
    pub fn check<W>(
        &self,
        authorization: &Permit2Authorization<W>,
        now: u64,
    ) -> Result<(), SponsoringError> {
        self.check_parties(authorization)?;
        if self.deadline < U256::from(now.saturating_add(DEADLINE_GRACE_SECONDS)) {
            return Err(SponsoringError::DeadlineExpired {
                deadline: self.deadline,
                now,
            });
        }
        self.check_amount(authorization)
    }

    /// [`check`](Self::check) without the deadline, for a settler that trusts the verifier's
    /// clock: `from`, `asset`, `spender`, then the amount.
    pub fn check_terms<W>(
        &self,
        authorization: &Permit2Authorization<W>,
    ) -> Result<(), SponsoringError> {
        self.check_parties(authorization)?;
        self.check_amount(authorization)
    }

    /// `from`, `asset`, `spender`, in the reference's order.
    fn check_parties<W>(
        &self,
        authorization: &Permit2Authorization<W>,
    ) -> Result<(), SponsoringError> {
        if self.from != authorization.from {
            return Err(SponsoringError::FromMismatch {
                expected: authorization.from,
                found: self.from,
            });
        }
        if self.asset != authorization.permitted.token {
            return Err(SponsoringError::AssetMismatch {
                expected: authorization.permitted.token,
                found: self.asset,
            });
        }
        if self.spender != PERMIT2_ADDRESS {
            return Err(SponsoringError::SpenderNotPermit2(self.spender));
        }
        Ok(())
    }

    /// The permit approves exactly the permitted amount.
    fn check_amount<W>(
        &self,
        authorization: &Permit2Authorization<W>,
    ) -> Result<(), SponsoringError> {
        if self.amount != authorization.permitted.amount {
            return Err(SponsoringError::AmountMismatch {
                expected: authorization.permitted.amount,
                found: self.amount,
            });
        }
        Ok(())
    }

    /// Everything a facilitator checks offline about a payment's extension: reads it from
    /// `extensions` (`Ok(None)` when absent), then [`check`](Self::check) against the Permit2
    /// `authorization` at `now`, then [`verify_signature`](Self::verify_signature) in `token`'s
    /// domain (`None`: the requirement names none → [`SponsoringError::NoTokenDomain`]).
    pub fn verify<W>(
        backend: RecoveryBackend,
        extensions: Option<&serde_json::Value>,
        authorization: &Permit2Authorization<W>,
        token: Option<&TokenDomain<'_>>,
        now: u64,
    ) -> Result<Option<Self>, SponsoringError> {
        let Some(info) = Self::from_extensions(extensions)? else {
            return Ok(None);
        };
        info.check(authorization, now)?;
        info.verify_signature(backend, token.ok_or(SponsoringError::NoTokenDomain)?)?;
        Ok(Some(info))
    }

    /// The signature split as EIP-2612 `permit` takes it: `(v, r, s)`. `None` unless it is 65
    /// bytes.
    pub fn vrs(&self) -> Option<(u8, B256, B256)> {
        (self.signature.len() == 65).then(|| {
            (
                self.signature[64],
                B256::from_slice(&self.signature[..32]),
                B256::from_slice(&self.signature[32..64]),
            )
        })
    }

    /// Checks that the permit's signature recovers to `from` in the token's domain (`asset`
    /// must be `token.verifying_contract`, which [`check`](Self::check) ensures for the
    /// payment's token).
    pub fn verify_signature(
        &self,
        backend: RecoveryBackend,
        token: &TokenDomain<'_>,
    ) -> Result<(), SponsoringError> {
        let recovered = backend.recover(&self.signing_hash(token), &self.signature)?;
        if recovered != self.from {
            return Err(SponsoringError::WrongSigner {
                from: self.from,
                recovered,
            });
        }
        Ok(())
    }
}

/// `^[0-9]+(\.[0-9]+)*$`.
fn is_version(v: &str) -> bool {
    !v.is_empty()
        && v.split('.')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
}

/// A uint256 as a base-10 string only (the extension's schema: `^[0-9]+$`).
mod strict_decimal {
    use alloy_primitives::U256;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(value: &U256, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(value)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<U256, D::Error> {
        let text = String::deserialize(deserializer)?;
        crate::amount::parse_decimal_u256(&text)
            .map_err(|e| serde::de::Error::custom(format!("{e}: {text:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::permit2::{self, ExactPermit2Terms};

    #[test]
    fn a_signed_permit_round_trips_and_verifies() {
        let payer = LocalSigner::random();
        let token = Address::repeat_byte(1);
        let payment = permit2::authorize_exact(
            &payer,
            &ExactPermit2Terms {
                chain_id: 31337,
                token,
                pay_to: Address::repeat_byte(2),
                amount: U256::from(10_000u64),
            },
            1_800_000_000,
            300,
        );
        let domain = TokenDomain {
            name: "X402 Test Token",
            version: "1",
            chain_id: 31337,
            verifying_contract: token,
        };
        let auth = &payment.permit2_authorization;
        let info = Eip2612GasSponsoring::sign(&payer, &domain, auth, U256::from(3u64));
        let mut extensions = Some(serde_json::json!({"payment-identifier": {"info": {}}}));
        info.insert_into(&mut extensions);
        assert!(
            extensions
                .as_ref()
                .unwrap()
                .get("payment-identifier")
                .is_some()
        );
        let read = Eip2612GasSponsoring::from_extensions(extensions.as_ref())
            .unwrap()
            .unwrap();
        assert_eq!(read, info);
        read.check(auth, 1_800_000_000).unwrap();
        read.verify_signature(RecoveryBackend::default(), &domain)
            .unwrap();
        let other = TokenDomain {
            version: "2",
            ..domain
        };
        assert_eq!(
            read.verify_signature(RecoveryBackend::default(), &other)
                .unwrap_err()
                .reason(),
            Reason::EIP2612_INVALID_SIGNATURE
        );
        // An echoed declaration is no permit; a complete but malformed one is refused.
        let echoed = serde_json::json!({ EXTENSION: declaration(DESCRIPTION) });
        assert_eq!(
            Eip2612GasSponsoring::from_extensions(Some(&echoed)),
            Ok(None)
        );
        let mut bad =
            serde_json::json!({ EXTENSION: { "info": serde_json::to_value(&info).unwrap() } });
        bad[EXTENSION]["info"]["amount"] = "0x10".into();
        assert_eq!(
            Eip2612GasSponsoring::from_extensions(Some(&bad))
                .unwrap_err()
                .reason(),
            Reason::EIP2612_EXTENSION_FORMAT
        );
        let declared = declaration("sponsored");
        assert_eq!(declared["info"]["version"], "1");
        assert_eq!(declared["schema"]["required"].as_array().unwrap().len(), 8);
    }

    #[test]
    fn versions_are_dotted_digits() {
        for ok in ["1", "1.0", "10.2.3"] {
            assert!(is_version(ok), "{ok}");
        }
        for bad in ["", "1.", ".1", "v1", "1..2", "1.a"] {
            assert!(!is_version(bad), "{bad}");
        }
    }

    #[test]
    fn the_permit_type_hash_is_eip2612s() {
        assert_eq!(
            keccak256(PERMIT_TYPE),
            alloy_primitives::b256!(
                "0x6e71edae12b1b97f4d1f60370fef10105fa2faae0126114a169c64845d6126c9"
            )
        );
    }
}
