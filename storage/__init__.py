"""Persistence: tables, engine and session factories, query functions, migrations.

Query functions take keyword-only arguments and never commit: the caller owns the transaction.
"""
