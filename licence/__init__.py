"""The elicence/1 licence format, with nothing of the chain, images or compiled code.

catalogue (licence types), catalogue_rules (checking definitions and their versions),
canonical (RFC 8785 bytes), digest (salts, commitments, licence ids), merkle (batch
trees and proofs), document (parsing and writing), presentation (hiding fields),
payload (the `EL1:` QR text), credit_code (GB 32100),
reasons (status-change reason codes), statuses (the registry's leaf statuses) and
errors. docs/format.md is the normative description; ledger, issuer and verifier build
on this package, and it imports none of them.
"""
