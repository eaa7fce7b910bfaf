"""QP tenant service: IT Glue workflow webhooks, tokens, events and the reset pipeline."""

__version__ = "0.1.0"
