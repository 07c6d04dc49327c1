//! EIP-55 text of EVM addresses, remembered.
//!
//! Writing an address in its EIP-55 (checksummed) form hashes its hex digits with keccak-256,
//! several thousand instructions each time. A server writes the same few addresses again and
//! again: its recipient and its tokens in every facilitator request, a payer several times while
//! one payment is handled. [`checksummed`] keeps the text of recently written addresses in a
//! small direct-mapped table, so an address in use is hashed once.
//!
//! ```
//! use x402_protocol::checksum::checksummed;
//!
//! let address = "0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc".parse()?;
//! assert_eq!(checksummed(&address).as_str(), "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC");
//! # Ok::<(), alloy_primitives::hex::FromHexError>(())
//! ```

use std::fmt;
use std::sync::{Mutex, PoisonError};

use alloy_primitives::Address;

/// Entries in the table. An address always lands in the slot of its last byte, which is as
/// good as random (addresses are hash outputs); a colliding address only costs a hash.
const SLOTS: usize = 256;

#[derive(Clone, Copy)]
struct Entry {
    address: Address,
    text: [u8; 42],
}

static TABLE: [Mutex<Option<Entry>>; SLOTS] = [const { Mutex::new(None) }; SLOTS];

/// An EVM address in EIP-55 form (`0x` and 40 hex digits, mixed case), held inline.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Checksummed([u8; 42]);

impl Checksummed {
    /// The text.
    pub fn as_str(&self) -> &str {
        // Only ASCII is ever written into the buffer.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl std::ops::Deref for Checksummed {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for Checksummed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Checksummed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// The EIP-55 form of `address` (without a chain id, as x402 writes addresses), from the table
/// when it was written recently.
pub fn checksummed(address: &Address) -> Checksummed {
    let slot = &TABLE[usize::from(address.0[19]) % SLOTS];
    if let Some(entry) = *slot.lock().unwrap_or_else(PoisonError::into_inner)
        && entry.address == *address
    {
        return Checksummed(entry.text);
    }
    let mut text = [0u8; 42];
    let _ = address.to_checksum_raw(&mut text, None);
    *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(Entry {
        address: *address,
        text,
    });
    Checksummed(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agrees_with_alloy_on_hits_misses_and_collisions() {
        // Addresses sharing their last byte evict each other from one slot.
        let addresses: Vec<Address> = (0u8..40)
            .map(|i| {
                let mut bytes = [i.wrapping_mul(37); 20];
                bytes[0] = i;
                bytes[19] = if i % 2 == 0 { 0xab } else { i };
                Address::from(bytes)
            })
            .collect();
        for _ in 0..3 {
            for address in &addresses {
                assert_eq!(
                    checksummed(address).as_str(),
                    address.to_checksum(None),
                    "{address:?}"
                );
            }
        }
        let known: Address = "0x036cbd53842c5426634e7929541ec2318f3dcf7e"
            .parse()
            .unwrap();
        assert_eq!(
            checksummed(&known).to_string(),
            "0x036CbD53842c5426634e7929541eC2318f3dCF7e"
        );
    }

    #[test]
    fn threads_sharing_the_table_read_their_own_address() {
        let handles: Vec<_> = (0u8..8)
            .map(|t| {
                std::thread::spawn(move || {
                    for i in 0u8..200 {
                        let mut bytes = [t ^ i; 20];
                        bytes[0] = t;
                        bytes[19] = i % 4;
                        let address = Address::from(bytes);
                        assert_eq!(checksummed(&address).as_str(), address.to_checksum(None));
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.join().unwrap();
        }
    }
}
