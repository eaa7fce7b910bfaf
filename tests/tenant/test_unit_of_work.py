"""One unit-of-work rule: domain functions commit, routes never do.

A route that commits after a domain call splits one change over two owners: the next route
forgets to, and its change is rolled back when the session closes, or a domain function
called from the scheduler or the CLI leaves its work uncommitted. See docs/architecture.md,
"Unit of work".
"""

from __future__ import annotations

import ast
from pathlib import Path

import qp_tenant.api

API_DIR = Path(qp_tenant.api.__file__).parent


def commits_in(source: str) -> list[int]:
    """Lines of ``source`` that call ``….commit()`` (a session's, whatever it is named)."""
    return [node.lineno for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr == "commit"]


def test_the_scan_finds_a_commit_however_the_session_is_named() -> None:
    source = ("async def route(db):\n"
              "    await db.commit()\n"
              "    await state.sessions().commit()\n"
              "    commit = 'a word is no call'\n")
    assert commits_in(source) == [2, 3]


def test_no_route_module_commits() -> None:
    modules = sorted(API_DIR.glob("*.py"))
    assert len(modules) > 5, API_DIR
    found = [f"{path.name}:{line}" for path in modules
             for line in commits_in(path.read_text(encoding="utf-8"))]
    assert found == [], ("routes must leave the commit to the domain function they call: "
                         + ", ".join(found))
