#!/usr/bin/env bash
# Going on from a finished run (issue 34), through the real binaries: a
# DISTILL run of 2 epochs, then `distill fork RUN --continue --set
# epochs=4` trains epochs 3 and 4 from its optimizer state (its curve in
# `runs show` joining the parent's), and `distill fork RUN` starts a new
# run from its student's weights; the lineage shows in `runs show`, the
# pages and the report. Prints what a researcher would look at.
# Usage: e2e_fork_test.sh BUILD_DIR
set -euo pipefail
build=$1
source "$(dirname "$0")/e2e_lib.sh"
distill="$build/client/distill"
http_port=$(free_port)
# A webhook receiver (as Slack's incoming webhooks take JSON): each POST's
# body a line of $work/received.jsonl.
hook_port=$(free_port)
/usr/bin/python3 - "$hook_port" "$work/received.jsonl" <<'PY' &
import http.server, sys
class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with open(sys.argv[2], "ab") as f:
            f.write(body + b"\n")
        self.send_response(200)
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Hook).serve_forever()
PY
hook_pid=$!
pids+=("$hook_pid")
start_coordinator --http_listen="127.0.0.1:$http_port" \
  --notify_url="http://127.0.0.1:$hook_port/hook"
start_worker worker

cat >"$work/sweep.yaml" <<'SPEC'
name: parent
base:
  dataset: {name: fashion-mnist, train_limit: 2048, test_limit: 512}
  student: {arch: resnet18, width: 8}
  optimizer: {kind: SGD, lr: 0.05, momentum: 0.9}
  epochs: 2
  batch_size: 64
  seed: 3
  metrics_every_steps: 4
  evaluation: {tsne_points: 0}
teacher:
  train:
    teacher: {vit: {patch_size: 7, width: 32, depth: 2, heads: 2}}
    optimizer: {kind: ADAMW, lr: 0.003}
members:
  - {name: D, losses: {ce: 1}}
SPEC
"$distill" sweep "$work/sweep.yaml" --wait >"$work/parent.out" ||
  fail "the parent sweep: $(cat "$work/parent.out"; tail -20 "$work/worker.log")"
parent=2
for _ in $(seq 100); do [ -s "$work/received.jsonl" ] && break; sleep 0.1; done
[ -s "$work/received.jsonl" ] || fail "no notification: $(grep -i notif "$work/coordinator.log")"
echo "e2e fork: the webhook receiver saw: $(head -1 "$work/received.jsonl")"
grep -q '"text":"sweep 1 \\"parent\\" ended: 1 SUCCEEDED' "$work/received.jsonl" ||
  fail "notification: $(cat "$work/received.jsonl")"
"$distill" runs show "$parent" >"$work/parent.show"
grep -q 'file state.pt' "$work/parent.show" ||
  fail "the parent kept no training state: $(cat "$work/parent.show")"

# Refused, saying why: the same epochs; another batch size.
if "$distill" fork "$parent" --continue >"$work/same.out" 2>&1; then
  fail "a continued fork of the same epochs was accepted"
fi
grep -q "epochs must be more than run $parent's 2" "$work/same.out" ||
  fail "same epochs: $(cat "$work/same.out")"
if "$distill" fork "$parent" --continue --set epochs=4 --set batch_size=32 \
    >"$work/batch.out" 2>&1; then
  fail "a continued fork of another batch size was accepted"
fi
grep -q 'batch_size (parent 64, here 32) differs' "$work/batch.out" ||
  fail "batch size: $(cat "$work/batch.out")"

"$distill" fork "$parent" --continue --set epochs=4 >"$work/fork.out"
grep -q "forked from run $parent (epochs 3 to 4)" "$work/fork.out" ||
  fail "fork: $(cat "$work/fork.out")"
child=$(awk '{print $2}' "$work/fork.out")
"$distill" watch "$child" >/dev/null ||
  fail "the continued fork failed: $("$distill" runs show "$child"; tail -20 "$work/worker.log")"
"$distill" runs show "$child" >"$work/child.show"
echo "e2e fork: distill runs show $child (a continued fork of run $parent):"
sed 's/^/  /' "$work/child.show"
grep -q "forked from run $parent (continued" "$work/child.show" ||
  fail "no lineage in runs show"
