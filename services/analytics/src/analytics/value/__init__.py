"""The strategy's value model on live figures (rules.py)."""
