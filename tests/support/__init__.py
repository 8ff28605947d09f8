"""Helpers only tests need: the test bank's PKI and dbank's helpers bound to it (TLS and
tokens, ``secure``), a Redis server with a test client, fixed clocks in the past, and the
Lamport trace check. Branch processes, proxies and the bank workload are in
``dbank.hosting`` and ``dbank.check``."""
