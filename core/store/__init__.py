"""Persistence: SQLAlchemy models, sessions and migrations (db), and all SQL (repository)."""
