//! The contract surface the settler speaks: EIP-3009 and ERC-20 on the token, Permit2, and the
//! x402 Permit2 proxies.

#![allow(missing_docs, unreachable_pub)]
alloy_sol_types::sol! {
    /// The EIP-3009 surface the settler uses, and the custom errors of the workspace's own
    /// test token (`contracts/src/X402TestToken.sol`) so its reverts read well in messages.
    /// Other tokens' `Error(string)` reverts (FiatToken's, for example) decode generically.
    #[sol(all_derives)]
    interface Eip3009Token {
        function balanceOf(address account) external view returns (uint256);
        function allowance(address owner, address spender) external view returns (uint256);
        function authorizationState(address authorizer, bytes32 nonce) external view returns (bool);
        /// EIP-2612: the nonce of `owner`'s next permit.
        function nonces(address owner) external view returns (uint256);
        /// EIP-2612 `permit` (`0xd505accf`).
        function permit(address owner, address spender, uint256 value, uint256 deadline, uint8 v, bytes32 r, bytes32 s) external;
        function transferWithAuthorization(address from, address to, uint256 value, uint256 validAfter, uint256 validBefore, bytes32 nonce, uint8 v, bytes32 r, bytes32 s) external;
        function transferWithAuthorization(address from, address to, uint256 value, uint256 validAfter, uint256 validBefore, bytes32 nonce, bytes signature) external;

        error ZeroAddress();
        error InsufficientBalance(address account, uint256 balance, uint256 needed);
        error AuthorizationNotYetValid(uint256 validAfter, uint256 timestamp);
        error AuthorizationExpired(uint256 validBefore, uint256 timestamp);
        error AuthorizationAlreadyUsed(address authorizer, bytes32 nonce);
        error InvalidSignatureLength(uint256 length);
        error InvalidSignatureV(uint8 v);
        error InvalidSignatureS(bytes32 s);
        error InvalidSignature();
        error WrongSigner(address signer, address from);
        error InsufficientAllowance(address holder, address spender, uint256 allowed, uint256 needed);
        error InvalidContractSignature(address wallet);
        error PermitExpired(uint256 deadline, uint256 timestamp);

        event AuthorizationUsed(address indexed authorizer, bytes32 indexed nonce);
        event Transfer(address indexed from, address indexed to, uint256 value);
    }

    /// ERC-1271: a contract wallet says whether a signature is its own.
    #[sol(all_derives)]
    interface Erc1271 {
        function isValidSignature(bytes32 hash, bytes signature) external view returns (bytes4);
    }

    /// The part of Permit2 the settler reads (its unordered nonces), and Permit2's errors.
    #[sol(all_derives)]
    interface Permit2 {
        function nonceBitmap(address owner, uint256 word) external view returns (uint256);
        function DOMAIN_SEPARATOR() external view returns (bytes32);

        error SignatureExpired(uint256 signatureDeadline);
        error InvalidAmount(uint256 maxAmount);
        error InvalidNonce();
        error InvalidSigner();
        error InvalidSignatureLength();
        error InvalidContractSignature();
        error TransferFailed();
    }

    /// The x402 exact and upto Permit2 proxies (the reference's ABI): `settle` of each, and
    /// their errors.
    #[sol(all_derives)]
    interface X402Permit2Proxy {
        struct TokenPermissions { address token; uint256 amount; }
        struct PermitTransferFrom { TokenPermissions permitted; uint256 nonce; uint256 deadline; }
        struct ExactWitness { address to; uint256 validAfter; }
        struct UptoWitness { address to; address facilitator; uint256 validAfter; }
        struct EIP2612Permit { uint256 value; uint256 deadline; bytes32 r; bytes32 s; uint8 v; }

        /// The exact proxy's `settle` (`0x13cd3b53`): moves the whole permitted amount.
        function settle(PermitTransferFrom permit, address owner, ExactWitness witness, bytes signature) external;
        /// The upto proxy's `settle` (`0xff11e7b4`): moves `amount` ≤ the permitted maximum.
        function settle(PermitTransferFrom permit, uint256 amount, address owner, UptoWitness witness, bytes signature) external;
        /// The exact proxy's `settleWithPermit` (`0xfa340378`): the payer's EIP-2612 permit
        /// approving Permit2, then `settle`.
        function settleWithPermit(EIP2612Permit permit2612, PermitTransferFrom permit, address owner, ExactWitness witness, bytes signature) external;
        /// The upto proxy's `settleWithPermit` (`0x016c1748`).
        function settleWithPermit(EIP2612Permit permit2612, PermitTransferFrom permit, uint256 amount, address owner, UptoWitness witness, bytes signature) external;
        function PERMIT2() external view returns (address);

        error InvalidAmount();
        error InvalidOwner();
        error InvalidDestination();
        error PaymentTooEarly();
        error AmountExceedsPermitted();
        error UnauthorizedFacilitator();
        error Permit2612AmountMismatch();
    }
}
