"""The HTTP rules of one proxy section, ready to run on a request head or a response head.

A :class:`SectionRules` holds a frontend's or backend's ``http-request`` rules, then its
``redirect`` rules (HAProxy evaluates them after the section's http-request rules), and
its ``http-response`` rules, compiled into (condition, action) steps
(:mod:`udsproxy.rules.actions`). ``allow`` ends the section's rules of that kind; any other
outcome (a reply, a failed rewrite) ends all rules and is the caller's to answer.

Order, as HAProxy 2.6: the frontend's request rules, then routing, then the backend's
(a ``listen`` section's once); the backend's response rules, then the frontend's. Response
rules apply to a server's final response, not to the proxy's own pages nor to the replies
rules make.
"""

from __future__ import annotations

from typing import Any, FrozenSet, Optional, Sequence

from ..config.model import Proxy
from ..rules import RuleContext
from ..rules.actions import ALLOW, Steps, header_names_set, steps_of
from ..rules.variables import drop_request_vars


class SectionRules:
    """One section's HTTP rules; None from :meth:`of` when it has none."""

    __slots__ = (
        "name",
        "request",
        "redirects",
        "response",
        "added",
        "request_record",
        "response_record",
    )

    def __init__(self, proxy: Proxy) -> None:
        self.name = proxy.name
        self.request: Steps = steps_of(proxy.http_request)
        self.redirects: Steps = steps_of(proxy.redirects)
        self.response: Steps = steps_of(proxy.http_response, response=True)
        # Values printing log-format variables read the request's session record.
        self.request_record = any(r.action.record for r in (*proxy.http_request, *proxy.redirects))
        self.response_record = any(r.action.record for r in proxy.http_response)
        # Names the request rules may set or add: kept even when the client's Connection
        # field names them (a client cannot strip what the proxy adds).
        self.added: FrozenSet[bytes] = header_names_set(proxy.http_request)

    @classmethod
    def of(cls, proxy: Optional[Proxy]) -> Optional[SectionRules]:
        if proxy is None or not (proxy.http_request or proxy.redirects or proxy.http_response):
            return None
        return cls(proxy)

    def on_request(self, ctx: RuleContext) -> Any:
        """The section's http-request then redirect rules; an outcome to answer, or None."""
        # run_steps written out twice: once per request, one call less each.
        for test, run in self.request:
            if test is None or test(ctx):
                out = run(ctx)
                if out is not None:
                    if out is ALLOW:
                        break
                    return out
        for test, run in self.redirects:
            if test is None or test(ctx):
                out = run(ctx)
                if out is not None:
                    return None if out is ALLOW else out
        return None


class ResponseRules:
    """The sections whose http-response rules run on a response, in order (backend
    first), and whether any of their values reads the session record."""

    __slots__ = ("sections", "needs_record")

    def __init__(self, sections: Sequence[SectionRules]) -> None:
        self.sections = tuple(sections)
        self.needs_record = any(s.response_record for s in sections)


def response_sections(
    frontend: Optional[SectionRules], backend: Optional[SectionRules]
) -> Optional[ResponseRules]:
    """The response rules of a frontend/backend pair, or None when neither has some."""
    out = [s for s in (backend, frontend) if s is not None and s.response]
    return ResponseRules(out) if out else None


def on_response(sections: Sequence[SectionRules], ctx: RuleContext) -> Any:
    """Every section's response rules on ``ctx`` (status, reason, res_headers set)."""
    if ctx.vars:
        drop_request_vars(ctx)
    for section in sections:
        for test, run in section.response:
            if test is None or test(ctx):
                out = run(ctx)
                if out is not None:
                    if out is ALLOW:
                        break
                    return out
    return None
