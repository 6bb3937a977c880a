"""The ledger's rules: who may do what to which accounts, and what moves when they do.

A command's operations run against the projections inside the entry's own transaction (a
savepoint), so a refused operation undoes every effect of its command. The same code applies
entries when the server appends them and when an auditor replays the log.
"""
