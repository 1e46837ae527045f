"""udsproxy: an HAProxy-syntax reverse proxy and load balancer for Unix-socket backends."""

__version__ = "0.1.0"
