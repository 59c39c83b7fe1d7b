"""Data-subject rights: per-member keys (crypto-shredding), access export, erasure."""
