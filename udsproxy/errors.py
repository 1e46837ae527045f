"""The error hierarchy: one root, config errors with file/line/hint, bind errors with errno.

Errors the HTTP layer answers itself carry their status where they are raised
(``http.headers.HeadError``) and the pages live in ``http.pages``."""

from __future__ import annotations

from typing import Optional


class UdsProxyError(Exception):
    """Root of every error udsproxy raises on purpose."""


class ConfigError(UdsProxyError):
    """A problem in a config file, located by file and line, with a hint for the fix."""

    def __init__(
        self,
        message: str,
        filename: str = "",
        lineno: int = 0,
        keyword: str = "",
        hint: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.filename = filename
        self.lineno = lineno
        self.keyword = keyword
        self.hint = hint

    def __str__(self) -> str:
        # Line 0 is the file as a whole (it cannot be opened, it has no listener).
        where = (
            f"{self.filename}{f':{self.lineno}' if self.lineno else ''}: " if self.filename else ""
        )
        kw = f"'{self.keyword}': " if self.keyword else ""
        hint = f" (hint: {self.hint})" if self.hint else ""
        return f"{where}{kw}{self.message}{hint}"


class ConfigErrors(UdsProxyError):
    """Every error found in one config file; ``--check`` prints them all."""

    def __init__(self, errors: list[ConfigError]) -> None:
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = errors


class BindError(UdsProxyError):
    """A listener could not be created: names the address, the errno and the fix."""

    def __init__(self, message: str, errno: Optional[int] = None) -> None:
        super().__init__(message)
        self.errno = errno
