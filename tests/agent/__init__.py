"""Tests of the agent (qp_agent)."""
