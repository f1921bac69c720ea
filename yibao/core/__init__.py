"""Shared foundations: money, the data contract, errors and the database layer."""
