#!/usr/bin/env python3
"""The coordinator as a stranger on the network sees it.

A Python grpcio client whose stubs protoc generates from proto/ at test time
(nothing of the project's C++) calls the real distill-coordinator binary
with tokens on (its default):
  * every method of every service, for every role, without a token, with a
    made-up one and with a revoked one: UNAUTHENTICATED, PERMISSION_DENIED,
    or through to the handler, as the role table says;
  * the lease-holder rule: a second worker token that knows the run's id
    and attempt (public in GetRun) still may not touch the run;
  * each attack of issue 8, printed as a table (attack -> code).
The health service answers without a token; reflection needs one.

Usage: outside_client_test.py BUILD_DIR SOURCE_DIR
"""

import glob
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

BUILD, SOURCE = sys.argv[1], sys.argv[2]
WORK = tempfile.mkdtemp(prefix="distill-outside.")
PROCS = []


def cleanup():
    for p in PROCS:
        p.kill()
        p.wait()
    shutil.rmtree(WORK, ignore_errors=True)


def fail(message):
    print("FAIL:", message, file=sys.stderr)
    log = os.path.join(WORK, "coordinator.log")
    if os.path.exists(log):
        print(open(log).read()[-2000:], file=sys.stderr)
    cleanup()
    sys.exit(1)


# --- Stubs generated from proto/, as any lab's own client would be ---
GEN = os.path.join(WORK, "gen")
os.makedirs(GEN)
protos = sorted(
    os.path.relpath(p, os.path.join(SOURCE, "proto"))
    for p in glob.glob(os.path.join(SOURCE, "proto/distill/v1/*.proto")))
subprocess.run(
    ["protoc", "-I", os.path.join(SOURCE, "proto"), "--python_out", GEN,
     "--grpc_python_out", GEN,
     "--plugin=protoc-gen-grpc_python=" + shutil.which("grpc_python_plugin")] +
    protos, check=True)
# Reflection's Python module would be grpc.reflection..., inside grpcio's own
# package: generated under another module path (the wire names stay).
os.makedirs(os.path.join(WORK, "src/outside_reflection"))
shutil.copy(os.path.join(SOURCE, "proto/grpc/reflection/v1alpha/reflection.proto"),
            os.path.join(WORK, "src/outside_reflection"))
subprocess.run(
    ["protoc", "-I", os.path.join(WORK, "src"), "--python_out", GEN,
     "--grpc_python_out", GEN,
     "--plugin=protoc-gen-grpc_python=" + shutil.which("grpc_python_plugin"),
     "outside_reflection/reflection.proto"], check=True)
sys.path.insert(0, GEN)

import grpc  # noqa: E402
from distill.v1 import admin_service_pb2 as admin_pb  # noqa: E402
from distill.v1 import admin_service_pb2_grpc as admin_grpc  # noqa: E402
from distill.v1 import experiment_service_pb2 as exp_pb  # noqa: E402
from distill.v1 import experiment_service_pb2_grpc as exp_grpc  # noqa: E402
from distill.v1 import run_pb2  # noqa: E402
from distill.v1 import spec_pb2  # noqa: E402
from distill.v1 import worker_service_pb2 as work_pb  # noqa: E402
from distill.v1 import worker_service_pb2_grpc as work_grpc  # noqa: E402
from google.protobuf import descriptor_pb2  # noqa: E402
from outside_reflection import reflection_pb2 as refl_pb  # noqa: E402
from outside_reflection import reflection_pb2_grpc as refl_grpc  # noqa: E402

# --- The coordinator binary, tokens on (its default), loopback ---
data = os.path.join(WORK, "data")
log = open(os.path.join(WORK, "coordinator.log"), "w")
PROCS.append(subprocess.Popen(
    [os.path.join(BUILD, "server/distill-coordinator"),
     "--listen=127.0.0.1:0", "--data_dir=" + data,
     "--metrics_listen=127.0.0.1:0"],
    stdout=log, stderr=subprocess.STDOUT))
port = None
for _ in range(100):
    m = re.search(r"\(port (\d+)\)", open(log.name).read())
    if m:
        port = m.group(1)
        break
    time.sleep(0.1)
