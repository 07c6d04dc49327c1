// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.30;

/// @notice The ERC-20 calls Permit2 makes.
interface IERC20Minimal {
    function transferFrom(address from, address to, uint256 value) external returns (bool);
}

/// @notice ERC-1271: a contract account says whether a signature over a hash is its own.
interface IERC1271 {
    function isValidSignature(bytes32 hash, bytes calldata signature) external view returns (bytes4);
}

/// @title Permit2SignatureTransfer
/// @notice A minimal stand-in for the signature-transfer half of Uniswap's Permit2, written for
///         this workspace's local-chain tests against Permit2's published interface: the same
///         function (`permitWitnessTransferFrom`), the same EIP-712 domain
///         `{name: "Permit2", chainId, verifyingContract}` (no version), the same unordered
///         nonces (`nonceBitmap`), so signatures made for the real Permit2 verify here.
/// @dev Installed with `anvil_setCode` at Permit2's canonical address, so it has no constructor,
///      no immutables and reads nothing it did not write itself. Not audited; not for value.
///      Only 65-byte ECDSA signatures from accounts without code, and ERC-1271 signatures from
///      accounts with code, are accepted.
contract Permit2SignatureTransfer {
    /// @notice Token and maximum amount the owner lets the spender move.
    struct TokenPermissions {
        address token;
        uint256 amount;
    }

    /// @notice A signed transfer permission (the spender is whoever calls).
    struct PermitTransferFrom {
        TokenPermissions permitted;
        uint256 nonce;
        uint256 deadline;
    }

    /// @notice Where the tokens go and how many, chosen by the spender within the permit.
    struct SignatureTransferDetails {
        address to;
        uint256 requestedAmount;
    }

    bytes32 private constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,uint256 chainId,address verifyingContract)");
    bytes32 private constant NAME_HASH = keccak256("Permit2");
    bytes32 private constant TOKEN_PERMISSIONS_TYPEHASH = keccak256("TokenPermissions(address token,uint256 amount)");
    /// @dev The witness type string is appended to this stub to form the full type.
    string private constant PERMIT_WITNESS_STUB =
        "PermitWitnessTransferFrom(TokenPermissions permitted,address spender,uint256 nonce,uint256 deadline,";
    bytes4 private constant ERC1271_MAGIC = 0x1626ba7e;

    /// @notice owner => word position => bitmap of used nonces (nonce = word << 8 | bit).
    mapping(address => mapping(uint256 => uint256)) public nonceBitmap;

    /// @notice Bits `mask` of word `word` of `owner`'s nonces were marked used.
    event UnorderedNonceInvalidation(address indexed owner, uint256 word, uint256 mask);

    /// @notice The permit's deadline `signatureDeadline` has passed.
    error SignatureExpired(uint256 signatureDeadline);
    /// @notice The requested amount exceeds the permitted `maxAmount`.
    error InvalidAmount(uint256 maxAmount);
    /// @notice The nonce was used before.
    error InvalidNonce();
    /// @notice No signer can be recovered from the signature.
    error InvalidSignature();
    /// @notice The signature was made by someone other than the owner.
    error InvalidSigner();
    /// @notice An ECDSA signature must be 65 bytes.
    error InvalidSignatureLength();
    /// @notice The owner contract refused the signature (ERC-1271).
    error InvalidContractSignature();
    /// @notice The token's `transferFrom` failed.
    error TransferFailed();

    /// @notice The EIP-712 domain separator on the current chain.
    function DOMAIN_SEPARATOR() public view returns (bytes32) {
        return keccak256(abi.encode(DOMAIN_TYPEHASH, NAME_HASH, block.chainid, address(this)));
    }

    /// @notice The EIP-712 digest a permit with a witness is signed over when `spender` submits
    ///         it: lets tests compare this contract's hashing with an off-chain one.
    function hashPermitWitnessTransferFrom(
        PermitTransferFrom calldata permit,
        address spender,
        bytes32 witness,
        string calldata witnessTypeString
    ) public view returns (bytes32) {
        bytes32 typeHash = keccak256(abi.encodePacked(PERMIT_WITNESS_STUB, witnessTypeString));
        bytes32 permittedHash =
            keccak256(abi.encode(TOKEN_PERMISSIONS_TYPEHASH, permit.permitted.token, permit.permitted.amount));
        bytes32 structHash =
            keccak256(abi.encode(typeHash, permittedHash, spender, permit.nonce, permit.deadline, witness));
        return keccak256(abi.encodePacked(hex"1901", DOMAIN_SEPARATOR(), structHash));
    }

    /// @notice Moves `transferDetails.requestedAmount` of the permitted token from `owner` to
    ///         `transferDetails.to`, if `owner` signed the permit (with the caller as spender
    ///         and `witness` of type `witnessTypeString`), before its deadline, with an unused
    ///         nonce. The owner must have approved this contract on the token.
    function permitWitnessTransferFrom(
        PermitTransferFrom calldata permit,
        SignatureTransferDetails calldata transferDetails,
        address owner,
        bytes32 witness,
        string calldata witnessTypeString,
        bytes calldata signature
    ) external {
        if (block.timestamp > permit.deadline) revert SignatureExpired(permit.deadline);
        if (transferDetails.requestedAmount > permit.permitted.amount) revert InvalidAmount(permit.permitted.amount);
        _useNonce(owner, permit.nonce);
        bytes32 digest = hashPermitWitnessTransferFrom(permit, msg.sender, witness, witnessTypeString);
        _verify(digest, owner, signature);
        _transferFrom(permit.permitted.token, owner, transferDetails.to, transferDetails.requestedAmount);
    }

    /// @notice Marks the nonces in `mask` of word `word` used, so permits with them cannot run.
    function invalidateUnorderedNonces(uint256 word, uint256 mask) external {
        nonceBitmap[msg.sender][word] |= mask;
        emit UnorderedNonceInvalidation(msg.sender, word, mask);
    }

    /// @dev Flips the nonce's bit; reverts when it was already set.
    function _useNonce(address owner, uint256 nonce) private {
        uint256 word = nonce >> 8;
        uint256 bit = 1 << (nonce & 0xff);
        uint256 flipped = nonceBitmap[owner][word] ^= bit;
        if (flipped & bit == 0) revert InvalidNonce();
    }

    /// @dev ERC-1271 for owners with code, 65-byte ECDSA otherwise.
    function _verify(bytes32 digest, address owner, bytes calldata signature) private view {
        if (owner.code.length > 0) {
            if (IERC1271(owner).isValidSignature(digest, signature) != ERC1271_MAGIC) {
                revert InvalidContractSignature();
            }
            return;
        }
        if (signature.length != 65) revert InvalidSignatureLength();
        bytes32 r = bytes32(signature[0:32]);
        bytes32 s = bytes32(signature[32:64]);
        uint8 v = uint8(signature[64]);
        address signer = ecrecover(digest, v, r, s);
        if (signer == address(0)) revert InvalidSignature();
        if (signer != owner) revert InvalidSigner();
    }

    /// @dev `token.transferFrom`, accepting tokens that return nothing.
    function _transferFrom(address token, address from, address to, uint256 amount) private {
        (bool ok, bytes memory answer) =
            token.call(abi.encodeCall(IERC20Minimal.transferFrom, (from, to, amount)));
        if (!ok) {
            // Pass the token's own revert on, so callers see why.
            assembly ("memory-safe") {
                revert(add(answer, 32), mload(answer))
            }
        }
        if (token.code.length == 0 || (answer.length != 0 && !abi.decode(answer, (bool)))) {
            revert TransferFailed();
        }
    }
}
