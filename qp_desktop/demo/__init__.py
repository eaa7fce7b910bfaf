"""Demo data and the screenshot mode (``qp-desktop --screenshot DIR [--check-layout]``).

Nothing in the product imports this package (a test checks it): it builds on the product's
windows and services, never the other way round.
"""