if port is None:
    fail("the coordinator did not start")
channel = grpc.insecure_channel("127.0.0.1:" + port)
admin_secret = open(os.path.join(data, "admin.token")).read().strip()


def md(secret):
    return [("authorization", "Bearer " + secret)] if secret else []


def code_of(call, *args, stream=False, **kwargs):
    """The status code of a call; a server stream is read to its first
    message (OK) or its status."""
    try:
        result = call(*args, **kwargs)
        if stream:
            for _ in result:
                break
            result.cancel()
        return grpc.StatusCode.OK
    except grpc.RpcError as e:
        return e.code()


admin = admin_grpc.AdminServiceStub(channel)
secrets = {}
for role in ("viewer", "researcher", "worker", "admin"):
    response = admin.CreateToken(
        admin_pb.CreateTokenRequest(
            name="outside-" + role,
            role=admin_pb.Role.Value("ROLE_" + role.upper())),
        metadata=md(admin_secret), timeout=5)
    secrets[role] = response.secret
revoked = admin.CreateToken(
    admin_pb.CreateTokenRequest(name="outside-revoked",
                                role=admin_pb.ROLE_RESEARCHER),
    metadata=md(admin_secret), timeout=5)
admin.RevokeToken(admin_pb.RevokeTokenRequest(id=revoked.token.id),
                  metadata=md(admin_secret), timeout=5)

# --- Every role against every method ---
# Which roles may call each service's methods; the rest of ExperimentService
# is reading (viewer, researcher, admin).
CHANGES = {"SubmitRun", "SubmitSweep", "CancelRun", "CancelSweep",
           "RetrySweep", "DrainWorker", "Annotate"}


def allowed(service, method):
    if service == "AdminService":
        return {"admin"}
    if service == "WorkerService":
        return {"worker"}
    if method in CHANGES:
        return {"researcher", "admin"}
    return {"viewer", "researcher", "admin"}


# What a handler answers an empty request: anything else (INTERNAL,
# UNKNOWN, UNIMPLEMENTED, ...) is not "through to the handler".
HANDLER_CODES = {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT,
                 grpc.StatusCode.NOT_FOUND,
                 grpc.StatusCode.FAILED_PRECONDITION}
callers = dict(secrets)
callers.update({"none": "", "made-up": "distill_" + "0" * 64,
                "revoked": revoked.secret})
checked = 0
table = []
for module in (exp_pb, work_pb, admin_pb):
    for service in module.DESCRIPTOR.services_by_name.values():
        for method in service.methods:
            path = "/%s/%s" % (service.full_name, method.name)
            kind = ("stream_" if method.client_streaming else "unary_") + (
                "stream" if method.server_streaming else "unary")
            call = getattr(channel, kind)(path)  # Raw bytes both ways.
            codes = []
            for who, secret in callers.items():
                request = iter([b""]) if method.client_streaming else b""
                got = code_of(call, request, stream=method.server_streaming,
                              metadata=md(secret), timeout=5)
                if who in ("none", "made-up", "revoked"):
                    want = "UNAUTHENTICATED"
                    ok = got == grpc.StatusCode.UNAUTHENTICATED
                elif who in allowed(service.name, method.name):
                    want = "through to the handler"
                    ok = got in HANDLER_CODES
                else:
                    want = "PERMISSION_DENIED"
                    ok = got == grpc.StatusCode.PERMISSION_DENIED
                if not ok:
                    fail("%s as %s: %s, want %s" % (path, who, got, want))
                codes.append(got.name)
                checked += 1
            table.append((service.name + "." + method.name, codes))
print("roles x methods (an empty request as each caller):")
print("  %-40s %s" % ("method", " ".join("%-19s" % who for who in callers)))
for method, codes in table:
    print("  %-40s %s" % (method, " ".join("%-19s" % c for c in codes)))
print("roles x methods: %d calls, each as the role table says" % checked)

# Health stays open for probes.
health = channel.unary_unary(
    "/grpc.health.v1.Health/Check")
if code_of(health, b"", timeout=5) != grpc.StatusCode.OK:
    fail("the health check needs no token")

