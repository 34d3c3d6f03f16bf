"""Use cases. Services flush and never commit; the caller owns the transaction."""
