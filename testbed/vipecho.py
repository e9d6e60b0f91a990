"""A VIP service and a client that samples it, to see who answers a VIP and for how long
nobody does.

``serve NAME``: answer every UDP datagram on port 4789 with NAME (run it in each
controller's namespace; it answers on whatever address the datagram was sent to).

``probe VIP --interval 0.01 --out FILE``: send a datagram to VIP every interval, and
record for each one who answered within that interval (or nobody), until SIGTERM or
SIGINT; then write ``[[time, name-or-null], ...]`` to FILE.

``once VIP``: print who answers one datagram (nothing if nobody within 50 ms).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import select
import signal
import socket
import struct
import time
from pathlib import Path
from typing import Any

PORT = 4789


def serve(name: str) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", PORT))
    answer = name.encode()
    while True:
        data, peer = sock.recvfrom(64)
        sock.sendto(data[:4] + answer, peer)


def probe(vip: str, interval: float, out: Path) -> None:
    stop = False

    def stopping(*_: Any) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, stopping)
    signal.signal(signal.SIGINT, stopping)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    rows: list[tuple[float, str | None]] = []
    seq = 0
    tick = time.monotonic()
    print("probing", flush=True)
    while not stop:
        seq += 1
        sent = time.time()
        with contextlib.suppress(OSError):  # no neighbour yet: nobody answers this one
            sock.sendto(struct.pack("!I", seq), (vip, PORT))
        who: str | None = None
        tick += interval
        while (left := tick - time.monotonic()) > 0:
            ready, _, _ = select.select([sock], [], [], left)
            if not ready:
                break
            try:
                data = sock.recv(64)
            except OSError:
                continue
            if len(data) > 4 and struct.unpack("!I", data[:4])[0] == seq:
                who = data[4:].decode()
        rows.append((sent, who))
        if tick < time.monotonic():  # fell behind (a slow machine): do not send in a burst
            tick = time.monotonic()
    out.write_text(json.dumps(rows))


def once(vip: str, timeout: float = 0.05) -> str:
    """Who answers one datagram to the VIP ('' if nobody within ``timeout``)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(timeout)
    with contextlib.suppress(OSError):
        sock.sendto(struct.pack("!I", 1), (vip, PORT))
        return sock.recv(64)[4:].decode()
    return ""


def window(rows: list[tuple[float, str | None]], old: str, new: str) -> dict[str, Any]:
    """From the last sample ``old`` answered to the first ``new`` answered after it."""
    last_old = max((i for i, (_, who) in enumerate(rows) if who == old), default=None)
    if last_old is None:
        raise ValueError(f"{old} never answered")
    first_new = next((i for i in range(last_old, len(rows)) if rows[i][1] == new), None)
    if first_new is None:
        raise ValueError(f"{new} never answered after {old}")
    between = rows[last_old + 1 : first_new]
    return {
        "samples": len(rows),
        "unanswered": len(between),
        "gap_ms": round((rows[first_new][0] - rows[last_old][0]) * 1000, 1),
        "others": sorted({str(w) for _, w in between if w is not None}),
        "answered_by_both_after": sorted({str(w) for _, w in rows[first_new:] if w != new}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve")
    s.add_argument("name")
    p = sub.add_parser("probe")
    p.add_argument("vip")
    p.add_argument("--interval", type=float, default=0.01)
    p.add_argument("--out", type=Path, required=True)
    o = sub.add_parser("once")
    o.add_argument("vip")
    args = parser.parse_args()
    if args.command == "serve":
        serve(args.name)
    elif args.command == "once":
        print(once(args.vip))
    else:
        probe(args.vip, args.interval, args.out)


if __name__ == "__main__":
    main()
