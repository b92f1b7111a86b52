"""Domain rules as arrays: units, allocation, offsets, ledger, compliance, policy instruments."""