# Reflection (grpcurl's way in) only with a token: any role.
reflection = refl_grpc.ServerReflectionStub(channel)


def reflect(secret, **request):
    return next(reflection.ServerReflectionInfo(
        iter([refl_pb.ServerReflectionRequest(**request)]),
        metadata=md(secret), timeout=5))


try:
    reflect("", list_services="")
    fail("reflection answered without a token")
except grpc.RpcError as e:
    if e.code() != grpc.StatusCode.UNAUTHENTICATED:
        fail("reflection without a token: %s" % e.code())
listed = [s.name for s in reflect(secrets["viewer"], list_services="")
          .list_services_response.service]
if "distill.v1.ExperimentService" not in listed:
    fail("reflection lists %s" % listed)
files = reflect(secrets["worker"],
                file_containing_symbol="distill.v1.ExperimentService")
methods = set()
for blob in files.file_descriptor_response.file_descriptor_proto:
    fd = descriptor_pb2.FileDescriptorProto.FromString(blob)
    for service in fd.service:
        methods.update(m.name for m in service.method)
if "SubmitSweep" not in methods:
    fail("reflection describes %s" % sorted(methods))
print("reflection: UNAUTHENTICATED without a token; %d services, %d methods "
      "of ExperimentService with one" % (len(listed), len(methods)))

# --- The lease holder only ---
experiments = exp_grpc.ExperimentServiceStub(channel)
workers = work_grpc.WorkerServiceStub(channel)
as_researcher = md(secrets["researcher"])
as_worker = md(secrets["worker"])
second_worker = admin.CreateToken(
    admin_pb.CreateTokenRequest(name="outside-worker-2",
                                role=admin_pb.ROLE_WORKER),
    metadata=md(admin_secret), timeout=5).secret
as_stranger = md(second_worker)

spec = spec_pb2.ExperimentSpec(
    kind=spec_pb2.TRAIN_TEACHER, epochs=1, batch_size=32,
    dataset=spec_pb2.DatasetSpec(name="fashion-mnist", train_limit=64,
                                 test_limit=64),
    teacher=spec_pb2.TeacherSpec(vit=spec_pb2.VitSpec(preset="small-28")))
run = experiments.SubmitRun(exp_pb.SubmitRunRequest(spec=spec),
                            metadata=as_researcher, timeout=5)
# Tags and a note through the generated client, then found by them in a
# listing filtered in SQL (a spec field by path, a tag, the note's text).
experiments.Annotate(exp_pb.AnnotateRequest(
    run_id=run.id, set_tags={"paper": "fig2"}, note="outside Note"),
    metadata=as_researcher, timeout=5)
found = experiments.ListRuns(exp_pb.ListRunsRequest(
    tag=["paper=fig2"], note_contains="NOTE",
    where=["teacher.vit.width=96", "dataset.name=fashion-mnist"]),
    metadata=md(secrets["viewer"]), timeout=5).runs
if [r.id for r in found] != [run.id] or found[0].tags["paper"] != "fig2":
    fail("ListRuns by tag, note and spec fields found %s" %
         [r.id for r in found])
try:
    experiments.ListRuns(exp_pb.ListRunsRequest(where=["losses.ikd.temp=4"]),
                         metadata=as_researcher, timeout=5)
    fail("a where on an unknown field was answered")
except grpc.RpcError as e:
    if (e.code() != grpc.StatusCode.INVALID_ARGUMENT or
            'no field "temp" in IkdLoss' not in e.details()):
        fail("a where on an unknown field: %s %s" % (e.code(), e.details()))
me = workers.RegisterWorker(work_pb.RegisterWorkerRequest(hostname="a"),
                            metadata=as_worker, timeout=5)
leased = workers.LeaseRun(
    work_pb.LeaseRunRequest(worker_id=me.worker_id, wait_ms=1000),
    metadata=as_worker, timeout=5).run
if leased.id != run.id:
    fail("the worker did not lease run %d" % run.id)
# The attempt is public: a viewer reads it.
attempt = experiments.GetRun(exp_pb.GetRunRequest(id=run.id),
                             metadata=md(secrets["viewer"]), timeout=5).attempt
