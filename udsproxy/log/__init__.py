"""Logging: HAProxy-format session and event lines (``formats``) and their targets (``targets``)."""

from __future__ import annotations

from .formats import (
    FACILITIES,
    FORMATS,
    LEVELS,
    SessionRecord,
    facility_number,
    format_backend_down,
    format_health_event,
    format_proxy_stopped,
    format_server_down,
    format_server_drain,
    format_server_maint,
    format_server_ready,
    format_server_up,
    health_event_level,
    is_null_session,
    level_number,
    priority,
    syslog_frame,
)
from .targets import LogSink, TargetAddress, log_event, parse_target

__all__ = [
    "FACILITIES",
    "FORMATS",
    "LEVELS",
    "LogSink",
    "SessionRecord",
    "TargetAddress",
    "facility_number",
    "format_backend_down",
    "format_health_event",
    "format_proxy_stopped",
    "format_server_down",
    "format_server_drain",
    "format_server_maint",
    "format_server_ready",
    "format_server_up",
    "health_event_level",
    "is_null_session",
    "level_number",
    "log_event",
    "parse_target",
    "priority",
    "syslog_frame",
]
