"""The platform watching itself: module health from the instance's own records."""
