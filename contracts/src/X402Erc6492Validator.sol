// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.30;

/// @title X402Erc6492Validator
/// @notice Checks a contract wallet's signature, deployed or not, without a transaction: never
///         deployed, its creation code is run with `eth_call` (no `to`), the way ERC-6492's
///         "deployless" validator is. When `signature` is ERC-6492-wrapped
///         (`abi.encode(factory, factoryCalldata, innerSignature) ‖ 0x6492…6492`) and `wallet`
///         has no code, it first calls `factory` with `factoryCalldata` (inside the simulation
///         only), then asks `wallet.isValidSignature(hash, innerSignature)` (ERC-1271).
/// @dev The constructor returns 64 bytes instead of code: `(bool deployed, bool valid)`, whether
///      `wallet` had code when asked and whether it answered `0x1626ba7e`.
contract X402Erc6492Validator {
    bytes32 private constant ERC6492_SUFFIX = 0x6492649264926492649264926492649264926492649264926492649264926492;
    bytes4 private constant ERC1271_MAGIC = 0x1626ba7e;

    /// @param wallet the account that signed
    /// @param hash the digest it signed
    /// @param signature its signature, possibly ERC-6492-wrapped
    constructor(address wallet, bytes32 hash, bytes memory signature) {
        bytes memory inner = signature;
        uint256 length = signature.length;
        bytes32 suffix;
        if (length >= 32) {
            assembly {
                suffix := mload(add(signature, length))
            }
        }
        if (suffix == ERC6492_SUFFIX) {
            assembly {
                mstore(signature, sub(length, 32))
            }
            (address factory, bytes memory factoryCalldata, bytes memory unwrapped) =
                abi.decode(signature, (address, bytes, bytes));
            if (wallet.code.length == 0) {
                // A failed deployment shows as `deployed == false` below.
                (bool ignored,) = factory.call(factoryCalldata);
                ignored;
            }
            inner = unwrapped;
        }
        bool deployed = wallet.code.length > 0;
        bool valid = false;
        if (deployed) {
            (bool ok, bytes memory answer) = wallet.staticcall(abi.encodeWithSelector(ERC1271_MAGIC, hash, inner));
            valid = ok && answer.length >= 32 && abi.decode(answer, (bytes4)) == ERC1271_MAGIC;
        }
        assembly {
            mstore(0, deployed)
            mstore(32, valid)
            return(0, 64)
        }
    }
}
