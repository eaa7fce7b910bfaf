"""The sign-in window (:mod:`.window`) and its widgets (:mod:`.layout`)."""

from qp_desktop.ui.sign_in.layout import PASSWORD_RULE
from qp_desktop.ui.sign_in.window import LOCAL_TENANT_KEY, SignInWindow, describe_sign_in_error

__all__ = ["LOCAL_TENANT_KEY", "PASSWORD_RULE", "SignInWindow", "describe_sign_in_error"]
