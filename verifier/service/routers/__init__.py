"""One router per resource of the verify API."""