stranger_id = workers.RegisterWorker(
    work_pb.RegisterWorkerRequest(hostname="b"), metadata=as_stranger,
    timeout=5).worker_id
header = work_pb.RunFileHeader(run_id=run.id, attempt=attempt, sha256="a" * 64,
                               size=3)
rows = []
for name, call in [
    ("LeaseRun as the holder's worker id",
     lambda m: workers.LeaseRun(work_pb.LeaseRunRequest(
         worker_id=me.worker_id), metadata=m, timeout=5)),
    ("Heartbeat", lambda m: workers.Heartbeat(work_pb.HeartbeatRequest(
        worker_id=stranger_id, run_id=run.id, attempt=attempt), metadata=m,
        timeout=5)),
    ("ReportMetrics", lambda m: workers.ReportMetrics(
        work_pb.ReportMetricsRequest(run_id=run.id, attempt=attempt),
        metadata=m, timeout=5)),
    ("UploadRunFile", lambda m: workers.UploadRunFile(iter(
        [work_pb.RunFileChunk(header=header, data=b"abc")]), metadata=m,
        timeout=5)),
    ("CompleteRun", lambda m: workers.CompleteRun(work_pb.CompleteRunRequest(
        run_id=run.id, attempt=attempt, results={"eval/top1": 1.0}),
        metadata=m, timeout=5)),
    ("FailRun", lambda m: workers.FailRun(work_pb.FailRunRequest(
        run_id=run.id, attempt=attempt, message="not mine"), metadata=m,
        timeout=5)),
]:
    got = code_of(call, as_stranger)
    rows.append(("another worker's token: " + name, got))
    if got != grpc.StatusCode.PERMISSION_DENIED:
        fail("%s from another worker's token: %s" % (name, got))
# A resume point the holder uploads: only the holder may fetch it back.
resume = b"resume point"
resume_header = work_pb.RunFileHeader(
    run_id=run.id, attempt=attempt, sha256=hashlib.sha256(resume).hexdigest(),
    size=len(resume), name="resume.pt")
workers.UploadRunFile(iter([work_pb.RunFileChunk(header=resume_header,
                                                 data=resume)]),
                      metadata=as_worker, timeout=5)


def fetch(m):
    return b"".join(c.data for c in workers.FetchRunFile(
        work_pb.FetchRunFileRequest(sha256=resume_header.sha256), metadata=m,
        timeout=5))


got = code_of(fetch, as_stranger)
rows.append(("another worker's token: FetchRunFile of its resume point", got))
if got != grpc.StatusCode.PERMISSION_DENIED:
    fail("FetchRunFile from another worker's token: %s" % got)
if fetch(as_worker) != resume:
    fail("the holder could not fetch its resume point")
if experiments.GetRun(exp_pb.GetRunRequest(id=run.id), metadata=as_researcher,
                      timeout=5).status != run_pb2.RUNNING:
    fail("the stranger changed the run")
if code_of(workers.FailRun, work_pb.FailRunRequest(
        run_id=run.id, attempt=attempt, message="stop"), metadata=as_worker,
        timeout=5) != grpc.StatusCode.OK:
    fail("the lease holder could not fail its own run")

# --- The attacks of issue 8, as a table ---
def submit(mutate):
    s = spec_pb2.ExperimentSpec()
    s.CopyFrom(spec)
    mutate(s)
    return code_of(experiments.SubmitRun, exp_pb.SubmitRunRequest(spec=s),
                   metadata=as_researcher, timeout=10)