grep -q "resumed_from_epoch.*2" "$work/child.show" ||
  fail "the fork did not go on from epoch 2: $(cat "$work/child.show")"
# Its top-1 curve: the parent's two epochs, then its own from epoch 2 on.
curve=$(grep 'eval/top1 by epoch' "$work/child.show")
parent_curve=$(grep 'eval/top1 by epoch' "$work/parent.show" | sed 's/.*epoch://')
[[ "$curve" == *"$parent_curve │"* ]] ||
  fail "the curve does not join the parent's ($parent_curve): $curve"
own=$(sed 's/.*│//' <<<"$curve" | wc -w)
[ "$own" = 3 ] || fail "the fork judged $own epochs (want 2, 3, 4): $curve"
# Its metric history goes on from the parent's steps (32 a epoch).
first_step=$("$distill" runs metrics "$child" | awk -F, '$4 == "train/loss" && !seen {print $1; seen = 1}')
[ "$first_step" -gt 64 ] || fail "the fork's first training step is $first_step, not after the parent's 64"

"$distill" fork "$parent" --set optimizer.lr=0.01 --name lower-lr >"$work/fresh.out"
fresh=$(awk '{print $2}' "$work/fresh.out")
"$distill" watch "$fresh" >/dev/null || fail "the fork from weights failed"
"$distill" runs show "$fresh" >"$work/fresh.show"
grep -q "forked from run $parent (its student's weights" "$work/fresh.show" ||
  fail "fresh fork lineage: $(cat "$work/fresh.show")"
fresh_top1=$(grep 'eval/top1 by epoch' "$work/fresh.show" | sed 's/.*│//' | awk '{print $1}')
echo "e2e fork: a fork from run $parent's weights at lr 0.01: top-1 after its first epoch $fresh_top1"

# A run's forks, found by their parent.
forks=$("$distill" runs list --where=fork.run_id=$parent --format=csv | tail -n +2 | cut -d, -f1 | tr '\n' ' ')
[ "$forks" = "$child $fresh " ] || fail "runs list --where=fork.run_id=$parent: $forks"

# The sweep of a sweep: each member from its namesake.
"$distill" sweep fork parent --continue --set epochs=3 >"$work/sweep-fork.out"
grep -q 'each forked from its member in sweep 1' "$work/sweep-fork.out" ||
  fail "sweep fork: $(cat "$work/sweep-fork.out")"
"$distill" results parent-fork >/dev/null
"$distill" report parent-fork -o "$work/report.html"
grep -q "forked from run $parent (continued" "$work/report.html" ||
  fail "no lineage in the report"
curl -sf -H "Authorization: Bearer $(cat "$DISTILL_TOKEN_FILE")" \
  "http://127.0.0.1:$http_port/runs/$child" >"$work/page.html" ||
  fail "the run page"
grep -q "id=\"lineage\"" "$work/page.html" || fail "no lineage on the run page"
# The receiver gone: the coordinator retries, and serves meanwhile.
kill "$hook_pid"; wait "$hook_pid" 2>/dev/null || true
for run in $("$distill" runs list --sweep=parent-fork --format=csv | tail -n +2 | cut -d, -f1); do
  "$distill" watch "$run" >/dev/null || fail "sweep fork run $run failed"
done
for _ in $(seq 100); do
  grep -q "notification to 127.0.0.1:$hook_port: .*again in" "$work/coordinator.log" && break
  sleep 0.1
done
grep -q "notification to 127.0.0.1:$hook_port: .*again in" "$work/coordinator.log" ||
  fail "no retry of the notification: $(tail -5 "$work/coordinator.log")"
"$distill" runs list >/dev/null || fail "the coordinator stopped serving while its webhook was down"
grep -q 'again in' "$work/coordinator.log" && ! grep -q "$hook_port/hook" "$work/coordinator.log" ||
  fail "the webhook's URL is in the coordinator's log"
echo "e2e fork: the webhook down: the coordinator retried ($(grep -c "notification to" "$work/coordinator.log") lines) and kept serving"
echo "e2e fork: 1 passed, 0 failed"
