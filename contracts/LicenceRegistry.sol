// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ILicenceRegistry} from "./ILicenceRegistry.sol";

/// @title Registry of electronic licence batches (电子证照)
/// @notice Issuing agencies anchor Merkle roots of licence batches; each licence (a leaf)
/// under a root can later be suspended, reinstated, revoked, superseded or cancelled by
/// the agency that anchored the root, or by a governor.
/// @dev Every digest is 16 bytes (`bytes16`): SHA-256 truncated to its first 16 bytes,
/// so that a licence's QR code stays small. Leaves are the first 16 bytes of
/// sha256(0x00 || ...), computed off-chain; inner nodes are the first 16 bytes of
/// sha256(0x01 || min(a, b) || max(a, b)), so a leaf can never pose as a node.
contract LicenceRegistry is AccessControl, ILicenceRegistry {
    bytes32 public constant GOVERNOR_ROLE = keccak256("GOVERNOR_ROLE");

    uint256 private constant AGENCY_CODE_LENGTH = 18;

    struct Agency {
        address signer;
        uint64 licenceTypes;
        bool retired;
        string code;
        string name;
    }

    // Hot-path records are packed by hand into one uint256 each, so that every read
    // and write is one SLOAD/SSTORE (the legacy optimizer splits struct field writes).

    // Signer record: a copy of the agency fields `anchor` needs, keyed by signer, so
    // that authorising an anchor costs one storage read. Kept in sync by every
    // governance function. A spent (rotated away) signer keeps its record, so the key
    // can never be reused.
    uint256 private constant SIGNER_TYPES_SHIFT = 32;
    uint256 private constant SIGNER_RETIRED = 1 << 96;
    uint256 private constant SIGNER_SPENT = 1 << 97;

    // Anchor record, one slot per root.
    uint256 private constant ANCHOR_TYPE_SHIFT = 32;
    uint256 private constant ANCHOR_COUNT_SHIFT = 40;
    uint256 private constant ANCHOR_BLOCK_SHIFT = 72;
    uint256 private constant ANCHOR_TIME_SHIFT = 136;

    // Leaf record, one slot per (root, leaf); the successor of a superseded leaf lives
    // apart, so the common status changes write a single slot.
    uint256 private constant LEAF_REASON_SHIFT = 8;
    uint256 private constant LEAF_BLOCK_SHIFT = 16;

    uint32 private _agencyCount;
    mapping(uint32 agencyId => Agency) private _agencies;
    mapping(address signer => uint256 record) private _signers;
    mapping(bytes32 codeHash => uint32 agencyId) private _agencyIdByCode;
    mapping(bytes16 root => uint256 record) private _anchors;
    mapping(bytes16 root => mapping(bytes16 leaf => uint256 record)) private _leaves;
    mapping(bytes16 root => mapping(bytes16 leaf => bytes16 successor)) private _successors;

    /// @notice Creates the registry with `governor` as its admin and first governor.
    constructor(address governor) {
        _grantRole(DEFAULT_ADMIN_ROLE, governor);
        _grantRole(GOVERNOR_ROLE, governor);
    }

    // ---- governance -----------------------------------------------------------------

    /// @notice Registers an issuing agency and returns its id (1, 2, ...).
    /// @dev Requirements: caller has GOVERNOR_ROLE; `code` has 18 characters and is not
    /// registered; `signer` is non-zero and was never a signer; bit 0 of `licenceTypes`
    /// is clear (bit t set = the agency may issue licence type t, 1 <= t <= 63).
    /// Emits {AgencyRegistered}.
    function registerAgency(
        string calldata code,
        string calldata name,
        address signer,
        uint64 licenceTypes
    ) external onlyRole(GOVERNOR_ROLE) returns (uint32 agencyId) {
        bytes32 codeHash = keccak256(bytes(code));
        if (bytes(code).length != AGENCY_CODE_LENGTH) revert LicenceRegistryInvalidAgencyCode(code);
        if (_agencyIdByCode[codeHash] != 0) {
            revert LicenceRegistryAgencyCodeTaken(code, _agencyIdByCode[codeHash]);
        }
        _requireValidTypes(licenceTypes);
        _requireFreshSigner(signer);
        agencyId = ++_agencyCount;
        _agencies[agencyId] = Agency(signer, licenceTypes, false, code, name);
        _agencyIdByCode[codeHash] = agencyId;
        _signers[signer] = _packSigner(agencyId, licenceTypes);
        emit AgencyRegistered(agencyId, signer, code, name, licenceTypes);
    }

    /// @notice Replaces the licence types agency `agencyId` may issue.
    /// @dev Requirements: caller has GOVERNOR_ROLE; the agency exists and is not retired;
    /// bit 0 of `licenceTypes` is clear. Anchors made before keep their validity.
    /// Emits {AgencyTypesChanged}.
    function setAgencyTypes(uint32 agencyId, uint64 licenceTypes)
        external
        onlyRole(GOVERNOR_ROLE)
    {
        Agency storage agency = _activeAgency(agencyId);
        _requireValidTypes(licenceTypes);
        agency.licenceTypes = licenceTypes;
        _signers[agency.signer] = _packSigner(agencyId, licenceTypes);
        emit AgencyTypesChanged(agencyId, licenceTypes);
    }

    /// @notice Retires agency `agencyId`: it can no longer anchor or change statuses.
    /// @dev Requirements: caller has GOVERNOR_ROLE; the agency exists and is not retired.
    /// Its earlier anchors stay valid. Emits {AgencyRetired}.
    function retireAgency(uint32 agencyId) external onlyRole(GOVERNOR_ROLE) {
        Agency storage agency = _activeAgency(agencyId);
        agency.retired = true;
        _signers[agency.signer] |= SIGNER_RETIRED;
        emit AgencyRetired(agencyId);
    }

    /// @notice Makes `newSigner` the key of agency `agencyId`; the old key is spent.
    /// @dev Requirements: caller is the agency's current signer or has GOVERNOR_ROLE; the
    /// agency exists and is not retired; `newSigner` is non-zero and was never a signer.
    /// From this block the old key can no longer anchor or change statuses; anchors it
    /// made before stay valid. Emits {SignerRotated}.
    function rotateSigner(uint32 agencyId, address newSigner) external {
        Agency storage agency = _activeAgency(agencyId);
        address oldSigner = agency.signer;
        if (msg.sender != oldSigner && !hasRole(GOVERNOR_ROLE, msg.sender)) {
            revert LicenceRegistryNotSignerOrGovernor(msg.sender, agencyId);
        }
        _requireFreshSigner(newSigner);
        agency.signer = newSigner;
        _signers[oldSigner] |= SIGNER_SPENT;
        _signers[newSigner] = _packSigner(agencyId, agency.licenceTypes);
        emit SignerRotated(agencyId, oldSigner, newSigner);
    }

    // ---- anchoring --------------------------------------------------------------------

    /// @notice Anchors `root`, the 16-byte Merkle root of a batch of `count` licences of
    /// type `licenceType`, on behalf of the caller's agency.
    /// @dev Requirements: caller is the current signer of a non-retired agency authorised
    /// for `licenceType`; `root` and `count` are non-zero; `root` is not anchored yet.
    /// Emits {BatchAnchored}.
    function anchor(bytes16 root, uint8 licenceType, uint32 count) external {
        uint32 agencyId = _authoriseAnchor(licenceType);
        if (root == 0 || count == 0) revert LicenceRegistryInvalidAnchor(root, count);
        if (_anchors[root] != 0) revert LicenceRegistryAlreadyAnchored(root);
        _anchors[root] = _packAnchor(agencyId, licenceType, count);
        emit BatchAnchored(root, agencyId, licenceType, count);
    }

    // ---- leaf statuses ----------------------------------------------------------------

    /// @notice Revokes (吊销) licence `leaf` under `root`; final.
    /// @dev Requirements: caller is the current signer of the non-retired agency that
    /// anchored `root`, or has GOVERNOR_ROLE; the leaf is Active or Suspended.
    /// Emits {LeafStatusChanged}.
    function revoke(bytes16 root, bytes16 leaf, uint8 reason) external {
        _authoriseStatusChange(root);
        _setStatus(root, leaf, LeafStatus.Revoked, reason);
    }

    /// @notice Suspends licence `leaf` under `root` until it is reinstated.
    /// @dev Requirements: caller as for {revoke}; the leaf is Active.
    /// Emits {LeafStatusChanged}.
    function suspend(bytes16 root, bytes16 leaf, uint8 reason) external {
        _authoriseStatusChange(root);
        _setStatus(root, leaf, LeafStatus.Suspended, reason);
    }

    /// @notice Reinstates suspended licence `leaf` under `root`.
    /// @dev Requirements: caller as for {revoke}; the leaf is Suspended.
    /// Emits {LeafStatusChanged}.
    function reinstate(bytes16 root, bytes16 leaf, uint8 reason) external {
        _authoriseStatusChange(root);
        _setStatus(root, leaf, LeafStatus.Active, reason);
    }

    /// @notice Cancels (注销) licence `leaf` under `root`: the holder gave it up; final.
    /// @dev Requirements: caller as for {revoke}; the leaf is Active or Suspended.
    /// Emits {LeafStatusChanged}.
    function cancel(bytes16 root, bytes16 leaf, uint8 reason) external {
        _authoriseStatusChange(root);
        _setStatus(root, leaf, LeafStatus.Cancelled, reason);
    }

    /// @notice Marks licence `leaf` under `root` as superseded by leaf `successor`; final.
    /// @dev Requirements: caller as for {revoke}; the leaf is Active or Suspended.
    /// Emits {LeafSuperseded}.
    function supersede(bytes16 root, bytes16 leaf, bytes16 successor, uint8 reason) external {
        _authoriseStatusChange(root);
        _moveLeaf(_leaves[root], leaf, LeafStatus.Superseded, _packLeaf(LeafStatus.Superseded, reason));
        _successors[root][leaf] = successor;
        emit LeafSuperseded(root, leaf, successor, reason);
    }

    /// @notice Sets `status` on every leaf in `leaves` under `root`, in one transaction.
    /// @dev Requirements: caller as for {revoke}; `leaves` is not empty; `status` is not
    /// Superseded; every leaf may move to `status` (else the whole call reverts).
    /// Emits one {LeafStatusesChanged} naming every leaf.
    function setStatuses(
        bytes16 root,
        bytes16[] calldata leaves,
        LeafStatus status,
        uint8 reason
    ) external {
        _authoriseStatusChange(root);
        if (status == LeafStatus.Superseded) revert LicenceRegistryStatusNotBulk(status);
        if (leaves.length == 0) revert LicenceRegistryNoLeaves(root);
        mapping(bytes16 => uint256) storage records = _leaves[root];
        uint256 record = _packLeaf(status, reason);
        for (uint256 i = 0; i < leaves.length; ++i) {
            _moveLeaf(records, leaves[i], status, record);
        }
        emit LeafStatusesChanged(root, status, reason, leaves);
    }

    // ---- views ------------------------------------------------------------------------

    /// @notice The anchor of `root`; agencyId 0 means `root` is not anchored.
    function anchorOf(bytes16 root)
        external
        view
        returns (
            uint32 agencyId,
            uint8 licenceType,
            uint32 count,
            uint64 blockNumber,
            uint64 timestamp
        )
    {
        uint256 record = _anchors[root];
        return (
            uint32(record),
            uint8(record >> ANCHOR_TYPE_SHIFT),
            uint32(record >> ANCHOR_COUNT_SHIFT),
            uint64(record >> ANCHOR_BLOCK_SHIFT),
            uint64(record >> ANCHOR_TIME_SHIFT)
        );
    }

    /// @notice Agency `agencyId`: its current signer, licence-type bitmask, whether it is
    /// retired, its unified social credit code and its name.
    /// @dev Requirements: the agency exists.
    function agencyOf(uint32 agencyId)
        external
        view
        returns (
            address signer,
            uint64 licenceTypes,
            bool retired,
            string memory code,
            string memory name
        )
    {
        Agency storage agency = _existingAgency(agencyId);
        return (agency.signer, agency.licenceTypes, agency.retired, agency.code, agency.name);
    }

    /// @notice The id of the agency whose current signer is `signer`, or 0 if none
    /// (a spent key answers 0).
    function agencyIdOf(address signer) external view returns (uint32) {
        uint256 record = _signers[signer];
        return record & SIGNER_SPENT != 0 ? 0 : uint32(record);
    }

    /// @notice How many agencies were ever registered (ids run from 1 to this number).
    function agencyCount() external view returns (uint32) {
        return _agencyCount;
    }

    /// @notice Status of `leaf` under `root`, the reason code and block of its last
    /// change (0 if never changed), and its successor if it was superseded.
    function statusOf(bytes16 root, bytes16 leaf)
        external
        view
        returns (LeafStatus status, uint8 reason, uint64 changedAt, bytes16 successor)
    {
        uint256 record = _leaves[root][leaf];
        return (
            LeafStatus(uint8(record)),
            uint8(record >> LEAF_REASON_SHIFT),
            uint64(record >> LEAF_BLOCK_SHIFT),
            _successors[root][leaf]
        );
    }

    /// @notice Whether `leaf` is in the tree with root `root`, given its Merkle `proof`
    /// (16-byte sibling nodes, bottom-up). A one-leaf tree's root is the leaf itself.
    /// @dev Each step is bytes16(sha256(0x01 || min(node, sibling) || max(node, sibling))),
    /// comparing the 16-byte nodes bytewise.
    function includes(bytes16 root, bytes16 leaf, bytes16[] calldata proof)
        external
        pure
        returns (bool)
    {
        bytes16 node = leaf;
        for (uint256 i = 0; i < proof.length; ++i) {
            node = _hashPair(node, proof[i]);
        }
        return node == root;
    }

    // ---- private ----------------------------------------------------------------------

    function _authoriseAnchor(uint8 licenceType) private view returns (uint32) {
        uint256 signer = _signers[msg.sender];
        uint32 agencyId = uint32(signer);
        if (agencyId == 0 || signer & SIGNER_SPENT != 0) revert LicenceRegistryNotAgency(msg.sender);
        if (signer & SIGNER_RETIRED != 0) revert LicenceRegistryAgencyRetired(agencyId);
        if (!_allowsType(uint64(signer >> SIGNER_TYPES_SHIFT), licenceType)) {
            revert LicenceRegistryNotAuthorised(agencyId, licenceType);
        }
        return agencyId;
    }

    function _authoriseStatusChange(bytes16 root) private view {
        uint32 anchoredBy = uint32(_anchors[root]);
        if (anchoredBy == 0) revert LicenceRegistryNotAnchored(root);
        uint256 signer = _signers[msg.sender];
        bool isIssuer = uint32(signer) == anchoredBy && signer & SIGNER_SPENT == 0;
        if (isIssuer && signer & SIGNER_RETIRED == 0) return;
        if (hasRole(GOVERNOR_ROLE, msg.sender)) return;
        if (isIssuer) revert LicenceRegistryAgencyRetired(anchoredBy);
        revert LicenceRegistryNotBatchIssuer(msg.sender, root);
    }

    function _setStatus(bytes16 root, bytes16 leaf, LeafStatus to, uint8 reason) private {
        _moveLeaf(_leaves[root], leaf, to, _packLeaf(to, reason));
        emit LeafStatusChanged(root, leaf, to, reason);
    }

    function _moveLeaf(
        mapping(bytes16 => uint256) storage records,
        bytes16 leaf,
        LeafStatus to,
        uint256 record
    ) private {
        LeafStatus from = LeafStatus(uint8(records[leaf]));
        if (!_canMove(from, to)) revert LicenceRegistryInvalidTransition(leaf, from, to);
        records[leaf] = record;
    }

    function _packSigner(uint32 agencyId, uint64 licenceTypes) private pure returns (uint256) {
        return uint256(agencyId) | (uint256(licenceTypes) << SIGNER_TYPES_SHIFT);
    }

    function _packAnchor(uint32 agencyId, uint8 licenceType, uint32 count)
        private
        view
        returns (uint256)
    {
        return uint256(agencyId)
            | (uint256(licenceType) << ANCHOR_TYPE_SHIFT)
            | (uint256(count) << ANCHOR_COUNT_SHIFT)
            | (uint256(uint64(block.number)) << ANCHOR_BLOCK_SHIFT)
            | (uint256(uint64(block.timestamp)) << ANCHOR_TIME_SHIFT);
    }

    function _packLeaf(LeafStatus status, uint8 reason) private view returns (uint256) {
        return uint256(uint8(status))
            | (uint256(reason) << LEAF_REASON_SHIFT)
            | (uint256(uint64(block.number)) << LEAF_BLOCK_SHIFT);
    }

    function _activeAgency(uint32 agencyId) private view returns (Agency storage agency) {
        agency = _existingAgency(agencyId);
        if (agency.retired) revert LicenceRegistryAgencyRetired(agencyId);
    }

    function _existingAgency(uint32 agencyId) private view returns (Agency storage agency) {
        if (agencyId == 0 || agencyId > _agencyCount) revert LicenceRegistryUnknownAgency(agencyId);
        agency = _agencies[agencyId];
    }

    function _requireFreshSigner(address signer) private view {
        if (signer == address(0)) revert LicenceRegistryInvalidSigner(signer);
        if (_signers[signer] != 0) revert LicenceRegistrySignerAlreadyUsed(signer);
    }

    function _requireValidTypes(uint64 licenceTypes) private pure {
        if (licenceTypes & 1 != 0) revert LicenceRegistryInvalidLicenceTypes(licenceTypes);
    }

    function _allowsType(uint64 licenceTypes, uint8 licenceType) private pure returns (bool) {
        // A shift by 64 or more yields 0, so types beyond the mask are never allowed.
        return licenceType != 0 && (licenceTypes >> licenceType) & 1 == 1;
    }

    function _canMove(LeafStatus from, LeafStatus to) private pure returns (bool) {
        if (from == LeafStatus.Active) return to != LeafStatus.Active;
        if (from == LeafStatus.Suspended) return to != LeafStatus.Suspended;
        return false; // Revoked, Superseded and Cancelled are final.
    }

    function _hashPair(bytes16 a, bytes16 b) private pure returns (bytes16) {
        // Sorted pairs: a proof needs no left/right flags. The preimage is 33 bytes
        // (tag, then two 16-byte nodes); the node is the first 16 bytes of its SHA-256.
        (bytes16 lo, bytes16 hi) = a < b ? (a, b) : (b, a);
        return bytes16(sha256(abi.encodePacked(bytes1(0x01), lo, hi)));
    }
}
