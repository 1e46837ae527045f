"""The bench harness with realistic request heads: a browser's 16 fields, cookies included.

wrk's default request is two lines; a browser behind a login sends a head of about 1 KB
(``tools/hotpath.py``'s BROWSER_REQUEST). This runs ../shared/bench/run.py, imported and
unchanged (same backends, pinning, CPU and RSS accounting, ratios to HAProxy in the same
run), with two more scenarios:

- ``http-heads``: as ``http-keepalive``, every request that browser head;
- ``http-heads-pipeline``: the same, 16 requests per write (as ``http-pipeline``).

Every other option is run.py's. Defaults: ``--candidates haproxy,udsproxy --scenario
http-keepalive,http-heads``. Example (a venv with udsproxy and the ``fast`` extra)::

    python3 tools/bench_heads.py --rounds 3 \\
        --udsproxy-cmd '.venv/bin/twistd -n udsproxy --config {cfg}'

``--bench-dir`` (default: ``$UDSPROXY_BENCH``, else ../shared/bench beside this checkout)
says where run.py is.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from typing import Any, List

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from hotpath import BROWSER_REQUEST  # noqa: E402

SCENARIOS = {
    "http-heads": 1,
    "http-heads-pipeline": 16,
}
# run.py's wrk() writes ``PIPELINE_LUA % (requests per write, path)`` to a script when a
# scenario pipelines: ours has the same two placeholders and sends the browser head.
HEADS_LUA = """
init = function(args)
  local r = {}
  for i = 1, %%d do r[i] = "%s" end
  -- wrk's own path (%%s) is not used: the head has its own
  req = table.concat(r)
end
request = function() return req end
"""


def lua_string(data: bytes) -> str:
    """``data`` as the inside of a Lua double-quoted string (bytes escaped as \\ddd)."""
    out = []
    for b in data:
        if 32 <= b < 127 and b not in (0x22, 0x5C):
            out.append(chr(b))
        else:
            out.append(f"\\{b:03d}")
    return "".join(out)


def heads_lua() -> str:
    """The script template: ``%d`` (requests per write) stays for run.py, the head's own
    ``%`` signs are escaped for it."""
    return HEADS_LUA % lua_string(BROWSER_REQUEST).replace("%", "%%")


def load_run(bench_dir: str) -> Any:
    path = os.path.join(bench_dir, "run.py")
    if not os.path.exists(path):
        raise SystemExit(f"no bench harness at {path}: pass --bench-dir or set UDSPROXY_BENCH")
    spec = importlib.util.spec_from_file_location("udsbench_run", path)
    assert spec is not None and spec.loader is not None
    run = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run)
    return run


def install(run: Any) -> None:
    """Add the scenarios, and have wrk send the browser head in them."""
    for name, per_write in SCENARIOS.items():
        run.SCENARIOS[name] = dict(mode="http", fe="tcp", path="/", close=False, pipeline=per_write)
    base = run.Harness
    lua = heads_lua()

    class HeadsHarness(base):  # type: ignore[misc, valid-type]
        scenario = ""

        def one_run(self, cand: str, scen: str, rnd: int) -> Any:
            self.scenario = scen
            return super().one_run(cand, scen, rnd)

        def wrk(self, *args: Any, **kwargs: Any) -> Any:
            saved = run.PIPELINE_LUA
            if self.scenario in SCENARIOS:
                run.PIPELINE_LUA = lua
            try:
                return super().wrk(*args, **kwargs)
            finally:
                run.PIPELINE_LUA = saved

    run.Harness = HeadsHarness


def main(argv: List[str]) -> None:
    checkout = os.path.dirname(HERE)
    default_dir = os.environ.get("UDSPROXY_BENCH") or os.path.join(
        os.path.dirname(checkout), "shared", "bench"
    )
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--bench-dir", default=default_dir)
    ours, rest = pre.parse_known_args(argv)
    run = load_run(ours.bench_dir)
    install(run)
    if not any(a.startswith("--scenario") for a in rest):
        rest += ["--scenario", "http-keepalive,http-heads"]
    if not any(a.startswith("--candidates") for a in rest):
        rest += ["--candidates", "haproxy,udsproxy"]
    sys.argv = [os.path.join(ours.bench_dir, "run.py")] + rest
    run.main()


if __name__ == "__main__":
    main(sys.argv[1:])
