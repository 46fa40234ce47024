#!/bin/sh
# Run once per deployment by Compose's `secrets` service: makes a CA of the
# deployment's own and a TLS certificate for the coordinator, signed by it,
# in DIR (kept in the `secrets` volume). Does nothing when they exist. The
# tokens are made by the coordinator itself on its first start
# (admin.token, worker.token in the same volume).
#   make-secrets.sh DIR [NAME...]   NAME: host names the coordinator is
#                                   reached by (localhost, 127.0.0.1 always)
set -eu
dir=$1
shift
[ -s "$dir/server.pem" ] && exit 0
umask 077
mkdir -p "$dir"
cd "$dir"
san="DNS:localhost,IP:127.0.0.1"
for name in "$@"; do san="$san,DNS:$name"; done
openssl req -x509 -newkey rsa:3072 -nodes -days 3650 \
  -subj "/CN=distill deployment CA" -keyout ca.key -out ca.pem 2>/dev/null
openssl req -newkey rsa:3072 -nodes -subj "/CN=distill-coordinator" \
  -keyout server.key -out server.csr 2>/dev/null
printf 'subjectAltName=%s\n' "$san" >san.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
  -days 825 -extfile san.ext -out server.pem 2>/dev/null
rm -f server.csr san.ext
chmod 644 ca.pem server.pem
echo "made a CA (ca.pem) and the coordinator's certificate for $san in $dir"
