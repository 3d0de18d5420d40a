"""The one user-facing error type.

Library code raises :class:`OrinprofError` for anything the user can fix (bad input, a missing
optional dependency, an unavailable device).  The CLI catches only this type and prints one line;
any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations


class OrinprofError(Exception):
    """A problem the user can fix.  ``hint`` says how (or lists the valid choices)."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        text = self.message if not self.hint else f"{self.message} ({self.hint})"
        return " ".join(text.split())


class MissingDependency(OrinprofError):
    """An optional package is not installed; the hint names the install command."""

    def __init__(self, package: str, extra: str | None = None, why: str = "") -> None:
        install = f"pip install 'orinprof[{extra}]'" if extra else f"pip install {package}"
        what = f"{package} is not installed" + (f" (needed {why})" if why else "")
        super().__init__(what, f"install it with: {install}")
        self.package = package
