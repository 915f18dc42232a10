#!/usr/bin/env bash
# A throwaway certificate authority for the https tests (the real Claude Code client over TLS,
# archive sources), made once into a folder of the cache:
#
#   ca.crt ca.key          the CA, name-constrained: it can only vouch for skill-pool.test,
#                          *.skill-pool.test and localhost (Claude Code refuses IP-address
#                          constraints, so it names no address), so trusting it
#                          system-wide cannot be abused for any real site
#   server.crt server.key  a certificate for exactly those names
#
# With --install (as root) it also makes the machine trust the CA (git, run by Claude Code,
# reads only the OS store: claude-code-client.md §10 item 14) and maps skill-pool.test and
# acme.skill-pool.test to 127.0.0.1 in /etc/hosts (archive URLs must not be a loopback
# literal). The tests find the folder in SKILL_POOL_TEST_TLS_DIR.
#
#   scripts/test-ca.sh [--install] [DIR]     prints the folder
set -euo pipefail

install=false
if [[ "${1:-}" == "--install" ]]; then
    install=true
    shift
fi
dir="${1:-$HOME/.cache/skill-pool/test-ca}"
mkdir -p "$dir"
cd "$dir"

if [[ ! -s ca.crt || ! -s server.crt ]] || ! openssl x509 -checkend 86400 -noout -in server.crt >/dev/null 2>&1; then
    rm -f ca.* server.*
    cat > ca.cnf <<'CNF'
[req]
distinguished_name = dn
prompt = no
x509_extensions = ext
[dn]
CN = skill-pool test CA (name-constrained, tests only)
[ext]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
nameConstraints = critical, permitted;DNS:skill-pool.test, permitted;DNS:.skill-pool.test, permitted;DNS:localhost
CNF
    cat > server.cnf <<'CNF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = skill-pool.test
[ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:skill-pool.test, DNS:*.skill-pool.test, DNS:localhost
CNF
    openssl req -x509 -new -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 -config ca.cnf 2>/dev/null
    openssl req -new -newkey rsa:2048 -nodes -keyout server.key -out server.csr -config server.cnf 2>/dev/null
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 825 \
        -extfile server.cnf -extensions ext 2>/dev/null
    rm -f server.csr ca.srl
    chmod 600 ca.key server.key
fi

if $install; then
    as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }
    target=/usr/local/share/ca-certificates/skill-pool-test-ca.crt
    if ! cmp -s ca.crt "$target"; then
        as_root install -m 0644 ca.crt "$target"
        as_root update-ca-certificates >/dev/null 2>&1
    fi
    for name in skill-pool.test acme.skill-pool.test; do
        if ! grep -qE "^127\.0\.0\.1[[:space:]].*\b${name//./\\.}\b" /etc/hosts; then
            echo "127.0.0.1 $name" | as_root tee -a /etc/hosts >/dev/null
        fi
    done
fi
echo "$dir"
