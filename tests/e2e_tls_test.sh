#!/usr/bin/env bash
# TLS through the real binaries: a coordinator that requires client
# certificates, a worker and the CLI that trust its CA; a plaintext CLI is
# refused. Usage: e2e_tls_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1
src=$2
source "$src/tests/e2e_lib.sh"

bash "$src/tests/tls_certs.sh" "$work" || fail "openssl could not make certificates"
start_coordinator --tls_cert="$work/server.pem" --tls_key="$work/server.key" \
  --tls_client_ca="$work/ca.pem"
distill="$build/client/distill"

# The CLI presents no client certificate: this coordinator wants one.
set +e
DISTILL_TLS_CA="$work/ca.pem" "$distill" runs list >"$work/nocert.out" 2>&1; rc=$?
"$distill" runs list >"$work/plain.out" 2>&1; plain_rc=$?
set -e
# Both are the coordinator out of reach: exit 3 (client/cli.h).
[ "$rc" = 3 ] || fail "a client without a certificate got in ($rc): $(cat "$work/nocert.out")"
[ "$plain_rc" = 3 ] || fail "a plaintext client got in ($plain_rc): $(cat "$work/plain.out")"
DISTILL_TLS_CA="$work/ca.pem" "$distill" --tls_cert="$work/client.pem" \
  --tls_key="$work/client.key" runs list >"$work/cert.out" 2>&1 ||
  fail "a client with a certificate was refused: $(cat "$work/cert.out")"
grep -q UNAVAILABLE "$work/plain.out" || fail "plaintext CLI: $(cat "$work/plain.out")"

# Without client certificates required, the CLI needs only the CA.
kill -TERM "$coordinator_pid"; wait "$coordinator_pid" || true
start_coordinator --tls_cert="$work/server.pem" --tls_key="$work/server.key"
"$build/worker/distill-worker" --coordinator="$DISTILL_COORDINATOR" --threads=2 \
    --token_file="$work/worker.token" \
  --tls_ca="$work/ca.pem" --scratch_dir="$work/worker" >"$work/worker.log" 2>&1 &
pids+=("$!")
cat >"$work/teacher.yaml" <<'SPEC'
kind: TRAIN_TEACHER
dataset: {name: fashion-mnist, train_limit: 64, test_limit: 64}
teacher: {vit: {patch_size: 7, width: 16, depth: 1, heads: 2}}
epochs: 1
batch_size: 32
SPEC
export DISTILL_TLS_CA="$work/ca.pem"
run=$("$distill" submit "$work/teacher.yaml" | awk '{print $2}')
"$distill" watch "$run" >/dev/null || fail "the run over TLS did not succeed: $("$distill" runs show "$run")"
"$distill" --tls_ca="$work/other-ca.pem" runs list >"$work/stranger.out" 2>&1 &&
  fail "a CLI trusting another CA got in"
echo "e2e tls: 1 passed, 0 failed"
