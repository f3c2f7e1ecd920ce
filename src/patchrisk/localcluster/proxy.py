"""The cluster's data path, in one process: ``python -m patchrisk.localcluster.proxy STATE_DIR``.

- one TCP listener per Service port on the Service's address, forwarding each connection to the
  next ready backend, round-robin, as kube-proxy does (external Services go to a local stand-in);
- one HTTP router per InferenceService on its Service address, splitting requests between
  the predictor and canary components by their committed percentages (smooth weighted round
  robin, so N requests give each component its share within one request), and sending each
  call's request and response to the sink Service as KServe's logger does.

Requests per component are written to ``router-<name>.json`` for ``status`` and the loop."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import socket
import sys
from pathlib import Path
from urllib.parse import urlparse

NETWORK_FILE = "network.json"
HOP_HEADERS = {"host", "content-length", "connection", "transfer-encoding", "keep-alive"}


class WeightedRoundRobin:
    """nginx's smooth weighted round robin: over any 100 picks each weight gets exactly its share."""

    def __init__(self, weights: dict[str, int]):
        self.weights = {k: w for k, w in weights.items() if w > 0}
        self.current = dict.fromkeys(self.weights, 0)

    def pick(self) -> str | None:
        if not self.weights:
            return None
        total = sum(self.weights.values())
        for key, weight in self.weights.items():
            self.current[key] += weight
        best = max(self.current, key=self.current.get)
        self.current[best] -= total
        return best


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


class AddressInUse(Exception):
    """A Service address another process holds (most often the same overlay already up)."""


def bound_socket(service: dict, port: int) -> socket.socket:
    """A listening socket on the Service's address, bound before anything serves so that a clash is
    one clear message naming the Service, not a traceback from deep inside asyncio or uvicorn."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((service["ip"], port))
    except OSError as err:
        sock.close()
        raise AddressInUse(
            f"Service {service['name']}.{service['namespace']} cannot listen on {service['ip']}:{port}: "
            f"{err.strerror or err}. Another process holds that address: most often this overlay is already "
            "up (`patchrisk local down --overlay ...`, or a `make run` still running)") from None
    sock.listen(1024)
    sock.setblocking(False)
    return sock


async def tcp_listener(sock: socket.socket, backends: list[tuple[str, int]]):
    cycle = itertools.cycle(backends) if backends else None

    async def handle(client_reader, client_writer):
        if cycle is None:  # a Service without ready endpoints refuses connections
            client_writer.close()
            return
        host, target = next(cycle)
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(host, target)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(_pipe(client_reader, upstream_writer), _pipe(upstream_reader, client_writer))

    return await asyncio.start_server(handle, sock=sock)


def _resolve(url: str, service_ips: dict[str, str]) -> str:
    """A cluster URL with its host replaced by the Service address (the router runs outside pods)."""
    parsed = urlparse(url)
    host = parsed.hostname or ""
    key = ".".join(host.split(".")[:2])
    ip = service_ips.get(key)
    return parsed._replace(netloc=f"{ip}:{parsed.port or 80}").geturl() if ip else url


def router_app(router: dict, state_dir: Path, service_ips: dict[str, str]):
    import httpx
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from patchrisk.monitoring.sink.testing import logger_events

    splits = {s["component"]: s for s in router["splits"]}
    chooser = WeightedRoundRobin({c: s["percent"] for c, s in splits.items() if s["backends"]})
    cycles = {c: itertools.cycle(s["backends"]) for c, s in splits.items() if s["backends"]}
    counts = dict.fromkeys(splits, 0)
    stats_file = state_dir / f"router-{router['model']}.json"
    client = httpx.AsyncClient(timeout=60.0)
    logger_urls = {c: _resolve(s["logger_url"], service_ips) for c, s in splits.items() if s.get("logger_url")}
    pending: set[asyncio.Task] = set()

    def write_stats() -> None:
        tmp = stats_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"model": router["model"], "mode": router["mode"],
                                   "weights": {c: s["percent"] for c, s in splits.items()},
                                   "requests": counts}))
        os.replace(tmp, stats_file)

    async def log(component: str, request_body: bytes, response_body: bytes) -> None:
        try:
            events = logger_events(json.loads(request_body), json.loads(response_body), router["model"],
                                   router["namespace"], source=f"{router['model']}-{component}")
            for headers, payload in events:
                await client.post(logger_urls[component], headers=headers, content=payload)
        except (ValueError, httpx.HTTPError) as err:  # the logger never fails the call it logs
            print(f"logger: {type(err).__name__}: {err}", file=sys.stderr)

    async def forward(request: Request) -> Response:
        component = chooser.pick()
        if component is None:
            return Response("no ready predictor", status_code=503)
        backend = next(cycles[component])
        body = await request.body()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        try:
            upstream = await client.request(request.method, f"http://{backend}:8080{request.url.path}",
                                            params=request.query_params, headers=headers, content=body)
        except httpx.HTTPError as err:
            return Response(f"upstream {component}: {type(err).__name__}", status_code=502)
        counts[component] += 1
        write_stats()
        if component in logger_urls and request.method == "POST" and upstream.status_code < 500:
            task = asyncio.create_task(log(component, body, upstream.content))
            pending.add(task)
            task.add_done_callback(pending.discard)
        response_headers = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_HEADERS
                            and k.lower() != "content-encoding"}
        return Response(upstream.content, status_code=upstream.status_code, headers=response_headers)

    write_stats()
    return Starlette(routes=[Route("/{path:path}", forward, methods=["GET", "POST", "PUT", "DELETE"])])


async def serve(state_dir: Path) -> None:
    import uvicorn

    network = json.loads((state_dir / NETWORK_FILE).read_text())
    service_ips = {f"{s['name']}.{s['namespace']}": s["ip"] for s in network["services"]}
    tasks, servers = [], []
    for service in network["services"]:
        if service.get("router"):
            sock = bound_socket(service, int(service["ports"][0]["port"]))
            config = uvicorn.Config(router_app(service["router"], state_dir, service_ips),
                                    log_level="warning", access_log=False)
            tasks.append(asyncio.create_task(uvicorn.Server(config).serve(sockets=[sock])))
            continue
        for port in service["ports"]:
            if service.get("external"):
                target = network["stand_ins"].get(service["external"])
                backends = [tuple(target.rsplit(":", 1))] if target else []
                backends = [(h, int(p)) for h, p in backends]
            else:
                backends = [(ip, int(port["targetPort"])) for ip in service["backends"]]
            servers.append(await tcp_listener(bound_socket(service, int(port["port"])), backends))
    (state_dir / "network.ready").write_text("ok\n")
    # Stay up even with no Service: run-job checks this process to know the overlay is up.
    await asyncio.gather(*tasks, *(s.serve_forever() for s in servers), asyncio.Event().wait())


if __name__ == "__main__":
    try:
        asyncio.run(serve(Path(sys.argv[1])))
    except AddressInUse as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
