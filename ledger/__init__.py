"""The verifiable log: entries, the Merkle tree, checkpoints, keys, storage and the verifier.

This package imports nothing else of the project and no web framework, so an auditor can use
its verifier with only ``cryptography`` and ``rfc8785`` installed.
"""
