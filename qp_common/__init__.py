"""Rules the tenant, the agent and the desktop app share, written once.

Standard library only: the desktop app must never pull server code (FastAPI, SQLAlchemy) in,
and the agent stays small. ``urls`` (which tenant URLs are safe, which are public),
``redact`` (what a log line may show), ``wire`` (the HTTP contract's vocabulary) and
``transport`` (a failed connection as a sentence a person can act on).
"""
