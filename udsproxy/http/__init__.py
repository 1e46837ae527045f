"""HTTP mode: HTTP/1.1 parsed with h11, balanced per request, streamed with back-pressure.

- ``h11lib``: the one import of h11 (a compiled build when installed);
- ``headers``: hop-by-hop rules, X-Forwarded-For, request-head checks h11 does not make;
- ``pages``: the proxy's own responses (HAProxy's status codes and bodies);
- ``settings``: what a frontend/backend pair means for HTTP (timeouts, reuse, options);
- ``upstream``: server connections and the per-server keep-alive pools;
- ``exchange``: one request and its response, from slot to log line;
- ``frontend``: the client connection: parsing, pipelining, keep-alive, timeouts.
"""
