"""Health checks: active probes, passive observation and HAProxy's wording for both.

- :mod:`.status`: the check statuses (L4OK, SOCKERR, L7STS ...) and the transition lines;
- :mod:`.httpcheck`: the HTTP check's request and its verdict on a response (pure);
- :mod:`.checker`: the clock-driven prober of one server and the per-generation
  :class:`~.checker.HealthChecks` that owns every prober, the passive checks and the logs.

The counter itself (rise/fall, statuses) lives in :class:`udsproxy.runtime.ServerState`;
this package feeds it. The data path (tcp.py, http/, stream.py) never imports it.
"""
