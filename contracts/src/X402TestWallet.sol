// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.30;

/// @title X402TestWallet
/// @notice A minimal smart-contract account for tests: one EOA owner, whose ECDSA signatures it
///         vouches for through ERC-1271 `isValidSignature`, and who may make it call anything
///         (to approve Permit2, for example).
/// @dev Not audited; not for value.
contract X402TestWallet {
    bytes4 private constant ERC1271_MAGIC = 0x1626ba7e;
    uint256 private constant HALF_CURVE_ORDER =
        0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0;

    /// @notice The EOA whose signatures are this wallet's.
    address public immutable owner;

    /// @notice Only the owner may make the wallet call out.
    error NotOwner(address caller);
    /// @notice The wallet's call to `target` reverted with `reason`.
    error CallFailed(address target, bytes reason);

    /// @param owner_ the EOA that signs for the wallet
    constructor(address owner_) {
        owner = owner_;
    }

    /// @notice ERC-1271: `0x1626ba7e` when `signature` is the owner's canonical 65-byte ECDSA
    ///         signature of `hash`, `0xffffffff` otherwise.
    function isValidSignature(bytes32 hash, bytes calldata signature) external view returns (bytes4) {
        if (signature.length != 65) return 0xffffffff;
        bytes32 r = bytes32(signature[0:32]);
        bytes32 s = bytes32(signature[32:64]);
        uint8 v = uint8(signature[64]);
        if (uint256(s) > HALF_CURVE_ORDER) return 0xffffffff;
        address signer = ecrecover(hash, v, r, s);
        return signer != address(0) && signer == owner ? ERC1271_MAGIC : bytes4(0xffffffff);
    }

    /// @notice Calls `target` with `data` (owner only).
    function execute(address target, bytes calldata data) external returns (bytes memory) {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        (bool ok, bytes memory answer) = target.call(data);
        if (!ok) revert CallFailed(target, answer);
        return answer;
    }
}

/// @title X402TestWalletFactory
/// @notice Deploys [`X402TestWallet`]s with CREATE2, so a wallet's address is known (and can
///         be signed for, ERC-6492 style) before it exists.
contract X402TestWalletFactory {
    /// @notice A wallet for `owner` was deployed at `wallet`.
    event Deployed(address indexed wallet, address indexed owner, bytes32 salt);

    /// @notice Deploys the wallet of `owner` under `salt` (reverts if it exists).
    function deploy(address owner, bytes32 salt) external returns (address wallet) {
        wallet = address(new X402TestWallet{salt: salt}(owner));
        emit Deployed(wallet, owner, salt);
    }

    /// @notice The address `deploy(owner, salt)` creates.
    function walletAddress(address owner, bytes32 salt) external view returns (address) {
        bytes32 initCodeHash = keccak256(abi.encodePacked(type(X402TestWallet).creationCode, abi.encode(owner)));
        return address(uint160(uint256(keccak256(abi.encodePacked(bytes1(0xff), address(this), salt, initCodeHash)))));
    }
}
