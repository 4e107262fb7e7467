"""Load on the real server: poems/s and latency for 1, 8 and 64 concurrent clients.

Every mode starts ``python -m poetry_rnn.serve`` on 127.0.0.1 (a free port;
no traffic goes anywhere else) and drives it with closed-loop clients: each
sends its next request when the last one returns. Every loop stops by itself:
clients send no new request after ``--seconds``, each request gives up after
``--request_timeout``, each class stops at ``--max_requests`` requests per
phase, and a phase is cut off at ``--seconds + --request_timeout + 30``.

Modes:

* default (no ``--mix``): coalescing on and off. The server runs twice, with
  request coalescing on and off (``--nocoalesce``: one decode per request);
  each client posts one 七绝 per request. Prints poems/s and p50/p99 latency
  per setting, and the coalesced / one-at-a-time ratios measured in the same
  run (``--clients`` default ``1,8,64``)::

      python benchmarks/serve_load.py [--model_dir checkpoints/default] [--seconds 15]

* ``--mix light``: one server (coalescing on), ``--clients`` light clients
  (default ``64``), each posting one 七绝 with rhyme per request
  (``{"form": "qijue", "rhyme": true, "num": 1}``).
* ``--mix light+heavy``: the same light clients plus ``--heavy_clients``
  (default 1) heavy clients, each posting ``--heavy`` in a closed loop
  (default ``{"form": "free", "max_len": 120, "num": 16, "best_of": 8}``:
  16 free poems of up to 120 characters, 8 drafts each, 128 decoder rows, a
  request the server accepts). The heavy clients start with the light ones
  and keep a heavy request in flight for (almost) the whole phase; the share
  of the phase with one in flight is printed.
* ``--mix both``: ``light`` then ``light+heavy`` for each ``--clients``
  level on the same server, side by side, and the ratio of the light
  requests' p99 (and p50) with the heavy clients to without them: the target
  is "with one heavy request in flight, light requests' p99 is <= 2x their
  p99 without it".

For the mixes, each class (light, heavy) reports requests completed (HTTP
200), poems/s (poems in the 200 answers over the time from the phase's start
to the class's last answer), p50, p99 and max latency of the 200 answers,
and the answers that were not 200, counted by status code (e.g. 400 over the cost budget, 503 busy, 504 timeout;
``timeout`` / ``neterr`` for a request that got no answer). The CPU model
(/proc/cpuinfo) is printed at the top. Every request carries its own seed,
all distinct. A warm-up (light requests and one heavy request, untimed)
traces the decoder first. Examples::

      python benchmarks/serve_load.py --mix both --clients 64 --seconds 15
      python benchmarks/serve_load.py --mix light+heavy --clients 8,64 --heavy_clients 2
      python benchmarks/serve_load.py --mix both --server_arg=--window_ms=10 --server_arg=--nocoalesce

``--server_arg`` (repeatable; write it with ``=``) passes a flag on to the
server in the mix modes. Needs the [serve] extra and httpx.
"""

import argparse
import asyncio
import collections
import itertools
import json
import os
import random
import socket
import subprocess
import sys
import time

import httpx
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIGHT = {"form": "qijue", "rhyme": True, "num": 1}
HEAVY = {"form": "free", "max_len": 120, "num": 16, "best_of": 8}
SEEDS = itertools.count(random.randrange(2**30))  # every request its own seed (< 2**31 - 1)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def start_server(model_dir, coalesce, extra=()):
    port = free_port()
    command = [sys.executable, "-m", "poetry_rnn.serve", "--host", "127.0.0.1", "--port", str(port),
               "--max_poems", "16", "--queue_size", "1024", "--coalesce" if coalesce else "--nocoalesce", *extra]
    if model_dir:
        command += ["--model_dir", model_dir]
    process = subprocess.Popen(command, env=dict(os.environ, PYTHONPATH=REPO), stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 180
    while time.time() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with status {process.returncode}")
        try:
            if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.3)
    process.kill()
    raise SystemExit("the server did not start")


def stop_server(process):
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


class Record:
    """One class's results in one phase: latencies of the 200 answers, poems, other answers by status."""

    def __init__(self):
        self.latencies, self.poems, self.errors = [], 0, collections.Counter()
        self.intervals = []  # (start, end) of each request answered 200, for the heavy-in-flight share
        self.sent, self.last = 0, None  # requests sent; when the last one ended (any answer)

    def summary(self, began):
        """Counts and latencies; poems/s over the time from the phase's start to this class's last answer."""
        elapsed = (self.last or began) - began
        lat = np.array(self.latencies) * 1000
        p50, p99, worst = (np.percentile(lat, [50, 99]).tolist() + [lat.max()]) if len(lat) else (np.nan,) * 3
        return {"done": len(lat), "poems_per_s": self.poems / elapsed if elapsed > 0 else 0.0,
                "p50": p50, "p99": p99, "max": worst, "errors": dict(self.errors)}


