"""The pure CouchDB model: rev ids, revision trees, documents and their validation.

Nothing in this package does I/O or imports from ``syncd.store`` or ``syncd.web``.
"""
