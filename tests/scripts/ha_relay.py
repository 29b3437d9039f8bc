#!/usr/bin/env python3
"""Relays Ethernet frames between two interfaces, reordering (and dropping)
some of them at random from a seed: the impairment a Linux bridge cannot give
on a kernel without netem. Used by the lab harness for one HA link
(tests/src/pair.rs, PairLab::relay); standard library only, run as root.

  ha_relay.py --left IF --right IF --stats FILE [--seed N]
              [--reorder PERCENT] [--delay-ms MS] [--loss PERCENT]

Every frame that arrives on one interface is sent out of the other. A frame
is dropped with probability --loss %, else held back --delay-ms with
probability --reorder % (the frames behind it overtake it), else sent at
once. The same seed gives the same decisions for the same frames in the
same order.

Prints `relaying` once both sockets are open. Rewrites FILE (write, then
rename) with a JSON object at most every 100 ms while frames pass:
{"left_to_right": N, "right_to_left": N, "held": N, "overtaken": N,
 "dropped": N, "send_errors": N}; `overtaken` counts the frames sent after
a frame that arrived after them (in the same direction): the reordering
that really happened. SIGTERM ends it (exit 0), after a last rewrite.
"""

import argparse
import heapq
import json
import os
import random
import select
import signal
import socket
import sys
import time

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


def open_socket(ifname):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((ifname, 0))
    s.setblocking(False)
    return s


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--left", required=True)
    p.add_argument("--right", required=True)
    p.add_argument("--stats", required=True)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--reorder", type=float, default=0.0)
    p.add_argument("--delay-ms", type=float, default=10.0)
    p.add_argument("--loss", type=float, default=0.0)
    args = p.parse_args()

    rng = random.Random(args.seed)
    socks = {args.left: open_socket(args.left), args.right: open_socket(args.right)}
    other = {args.left: args.right, args.right: args.left}
    stats = {"left_to_right": 0, "right_to_left": 0, "held": 0, "overtaken": 0,
             "dropped": 0, "send_errors": 0}
    # Per direction: the arrival number of the latest frame sent so far.
    newest_sent = {args.left: 0, args.right: 0}
    arrivals = {args.left: 0, args.right: 0}
    held = []  # (release time, arrival number, from interface, frame)
    running = [True]
    signal.signal(signal.SIGTERM, lambda *_: running.__setitem__(0, False))

    def write_stats():
        tmp = args.stats + ".tmp"
        with open(tmp, "w") as f:
            json.dump(stats, f)
        os.replace(tmp, args.stats)

    def send(src, n, frame):
        try:
            socks[other[src]].send(frame)
        except OSError:
            stats["send_errors"] += 1
            return
        key = "left_to_right" if src == args.left else "right_to_left"
        stats[key] += 1
        if n < newest_sent[src]:
            stats["overtaken"] += 1
        else:
            newest_sent[src] = n

    write_stats()
    print("relaying", flush=True)
    by_fd = {s.fileno(): name for name, s in socks.items()}
    poller = select.poll()
    for fd in by_fd:
        poller.register(fd, select.POLLIN)
    last_write = 0.0
    dirty = False
    while running[0]:
        now = time.monotonic()
        while held and held[0][0] <= now:
            _, n, src, frame = heapq.heappop(held)
            send(src, n, frame)
            dirty = True
        timeout = 100 if not held else max(0, int((held[0][0] - now) * 1000) + 1)
        try:
            events = poller.poll(min(timeout, 100))
        except InterruptedError:
            continue
        for fd, _ in events:
            src = by_fd[fd]
            while True:
                try:
                    frame, addr = socks[src].recvfrom(65535)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    break
                if addr[2] == PACKET_OUTGOING:
                    continue  # what this relay itself sent out of src
                arrivals[src] += 1
                n = arrivals[src]
                dirty = True
                roll = rng.random() * 100
                if roll < args.loss:
                    stats["dropped"] += 1
                elif roll < args.loss + args.reorder:
                    stats["held"] += 1
                    heapq.heappush(held, (time.monotonic() + args.delay_ms / 1000, n, src, frame))
                else:
                    send(src, n, frame)
        now = time.monotonic()
        if dirty and now - last_write >= 0.1:
            write_stats()
            last_write = now
            dirty = False
    write_stats()
    return 0


if __name__ == "__main__":
    sys.exit(main())
