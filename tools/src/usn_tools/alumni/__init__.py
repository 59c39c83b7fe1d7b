"""`alumni`: the operators' and auditors' command (replay, audit member, dlq, lag).

Every subcommand reads topics the way `reading.py` does: partitions assigned,
no consumer group, nothing committed, so no service's offsets ever move.
The entry point and the exit codes are in `cli.py`.
"""
