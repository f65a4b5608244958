"""Read models: projectors that follow the event log into query tables.

Every table here can be dropped and rebuilt from the event store.
"""
