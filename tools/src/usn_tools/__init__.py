"""Operator and developer tools: the synthetic FS export and a plain publisher."""
