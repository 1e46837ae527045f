"""twistd plugin: ``twistd -n udsproxy --config FILE`` (resolved lazily from udsproxy.tap)."""

from twisted.application.service import ServiceMaker

udsproxy = ServiceMaker(
    "udsproxy",
    "udsproxy.tap",
    "Protocol-aware reverse proxy and load balancer for Unix-socket backends "
    "(HAProxy config syntax)",
    "udsproxy",
)
