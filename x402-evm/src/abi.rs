//! The contract surface the settler speaks: EIP-3009 on the token.

#![allow(missing_docs, unreachable_pub)]
alloy_sol_types::sol! {
    /// The EIP-3009 surface the settler uses, and the custom errors of the workspace's own
    /// test token (`contracts/src/X402TestToken.sol`) so its reverts read well in messages.
    /// Other tokens' `Error(string)` reverts (FiatToken's, for example) decode generically.
    #[sol(all_derives)]
    interface Eip3009Token {
        function balanceOf(address account) external view returns (uint256);
        function authorizationState(address authorizer, bytes32 nonce) external view returns (bool);
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

        event AuthorizationUsed(address indexed authorizer, bytes32 indexed nonce);
    }
}