attacks = [
    ("LeaseRun without a token",
     code_of(workers.LeaseRun, work_pb.LeaseRunRequest(worker_id="x"),
             timeout=5)),
    ("CancelRun without a token",
     code_of(experiments.CancelRun, exp_pb.CancelRunRequest(id=run.id),
             timeout=5)),
    ("CancelRun as a viewer",
     code_of(experiments.CancelRun, exp_pb.CancelRunRequest(id=run.id),
             metadata=md(secrets["viewer"]), timeout=5)),
    ("SubmitRun as a worker",
     code_of(experiments.SubmitRun, exp_pb.SubmitRunRequest(spec=spec),
             metadata=as_worker, timeout=5)),
    ("CreateToken as a researcher",
     code_of(admin.CreateToken, admin_pb.CreateTokenRequest(
         name="x", role=admin_pb.ROLE_ADMIN), metadata=as_researcher,
         timeout=5)),
] + rows + [
    ("vit.depth = 2^31-1",
     submit(lambda s: s.teacher.vit.MergeFrom(spec_pb2.VitSpec(
         preset="", patch_size=7, width=32, depth=2**31 - 1, heads=2)))),
    ("epochs = 2^31-1", submit(lambda s: setattr(s, "epochs", 2**31 - 1))),
    ("max_restarts = 2^31-1",
     submit(lambda s: setattr(s, "max_restarts", 2**31 - 1))),
    ("optimizer.lr = 1e308",
     submit(lambda s: s.optimizer.MergeFrom(spec_pb2.OptimizerSpec(lr=1e308)))),
    ("optimizer.kind = 99",
     submit(lambda s: s.optimizer.MergeFrom(spec_pb2.OptimizerSpec(kind=99)))),
    ("dataset.root = ../../etc (checked by the worker: FAILED run)",
     submit(lambda s: setattr(s.dataset, "root", "../../etc"))),
    ("name of 15 MB", submit(lambda s: setattr(s, "name", "n" * (15 << 20)))),
    # Issue 22: a subnormal rate killed the coordinator after storing the run.
    ("optimizer.lr = 1e-310",
     submit(lambda s: s.optimizer.MergeFrom(spec_pb2.OptimizerSpec(lr=1e-310)))),
    ("ListRuns where optimizer.lr=1e-310",
     code_of(experiments.ListRuns,
             exp_pb.ListRunsRequest(where=["optimizer.lr=1e-310"]),
             metadata=as_researcher, timeout=5)),
]
if any(r.spec.optimizer.lr == 1e-310 for r in experiments.ListRuns(
        exp_pb.ListRunsRequest(), metadata=as_researcher, timeout=5).runs):
    fail("the refused run with lr 1e-310 was stored")
run2 = experiments.SubmitRun(exp_pb.SubmitRunRequest(spec=spec),
                             metadata=as_researcher, timeout=5)
leased = workers.LeaseRun(
    work_pb.LeaseRunRequest(worker_id=me.worker_id, wait_ms=1000),
    metadata=as_worker, timeout=5).run
attacks += [
    ("ReportMetrics with a NaN point",
     code_of(workers.ReportMetrics, work_pb.ReportMetricsRequest(
         run_id=leased.id, attempt=leased.attempt,
         points=[run_pb2.MetricPoint(key="train/loss",
                                             value=float("nan"))]),
             metadata=as_worker, timeout=5)),
    ("ReportMetrics claiming the coordinator's provenance",
     code_of(workers.ReportMetrics, work_pb.ReportMetricsRequest(
         run_id=leased.id, attempt=leased.attempt,
         provenance={"spec_sha256": "0" * 64}),
             metadata=as_worker, timeout=5)),
    ("UploadRunFile of 2^40 bytes (header)",
     code_of(workers.UploadRunFile, iter([work_pb.RunFileChunk(
         header=work_pb.RunFileHeader(run_id=leased.id,
                                      attempt=leased.attempt,
                                      sha256="b" * 64, size=1 << 40))]),
             metadata=as_worker, timeout=5)),
    ("UploadRunFile past its header's size",
     code_of(workers.UploadRunFile, iter([work_pb.RunFileChunk(
         header=work_pb.RunFileHeader(run_id=leased.id,
                                      attempt=leased.attempt,
                                      sha256="c" * 64, size=2),
         data=b"abcdef")]), metadata=as_worker, timeout=5)),
]
# --- Owners (issue 31): a researcher changes only their own ---
def refusal(call, *args, **kwargs):
    """(code, details) of a call."""
    try:
        call(*args, **kwargs)
        return grpc.StatusCode.OK, ""
    except grpc.RpcError as e:
        return e.code(), e.details()


other_researcher = md(admin.CreateToken(
    admin_pb.CreateTokenRequest(name="outside-researcher-2",
                                role=admin_pb.ROLE_RESEARCHER),
    metadata=md(admin_secret), timeout=5).secret)
