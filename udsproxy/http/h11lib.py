"""The one place h11 is imported: the mypyc-compiled build (``h11_mypyc``) when installed.

The compiled build has the same API and runs the parser several times faster; everything in
udsproxy imports h11 from here so that swapping it in needs no other change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the same API: type-check against h11's own hints, whichever is installed
    import h11
else:
    try:  # pragma: no cover - depends on what is installed
        import h11_mypyc as h11
    except ImportError:  # pragma: no cover
        import h11

IMPLEMENTATION = h11.__name__
# h11's header list, built from ``(raw name, lower-case name, value)`` triples: an event
# given one is not normalized again (the fields come from h11's own parser).
Headers = h11._headers.Headers

__all__ = ["IMPLEMENTATION", "Headers", "h11"]
