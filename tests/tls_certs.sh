#!/usr/bin/env bash
# Makes a throwaway CA and a certificate for 127.0.0.1 / localhost signed by
# it, a client certificate signed by it, and a second, unrelated CA, in
# DIR. Usage: tls_certs.sh DIR
set -euo pipefail
cd "$1"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=distill test CA" \
  -keyout ca.key -out ca.pem 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=someone else" \
  -keyout other-ca.key -out other-ca.pem 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
  -keyout server.key -out server.csr 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >san.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
  -days 1 -extfile san.ext -out server.pem 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=worker" \
  -keyout client.key -out client.csr 2>/dev/null
openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
  -days 1 -out client.pem 2>/dev/null
