"""elicence verifier."""
