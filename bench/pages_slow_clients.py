#!/usr/bin/env python3
"""How long a page takes while other connections stall: each coordinator
binary given is started with its pages on loopback, then

  1. a page alone (the median of 5),
  2. with N connections from 127.0.0.2 that sent half a request and wait,
  3. with N more from 127.0.0.3-6 (N/4 from each), also waiting,

each page asked for from 127.0.0.1 with a 30 s limit (a page that gets no
answer by then counts as 30 s). Issue 22's probe was step 2 with N = 64.
Binaries are measured one after the other in one run, for a before/after.

Usage: bench/pages_slow_clients.py [--stalled=64] COORDINATOR [COORDINATOR...]
"""

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.request


def page_seconds(port, limit=30.0):
    start = time.monotonic()
    try:
        urllib.request.urlopen("http://127.0.0.1:%d/" % port,
                               timeout=limit).read()
    except Exception:  # noqa: BLE001 - a timeout or a reset counts as slow.
        return max(limit, time.monotonic() - start)
    return time.monotonic() - start


def stall(source, port, count):
    held = []
    for _ in range(count):
        s = socket.socket()
        s.bind((source, 0))
        try:
            s.connect(("127.0.0.1", port))
            s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        except OSError:
            pass  # Refused at a cap: it holds nothing.
        held.append(s)
    return held


def measure(binary, stalled):
    work = tempfile.mkdtemp(prefix="distill-slow.")
    log = open(os.path.join(work, "log"), "w+")
    coordinator = subprocess.Popen(
        [binary, "--listen=127.0.0.1:0", "--auth=none",
         "--data_dir=" + os.path.join(work, "data"),
         "--http_listen=127.0.0.1:0"], stderr=log, stdout=log)
    try:
        port = None
        for _ in range(100):
            log.seek(0)
            m = re.search(r"pages on https?://127\.0\.0\.1:(\d+)/", log.read())
            if m:
                port = int(m.group(1))
                break
            time.sleep(0.1)
        if port is None:
            raise SystemExit("%s did not serve pages" % binary)
        alone = statistics.median(page_seconds(port) for _ in range(5))
        held = stall("127.0.0.2", port, stalled)
        time.sleep(0.3)
        one = page_seconds(port)
        for host in range(3, 7):
            held += stall("127.0.0.%d" % host, port, stalled // 4)
        time.sleep(0.3)
        many = page_seconds(port)
        for s in held:
            s.close()
        return alone, one, many
    finally:
        coordinator.kill()
        coordinator.wait()
        shutil.rmtree(work, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--stalled", type=int, default=64)
    parser.add_argument("binaries", nargs="+")
    args = parser.parse_args()
    print("%-48s %10s %16s %22s" % (
        "coordinator", "alone", "%d from one host" % args.stalled,
        "+%d from four more" % args.stalled))
    for binary in args.binaries:
        alone, one, many = measure(binary, args.stalled)
        print("%-48s %9.1fms %15.1fms %21.1fms" % (
            binary[-48:], 1e3 * alone, 1e3 * one, 1e3 * many))


if __name__ == "__main__":
    main()