async def closed_loop(client, url, body, stop, record, max_requests, request_timeout):
    """One closed-loop client: post ``body`` (a fresh seed each time) until ``stop`` or the class's cap."""
    while time.perf_counter() < stop and record.sent < max_requests:
        record.sent += 1
        began = time.perf_counter()
        try:
            response = await client.post(f"{url}/api/poems", json={**body, "seed": next(SEEDS)},
                                         timeout=request_timeout)
        except httpx.TimeoutException:
            record.errors["timeout"] += 1
            record.last = time.perf_counter()
            continue
        except httpx.HTTPError:
            record.errors["neterr"] += 1
            record.last = time.perf_counter()
            await asyncio.sleep(0.1)  # a refused connection must not spin
            continue
        ended = record.last = time.perf_counter()
        if response.status_code == 200:
            record.intervals.append((began, ended))
            record.latencies.append(ended - began)
            try:
                record.poems += len(response.json()["poems"])
            except (ValueError, KeyError, TypeError):
                record.errors["bad 200"] += 1
        else:
            record.errors[str(response.status_code)] += 1


async def run_phase(url, groups, seconds, max_requests, request_timeout):
    """Run ``groups`` ([(clients, body, Record)]) together for ``seconds``; returns (wall time, start, stop)."""
    total = sum(clients for clients, _, _ in groups)
    limits = httpx.Limits(max_connections=total, max_keepalive_connections=total)
    async with httpx.AsyncClient(limits=limits) as client:
        began = time.perf_counter()
        stop = began + seconds
        tasks = [closed_loop(client, url, body, stop, record, max_requests, request_timeout)
                 for clients, body, record in groups for _ in range(clients)]
        try:
            await asyncio.wait_for(asyncio.gather(*tasks), seconds + request_timeout + 30)
        except asyncio.TimeoutError:
            print("  (phase cut off at its hard deadline)", file=sys.stderr)
        elapsed = time.perf_counter() - began
    return elapsed, began, stop


def covered(intervals, start, stop):
    """The share of [start, stop] that the union of ``intervals`` covers."""
    length, reach = 0.0, start
    for a, b in sorted(intervals):
        a, b = max(a, reach), min(b, stop)
        if b > a:
            length += b - a
            reach = b
    return length / (stop - start) if stop > start else 0.0


async def load(url, clients, seconds, request_timeout=120, max_requests=100_000):
    """Closed-loop clients posting one 七绝 for ``seconds``; returns (poems/s, latencies in s, non-200 counts)."""
    record = Record()
    elapsed, _, _ = await run_phase(url, [(clients, {"form": "qijue"}, record)], seconds, max_requests,
                                    request_timeout)
    return record.poems / elapsed, np.array(record.latencies), record.errors


