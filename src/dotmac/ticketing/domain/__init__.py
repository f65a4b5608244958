"""The ticketing domain: aggregates, their events, and pure policies.

Imports only the standard library and ``eventsourcing.domain``: no I/O.
"""
