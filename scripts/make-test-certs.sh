#!/usr/bin/env bash
# Throwaway TLS material for the test server:
#   ca.pem ca-key.pem            self-signed test CA
#   server-key.pem server-cert.pem  CN=localhost, SAN DNS:localhost,IP:127.0.0.1
#   other-ca.pem other-ca-key.pem   unrelated CA, for "wrong CA" tests
# usage: make-test-certs.sh CERTDIR
set -euo pipefail

if (($# != 1)); then
    echo "usage: ${0##*/} CERTDIR" >&2
    exit 2
fi
dir=$1
days=2
mkdir -p "$dir"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Our own minimal config: the system openssl.cnf may add extensions of its
# own (and -addext on top of them can clash as duplicates).
cat >"$tmp/openssl.cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[v3_server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF

make_ca() { # NAME CN
    openssl req -config "$tmp/openssl.cnf" -x509 -newkey rsa:2048 -nodes \
        -keyout "$dir/$1-key.pem" -out "$dir/$1.pem" -days "$days" \
        -subj "/CN=$2" -extensions v3_ca -set_serial "0x$(openssl rand -hex 8)" \
        2>/dev/null
}

make_ca ca "ActiveRecord Test CA"
make_ca other-ca "ActiveRecord Unrelated CA"

openssl req -config "$tmp/openssl.cnf" -new -newkey rsa:2048 -nodes \
    -keyout "$dir/server-key.pem" -out "$tmp/server.csr" -subj "/CN=localhost" \
    2>/dev/null
openssl x509 -req -in "$tmp/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca-key.pem" \
    -set_serial "0x$(openssl rand -hex 8)" -days "$days" \
    -extfile "$tmp/openssl.cnf" -extensions v3_server \
    -out "$dir/server-cert.pem" 2>/dev/null

# Test-only keys: world-readable so mariadbd can read them whichever user it
# runs as (the certs are public anyway).
chmod 0644 "$dir"/*.pem
chmod 0755 "$dir"

# Fail loudly now rather than with an obscure TLS error in a spec.
openssl verify -CAfile "$dir/ca.pem" "$dir/server-cert.pem" >/dev/null
if openssl verify -CAfile "$dir/other-ca.pem" "$dir/server-cert.pem" >/dev/null 2>&1; then
    echo "${0##*/}: other-ca.pem unexpectedly verifies the server cert" >&2
    exit 1
fi
