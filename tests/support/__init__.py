"""Helpers the tests share: real branch processes and ways to wait on them."""
