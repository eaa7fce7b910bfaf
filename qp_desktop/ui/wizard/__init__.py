"""Setup \u2192 IT Glue workflow: the checklist page (:mod:`.page`), its widgets
(:mod:`.layout`), rendering (:mod:`.render`), live verification (:mod:`.live`), what an event
means for the checklist (:mod:`.triggers`, plain functions) and small helpers
(:mod:`.formatting`)."""

from qp_desktop.ui.wizard.page import SetupWizardPage

__all__ = ["SetupWizardPage"]