def coalescing_mode(args):
    levels = [int(c) for c in (args.clients or "1,8,64").split(",")]
    results = {}
    for coalesce in (True, False):
        process, url = start_server(args.model_dir, coalesce)
        try:
            asyncio.run(load(url, 1, 2.0))  # warm-up: connections, first requests
            for clients in levels:
                results[coalesce, clients] = asyncio.run(load(url, clients, args.seconds, args.request_timeout,
                                                              args.max_requests))
        finally:
            stop_server(process)
    print(f"{'coalescing':>10} {'clients':>7} {'poems/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for (coalesce, clients), (rate, latencies, errors) in results.items():
        p50, p99 = np.percentile(latencies, [50, 99]) * 1000 if len(latencies) else (np.nan, np.nan)
        print(f"{'on' if coalesce else 'off':>10} {clients:>7} {rate:>8.1f} {p50:>8.0f} {p99:>8.0f}"
              + (f"  not 200: {format_errors(errors)}" if errors else ""))
    print("coalesced / one at a time, same run:")
    for clients in levels:
        (on, lat_on, _), (off, lat_off, _) = results[True, clients], results[False, clients]
        print(f"  {clients:>3} clients: poems/s {on / off:.2f}x, p50 latency {np.median(lat_on) / np.median(lat_off):.2f}x")


def format_errors(errors):
    return ", ".join(f"{code}: {n}" for code, n in sorted(errors.items())) if errors else "-"


def mix_mode(args):
    levels = [int(c) for c in (args.clients or "64").split(",")]
    heavy = json.loads(args.heavy)
    phases = {"light": ["light"], "light+heavy": ["light+heavy"], "both": ["light", "light+heavy"]}[args.mix]
    print(f"cpu: {cpu_model()} ({os.cpu_count()} logical cores)")
    print(f"light: {json.dumps(LIGHT)}   heavy: {json.dumps(heavy)} x {args.heavy_clients} clients")
    print(f"server: coalescing on, --max_poems 16 --queue_size 1024 {' '.join(args.server_arg)}".rstrip())
    print(f"{args.seconds:g} s per phase, request timeout {args.request_timeout:g} s", flush=True)
    process, url = start_server(args.model_dir, True, args.server_arg)
    rows = []
    try:
        warm, warm_heavy = Record(), Record()
        asyncio.run(run_phase(url, [(1, LIGHT, warm)], 2.0, 1000, args.request_timeout))
        if "light+heavy" in phases and args.heavy_clients:  # trace the heavy request's decode before timing
            asyncio.run(run_phase(url, [(1, heavy, warm_heavy)], args.request_timeout, 1, args.request_timeout))
        for name, record in (("light", warm), ("heavy", warm_heavy)):
            if record.errors:
                print(f"warm-up {name} answers not 200: {format_errors(record.errors)}", flush=True)
        for clients in levels:
            for phase in phases:
                light, heavy_record = Record(), Record()
                groups = [(clients, LIGHT, light)]
                if phase == "light+heavy":
                    groups.insert(0, (args.heavy_clients, heavy, heavy_record))
                print(f"  {phase} with {clients} light clients ...", file=sys.stderr, flush=True)
                _, began, stop = asyncio.run(run_phase(url, groups, args.seconds, args.max_requests,
                                                             args.request_timeout))
                share = covered(heavy_record.intervals, began, stop) if phase == "light+heavy" else None
                rows.append((clients, phase, "light", light.summary(began), share))
                if phase == "light+heavy":
                    rows.append((clients, phase, "heavy", heavy_record.summary(began), share))
    finally:
        stop_server(process)

    print(f"{'clients':>7} {'phase':>11} {'class':>5} {'done':>6} {'poems/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'max ms':>8}  not 200")
    for clients, phase, cls, s, _ in rows:
        shown = f"{clients}+{args.heavy_clients}" if phase == "light+heavy" else str(clients)
        print(f"{shown:>7} {phase:>11} {cls:>5} {s['done']:>6} {s['poems_per_s']:>8.1f} {s['p50']:>8.0f} "
              f"{s['p99']:>8.0f} {s['max']:>8.0f}  {format_errors(s['errors'])}")
    for clients, phase, cls, s, share in rows:
        if cls == "heavy":
            print(f"a heavy request (answered 200) in flight for {share:.0%} of the light+heavy phase "
                  f"at {clients} light clients")
    if args.mix == "both":
        print("light requests with heavy / without, same run (target: p99 <= 2x):")
        for clients in levels:
            alone = next(s for c, p, k, s, _ in rows if c == clients and p == "light" and k == "light")
            mixed = next(s for c, p, k, s, _ in rows if c == clients and p == "light+heavy" and k == "light")
            print(f"  {clients:>3} clients: p99 {mixed['p99'] / alone['p99']:.2f}x, p50 {mixed['p50'] / alone['p50']:.2f}x, "
                  f"poems/s {mixed['poems_per_s'] / alone['poems_per_s'] if alone['poems_per_s'] else np.nan:.2f}x")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model_dir", default=None, help="Model to serve (default: the shipped model).")
    parser.add_argument("--seconds", type=float, default=15.0, help="Load time per setting (per phase).")
    parser.add_argument("--clients", default=None,
                        help="Concurrent (light) clients, comma-separated (default 1,8,64; with --mix: 64).")
    parser.add_argument("--mix", choices=["light", "light+heavy", "both"], default=None,
                        help="Mixed workload on one server (see the module docstring); default: coalescing on/off.")
    parser.add_argument("--heavy_clients", type=int, default=1, help="With --mix light+heavy or both: heavy clients.")
    parser.add_argument("--heavy", default=json.dumps(HEAVY), help="The heavy request's JSON body (no seed).")
    parser.add_argument("--server_arg", action="append", default=[],
                        help="With --mix: a flag for the server, e.g. --server_arg=--window_ms=10 (repeatable).")
    parser.add_argument("--request_timeout", type=float, default=120.0, help="Seconds before a request gives up.")
    parser.add_argument("--max_requests", type=int, default=100_000, help="Most requests per class per phase.")
    args = parser.parse_args()
    if args.heavy_clients < 0:
        parser.error("--heavy_clients must be >= 0")
    if args.mix:
        mix_mode(args)
    else:
        coalescing_mode(args)


if __name__ == "__main__":
    main()
