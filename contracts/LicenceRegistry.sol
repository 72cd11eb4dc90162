// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {EnumerableSet} from "@openzeppelin/contracts/utils/structs/EnumerableSet.sol";
import {ILicenceRegistry} from "./ILicenceRegistry.sol";

/// @title Registry of electronic licence batches (电子证照)
/// @notice A governor publishes licence types (their definitions, versioned, recorded by
/// SHA-256 hash) and authorises issuing agencies for them; agencies anchor Merkle roots of
/// licence batches of a published type version; each licence (a leaf)
/// under a root can later be suspended, reinstated, revoked, superseded or cancelled by
/// the agency that anchored the root, or by a governor. A licence's status is kept per
/// (anchoring agency, leaf), so a final status stays final under any root of that agency.
/// A governor can also revoke a whole batch, and report an agency key compromised from a
/// block on.
/// @dev Every digest is 16 bytes (`bytes16`): SHA-256 truncated to its first 16 bytes,
/// so that a licence's QR code stays small. Leaves are the first 16 bytes of
/// sha256(0x00 || ...), computed off-chain; inner nodes are the first 16 bytes of
/// sha256(0x01 || min(a, b) || max(a, b)), so a leaf can never pose as a node.
contract LicenceRegistry is AccessControl, ILicenceRegistry {
    using EnumerableSet for EnumerableSet.UintSet;

    bytes32 public constant GOVERNOR_ROLE = keccak256("GOVERNOR_ROLE");

    uint256 private constant AGENCY_CODE_LENGTH = 18;
    // A definition rides in calldata and in its event; the shipped ones are 2-3 KB.
    uint256 private constant MAX_DEFINITION_BYTES = 16_384;

    struct Agency {
        address signer;
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
    uint256 private constant SIGNER_RETIRED = 1 << 96;
    uint256 private constant SIGNER_SPENT = 1 << 97;
    uint256 private constant SIGNER_COMPROMISED = 1 << 98;
    // The key's number within its agency: 1 for the key it was registered with, +1 per
    // rotation. Anchors record it, so a compromise report names exactly the anchors of
    // one key, even those in the block where the agency rotated away from it.
    uint256 private constant SIGNER_KEY_SHIFT = 128;

    // Anchor record, one slot per root: agency id (32 bits), type (16), type version
    // (16), count (32), block (64), time (64), key number (32).
    uint256 private constant ANCHOR_TYPE_SHIFT = 32;
    uint256 private constant ANCHOR_VERSION_SHIFT = 48;
    uint256 private constant ANCHOR_COUNT_SHIFT = 64;
    uint256 private constant ANCHOR_BLOCK_SHIFT = 96;
    uint256 private constant ANCHOR_TIME_SHIFT = 160;
    uint256 private constant ANCHOR_KEY_SHIFT = 224;

    // Leaf record, one slot per (anchoring agency, leaf); the successor of a superseded
    // leaf lives apart, so the common status changes write a single slot. Keyed by agency,
    // not by root, so that an agency re-anchoring a licence it revoked cannot revive it;
    // not by leaf alone, because the registry cannot tell which leaves a root holds, so a
    // global key would let any agency revoke another's licences by naming its own root.
    // A revoked batch's record has the same layout (status Revoked).
    uint256 private constant LEAF_REASON_SHIFT = 8;
    uint256 private constant LEAF_BLOCK_SHIFT = 16;

    // Compromise record, per (agency, key number): a flag, the first block whose anchors
    // no longer count, and the block of the report.
    uint256 private constant COMPROMISE_FROM_SHIFT = 8;
    uint256 private constant COMPROMISE_REPORTED_SHIFT = 72;

    uint32 private _agencyCount;
    mapping(uint32 agencyId => Agency) private _agencies;
    mapping(address signer => uint256 record) private _signers;
    mapping(bytes32 codeHash => uint32 agencyId) private _agencyIdByCode;
    mapping(bytes16 root => uint256 record) private _anchors;
    mapping(uint32 agencyId => mapping(bytes16 leaf => uint256 record)) private _leaves;
    mapping(uint32 agencyId => mapping(bytes16 leaf => bytes16 successor)) private _successors;
    mapping(bytes16 root => uint256 record) private _batchRevocations;
    mapping(uint32 agencyId => mapping(uint32 keyNumber => uint256 record)) private _compromises;
    // SM2 seal keys per agency, numbered from 1; the chain does not check seals, verifiers
    // do, so it keeps the keys and their first blocks for them (and for {sealKeyAt}).
    mapping(uint32 agencyId => mapping(uint32 keyNumber => SealKey)) private _sealKeys;
    mapping(uint32 agencyId => uint32 count) private _sealKeyCounts;

    struct SealKey {
        bytes32 x;
        bytes32 y;
        uint64 validFrom;
        uint64 compromisedFrom; // 0: not reported compromised
    }

    // Published licence types. Declared after the older state so that the slots above
    // keep their numbers (scripts/gas_report builds access lists from them).
    struct PublishedType {
        bytes32 definitionHash;
        uint64 publishedAt;
    }

    mapping(uint16 licenceType => mapping(uint16 version => PublishedType)) private _types;
    mapping(uint16 licenceType => uint16 version) private _latestTypeVersions;
    // The licence types each agency may anchor batches of. A set rather than a bitmask:
    // codes run to 65535, and the set can be listed ({agencyTypes}).
    mapping(uint32 agencyId => EnumerableSet.UintSet) private _agencyTypes;

    /// @notice Creates the registry with `governor` as its admin and first governor.
    constructor(address governor) {
        _grantRole(DEFAULT_ADMIN_ROLE, governor);
        _grantRole(GOVERNOR_ROLE, governor);
    }

    // ---- governance -----------------------------------------------------------------

    /// @notice Publishes version `version` of licence type `licenceType`, whose definition
    /// (the RFC 8785 canonical JSON of its definition file) is `definition`. The registry
    /// keeps its SHA-256 and the block; the bytes themselves ride in the event.
    /// @dev Requirements: caller has GOVERNOR_ROLE; `licenceType` is not 0; `version` is
    /// the type's latest published version + 1 (1 for a new type); `definition` has 1 to
    /// 16,384 bytes. A published version is never changed or removed.
    /// Emits {LicenceTypePublished}.
    function publishLicenceType(uint16 licenceType, uint16 version, bytes calldata definition)
        external
        onlyRole(GOVERNOR_ROLE)
    {
        if (licenceType == 0) revert LicenceRegistryInvalidLicenceType(licenceType);
        uint16 latest = _latestTypeVersions[licenceType];
        if (uint256(version) != uint256(latest) + 1) {
            revert LicenceRegistryInvalidTypeVersion(licenceType, version, latest);
        }
        if (definition.length == 0 || definition.length > MAX_DEFINITION_BYTES) {
            revert LicenceRegistryInvalidTypeDefinition(licenceType, definition.length);
        }
        bytes32 definitionHash = sha256(definition);
        _types[licenceType][version] = PublishedType(definitionHash, uint64(block.number));
        _latestTypeVersions[licenceType] = version;
        emit LicenceTypePublished(licenceType, version, definitionHash, definition);
    }

    /// @notice Registers an issuing agency and returns its id (1, 2, ...), authorised for
    /// the licence types `licenceTypes`.
    /// @dev Requirements: caller has GOVERNOR_ROLE; `code` has 18 characters and is not
    /// registered; `signer` is non-zero and was never a signer; every type in
    /// `licenceTypes` has a published version. Emits {AgencyRegistered}, then one
    /// {AgencyTypeAuthorised} per type.
    function registerAgency(
        string calldata code,
        string calldata name,
        address signer,
        uint16[] calldata licenceTypes
    ) external onlyRole(GOVERNOR_ROLE) returns (uint32 agencyId) {
        bytes32 codeHash = keccak256(bytes(code));
        if (bytes(code).length != AGENCY_CODE_LENGTH) revert LicenceRegistryInvalidAgencyCode(code);
        if (_agencyIdByCode[codeHash] != 0) {
            revert LicenceRegistryAgencyCodeTaken(code, _agencyIdByCode[codeHash]);
        }
        _requireFreshSigner(signer);
        agencyId = ++_agencyCount;
        _agencies[agencyId] = Agency(signer, false, code, name);
        _agencyIdByCode[codeHash] = agencyId;
        _signers[signer] = _packSigner(agencyId, 1);
        emit AgencyRegistered(agencyId, signer, code, name);
        _authoriseTypes(agencyId, licenceTypes);
    }

    /// @notice Withdraws agency `agencyId`'s authorisation for the licence types in
    /// `withdraw`, then authorises it for those in `authorise`.
    /// @dev Requirements: caller has GOVERNOR_ROLE; the agency exists and is not retired;
    /// every type in `authorise` has a published version. A type already in the state
    /// asked for is left alone. Anchors made before keep their validity.
    /// Emits one {AgencyTypeAuthorised} per type changed.
    function setAgencyTypes(uint32 agencyId, uint16[] calldata authorise, uint16[] calldata withdraw)
        external
        onlyRole(GOVERNOR_ROLE)
    {
        _activeAgency(agencyId);
        EnumerableSet.UintSet storage types = _agencyTypes[agencyId];
        for (uint256 i = 0; i < withdraw.length; ++i) {
            if (types.remove(withdraw[i])) emit AgencyTypeAuthorised(agencyId, withdraw[i], false);
        }
        _authoriseTypes(agencyId, authorise);
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
    /// @dev Requirements: caller is the agency's current signer (not reported compromised)
    /// or has GOVERNOR_ROLE; the agency exists and is not retired; `newSigner` is non-zero
    /// and was never a signer. From this block the old key can no longer anchor or change
    /// statuses; anchors it made before stay valid. Emits {SignerRotated}.
    function rotateSigner(uint32 agencyId, address newSigner) external {
        Agency storage agency = _activeAgency(agencyId);
        address oldSigner = agency.signer;
        uint256 oldRecord = _signers[oldSigner];
        if (msg.sender == oldSigner) {
            if (oldRecord & SIGNER_COMPROMISED != 0) revert LicenceRegistrySignerCompromised(msg.sender);
        } else if (!hasRole(GOVERNOR_ROLE, msg.sender)) {
            revert LicenceRegistryNotSignerOrGovernor(msg.sender, agencyId);
        }
        _requireFreshSigner(newSigner);
        agency.signer = newSigner;
        _signers[oldSigner] = oldRecord | SIGNER_SPENT;
        uint32 keyNumber = uint32(oldRecord >> SIGNER_KEY_SHIFT) + 1;
        _signers[newSigner] = _packSigner(agencyId, keyNumber);
        emit SignerRotated(agencyId, oldSigner, newSigner);
    }

    /// @notice Revokes the whole batch `root`: every licence under it reads as Revoked, for
    /// reason code `reason`, unless its own status is final already.
    /// @dev Requirements: caller has GOVERNOR_ROLE; `root` is anchored and not revoked as a
    /// whole already. The batch is the unit: the same licence ids anchored again under
    /// another root are not revoked by this (revoke them one by one, or with
    /// {setStatuses}, to make that final for the licence ids). Emits {BatchRevoked}.
    function revokeBatch(bytes16 root, uint8 reason) external onlyRole(GOVERNOR_ROLE) {
        uint32 agencyId = uint32(_anchors[root]);
        if (agencyId == 0) revert LicenceRegistryNotAnchored(root);
        if (_batchRevocations[root] != 0) revert LicenceRegistryBatchAlreadyRevoked(root);
        _batchRevocations[root] = _packLeaf(LeafStatus.Revoked, reason);
        emit BatchRevoked(root, agencyId, reason);
    }

    /// @notice Reports agency key `signer` compromised from block `fromBlock` on: the
    /// anchors it made from that block on no longer count, and the key is spent.
    /// @dev Requirements: caller has GOVERNOR_ROLE; `signer` is or was an agency's key;
    /// `fromBlock` is not after the current block; the key is not reported compromised
    /// from `fromBlock` or earlier already (a new report may move the block earlier).
    /// Anchors the key made before `fromBlock` stay valid. If `signer` is its agency's
    /// current key, the agency has no usable key until a governor rotates it
    /// ({rotateSigner}); the compromised key cannot rotate itself. Status changes the key
    /// made are not undone. Emits {SignerCompromised}.
    function markSignerCompromised(address signer, uint64 fromBlock)
        external
        onlyRole(GOVERNOR_ROLE)
    {
        uint256 record = _signers[signer];
        uint32 agencyId = uint32(record);
        if (agencyId == 0) revert LicenceRegistryUnknownSigner(signer);
        if (fromBlock > block.number) {
            revert LicenceRegistryInvalidCompromiseBlock(fromBlock, uint64(block.number));
        }
        uint32 keyNumber = uint32(record >> SIGNER_KEY_SHIFT);
        uint256 known = _compromises[agencyId][keyNumber];
        if (known != 0 && uint64(known >> COMPROMISE_FROM_SHIFT) <= fromBlock) {
            revert LicenceRegistrySignerAlreadyCompromised(
                signer, uint64(known >> COMPROMISE_FROM_SHIFT)
            );
        }
        _signers[signer] = record | SIGNER_SPENT | SIGNER_COMPROMISED;
        _compromises[agencyId][keyNumber] = 1
            | (uint256(fromBlock) << COMPROMISE_FROM_SHIFT)
            | (uint256(uint64(block.number)) << COMPROMISE_REPORTED_SHIFT);
        emit SignerCompromised(agencyId, signer, keyNumber, fromBlock);
    }

    /// @notice Registers SM2 public key (x, y) as the seal key of agency `agencyId` from
    /// block `validFrom` on, and returns its number (1, 2, ...); the previous seal key
    /// seals the batches anchored before that block, the new one those from it.
    /// @dev Requirements: caller has GOVERNOR_ROLE; the agency exists and is not retired;
    /// x and y are non-zero; `validFrom` is not before the current block and is after the
    /// block the previous seal key is valid from (so a rotation never rewrites which key
    /// sealed a batch already anchored). The chain does not check that (x, y) is on the
    /// curve: verifiers refuse seals under a malformed key. Emits {SealKeyRegistered}.
    function registerSealKey(uint32 agencyId, bytes32 x, bytes32 y, uint64 validFrom)
        external
        onlyRole(GOVERNOR_ROLE)
        returns (uint32 keyNumber)
    {
        _activeAgency(agencyId);
        if (x == bytes32(0) || y == bytes32(0)) revert LicenceRegistryInvalidSealKey();
        keyNumber = _sealKeyCounts[agencyId];
        if (
            validFrom < block.number
                || (keyNumber != 0 && validFrom <= _sealKeys[agencyId][keyNumber].validFrom)
        ) {
            revert LicenceRegistryInvalidSealKeyBlock(validFrom, uint64(block.number));
        }
        keyNumber += 1;
        _sealKeyCounts[agencyId] = keyNumber;
        _sealKeys[agencyId][keyNumber] = SealKey(x, y, validFrom, 0);
        emit SealKeyRegistered(agencyId, keyNumber, x, y, validFrom);
    }

    /// @notice Reports agency `agencyId`'s `keyNumber`th SM2 seal key compromised from block
    /// `fromBlock` on: seals of batches anchored from that block on no longer count, so
    /// verifiers refuse them; batches anchored before keep their seals.
    /// @dev Requirements: caller has GOVERNOR_ROLE; the seal key exists (a retired agency's
    /// too); 0 < `fromBlock` <= the current block; the key is not reported compromised
    /// from `fromBlock` or earlier already (a new report may move the block earlier).
    /// The agency goes on sealing with a new key once one is registered
    /// ({registerSealKey}). Emits {SealKeyCompromised}.
    function markSealKeyCompromised(uint32 agencyId, uint32 keyNumber, uint64 fromBlock)
        external
        onlyRole(GOVERNOR_ROLE)
    {
        if (keyNumber == 0 || keyNumber > _sealKeyCounts[agencyId]) {
            revert LicenceRegistryUnknownSealKey(agencyId, keyNumber);
        }
        if (fromBlock == 0 || fromBlock > block.number) {
            revert LicenceRegistryInvalidCompromiseBlock(fromBlock, uint64(block.number));
        }
        SealKey storage key = _sealKeys[agencyId][keyNumber];
        uint64 known = key.compromisedFrom;
        if (known != 0 && known <= fromBlock) {
            revert LicenceRegistrySealKeyAlreadyCompromised(agencyId, keyNumber, known);
        }
        key.compromisedFrom = fromBlock;
        emit SealKeyCompromised(agencyId, keyNumber, fromBlock);
    }

    // ---- anchoring --------------------------------------------------------------------

    /// @notice Anchors `root`, the 16-byte Merkle root of a batch of `count` licences of
    /// version `typeVersion` of licence type `licenceType`, on behalf of the caller's agency.
    /// @dev Requirements: caller is the current signer of a non-retired agency authorised
    /// for `licenceType`; `typeVersion` is a published version of it; `root` and `count`
    /// are non-zero; `root` is not anchored yet. Emits {BatchAnchored}.
    function anchor(bytes16 root, uint16 licenceType, uint16 typeVersion, uint32 count) external {
        uint256 signer = _authoriseAnchor(licenceType, typeVersion);
        if (root == 0 || count == 0) revert LicenceRegistryInvalidAnchor(root, count);
        if (_anchors[root] != 0) revert LicenceRegistryAlreadyAnchored(root);
        _anchors[root] = _packAnchor(signer, licenceType, typeVersion, count);
        emit BatchAnchored(root, uint32(signer), licenceType, typeVersion, count);
    }

    // ---- leaf statuses ----------------------------------------------------------------

    /// @notice Revokes (吊销) licence `leaf` under `root`; final.
    /// @dev Requirements: caller is the current signer of the non-retired agency that
    /// anchored `root`, or has GOVERNOR_ROLE; the leaf is Active or Suspended. Like every
    /// status change, it applies to the leaf under every root that agency anchored.
    /// Emits {LeafStatusChanged}.
    function revoke(bytes16 root, bytes16 leaf, uint8 reason) external {
        _setStatus(root, _authoriseStatusChange(root), leaf, LeafStatus.Revoked, reason);
    }

    /// @notice Suspends licence `leaf` under `root` until it is reinstated.
    /// @dev Requirements: caller as for {revoke}; the leaf is Active.
    /// Emits {LeafStatusChanged}.
    function suspend(bytes16 root, bytes16 leaf, uint8 reason) external {
        _setStatus(root, _authoriseStatusChange(root), leaf, LeafStatus.Suspended, reason);
    }

    /// @notice Reinstates suspended licence `leaf` under `root`.
    /// @dev Requirements: caller as for {revoke}; the leaf is Suspended.
    /// Emits {LeafStatusChanged}.
    function reinstate(bytes16 root, bytes16 leaf, uint8 reason) external {
        _setStatus(root, _authoriseStatusChange(root), leaf, LeafStatus.Active, reason);
    }

    /// @notice Cancels (注销) licence `leaf` under `root`: the holder gave it up; final.
    /// @dev Requirements: caller as for {revoke}; the leaf is Active or Suspended.
    /// Emits {LeafStatusChanged}.
    function cancel(bytes16 root, bytes16 leaf, uint8 reason) external {
        _setStatus(root, _authoriseStatusChange(root), leaf, LeafStatus.Cancelled, reason);
    }

    /// @notice Marks licence `leaf` under `root` as superseded by leaf `successor`; final.
    /// @dev Requirements: caller as for {revoke}; the leaf is Active or Suspended.
    /// Emits {LeafSuperseded}.
    function supersede(bytes16 root, bytes16 leaf, bytes16 successor, uint8 reason) external {
        uint32 agencyId = _authoriseStatusChange(root);
        _moveLeaf(_leaves[agencyId], leaf, LeafStatus.Superseded, _packLeaf(LeafStatus.Superseded, reason));
        _successors[agencyId][leaf] = successor;
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
        uint32 agencyId = _authoriseStatusChange(root);
        if (status == LeafStatus.Superseded) revert LicenceRegistryStatusNotBulk(status);
        if (leaves.length == 0) revert LicenceRegistryNoLeaves(root);
        mapping(bytes16 => uint256) storage records = _leaves[agencyId];
        uint256 record = _packLeaf(status, reason);
        for (uint256 i = 0; i < leaves.length; ++i) {
            _moveLeaf(records, leaves[i], status, record);
        }
        emit LeafStatusesChanged(root, status, reason, leaves);
    }

    // ---- views ------------------------------------------------------------------------

    /// @notice The anchor of `root`; agencyId 0 means `root` is not anchored. `keyNumber`
    /// names the agency key that anchored it (1 = the key it was registered with).
    function anchorOf(bytes16 root)
        external
        view
        returns (
            uint32 agencyId,
            uint16 licenceType,
            uint16 typeVersion,
            uint32 count,
            uint64 blockNumber,
            uint64 timestamp,
            uint32 keyNumber
        )
    {
        uint256 record = _anchors[root];
        return (
            uint32(record),
            uint16(record >> ANCHOR_TYPE_SHIFT),
            uint16(record >> ANCHOR_VERSION_SHIFT),
            uint32(record >> ANCHOR_COUNT_SHIFT),
            uint64(record >> ANCHOR_BLOCK_SHIFT),
            uint64(record >> ANCHOR_TIME_SHIFT),
            uint32(record >> ANCHOR_KEY_SHIFT)
        );
    }

    /// @notice Whether batch `root` was revoked as a whole, the reason code and the block.
    function batchRevocationOf(bytes16 root)
        external
        view
        returns (bool revoked, uint8 reason, uint64 revokedAt)
    {
        uint256 record = _batchRevocations[root];
        return (record != 0, uint8(record >> LEAF_REASON_SHIFT), uint64(record >> LEAF_BLOCK_SHIFT));
    }

    /// @notice Whether the `keyNumber`th key of agency `agencyId` was reported compromised,
    /// from which block its anchors no longer count, and the block of the report.
    function compromiseOf(uint32 agencyId, uint32 keyNumber)
        external
        view
        returns (bool compromised, uint64 fromBlock, uint64 reportedAt)
    {
        uint256 record = _compromises[agencyId][keyNumber];
        return (
            record != 0,
            uint64(record >> COMPROMISE_FROM_SHIFT),
            uint64(record >> COMPROMISE_REPORTED_SHIFT)
        );
    }

    /// @notice The SM2 seal key of agency `agencyId` for batches anchored in block
    /// `blockNumber`: its number (0 = none), public key, first block, and the block from
    /// which it was reported compromised (0 = not reported).
    function sealKeyAt(uint32 agencyId, uint64 blockNumber)
        external
        view
        returns (uint32 keyNumber, bytes32 x, bytes32 y, uint64 validFrom, uint64 compromisedFrom)
    {
        // Newest first: agencies rotate seal keys rarely, so the loop is short.
        for (keyNumber = _sealKeyCounts[agencyId]; keyNumber != 0; --keyNumber) {
            SealKey storage key = _sealKeys[agencyId][keyNumber];
            if (key.validFrom <= blockNumber) {
                return (keyNumber, key.x, key.y, key.validFrom, key.compromisedFrom);
            }
        }
        return (0, bytes32(0), bytes32(0), 0, 0);
    }

    /// @notice How many seal keys agency `agencyId` has had (numbered 1 to this).
    function sealKeyCount(uint32 agencyId) external view returns (uint32) {
        return _sealKeyCounts[agencyId];
    }

    /// @notice Agency `agencyId`: its current signer, whether it is retired, its unified
    /// social credit code and its name ({agencyTypes} lists its licence types).
    /// @dev Requirements: the agency exists.
    function agencyOf(uint32 agencyId)
        external
        view
        returns (address signer, bool retired, string memory code, string memory name)
    {
        Agency storage agency = _existingAgency(agencyId);
        return (agency.signer, agency.retired, agency.code, agency.name);
    }

    /// @notice The licence types agency `agencyId` is authorised for, in no fixed order.
    /// @dev Requirements: the agency exists.
    function agencyTypes(uint32 agencyId) external view returns (uint16[] memory licenceTypes) {
        _existingAgency(agencyId);
        EnumerableSet.UintSet storage types = _agencyTypes[agencyId];
        uint256 length = types.length();
        licenceTypes = new uint16[](length);
        for (uint256 i = 0; i < length; ++i) {
            licenceTypes[i] = uint16(types.at(i));
        }
    }

    /// @notice Whether agency `agencyId` is authorised for licence type `licenceType`.
    function isAuthorised(uint32 agencyId, uint16 licenceType) external view returns (bool) {
        return _agencyTypes[agencyId].contains(licenceType);
    }

    /// @notice Version `version` of licence type `licenceType`: the SHA-256 of its
    /// definition and the block it was published in (zeros when it is not published).
    function licenceTypeOf(uint16 licenceType, uint16 version)
        external
        view
        returns (bytes32 definitionHash, uint64 publishedAt)
    {
        PublishedType storage published = _types[licenceType][version];
        return (published.definitionHash, published.publishedAt);
    }

    /// @notice The latest published version of licence type `licenceType` (0: none).
    function latestTypeVersion(uint16 licenceType) external view returns (uint16) {
        return _latestTypeVersions[licenceType];
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
    /// change (0 if never changed), and its successor if it was superseded. The status is
    /// the one recorded for the leaf by the agency that anchored `root`; when `root` was
    /// revoked as a whole and that status is not final, it is Revoked with the batch's
    /// reason and block, and `batchRevoked` is true.
    function statusOf(bytes16 root, bytes16 leaf)
        external
        view
        returns (
            LeafStatus status,
            uint8 reason,
            uint64 changedAt,
            bytes16 successor,
            bool batchRevoked
        )
    {
        uint32 agencyId = uint32(_anchors[root]);
        uint256 record = _leaves[agencyId][leaf];
        uint256 batch = _batchRevocations[root];
        if (batch != 0 && !_isFinal(LeafStatus(uint8(record)))) {
            record = batch;
            batchRevoked = true;
        }
        return (
            LeafStatus(uint8(record)),
            uint8(record >> LEAF_REASON_SHIFT),
            uint64(record >> LEAF_BLOCK_SHIFT),
            batchRevoked ? bytes16(0) : _successors[agencyId][leaf],
            batchRevoked
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

    /// Returns the caller's signer record (agency id, key number, ...).
    function _authoriseAnchor(uint16 licenceType, uint16 typeVersion)
        private
        view
        returns (uint256 signer)
    {
        signer = _signers[msg.sender];
        uint32 agencyId = uint32(signer);
        if (signer & SIGNER_COMPROMISED != 0) revert LicenceRegistrySignerCompromised(msg.sender);
        if (agencyId == 0 || signer & SIGNER_SPENT != 0) revert LicenceRegistryNotAgency(msg.sender);
        if (signer & SIGNER_RETIRED != 0) revert LicenceRegistryAgencyRetired(agencyId);
        if (!_agencyTypes[agencyId].contains(licenceType)) {
            revert LicenceRegistryNotAuthorised(agencyId, licenceType);
        }
        // A type an agency is authorised for has version 1 published, so the usual anchor
        // (version 1) needs no second storage read.
        if (typeVersion != 1 && (typeVersion == 0 || typeVersion > _latestTypeVersions[licenceType])) {
            revert LicenceRegistryTypeNotPublished(licenceType, typeVersion);
        }
    }

    function _authoriseTypes(uint32 agencyId, uint16[] calldata licenceTypes) private {
        EnumerableSet.UintSet storage types = _agencyTypes[agencyId];
        for (uint256 i = 0; i < licenceTypes.length; ++i) {
            uint16 licenceType = licenceTypes[i];
            // Type 0 is never published, so it is refused here too.
            if (_latestTypeVersions[licenceType] == 0) {
                revert LicenceRegistryTypeNotPublished(licenceType, 0);
            }
            if (types.add(licenceType)) emit AgencyTypeAuthorised(agencyId, licenceType, true);
        }
    }

    /// Returns the agency that anchored `root`: statuses are kept under its id.
    function _authoriseStatusChange(bytes16 root) private view returns (uint32 anchoredBy) {
        anchoredBy = uint32(_anchors[root]);
        if (anchoredBy == 0) revert LicenceRegistryNotAnchored(root);
        uint256 signer = _signers[msg.sender];
        bool isIssuer = uint32(signer) == anchoredBy && signer & SIGNER_SPENT == 0;
        if (isIssuer && signer & SIGNER_RETIRED == 0) return anchoredBy;
        if (hasRole(GOVERNOR_ROLE, msg.sender)) return anchoredBy;
        if (isIssuer) revert LicenceRegistryAgencyRetired(anchoredBy);
        if (signer & SIGNER_COMPROMISED != 0) revert LicenceRegistrySignerCompromised(msg.sender);
        revert LicenceRegistryNotBatchIssuer(msg.sender, root);
    }

    function _setStatus(bytes16 root, uint32 agencyId, bytes16 leaf, LeafStatus to, uint8 reason)
        private
    {
        _moveLeaf(_leaves[agencyId], leaf, to, _packLeaf(to, reason));
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

    function _packSigner(uint32 agencyId, uint32 keyNumber) private pure returns (uint256) {
        return uint256(agencyId) | (uint256(keyNumber) << SIGNER_KEY_SHIFT);
    }

    /// `signer` is the anchoring key's record: its agency id and key number are kept.
    function _packAnchor(uint256 signer, uint16 licenceType, uint16 typeVersion, uint32 count)
        private
        view
        returns (uint256)
    {
        return uint256(uint32(signer))
            | (uint256(uint32(signer >> SIGNER_KEY_SHIFT)) << ANCHOR_KEY_SHIFT)
            | (uint256(licenceType) << ANCHOR_TYPE_SHIFT)
            | (uint256(typeVersion) << ANCHOR_VERSION_SHIFT)
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

    function _isFinal(LeafStatus status) private pure returns (bool) {
        return status == LeafStatus.Revoked
            || status == LeafStatus.Superseded
            || status == LeafStatus.Cancelled;
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
