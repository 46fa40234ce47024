#!/usr/bin/env python3
"""Probes a coordinator's HTTP ports from outside, as issue 30 did.

  bench/http_probe.py COORDINATOR [WORK_DIR]

Starts COORDINATOR (a distill-coordinator binary) on loopback with
--auth=none, the pages and /metrics; then
- /metrics: a scrape alone, then with 64 connections from 127.0.0.2 that
  send half a request and wait (the scrape from 127.0.0.1, 20 s at most);
- response splitting: POST /login with token=x%0d%0aX-Injected:%20yes, and
  whether the answer's head carries an X-Injected header or a cookie.
Prints one line each; exits 0 (it measures, it does not judge).
"""
import os, re, socket, subprocess, sys, tempfile, time

binary = sys.argv[1]
work = sys.argv[2] if len(sys.argv) > 2 else tempfile.mkdtemp(prefix="http_probe")
log = open(os.path.join(work, "coordinator.log"), "w+")
proc = subprocess.Popen(
    [binary, "--listen=127.0.0.1:0", "--data_dir=" + os.path.join(work, "data"),
     "--auth=none", "--metrics_listen=127.0.0.1:0", "--http_listen=127.0.0.1:0"],
    stdout=log, stderr=subprocess.STDOUT)
try:
    ports = {}
    for _ in range(100):
        text = open(log.name).read()
        m = re.search(r"metrics on (?:https://)?127\.0\.0\.1:(\d+)/metrics", text)
        p = re.search(r"pages on http://127\.0\.0\.1:(\d+)/", text)
        if m and p:
            ports = {"metrics": int(m.group(1)), "pages": int(p.group(1))}
            break
        time.sleep(0.1)
    if not ports:
        sys.exit("the coordinator did not start:\n" + open(log.name).read())

    def connect(source, port):
        s = socket.socket()
        s.bind((source, 0))
        s.connect(("127.0.0.1", port))
        return s

    def get(port, path, timeout=20):
        start = time.monotonic()
        try:
            s = connect("127.0.0.1", port)
            s.settimeout(timeout)
            s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close"
                       "\r\n\r\n" % path).encode())
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            s.close()
            status = data.split(b"\r\n", 1)[0].decode(errors="replace")
        except OSError as e:
            status = "no answer (%s)" % e
        return time.monotonic() - start, status

    alone, status = get(ports["metrics"], "/metrics")
    print("/metrics alone: %.1f ms (%s)" % (alone * 1e3, status))
    stalled = []
    for _ in range(64):
        s = connect("127.0.0.2", ports["metrics"])
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        stalled.append(s)
    time.sleep(0.2)
    busy, status = get(ports["metrics"], "/metrics")
    print("/metrics with 64 stalled connections from 127.0.0.2: %.1f ms (%s)"
          % (busy * 1e3, status))
    for s in stalled:
        s.close()

    body = b"token=x%0d%0aX-Injected:%20yes"
    s = connect("127.0.0.1", ports["pages"])
    s.settimeout(10)
    s.sendall(b"POST /login HTTP/1.1\r\nHost: h\r\nConnection: close\r\n"
              b"Content-Type: application/x-www-form-urlencoded\r\n"
              b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    answer = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        answer += chunk
    head = answer.split(b"\r\n\r\n", 1)[0].decode(errors="replace")
    lines = head.split("\r\n")
    print("POST /login token=x%%0d%%0aX-Injected:%%20yes: %s; X-Injected "
          "header: %s; Set-Cookie: %s" % (
              lines[0],
              "yes" if any(l.startswith("X-Injected") for l in lines) else "no",
              next((l.split(": ", 1)[1] for l in lines
                    if l.startswith("Set-Cookie")), "none")))
finally:
    proc.terminate()
    proc.wait()
