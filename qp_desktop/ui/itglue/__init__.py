"""Integrations \u2192 IT Glue: the page (:mod:`.page`), its widgets (:mod:`.layout`),
rendering (:mod:`.render`), dialogs (:mod:`.dialogs`) and small helpers (:mod:`.formatting`)."""

from qp_desktop.ui.itglue.dialogs import GenerateTokenDialog
from qp_desktop.ui.itglue.page import ITGluePage

__all__ = ["GenerateTokenDialog", "ITGluePage"]
