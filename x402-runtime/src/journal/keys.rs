//! Keys, ids, fingerprints and times as every journal backend spells them.

use std::fmt::Write as _;

use sha2::{Digest, Sha256};

use super::JournalError;

/// The replay key of an EVM authorization: `eip155:<chain id>:<asset>:<payer>:<nonce>`,
/// lower-case hex, so every replica spells it the same way.
///
/// ```
/// use x402_runtime::journal::evm_payment_key;
/// use x402_runtime::protocol::{Address, B256};
/// let key = evm_payment_key(8453, Address::repeat_byte(0xAA), Address::repeat_byte(0xBB), B256::repeat_byte(1));
/// assert!(key.starts_with("eip155:8453:0xaaaa"));
/// ```
pub fn evm_payment_key(
    chain_id: u64,
    asset: x402_protocol::Address,
    payer: x402_protocol::Address,
    nonce: x402_protocol::B256,
) -> String {
    format!("eip155:{chain_id}:{asset:#x}:{payer:#x}:{nonce:#x}")
}

/// An address as the journal stores it: EVM addresses (`0x` + 40 hex digits, any case) in
/// EIP-55 checksummed form, anything else (Solana base58) unchanged.
///
/// Queries normalise their `payer` filter the same way, so either spelling finds the record.
///
/// ```
/// use x402_runtime::journal::canonical_address;
/// assert_eq!(
///     canonical_address("0x70997970c51812dc3a010c7d01b50e0d17dc79c8"),
///     "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
/// );
/// assert_eq!(canonical_address("9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin"), "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin");
/// ```
pub fn canonical_address(address: &str) -> String {
    let trimmed = address.trim();
    if trimmed.len() == 42
        && trimmed.starts_with("0x")
        && let Ok(parsed) = trimmed.parse::<x402_protocol::Address>()
    {
        return parsed.to_checksum(None);
    }
    trimmed.to_owned()
}

/// A request fingerprint for the payment-identifier extension: SHA-256 (hex) over the given
/// parts, each length-prefixed so that `["ab", "c"]` and `["a", "bc"]` differ.
///
/// The gate chooses the parts (for example scheme, network, asset, amount, pay-to, method,
/// resource); a retry with the same payment id must produce the same fingerprint.
///
/// ```
/// use x402_runtime::journal::fingerprint;
/// assert_eq!(fingerprint(&["GET", "/weather"]), fingerprint(&["GET", "/weather"]));
/// assert_ne!(fingerprint(&["ab", "c"]), fingerprint(&["a", "bc"]));
/// ```
pub fn fingerprint(parts: &[&str]) -> String {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part.as_bytes());
    }
    hash.finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Unix time in milliseconds, the journal's time unit.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The UTC calendar day of a unix time in milliseconds: `YYYY-MM-DD`.
///
/// ```
/// use x402_runtime::journal::utc_day;
/// assert_eq!(utc_day(0), "1970-01-01");
/// assert_eq!(utc_day(951_782_400_000), "2000-02-29");
/// assert_eq!(utc_day(951_868_799_999), "2000-02-29");
/// ```
pub fn utc_day(ms: u64) -> String {
    let days = ms / 86_400_000;
    // Howard Hinnant's days-to-civil, counting 400-year eras from 0000-03-01.
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// The largest time the SQL backends can store (`BIGINT`).
pub(crate) fn check_ms(ms: u64) -> Result<i64, JournalError> {
    i64::try_from(ms).map_err(|_| JournalError::Invalid(format!("time {ms} ms is out of range")))
}

/// A fresh record id: 12 hex digits of the creation time in milliseconds, then 20 random hex
/// digits (80 bits), so ids are unique and sort by creation time.
pub(crate) fn new_id(at: u64) -> Result<String, JournalError> {
    new_record_id(at)
}

/// A fresh record id for a payment admitted at `at` (unix milliseconds): time-ordered, then
/// random (80 bits).
pub fn new_record_id(at: u64) -> Result<String, JournalError> {
    let mut random = [0u8; 10];
    getrandom::fill(&mut random)
        .map_err(|e| JournalError::Unavailable(format!("no randomness for a record id: {e}")))?;
    let mut id = String::with_capacity(32);
    let _ = write!(id, "{:012x}", at & 0xffff_ffff_ffff);
    id.push_str(&alloy_primitives::hex::encode(random));
    Ok(id)
}