mine = experiments.SubmitRun(exp_pb.SubmitRunRequest(spec=spec),
                             metadata=as_researcher, timeout=5)
if mine.owner != "outside-researcher":
    fail("a run's owner is %r, not its token's name" % mine.owner)
owned = [
    ("CancelRun of another researcher's run",
     refusal(experiments.CancelRun, exp_pb.CancelRunRequest(id=mine.id),
             metadata=other_researcher, timeout=5), "belongs to "
     "outside-researcher"),
    ("Annotate another researcher's run",
     refusal(experiments.Annotate, exp_pb.AnnotateRequest(
         run_id=mine.id, note="mine now"), metadata=other_researcher,
         timeout=5), "belongs to outside-researcher"),
    ("SubmitSweep at priority 500 as a researcher",
     refusal(experiments.SubmitSweep, exp_pb.SubmitSweepRequest(
         spec=spec_pb2.SweepSpec(
             name="urgent", priority=500, base=spec,
             members=[spec_pb2.SweepMember(name="D")])),
         metadata=as_researcher, timeout=5), "--max_priority"),
    ("SetOwnerPolicy with shares 0 as an admin",
     refusal(admin.SetOwnerPolicy, admin_pb.SetOwnerPolicyRequest(
         owner="outside-researcher", shares=0), metadata=md(admin_secret),
         timeout=5), "shares must be 0.001 to 1e+06, got 0"),
    ("SetOwnerPolicy as a researcher",
     refusal(admin.SetOwnerPolicy, admin_pb.SetOwnerPolicyRequest(
         owner="outside-researcher", shares=1000), metadata=as_researcher,
         timeout=5), "needs admin"),
    ("SetOwnerPolicy shares 2 as an admin",
     refusal(admin.SetOwnerPolicy, admin_pb.SetOwnerPolicyRequest(
         owner="outside-researcher", shares=2), metadata=md(admin_secret),
         timeout=5), ""),
    ("CancelRun of a researcher's run as an admin",
     refusal(experiments.CancelRun, exp_pb.CancelRunRequest(id=mine.id),
             metadata=md(admin_secret), timeout=5), ""),
]
for name, (code, details), says in owned:
    attacks.append((name, code))
    if says not in details:
        fail("%s: %s %r does not name %r" % (name, code.name, details, says))
mine_listed = experiments.ListRuns(exp_pb.ListRunsRequest(mine=True),
                                   metadata=other_researcher, timeout=5).runs
if mine_listed:
    fail("ListRuns mine=true as a researcher who submitted nothing: %d runs"
         % len(mine_listed))
list_code = code_of(experiments.ListRuns, exp_pb.ListRunsRequest(),
                    metadata=as_researcher, timeout=5)
attacks.append(("ListRuns after all of the above", list_code))
if list_code != grpc.StatusCode.OK:
    fail("ListRuns broke: %s" % list_code)
want = {
    "vit.depth = 2^31-1": "INVALID_ARGUMENT",
    "epochs = 2^31-1": "INVALID_ARGUMENT",
    "max_restarts = 2^31-1": "INVALID_ARGUMENT",
    "optimizer.lr = 1e308": "INVALID_ARGUMENT",
    "optimizer.kind = 99": "INVALID_ARGUMENT",
    "name of 15 MB": "INVALID_ARGUMENT",
    "optimizer.lr = 1e-310": "INVALID_ARGUMENT",
    "ListRuns where optimizer.lr=1e-310": "OK",
    "dataset.root = ../../etc (checked by the worker: FAILED run)": "OK",
    "ReportMetrics with a NaN point": "INVALID_ARGUMENT",
    "ReportMetrics claiming the coordinator's provenance": "INVALID_ARGUMENT",
    "UploadRunFile of 2^40 bytes (header)": "RESOURCE_EXHAUSTED",
    "UploadRunFile past its header's size": "INVALID_ARGUMENT",
    "LeaseRun without a token": "UNAUTHENTICATED",
    "CancelRun without a token": "UNAUTHENTICATED",
    "CancelRun as a viewer": "PERMISSION_DENIED",
    "SubmitRun as a worker": "PERMISSION_DENIED",
    "CreateToken as a researcher": "PERMISSION_DENIED",
    "CancelRun of another researcher's run": "PERMISSION_DENIED",
    "Annotate another researcher's run": "PERMISSION_DENIED",
    "SubmitSweep at priority 500 as a researcher": "INVALID_ARGUMENT",
    "SetOwnerPolicy with shares 0 as an admin": "INVALID_ARGUMENT",
    "SetOwnerPolicy as a researcher": "PERMISSION_DENIED",
    "SetOwnerPolicy shares 2 as an admin": "OK",
    "CancelRun of a researcher's run as an admin": "OK",
}
print("%-62s %s" % ("attack", "code"))
for name, code in attacks:
    print("%-62s %s" % (name, code.name))
    if name in want and code.name != want[name]:
        fail("%s: %s, want %s" % (name, code.name, want[name]))
