// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/// @title Errors, events and types of the licence registry
/// @notice Declared apart from the contract so that off-chain code (and other contracts)
/// can decode reverts and logs from this file alone. Roots, leaves and successors are
/// 16-byte digests (`bytes16`: SHA-256 truncated to its first 16 bytes).
interface ILicenceRegistry {
    /// @notice Status of one licence (a leaf) as recorded for the agency that anchored it:
    /// the same licence id under another root of the same agency has the same status.
    /// @dev Active is the zero value, so a leaf nobody has touched reads as Active.
    /// Revoked (吊销), Superseded and Cancelled (注销, given up by the holder) are final.
    enum LeafStatus {
        Active,
        Suspended,
        Revoked,
        Superseded,
        Cancelled
    }

    // ---- errors -------------------------------------------------------------------

    /// @notice `code` is not an 18-character unified social credit code.
    error LicenceRegistryInvalidAgencyCode(string code);
    /// @notice `code` already belongs to agency `agencyId`.
    error LicenceRegistryAgencyCodeTaken(string code, uint32 agencyId);
    /// @notice Licence type 0 stands for no licence type and cannot be published.
    error LicenceRegistryInvalidLicenceType(uint16 licenceType);
    /// @notice Version `version` of `licenceType` cannot be published: the next version is
    /// the latest published one (`latest`, 0 for none) + 1.
    error LicenceRegistryInvalidTypeVersion(uint16 licenceType, uint16 version, uint16 latest);
    /// @notice A licence type definition has 1 to 16,384 bytes, not `length`.
    error LicenceRegistryInvalidTypeDefinition(uint16 licenceType, uint256 length);
    /// @notice Version `version` of `licenceType` is not published (version 0: the type
    /// has no published version at all).
    error LicenceRegistryTypeNotPublished(uint16 licenceType, uint16 version);
    /// @notice `signer` is the zero address.
    error LicenceRegistryInvalidSigner(address signer);
    /// @notice `signer` is, or once was, the signer of an agency: keys are never reused.
    error LicenceRegistrySignerAlreadyUsed(address signer);
    /// @notice No agency has id `agencyId`.
    error LicenceRegistryUnknownAgency(uint32 agencyId);
    /// @notice Agency `agencyId` is retired.
    error LicenceRegistryAgencyRetired(uint32 agencyId);
    /// @notice `caller` is neither the current signer of agency `agencyId` nor a governor.
    error LicenceRegistryNotSignerOrGovernor(address caller, uint32 agencyId);
    /// @notice `caller` is not the current signer of any agency.
    error LicenceRegistryNotAgency(address caller);
    /// @notice Agency `agencyId` may not issue licences of type `licenceType`.
    error LicenceRegistryNotAuthorised(uint32 agencyId, uint16 licenceType);
    /// @notice An anchor needs a non-zero `root` and a non-zero `count`.
    error LicenceRegistryInvalidAnchor(bytes16 root, uint32 count);
    /// @notice `root` is anchored already; anchors are never overwritten.
    error LicenceRegistryAlreadyAnchored(bytes16 root);
    /// @notice `root` was never anchored.
    error LicenceRegistryNotAnchored(bytes16 root);
    /// @notice `caller` is neither the current signer of the agency that anchored `root`
    /// nor a governor.
    error LicenceRegistryNotBatchIssuer(address caller, bytes16 root);
    /// @notice `leaf` cannot go from status `from` to status `to`.
    error LicenceRegistryInvalidTransition(bytes16 leaf, LeafStatus from, LeafStatus to);
    /// @notice `status` cannot be set in bulk (Superseded needs a successor per leaf).
    error LicenceRegistryStatusNotBulk(LeafStatus status);
    /// @notice A bulk status change under `root` named no leaves.
    error LicenceRegistryNoLeaves(bytes16 root);
    /// @notice Batch `root` was revoked as a whole already.
    error LicenceRegistryBatchAlreadyRevoked(bytes16 root);
    /// @notice `signer` is not, and never was, the key of any agency.
    error LicenceRegistryUnknownSigner(address signer);
    /// @notice `signer` was reported compromised: it can no longer anchor, change a status
    /// or rotate itself away.
    error LicenceRegistrySignerCompromised(address signer);
    /// @notice A key cannot be reported compromised from `fromBlock`, after the current
    /// block `currentBlock`.
    error LicenceRegistryInvalidCompromiseBlock(uint64 fromBlock, uint64 currentBlock);
    /// @notice `signer` is reported compromised from block `fromBlock` already; a new
    /// report may only move that block earlier.
    error LicenceRegistrySignerAlreadyCompromised(address signer, uint64 fromBlock);
    /// @notice An SM2 seal key cannot be valid from `validFrom`: before the current block
    /// `currentBlock`, or not after the block the agency's previous seal key is valid from.
    error LicenceRegistryInvalidSealKeyBlock(uint64 validFrom, uint64 currentBlock);
    /// @notice An SM2 public key is two non-zero 32-byte coordinates.
    error LicenceRegistryInvalidSealKey();
    /// @notice Agency `agencyId` has no `keyNumber`th SM2 seal key.
    error LicenceRegistryUnknownSealKey(uint32 agencyId, uint32 keyNumber);
    /// @notice Agency `agencyId`'s seal key `keyNumber` is reported compromised from block
    /// `fromBlock` already; a new report may only move that block earlier.
    error LicenceRegistrySealKeyAlreadyCompromised(
        uint32 agencyId, uint32 keyNumber, uint64 fromBlock
    );

