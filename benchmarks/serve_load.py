"""Load on the real server: poems/s and latency for 1, 8 and 64 concurrent clients.

Starts ``python -m poetry_rnn.serve`` on 127.0.0.1 twice, with request
coalescing on and off (``--nocoalesce``: one decode per request), and drives
each with closed-loop clients (each sends its next request when the last one
returns) posting one 七绝 per request. Prints poems/s and p50/p99 latency per
setting, and the coalesced / one-at-a-time ratios measured in the same run.

    python benchmarks/serve_load.py [--model_dir checkpoints/default] [--seconds 15]

Needs the [serve] extra and httpx.
"""

import argparse
import asyncio
import os
import random
import socket
import subprocess
import sys
import time

import httpx
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model_dir, coalesce):
    port = free_port()
    command = [sys.executable, "-m", "poetry_rnn.serve", "--port", str(port), "--max_poems", "16",
               "--queue_size", "1024", "--coalesce" if coalesce else "--nocoalesce"]
    if model_dir:
        command += ["--model_dir", model_dir]
    process = subprocess.Popen(command, env=dict(os.environ, PYTHONPATH=REPO), stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.3)
    process.kill()
    raise SystemExit("the server did not start")


async def load(url, clients, seconds):
    """Closed-loop clients for ``seconds``; returns (poems/s, latencies in s)."""
    latencies = []
    stop = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        async def one_client():
            while time.perf_counter() < stop:
                began = time.perf_counter()
                response = await client.post(f"{url}/api/poems",
                                             json={"form": "qijue", "seed": random.randrange(2**31)})
                response.raise_for_status()
                latencies.append(time.perf_counter() - began)

        began = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(clients)))
        elapsed = time.perf_counter() - began
    return len(latencies) / elapsed, np.array(latencies)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model_dir", default=None, help="Model to serve (default: the shipped model).")
    parser.add_argument("--seconds", type=float, default=15.0, help="Load time per setting.")
    parser.add_argument("--clients", default="1,8,64", help="Concurrent clients, comma-separated.")
    args = parser.parse_args()
    levels = [int(c) for c in args.clients.split(",")]
    results = {}
    for coalesce in (True, False):
        process, url = start_server(args.model_dir, coalesce)
        try:
            asyncio.run(load(url, 1, 2.0))  # warm-up: connections, first requests
            for clients in levels:
                results[coalesce, clients] = asyncio.run(load(url, clients, args.seconds))
        finally:
            process.terminate()
            process.wait(10)
    print(f"{'coalescing':>10} {'clients':>7} {'poems/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for (coalesce, clients), (rate, latencies) in results.items():
        p50, p99 = np.percentile(latencies, [50, 99]) * 1000
        print(f"{'on' if coalesce else 'off':>10} {clients:>7} {rate:>8.1f} {p50:>8.0f} {p99:>8.0f}")
    print("coalesced / one at a time, same run:")
    for clients in levels:
        (on, lat_on), (off, lat_off) = results[True, clients], results[False, clients]
        print(f"  {clients:>3} clients: poems/s {on / off:.2f}x, p50 latency {np.median(lat_on) / np.median(lat_off):.2f}x")


if __name__ == "__main__":
    main()
