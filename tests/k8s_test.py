#!/usr/bin/env python3
"""deploy/k8s rendered offline (`kubectl kustomize`), its objects checked:
kinds, images, ports, probes, GPU requests, the drain's grace period, and
that every secret and flag the binaries need is there. No cluster runs
here: this checks the manifests' structure, not a deployment.

Usage: k8s_test.py SOURCE_DIR   (exit 77: skipped, no kubectl)
"""

import shutil
import subprocess
import sys

import yaml

SOURCE = sys.argv[1]
if shutil.which("kubectl") is None:
    print("SKIP: no kubectl (apt-get install kubernetes-client)")
    sys.exit(77)


def render(path):
    out = subprocess.run(["kubectl", "kustomize", SOURCE + "/" + path],
                         check=True, capture_output=True, text=True).stdout
    return {(o["kind"], o["metadata"]["name"]): o
            for o in yaml.safe_load_all(out) if o}


def fail(message):
    print("FAIL:", message)
    sys.exit(1)


def flag(args, name):
    for a in args:
        if a.startswith("--" + name + "="):
            return a.split("=", 1)[1]
    return None


for variant, gpu in (("deploy/k8s", True), ("deploy/k8s/overlays/cpu", False)):
    objects = render(variant)
    want = {("Service", "distill-coordinator"),
            ("StatefulSet", "distill-coordinator"),
            ("Deployment", "distill-worker")}
    if set(objects) != want:
        fail("%s renders %s" % (variant, sorted(objects)))
    service = objects[("Service", "distill-coordinator")]
    if {p["port"] for p in service["spec"]["ports"]} != {50051, 9464}:
        fail("service ports %s" % service["spec"]["ports"])

    coordinator = objects[("StatefulSet", "distill-coordinator")]
    if coordinator["spec"]["replicas"] != 1:
        fail("one coordinator owns a data directory")
    pod = coordinator["spec"]["template"]["spec"]
    c = pod["containers"][0]
    if c["image"] != "distill-coordinator:latest":
        fail("coordinator image %s" % c["image"])
    args = c["args"]
    # Beyond loopback: TLS and tokens, never --insecure.
    if flag(args, "listen") != "0.0.0.0:50051" or "--insecure" in args:
        fail("coordinator args %s" % args)
    for name in ("tls_cert", "tls_key", "admin_token_file",
                 "worker_token_file", "data_dir", "metrics_listen"):
        if not flag(args, name):
            fail("coordinator has no --%s" % name)
    for probe in ("readinessProbe", "livenessProbe"):
        if c[probe]["exec"]["command"] != ["distill", "health"]:
            fail("coordinator %s %s" % (probe, c[probe]))
    mounts = {m["mountPath"] for m in c["volumeMounts"]}
    if flag(args, "data_dir") not in mounts:
        fail("the data directory is not on a volume: %s" % mounts)
    claims = [t["metadata"]["name"]
              for t in coordinator["spec"]["volumeClaimTemplates"]]
    if claims != ["data"]:
        fail("volume claims %s" % claims)
    secrets = {v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
    if secrets != {"distill-tls", "distill-tokens"}:
        fail("coordinator secrets %s" % secrets)

    worker = objects[("Deployment", "distill-worker")]
    pod = worker["spec"]["template"]["spec"]
    w = pod["containers"][0]
    if w["image"] != "distill-worker:latest":
        fail("worker image %s" % w["image"])
    wargs = w["args"]
    if flag(wargs, "coordinator") != "distill-coordinator:50051":
        fail("worker --coordinator %s" % wargs)
    for name in ("tls_ca", "token_file", "drain_seconds", "metrics_listen"):
        if not flag(wargs, name):
            fail("worker has no --%s" % name)
    # The grace period covers the drain and the hand-back.
    drain = float(flag(wargs, "drain_seconds"))
    if pod["terminationGracePeriodSeconds"] < drain + 30:
        fail("grace %s for a drain of %s s" %
             (pod["terminationGracePeriodSeconds"], drain))
    if w["livenessProbe"]["httpGet"]["path"] != "/metrics":
        fail("worker liveness %s" % w["livenessProbe"])
    limits = w.get("resources", {}).get("limits", {})
    device = flag(wargs, "device")
    if gpu and (limits.get("nvidia.com/gpu") != 1 or device != "cuda:0"):
        fail("GPU worker: limits %s, --device=%s" % (limits, device))
    if not gpu and ("nvidia.com/gpu" in limits or device != "cpu"):
        fail("CPU worker: limits %s, --device=%s" % (limits, device))
    secrets = {v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
    if secrets != {"distill-tls", "distill-tokens"}:
        fail("worker secrets %s" % secrets)
    print("%s: %d objects, structure as expected" % (variant, len(objects)))
print("k8s: 1 passed, 0 failed (rendered offline; never applied to a cluster)")