    // ---- events -------------------------------------------------------------------

    /// @notice Version `version` of licence type `licenceType` was published: `definition`
    /// is its definition (RFC 8785 canonical JSON), `definitionHash` its SHA-256.
    event LicenceTypePublished(
        uint16 indexed licenceType,
        uint16 indexed version,
        bytes32 definitionHash,
        bytes definition
    );
    /// @notice Agency `agencyId` was registered with signer `signer` (its licence types
    /// follow as {AgencyTypeAuthorised} events).
    event AgencyRegistered(
        uint32 indexed agencyId,
        address indexed signer,
        string code,
        string name
    );
    /// @notice Agency `agencyId` may now (`authorised`) or may no longer issue licences of
    /// type `licenceType`; anchors made before stay valid.
    event AgencyTypeAuthorised(uint32 indexed agencyId, uint16 indexed licenceType, bool authorised);
    /// @notice Agency `agencyId` was retired; its earlier anchors stay valid.
    event AgencyRetired(uint32 indexed agencyId);
    /// @notice Agency `agencyId` now signs with `newSigner`; `oldSigner` is spent.
    event SignerRotated(uint32 indexed agencyId, address oldSigner, address newSigner);
    /// @notice Agency `agencyId` anchored `root`, a batch of `count` licences of version
    /// `typeVersion` of licence type `licenceType`.
    event BatchAnchored(
        bytes16 indexed root,
        uint32 indexed agencyId,
        uint16 licenceType,
        uint16 typeVersion,
        uint32 count
    );
    /// @notice Leaf `leaf` under `root` now has status `status`, for reason code `reason`.
    event LeafStatusChanged(
        bytes16 indexed root,
        bytes16 indexed leaf,
        LeafStatus status,
        uint8 reason
    );
    /// @notice Every leaf in `leaves` under `root` now has status `status`, for reason
    /// code `reason` (one bulk change, one event).
    /// @dev One event per call, not one per leaf: a log topic costs 375 gas and a data byte
    /// 8, so the leaves ride as data (256 gas each, as ABI encoding pads every bytes16 to
    /// a 32-byte word) and the bulk change stays within its per-leaf gas target. The
    /// leaves are not topics: to follow one licence, filter by `root` (a topic here and in
    /// {LeafStatusChanged}) and look inside `leaves`.
    event LeafStatusesChanged(
        bytes16 indexed root,
        LeafStatus status,
        uint8 reason,
        bytes16[] leaves
    );
    /// @notice Leaf `leaf` under `root` was superseded by `successor` (a new leaf).
    event LeafSuperseded(
        bytes16 indexed root,
        bytes16 indexed leaf,
        bytes16 successor,
        uint8 reason
    );
    /// @notice The whole batch `root`, anchored by agency `agencyId`, was revoked by a
    /// governor, for reason code `reason`.
    event BatchRevoked(bytes16 indexed root, uint32 indexed agencyId, uint8 reason);
    /// @notice Key `signer`, the `keyNumber`th key of agency `agencyId` (1 = the key it was
    /// registered with, +1 per rotation), was reported compromised from block `fromBlock`:
    /// its anchors from that block on no longer count, and the key is spent.
    event SignerCompromised(
        uint32 indexed agencyId,
        address indexed signer,
        uint32 keyNumber,
        uint64 fromBlock
    );
    /// @notice Agency `agencyId`'s `keyNumber`th SM2 seal key (1, 2, ...), the public key
    /// (x, y), seals the batches it anchors from block `validFrom` until the block its
    /// next seal key is valid from.
    event SealKeyRegistered(
        uint32 indexed agencyId,
        uint32 keyNumber,
        bytes32 x,
        bytes32 y,
        uint64 validFrom
    );
    /// @notice Agency `agencyId`'s `keyNumber`th SM2 seal key was reported compromised
    /// from block `fromBlock`: seals of batches anchored from that block on do not count.
    event SealKeyCompromised(uint32 indexed agencyId, uint32 keyNumber, uint64 fromBlock);
}
