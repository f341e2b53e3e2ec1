"""syncd: a small, self-hosted, CouchDB-compatible replication server on one SQLite file."""

__version__ = "0.1.0"
