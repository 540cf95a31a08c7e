"""Sync: one mailbox at a time, cursor → fetch → ingest, with health and scheduling."""
