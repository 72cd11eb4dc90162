"""elicence issuer."""
