//! Machine-readable reason codes for rejected payments and failed requests.
//!
//! Where the x402 specification (§9 of v1 and v2) or the reference facilitators name a
//! condition, the same string is used; the rest follow the spec's snake_case style. Reasons
//! from a facilitator are passed through unchanged, so the set is open: a [`Reason`] is a
//! string with named constants, like `http::StatusCode`.

use std::borrow::Cow;
use std::fmt;

use crate::version::ProtocolVersion;

/// A reason code, such as `invalid_exact_evm_payload_signature`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reason(Cow<'static, str>);

macro_rules! reasons {
    ($($(#[$doc:meta])* $name:ident = $code:literal;)*) => {
        impl Reason {
            $($(#[$doc])* pub const $name: Reason = Reason(Cow::Borrowed($code));)*

            /// Every named reason code, for documentation and tests.
            pub const ALL: &'static [Reason] = &[$(Reason::$name),*];
        }
    };
}

reasons! {
    // --- Named by the x402 specification (v1 and v2 §9). ---
    /// The payer's balance does not cover the amount.
    INSUFFICIENT_FUNDS = "insufficient_funds";
    /// `validAfter` is in the future.
    VALID_AFTER = "invalid_exact_evm_payload_authorization_valid_after";
    /// `validBefore` is too close (less than 6 s away), past, or further away than allowed.
    VALID_BEFORE = "invalid_exact_evm_payload_authorization_valid_before";
    /// The authorized value is not the required amount (v2 spelling; see [`Reason::for_version`]).
    VALUE_MISMATCH = "invalid_exact_evm_payload_authorization_value_mismatch";
    /// The signature is malformed, malleable, or does not recover to `from`.
    INVALID_SIGNATURE = "invalid_exact_evm_payload_signature";
    /// The authorization pays someone other than `payTo`.
    RECIPIENT_MISMATCH = "invalid_exact_evm_payload_recipient_mismatch";
    /// The payment is for a network the route does not accept.
    INVALID_NETWORK = "invalid_network";
    /// The payment header or body is not a well-formed payment.
    INVALID_PAYLOAD = "invalid_payload";
    /// The requirements are malformed or unusable.
    INVALID_PAYMENT_REQUIREMENTS = "invalid_payment_requirements";
    /// The scheme is not one this party knows.
    UNSUPPORTED_SCHEME = "unsupported_scheme";
    /// The payment's scheme differs from the requirement's.
    INVALID_SCHEME = "invalid_scheme";
    /// The payment's `x402Version` is not the one its header implies, or is unknown.
    INVALID_X402_VERSION = "invalid_x402_version";
    /// Settlement reached the chain but the transfer did not succeed.
    INVALID_TRANSACTION_STATE = "invalid_transaction_state";
    /// The facilitator failed while verifying.
    UNEXPECTED_VERIFY_ERROR = "unexpected_verify_error";
    /// The facilitator failed while settling.
    UNEXPECTED_SETTLE_ERROR = "unexpected_settle_error";

    // --- Named by the reference facilitators. ---
    /// This authorization (payer + nonce) was already used.
    NONCE_ALREADY_USED = "invalid_exact_evm_nonce_already_used";
    /// Simulating `transferWithAuthorization` on chain (`eth_call`) reverted.
    SIMULATION_FAILED = "invalid_exact_evm_transaction_simulation_failed";
    /// The payer has no code and its signature is not an ECDSA signature or an ERC-6492 one
    /// that could deploy it: a contract wallet that does not exist yet.
    UNDEPLOYED_SMART_WALLET = "invalid_exact_evm_payload_undeployed_smart_wallet";
    /// An ERC-6492 signature names a factory this facilitator does not call (its allowlist is
    /// empty, or does not list it).
    EIP6492_FACTORY_NOT_ALLOWED = "eip6492_factory_not_allowed";

    // --- Permit2 `exact` and `upto`, named by the reference facilitator. ---
    /// The Permit2 `spender` is not the x402 proxy of the scheme.
    PERMIT2_INVALID_SPENDER = "invalid_permit2_spender";
    /// The Permit2 witness pays someone other than `payTo`.
    PERMIT2_RECIPIENT_MISMATCH = "invalid_permit2_recipient_mismatch";
    /// The Permit2 `deadline` is past or less than 6 s away.
    PERMIT2_DEADLINE_EXPIRED = "permit2_deadline_expired";
    /// The Permit2 witness's `validAfter` is in the future.
    PERMIT2_NOT_YET_VALID = "permit2_not_yet_valid";
    /// The Permit2 permitted amount is not the required amount.
    PERMIT2_AMOUNT_MISMATCH = "permit2_amount_mismatch";
    /// The Permit2 permitted token is not the requirement's asset.
    PERMIT2_TOKEN_MISMATCH = "permit2_token_mismatch";
    /// The Permit2 signature is malformed, malleable, or does not recover to `from`.
    PERMIT2_INVALID_SIGNATURE = "invalid_permit2_signature";
    /// The payer has not approved Permit2 for the amount (answered with HTTP 412).
    PERMIT2_ALLOWANCE_REQUIRED = "permit2_allowance_required";
    /// The `upto` witness names a facilitator that may not settle here.
    UPTO_FACILITATOR_MISMATCH = "upto_facilitator_mismatch";
    /// An `upto` settlement asks for more than the payer permitted.
    UPTO_SETTLEMENT_EXCEEDS_AMOUNT = "invalid_upto_evm_payload_settlement_exceeds_amount";

    // --- The `eip2612GasSponsoring` extension, named by the reference facilitator. ---
    /// The extension's `info` is missing a field or malformed.
    EIP2612_EXTENSION_FORMAT = "invalid_eip2612_extension_format";
    /// The EIP-2612 permit's owner is not the payer.
    EIP2612_FROM_MISMATCH = "eip2612_from_mismatch";
    /// The EIP-2612 permit is for another token.
    EIP2612_ASSET_MISMATCH = "eip2612_asset_mismatch";
    /// The EIP-2612 permit approves someone other than Permit2.
    EIP2612_SPENDER_NOT_PERMIT2 = "eip2612_spender_not_permit2";
    /// The EIP-2612 permit's deadline is past or less than 6 s away.
    EIP2612_DEADLINE_EXPIRED = "eip2612_deadline_expired";

    // --- The `erc20ApprovalGasSponsoring` extension, named by the reference facilitator. ---
    /// The extension's `info` is missing a field or malformed.
    ERC20_APPROVAL_EXTENSION_FORMAT = "invalid_erc20_approval_extension_format";
    /// The approval's `from` is not the payer.
    ERC20_APPROVAL_FROM_MISMATCH = "erc20_approval_from_mismatch";
    /// The approval's `asset` is not the payment's token.
    ERC20_APPROVAL_ASSET_MISMATCH = "erc20_approval_asset_mismatch";
    /// The approval's `spender` is not Permit2.
    ERC20_APPROVAL_SPENDER_NOT_PERMIT2 = "erc20_approval_spender_not_permit2";
    /// The signed approval transaction does not decode.
    ERC20_APPROVAL_TX_PARSE_FAILED = "erc20_approval_tx_parse_failed";
    /// The approval transaction does not call the token.
    ERC20_APPROVAL_TX_WRONG_TARGET = "erc20_approval_tx_wrong_target";
    /// The approval transaction does not call `approve`.
    ERC20_APPROVAL_TX_WRONG_SELECTOR = "erc20_approval_tx_wrong_selector";
    /// The approval transaction approves someone other than Permit2.
    ERC20_APPROVAL_TX_WRONG_SPENDER = "erc20_approval_tx_wrong_spender";
    /// The approval transaction's `approve` arguments are malformed.
    ERC20_APPROVAL_TX_INVALID_CALLDATA = "erc20_approval_tx_invalid_calldata";
    /// The approval transaction was signed by someone other than the payer.
    ERC20_APPROVAL_TX_SIGNER_MISMATCH = "erc20_approval_tx_signer_mismatch";
    /// The approval transaction's signature is malformed or unrecoverable.
    ERC20_APPROVAL_TX_INVALID_SIGNATURE = "erc20_approval_tx_invalid_signature";

    // --- This implementation's own, in the spec's style. ---
    /// The approval transaction is for another chain than the payment.
    ERC20_APPROVAL_TX_WRONG_CHAIN = "erc20_approval_tx_wrong_chain";
    /// The EIP-2612 permit approves another value than the Permit2 amount (the x402 proxy
    /// would revert).
    EIP2612_AMOUNT_MISMATCH = "eip2612_amount_mismatch";
    /// The EIP-2612 permit's signature is malformed or not the owner's in the token's domain.
    EIP2612_INVALID_SIGNATURE = "invalid_eip2612_signature";
    /// A Permit2 `exact` payment answers a requirement that does not offer Permit2
    /// (`extra.assetTransferMethod` is not `"permit2"`).
    ASSET_TRANSFER_METHOD_MISMATCH = "invalid_exact_evm_asset_transfer_method";
    /// The signature may be a contract wallet's (ERC-1271, or ERC-6492 for a wallet not deployed
    /// yet), which only a chain can check, and whoever checked has no RPC for that chain.
    SMART_WALLET_NEEDS_RPC = "smart_wallet_signature_needs_rpc";
    /// The v2 `accepted.asset` is not the token the route accepts on that network.
    ASSET_MISMATCH = "invalid_exact_evm_payload_asset_mismatch";
    /// The v2 `accepted` entry names another recipient or amount than the route, or drops or
    /// changes a key of the route's `extra`.
    ACCEPTED_MISMATCH = "invalid_payload_accepted_mismatch";
    /// No payment was sent; the 402 lists how to pay.
    PAYMENT_REQUIRED = "payment_required";
    /// The payment header is longer than the server accepts.
    HEADER_TOO_LARGE = "payment_header_too_large";
    /// The facilitator could not be reached.
    FACILITATOR_UNAVAILABLE = "facilitator_unavailable";
    /// The facilitator did not answer within the configured timeout.
    FACILITATOR_TIMEOUT = "facilitator_timeout";
    /// The facilitator answered with something that is not a valid x402 response.
    FACILITATOR_INVALID_RESPONSE = "facilitator_invalid_response";
    /// The payment store (replay protection, entitlements) is unavailable.
    STORE_UNAVAILABLE = "store_unavailable";
    /// The route's dynamic price could not be computed.
    PRICE_UNAVAILABLE = "price_unavailable";
    /// The server is not set up for x402 on this route (for example, a missing layer).
    NOT_CONFIGURED = "x402_not_configured";
    /// The facilitator reported a failed settlement without a reason.
    SETTLEMENT_FAILED = "settlement_failed";
    /// The payment was submitted for settlement but its outcome is not known yet (a receipt
    /// that did not arrive in time). Not a failure: retry with the same payment.
    SETTLEMENT_PENDING = "settlement_pending";
    /// A `payment-identifier` id was already used for a different request.
    PAYMENT_ID_CONFLICT = "payment_identifier_conflict";
    /// The route requires a `payment-identifier` id and the payment has none.
    PAYMENT_ID_REQUIRED = "payment_identifier_required";
    /// The `payment-identifier` extension or its id is malformed.
    PAYMENT_ID_INVALID = "invalid_payment_identifier";
    /// The payment was settled earlier, but the response it bought was not kept (too large or
    /// streamed), so it cannot be sent again; the receipt says what was paid.
    PAYMENT_ALREADY_SETTLED = "payment_already_settled";
    /// A request with this payment is still being processed; retry shortly with the same
    /// payment.
    PAYMENT_IN_PROGRESS = "payment_in_progress";
    /// The answer to an earlier request with the same payment, sent again (not an error).
    PAYMENT_REPLAYED = "payment_replayed";

    // --- Entitlements (pay once, reuse) and prepaid sessions. Clients drop a token answered
    // with any `entitlement_*` reason. ---
    /// The entitlement token is malformed, forged, or signed with an unknown key.
    ENTITLEMENT_INVALID = "entitlement_invalid";
    /// The entitlement token's time is up.
    ENTITLEMENT_EXPIRED = "entitlement_expired";
    /// The entitlement token's uses are all spent.
    ENTITLEMENT_EXHAUSTED = "entitlement_exhausted";
    /// The entitlement token was bought for another route or group.
    ENTITLEMENT_SCOPE_MISMATCH = "entitlement_scope_mismatch";
    /// The prepaid session's balance cannot cover this request.
    ENTITLEMENT_BALANCE_INSUFFICIENT = "entitlement_balance_insufficient";
    /// The entitlement token was bought with another HTTP method or for another route.
    ENTITLEMENT_ROUTE_MISMATCH = "entitlement_route_mismatch";
    /// The entitlement token was bought at a lower price than this request costs.
    ENTITLEMENT_PRICE_EXCEEDED = "entitlement_price_exceeded";

    // --- Sign-in-with-x (returning payers); refusals of the sign-in itself are the
    // `invalid_siwx_*` codes of `siwx::SiwxError`. ---
    /// The wallet that signed in holds no grant for this resource on this server (it never
    /// bought one, or it has expired).
    SIWX_NO_GRANT = "siwx_no_grant";
}

impl Reason {
    /// A reason code from any string (for example one a facilitator sent).
    pub fn new(code: impl Into<Cow<'static, str>>) -> Self {
        Reason(code.into())
    }

    /// The code.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The spelling for a protocol generation: v1 names a value mismatch
    /// `invalid_exact_evm_payload_authorization_value`, v2 adds `_mismatch`.
    pub fn for_version(&self, version: ProtocolVersion) -> &str {
        if version == ProtocolVersion::V1 && *self == Reason::VALUE_MISMATCH {
            "invalid_exact_evm_payload_authorization_value"
        } else {
            self.as_str()
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<Reason> for String {
    fn from(reason: Reason) -> String {
        reason.0.into_owned()
    }
}
