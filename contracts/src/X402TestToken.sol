// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.30;

/// @title X402TestToken
/// @notice A small ERC-20 token (6 decimals, like USDC) that can also be moved with a payer's
///         signed EIP-3009 authorization, the way x402 settles `exact` payments on EVM chains,
///         and approved with a signed EIP-2612 `permit` (the `eip2612GasSponsoring` extension
///         of Permit2 payments). Written for this workspace's end-to-end tests on local dev
///         chains.
/// @dev Not audited and not meant to hold value: the deployer can mint without limit. A payer
///      without code signs with 65-byte ECDSA; a payer with code (a contract wallet) is asked
///      through ERC-1271 `isValidSignature`, as USDC v2.2 does.
contract X402TestToken {
    /// @dev keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
    bytes32 private constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");

    /// @notice The EIP-712 type hash of the struct a payer signs.
    bytes32 public constant TRANSFER_WITH_AUTHORIZATION_TYPEHASH = keccak256(
        "TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );

    /// @notice The EIP-712 type hash of an EIP-2612 permit.
    bytes32 public constant PERMIT_TYPEHASH =
        keccak256("Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)");

    /// @dev Half the order of secp256k1. Signatures with a larger `s` are the malleated twin of
    ///      a canonical one (EIP-2) and are refused.
    uint256 private constant HALF_CURVE_ORDER =
        0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0;

    /// @notice ERC-20 decimals.
    uint8 public constant decimals = 6;

    /// @dev ERC-1271 `isValidSignature(bytes32,bytes)`, also the value a contract wallet
    ///      returns for a valid signature.
    bytes4 private constant ERC1271_IS_VALID_SIGNATURE = 0x1626ba7e;

    /// @notice Token name; also the EIP-712 domain name.
    string public name;
    /// @notice Ticker symbol.
    string public symbol;
    /// @notice The EIP-712 domain version (USDC uses "2").
    string public version;
    /// @notice The only account allowed to mint: the deployer.
    address public immutable owner;

    /// @notice Tokens in existence.
    uint256 public totalSupply;
    /// @notice Balance per account.
    mapping(address => uint256) public balanceOf;
    /// @notice What a spender may still move from an owner's balance.
    mapping(address => mapping(address => uint256)) public allowance;

    bytes32 private immutable nameHash;
    bytes32 private immutable versionHash;
    /// @dev authorizer => nonce => consumed
    mapping(address => mapping(bytes32 => bool)) private consumed;
    /// @notice EIP-2612: the nonce the owner's next `permit` must sign.
    mapping(address => uint256) public nonces;

    /// @notice ERC-20: `value` tokens moved from `from` to `to` (from the zero address when minted).
    event Transfer(address indexed from, address indexed to, uint256 value);
    /// @notice ERC-20: `spender` may move up to `value` of `owner`'s tokens.
    event Approval(address indexed owner, address indexed spender, uint256 value);
    /// @notice EIP-3009: the authorization `nonce` of `authorizer` was consumed.
    event AuthorizationUsed(address indexed authorizer, bytes32 indexed nonce);

    /// @notice Only the owner may mint.
    error NotOwner(address caller);
    /// @notice Tokens cannot be sent to the zero address.
    error ZeroAddress();
    /// @notice `account` holds `balance` but `needed` was asked for.
    error InsufficientBalance(address account, uint256 balance, uint256 needed);
    /// @notice `spender` may move `allowed` of `holder`'s tokens but `needed` was asked for.
    error InsufficientAllowance(address holder, address spender, uint256 allowed, uint256 needed);
    /// @notice The block time `timestamp` is not after `validAfter` yet.
    error AuthorizationNotYetValid(uint256 validAfter, uint256 timestamp);
    /// @notice The block time `timestamp` is not before `validBefore` any more.
    error AuthorizationExpired(uint256 validBefore, uint256 timestamp);
    /// @notice The authorization `nonce` of `authorizer` was consumed before.
    error AuthorizationAlreadyUsed(address authorizer, bytes32 nonce);
    /// @notice A packed signature must be 65 bytes (r, s, v).
    error InvalidSignatureLength(uint256 length);
    /// @notice EIP-2612: the block time `timestamp` is past the permit's `deadline`.
    error PermitExpired(uint256 deadline, uint256 timestamp);
    /// @notice The recovery byte must be 27 or 28.
    error InvalidSignatureV(uint8 v);
    /// @notice `s` is in the upper half of the curve order (a malleated signature).
    error InvalidSignatureS(bytes32 s);
    /// @notice No address can be recovered from the signature.
    error InvalidSignature();
    /// @notice The signature was made by `signer`, not by the payer `from`.
    error WrongSigner(address signer, address from);
    /// @notice The contract wallet `wallet` did not answer ERC-1271's magic value for the signature.
    error InvalidContractSignature(address wallet);

    /// @param name_ token name and EIP-712 domain name
    /// @param symbol_ ticker symbol
    /// @param version_ EIP-712 domain version
    constructor(string memory name_, string memory symbol_, string memory version_) {
        name = name_;
        symbol = symbol_;
        version = version_;
        nameHash = keccak256(bytes(name_));
        versionHash = keccak256(bytes(version_));
        owner = msg.sender;
    }

    // ------------------------------------------------------------------------------------------
    // ERC-20
    // ------------------------------------------------------------------------------------------

    /// @notice Sends `value` of the caller's tokens to `to`.
    function transfer(address to, uint256 value) external returns (bool) {
        _move(msg.sender, to, value);
        return true;
    }

    /// @notice Lets `spender` move up to `value` of the caller's tokens.
    function approve(address spender, uint256 value) external returns (bool) {
        allowance[msg.sender][spender] = value;
        emit Approval(msg.sender, spender, value);
        return true;
    }

    /// @notice Moves `value` of `from`'s tokens to `to` within the caller's allowance. An
    ///         allowance of 2^256-1 is never used up.
    function transferFrom(address from, address to, uint256 value) external returns (bool) {
        uint256 allowed = allowance[from][msg.sender];
        if (allowed != type(uint256).max) {
            if (allowed < value) revert InsufficientAllowance(from, msg.sender, allowed, value);
            unchecked {
                allowance[from][msg.sender] = allowed - value;
            }
        }
        _move(from, to, value);
        return true;
    }

    /// @notice Creates `value` new tokens for `to` (dev faucet; owner only).
    function mint(address to, uint256 value) external {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        if (to == address(0)) revert ZeroAddress();
        totalSupply += value;
        unchecked {
            // Cannot overflow: no balance exceeds totalSupply, which was checked above.
            balanceOf[to] += value;
        }
        emit Transfer(address(0), to, value);
    }

    // ------------------------------------------------------------------------------------------
    // EIP-712 / EIP-3009
    // ------------------------------------------------------------------------------------------

    /// @notice The EIP-712 domain separator of this token on the current chain.
    function DOMAIN_SEPARATOR() public view returns (bytes32) {
        return keccak256(abi.encode(DOMAIN_TYPEHASH, nameHash, versionHash, block.chainid, address(this)));
    }

    /// @notice Whether `authorizer` has consumed the authorization `nonce`.
    function authorizationState(address authorizer, bytes32 nonce) external view returns (bool) {
        return consumed[authorizer][nonce];
    }

    /// @notice Moves `value` from `from` to `to` with `from`'s signature (v, r, s) over a
    ///         `TransferWithAuthorization`, inside the window (validAfter, validBefore), once per
    ///         nonce. Anyone may submit it.
    function transferWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external {
        _consumeAuthorization(
            from, _authorizationDigest(from, to, value, validAfter, validBefore, nonce), nonce, abi.encodePacked(r, s, v)
        );
        _move(from, to, value);
    }

    /// @notice Same as the (v, r, s) form, with the signature packed as 65 bytes r ‖ s ‖ v, or,
    ///         for a payer with code, whatever its ERC-1271 `isValidSignature` accepts.
    function transferWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        bytes calldata signature
    ) external {
        bytes32 digest = _authorizationDigest(from, to, value, validAfter, validBefore, nonce);
        _consumeAuthorization(from, digest, nonce, signature);
        _move(from, to, value);
    }

    // ------------------------------------------------------------------------------------------
    // EIP-2612
    // ------------------------------------------------------------------------------------------

    /// @notice Lets `spender` move up to `value` of `owner_`'s tokens with `owner_`'s ECDSA
    ///         signature (v, r, s) over a `Permit` with the current `nonces(owner_)`, until
    ///         `deadline` (inclusive). Anyone may submit it; it consumes the nonce.
    function permit(address owner_, address spender, uint256 value, uint256 deadline, uint8 v, bytes32 r, bytes32 s)
        external
    {
        if (block.timestamp > deadline) revert PermitExpired(deadline, block.timestamp);
        uint256 nonce = nonces[owner_];
        bytes32 structHash = keccak256(abi.encode(PERMIT_TYPEHASH, owner_, spender, value, nonce, deadline));
        bytes32 digest = keccak256(abi.encodePacked(hex"1901", DOMAIN_SEPARATOR(), structHash));
        if (v != 27 && v != 28) revert InvalidSignatureV(v);
        if (uint256(s) > HALF_CURVE_ORDER) revert InvalidSignatureS(s);
        address signer = ecrecover(digest, v, r, s);
        if (signer == address(0)) revert InvalidSignature();
        if (signer != owner_) revert WrongSigner(signer, owner_);
        unchecked {
            nonces[owner_] = nonce + 1;
        }
        allowance[owner_][spender] = value;
        emit Approval(owner_, spender, value);
    }

    // ------------------------------------------------------------------------------------------
    // Internals
    // ------------------------------------------------------------------------------------------

    /// @dev Checks the time window, then the payload's EIP-712 digest.
    function _authorizationDigest(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce
    ) private view returns (bytes32) {
        if (block.timestamp <= validAfter) revert AuthorizationNotYetValid(validAfter, block.timestamp);
        if (block.timestamp >= validBefore) revert AuthorizationExpired(validBefore, block.timestamp);
        bytes32 structHash =
            keccak256(abi.encode(TRANSFER_WITH_AUTHORIZATION_TYPEHASH, from, to, value, validAfter, validBefore, nonce));
        return keccak256(abi.encodePacked(hex"1901", DOMAIN_SEPARATOR(), structHash));
    }

    /// @dev Refuses a consumed nonce or a signature not made by `from` (ECDSA for an account
    ///      without code, ERC-1271 for a contract), then consumes the nonce.
    function _consumeAuthorization(address from, bytes32 digest, bytes32 nonce, bytes memory signature) private {
        if (consumed[from][nonce]) revert AuthorizationAlreadyUsed(from, nonce);
        if (from.code.length > 0) {
            (bool ok, bytes memory answer) =
                from.staticcall(abi.encodeWithSelector(ERC1271_IS_VALID_SIGNATURE, digest, signature));
            if (!ok || answer.length < 32 || abi.decode(answer, (bytes4)) != ERC1271_IS_VALID_SIGNATURE) {
                revert InvalidContractSignature(from);
            }
        } else {
            if (signature.length != 65) revert InvalidSignatureLength(signature.length);
            bytes32 r;
            bytes32 s;
            uint8 v;
            assembly {
                r := mload(add(signature, 32))
                s := mload(add(signature, 64))
                v := byte(0, mload(add(signature, 96)))
            }
            if (v != 27 && v != 28) revert InvalidSignatureV(v);
            if (uint256(s) > HALF_CURVE_ORDER) revert InvalidSignatureS(s);
            address signer = ecrecover(digest, v, r, s);
            if (signer == address(0)) revert InvalidSignature();
            if (signer != from) revert WrongSigner(signer, from);
        }
        consumed[from][nonce] = true;
        emit AuthorizationUsed(from, nonce);
    }

    /// @dev Moves tokens between accounts.
    function _move(address from, address to, uint256 value) private {
        if (to == address(0)) revert ZeroAddress();
        uint256 held = balanceOf[from];
        if (held < value) revert InsufficientBalance(from, held, value);
        unchecked {
            // Cannot underflow (checked above) or overflow (balances sum to totalSupply).
            balanceOf[from] = held - value;
            balanceOf[to] += value;
        }
        emit Transfer(from, to, value);
    }
}
