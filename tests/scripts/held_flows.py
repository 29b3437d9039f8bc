#!/usr/bin/env python3
"""Long-lived flows through a unit: many TCP connections held open, UDP flows
answered. Used by the lab harness (tests/src/flows.rs); standard library only.

  held_flows.py server --bind IP --tcp-ports 5001,5002 [--udp-port 5353] [--echo]
      accepts TCP connections on every port and keeps them until the peer
      closes (what arrives is read and dropped, or with --echo sent back);
      echoes every UDP datagram. Prints `listening` once every socket is bound.

  held_flows.py client --server IP [--tcp N --tcp-port P] [--send-every K]
                       [--udp M --udp-port Q]
      opens N TCP connections to IP:P one after the other, sends 100 bytes
      on every K-th one (0: none), then sends one datagram from each of M UDP
      sockets to IP:Q and waits for every echo (sending again now and then,
      a bounded number of times). Prints one JSON line
      {"tcp": [local ports], "udp": [local ports], "udp_unanswered": [...]},
      then holds every socket until it is killed: SIGTERM closes the TCP
      connections with a FIN each, as the process's exit does.
      SIGUSR1 pokes every TCP connection (against a server run with --echo):
      16 bytes out on each, then waits up to --poke-wait seconds for all 16
      back on each, and prints one JSON line {"poked": N, "unanswered":
      [local ports]}: which held connections still carry data.

Exit status: 0 on SIGTERM, 1 when a connection could not be made (the
error on stderr).
"""

import argparse
import json
import resource
import selectors
import signal
import socket
import sys
import time


def more_files():
    """Room for thousands of sockets (the soft limit is often 1024)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def serve(args):
    sel = selectors.DefaultSelector()
    for port in [int(p) for p in args.tcp_ports.split(",") if p]:
        lst = socket.socket()
        lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lst.bind((args.bind, port))
        lst.listen(4096)
        lst.setblocking(False)
        sel.register(lst, selectors.EVENT_READ, "listen")
    if args.udp_port:
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind((args.bind, args.udp_port))
        udp.setblocking(False)
        sel.register(udp, selectors.EVENT_READ, "udp")
    print("listening", flush=True)
    while True:
        for key, _ in sel.select():
            s = key.fileobj
            if key.data == "listen":
                try:
                    conn, _ = s.accept()
                except BlockingIOError:
                    continue
                conn.setblocking(False)
                sel.register(conn, selectors.EVENT_READ, "conn")
            elif key.data == "udp":
                try:
                    data, peer = s.recvfrom(65535)
                except BlockingIOError:
                    continue
                s.sendto(data, peer)
            else:
                try:
                    data = s.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                if not data:
                    sel.unregister(s)
                    s.close()
                elif args.echo:
                    try:
                        s.sendall(data)
                    except OSError:
                        pass


def client(args):
    tcp = []
    for i in range(args.tcp):
        try:
            s = socket.create_connection((args.server, args.tcp_port), timeout=args.timeout)
        except OSError as e:
            print(f"TCP connection {i + 1} of {args.tcp} to {args.server}:{args.tcp_port}: {e}",
                  file=sys.stderr, flush=True)
            return 1
        if args.send_every and i % args.send_every == 0:
            s.sendall(b"x" * 100)
        tcp.append(s)
    udp = []
    for _ in range(args.udp):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("0.0.0.0", 0))
        u.setblocking(False)
        udp.append(u)
    waiting = {u.getsockname()[1]: u for u in udp}
    for attempt in range(args.udp_tries):
        for u in waiting.values():
            u.sendto(b"flow", (args.server, args.udp_port))
        deadline = time.monotonic() + args.udp_wait
        sel = selectors.DefaultSelector()
        for u in waiting.values():
            sel.register(u, selectors.EVENT_READ)
        while waiting and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=max(0.0, deadline - time.monotonic())):
                u = key.fileobj
                try:
                    u.recv(65535)
                except BlockingIOError:
                    continue
                sel.unregister(u)
                waiting.pop(u.getsockname()[1], None)
        sel.close()
        if not waiting:
            break
    print(json.dumps({
        "tcp": [s.getsockname()[1] for s in tcp],
        "udp": [u.getsockname()[1] for u in udp],
        "udp_unanswered": sorted(waiting),
    }), flush=True)
    pokes = []
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGUSR1, lambda *_: pokes.append(1))
    while True:
        signal.pause()
        while pokes:
            pokes.pop()
            poke(tcp, args.poke_wait)


def poke(tcp, wait):
    """16 bytes out on every connection, and back within `wait` seconds."""
    sel = selectors.DefaultSelector()
    got = {}
    for s in tcp:
        s.setblocking(True)
        s.settimeout(wait)
        try:
            s.sendall(b"p" * 16)
        except OSError:
            continue
        s.setblocking(False)
        got[s] = 0
        sel.register(s, selectors.EVENT_READ)
    deadline = time.monotonic() + wait
    while sel.get_map() and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=max(0.0, deadline - time.monotonic())):
            s = key.fileobj
            try:
                data = s.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            got[s] += len(data)
            if not data or got[s] >= 16:
                sel.unregister(s)
    sel.close()
    answered = [s for s, n in got.items() if n >= 16]
    print(json.dumps({
        "poked": len(answered),
        "unanswered": sorted(s.getsockname()[1] for s in tcp if s not in answered),
    }), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("server")
    s.add_argument("--bind", required=True)
    s.add_argument("--tcp-ports", default="")
    s.add_argument("--udp-port", type=int, default=0)
    s.add_argument("--echo", action="store_true")
    c = sub.add_parser("client")
    c.add_argument("--server", required=True)
    c.add_argument("--tcp", type=int, default=0)
    c.add_argument("--tcp-port", type=int, default=5001)
    c.add_argument("--send-every", type=int, default=0)
    c.add_argument("--udp", type=int, default=0)
    c.add_argument("--udp-port", type=int, default=5353)
    c.add_argument("--udp-tries", type=int, default=10)
    c.add_argument("--udp-wait", type=float, default=1.0)
    c.add_argument("--timeout", type=float, default=10.0)
    c.add_argument("--poke-wait", type=float, default=10.0)
    args = p.parse_args()
    more_files()
    return serve(args) if args.mode == "server" else client(args)


if __name__ == "__main__":
    sys.exit(main())