# Methods nobody defined, each once: counted, but in a bounded number of
# series (a stranger must not grow /metrics without end).
for i in range(100):
    code_of(channel.unary_unary("/distill.v1.ExperimentService/Made%d" % i),
            b"", metadata=as_researcher, timeout=5)
# --- /metrics, as Prometheus scrapes it ---
time.sleep(1.5)  # The gauges are refreshed once a second.
metrics_port = re.search(r"metrics on 127\.0\.0\.1:(\d+)/metrics",
                         open(log.name).read()).group(1)
text = urllib.request.urlopen(
    "http://127.0.0.1:%s/metrics" % metrics_port, timeout=5).read().decode()
promtool = shutil.which("promtool")
if promtool:
    check = subprocess.run([promtool, "check", "metrics"], input=text,
                           capture_output=True, text=True)
    # promtool exits 0 when the format is right (lint notes are printed).
    if check.returncode != 0:
        fail("promtool check metrics: %s %s" % (check.stdout, check.stderr))
else:
    print("promtool not installed: the format is not checked")


def value(name, **labels):
    want = ",".join('%s="%s"' % kv for kv in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        key, _, number = line.rpartition(" ")
        got_name, _, got_labels = key.partition("{")
        got = ",".join(sorted(got_labels.rstrip("}").split(","))) if got_labels else ""
        if got_name == name and got == want:
            return float(number)
    fail("no %s{%s} in /metrics:\n%s" % (name, want, text))


error_methods = set(re.findall(r'distill_rpc_errors_total\{[^}]*method="([^"]*)"',
                                text))
checks = {
    # 64 method names at most, then "other" (100 were made up).
    "made-up methods in a bounded number of series": len(error_methods) <= 65,
    "methods past the bound counted as other": "other" in error_methods,
    "leases granted": value("distill_leases_granted_total") >= 2,
    "points ingested (the NaN batch refused)":
        value("distill_metric_points_ingested_total") == 0,
    "runs RUNNING": value("distill_runs", status="RUNNING") == 1,
    "runs FAILED": value("distill_runs", status="FAILED") >= 1,
    "workers running": value("distill_workers", state="running") == 1,
    "viewer's CancelRun counted": value(
        "distill_rpc_errors_total", code="PERMISSION_DENIED",
        method="/distill.v1.ExperimentService/CancelRun") >= 1,
    "bad specs counted": value(
        "distill_rpc_errors_total", code="INVALID_ARGUMENT",
        method="/distill.v1.ExperimentService/SubmitRun") >= 5,
    "first-lease wait observed": value("distill_lease_wait_seconds_count") >= 2,
    # Per owner: the one with a policy set is listed; the running run's
    # owner counts it.
    "an owner's queue": value("distill_owner_queued_runs",
                              owner="outside-researcher") >= 0,
    "running runs by owner": sum(
        float(line.rpartition(" ")[2]) for line in text.splitlines()
        if line.startswith("distill_owner_running_runs{")) == 1,
}
for what, ok in checks.items():
    if not ok:
        fail("/metrics: %s is wrong:\n%s" % (what, text))
print("/metrics: %d checks hold, promtool %s" %
      (len(checks), "passed" if promtool else "absent"))
cleanup()
print("outside client: 1 passed, 0 failed")
