"""Small-cell suppression for every output of the read side (rules.py)."""
