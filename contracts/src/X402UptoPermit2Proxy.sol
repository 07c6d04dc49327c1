// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.30;

/// @notice The EIP-2612 `permit` of the token, called by `settleWithPermit`.
interface IERC20Permit {
    function permit(address owner, address spender, uint256 value, uint256 deadline, uint8 v, bytes32 r, bytes32 s)
        external;
}

/// @notice The part of Permit2 the proxy calls.
interface ISignatureTransfer {
    struct TokenPermissions {
        address token;
        uint256 amount;
    }

    struct PermitTransferFrom {
        TokenPermissions permitted;
        uint256 nonce;
        uint256 deadline;
    }

    struct SignatureTransferDetails {
        address to;
        uint256 requestedAmount;
    }

    function permitWitnessTransferFrom(
        PermitTransferFrom calldata permit,
        SignatureTransferDetails calldata transferDetails,
        address owner,
        bytes32 witness,
        string calldata witnessTypeString,
        bytes calldata signature
    ) external;
}

/// @title X402UptoPermit2Proxy
/// @notice The spender of x402 `upto` payments: the payer signs a maximum, and the facilitator
///         named in the signed witness (and only it) settles any amount up to that maximum to
///         the signed recipient. Same ABI as the x402 reference proxy (`settle`, selector
///         0xff11e7b4), written for this workspace's local-chain tests.
/// @dev Installed with `anvil_setCode` at the reference proxy's address: constants only, no
///      constructor. Not audited; not for value.
contract X402UptoPermit2Proxy {
    /// @notice What the payer fixes besides the permit: recipient, settling facilitator,
    ///         earliest time.
    struct Witness {
        address to;
        address facilitator;
        uint256 validAfter;
    }

    /// @notice The payer's signed EIP-2612 permit approving Permit2 (`settleWithPermit`).
    struct EIP2612Permit {
        uint256 value;
        uint256 deadline;
        bytes32 r;
        bytes32 s;
        uint8 v;
    }

    /// @notice Uniswap's canonical Permit2.
    ISignatureTransfer public constant PERMIT2 = ISignatureTransfer(0x000000000022D473030F116dDEE9F6B43aC78BA3);

    /// @notice keccak256 of the witness's EIP-712 type.
    bytes32 public constant WITNESS_TYPEHASH = keccak256("Witness(address to,address facilitator,uint256 validAfter)");

    /// @notice The tail of the signed type that Permit2 appends after its own fields.
    string public constant WITNESS_TYPE_STRING =
        "Witness witness)TokenPermissions(address token,uint256 amount)Witness(address to,address facilitator,uint256 validAfter)";

    /// @notice A payment was settled.
    event Settled();
    /// @notice A payment was settled after submitting the payer's EIP-2612 permit.
    event SettledWithPermit();
    /// @notice The token refused the EIP-2612 permit (`settleWithPermit` then tried the
    ///         transfer anyway: the payer may have approved Permit2 some other way).
    event Permit2612Failed(address token, address owner);

    /// @notice The amount to settle is zero.
    error InvalidAmount();
    /// @notice The EIP-2612 permit's value is not the Permit2 permitted amount.
    error Permit2612AmountMismatch();
    /// @notice The owner is the zero address.
    error InvalidOwner();
    /// @notice The recipient is the zero address.
    error InvalidDestination();
    /// @notice The block time is before the witness's `validAfter`.
    error PaymentTooEarly();
    /// @notice `amount` is above the signed maximum `permitted`.
    error AmountExceedsPermitted();
    /// @notice The caller is not the facilitator the payer named.
    error UnauthorizedFacilitator();

    /// @notice Moves `amount` (at most `permit.permitted.amount`) from `owner` to `witness.to`
    ///         through Permit2; only `witness.facilitator` may call.
    function settle(
        ISignatureTransfer.PermitTransferFrom calldata permit,
        uint256 amount,
        address owner,
        Witness calldata witness,
        bytes calldata signature
    ) external {
        _settle(permit, amount, owner, witness, signature);
        emit Settled();
    }

    /// @notice Submits the owner's EIP-2612 permit approving Permit2 for exactly the permitted
    ///         maximum (a token refusal is tolerated), then settles `amount` as `settle` does.
    ///         Same ABI as the reference proxy (selector 0x016c1748).
    function settleWithPermit(
        EIP2612Permit calldata permit2612,
        ISignatureTransfer.PermitTransferFrom calldata permit,
        uint256 amount,
        address owner,
        Witness calldata witness,
        bytes calldata signature
    ) external {
        _executePermit(permit.permitted.token, owner, permit2612, permit.permitted.amount);
        _settle(permit, amount, owner, witness, signature);
        emit SettledWithPermit();
    }

    /// @dev Checks the arguments and runs the Permit2 transfer of `amount`.
    function _settle(
        ISignatureTransfer.PermitTransferFrom calldata permit,
        uint256 amount,
        address owner,
        Witness calldata witness,
        bytes calldata signature
    ) private {
        if (amount == 0) revert InvalidAmount();
        if (amount > permit.permitted.amount) revert AmountExceedsPermitted();
        if (owner == address(0)) revert InvalidOwner();
        if (witness.to == address(0)) revert InvalidDestination();
        if (msg.sender != witness.facilitator) revert UnauthorizedFacilitator();
        if (block.timestamp < witness.validAfter) revert PaymentTooEarly();
        PERMIT2.permitWitnessTransferFrom(
            permit,
            ISignatureTransfer.SignatureTransferDetails({to: witness.to, requestedAmount: amount}),
            owner,
            keccak256(abi.encode(WITNESS_TYPEHASH, witness.to, witness.facilitator, witness.validAfter)),
            WITNESS_TYPE_STRING,
            signature
        );
    }

    /// @dev The reference proxy's `_executePermit`: the permit must approve exactly
    ///      `permittedAmount`; the token's `permit` runs in a try/catch.
    function _executePermit(address token, address owner, EIP2612Permit calldata permit2612, uint256 permittedAmount)
        private
    {
        if (permit2612.value != permittedAmount) revert Permit2612AmountMismatch();
        try IERC20Permit(token).permit(
            owner, address(PERMIT2), permit2612.value, permit2612.deadline, permit2612.v, permit2612.r, permit2612.s
        ) {} catch {
            emit Permit2612Failed(token, owner);
        }
    }
}
