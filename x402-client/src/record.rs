//! What the client paid: one [`PaymentRecord`] per signed authorization, kept in the client's
//! history and handed back with the response (or tool result) that carried it.

use std::fmt;
use std::time::SystemTime;

use alloy_primitives::{B256, U256};
use x402_protocol::amount::format_units;
use x402_protocol::facilitator::SettleResponse;
use x402_protocol::{AssetInfo, ChainAddress, NetworkInfo, ProtocolVersion};

/// Where a payment stands.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PaymentStatus {
    /// Signed and sent; no answer yet (or the connection failed before one arrived: the
    /// server may or may not have settled it).
    Sent,
    /// The server settled it; the receipt names the transaction.
    Settled {
        /// Transaction hash.
        transaction: String,
    },
    /// The server answered without settling: a rejection (402 with a reason) or a failed
    /// settlement receipt.
    Rejected {
        /// The reason code (`insufficient_funds`, `invalid_exact_evm_nonce_already_used`, …).
        reason: String,
        /// The server's explanation, when it gave one.
        message: Option<String>,
    },
    /// The server answered with an error status and no receipt; reference servers do not
    /// settle in that case, so the authorization is unspent and is reused if the same request
    /// is sent again.
    NotSettled {
        /// The HTTP status.
        status: u16,
    },
    /// A success status without a settlement receipt: most likely settled, unconfirmed.
    Unconfirmed {
        /// The HTTP status (200 for an MCP tool result that is not an error).
        status: u16,
    },
    /// MCP: the tool answered with an error result and no receipt. Servers do not settle a
    /// failed tool call, so the authorization is unspent and is reused if the same call is
    /// made again.
    ToolError,
}

impl fmt::Display for PaymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PaymentStatus::Sent => f.write_str("sent, no answer"),
            PaymentStatus::Settled { transaction } => write!(f, "settled in {transaction}"),
            PaymentStatus::Rejected { reason, message } => {
                write!(f, "rejected: {reason}")?;
                if let Some(message) = message {
                    write!(f, " ({message})")?;
                }
                Ok(())
            }
            PaymentStatus::NotSettled { status } => {
                write!(f, "not settled: the server answered HTTP {status}")
            }
            PaymentStatus::Unconfirmed { status } => {
                write!(f, "HTTP {status} without a settlement receipt")
            }
            PaymentStatus::ToolError => f.write_str("not settled: the tool answered with an error"),
        }
    }
}

/// One payment the client signed: what, where, how much, and what became of it.
#[derive(Debug, Clone)]
pub struct PaymentRecord {
    /// When it was signed.
    pub signed_at: SystemTime,
    /// The request's method (`tools/call` for an MCP tool).
    pub method: String,
    /// The request's URL (`mcp://tool/<name>` for an MCP tool).
    pub url: String,
    /// The resource URL the server named in its challenge.
    pub resource: String,
    /// The protocol generation used.
    pub version: ProtocolVersion,
    /// The network paid on.
    pub network: NetworkInfo,
    /// The token paid in.
    pub asset: AssetInfo,
    /// The amount, in the token's atomic units.
    pub amount: U256,
    /// The recipient (an EVM address, or a Solana wallet whose token account is paid).
    pub pay_to: ChainAddress,
    /// The payer (an EVM address, or the Solana transfer's authority).
    pub payer: ChainAddress,
    /// What makes the payment unique: the EIP-3009/Permit2 nonce on EVM, the SHA-256 of the
    /// transaction's message on Solana.
    pub nonce: B256,
    /// Unix time after which the payment can no longer be settled (on Solana, an estimate:
    /// the transaction lands only while its blockhash is recent, about a minute).
    pub valid_before: u64,
    /// How many times the signed authorization was sent (more than 1 after a retry).
    pub attempts: u32,
    /// Where it stands.
    pub status: PaymentStatus,
    /// The settlement receipt, when the server sent one.
    pub receipt: Option<SettleResponse>,
}

impl PaymentRecord {
    /// The amount for people, e.g. `0.01 USDC`.
    pub fn amount_display(&self) -> String {
        format!(
            "{} {}",
            format_units(self.amount, self.asset.decimals),
            self.asset.symbol
        )
    }

    /// The settlement transaction, when settled.
    pub fn transaction(&self) -> Option<&str> {
        match &self.status {
            PaymentStatus::Settled { transaction } => Some(transaction),
            _ => None,
        }
    }

    /// A one-line summary: `0.01 USDC on base-sepolia (eip155:84532) to 0x…: settled in 0x…`.
    pub fn summary(&self) -> String {
        format!(
            "{} on {} to {} for {}: {}",
            self.amount_display(),
            self.network,
            self.pay_to,
            self.resource,
            self.status
        )
    }
}
