#!/bin/sh
# Regenerates the TLS test fixtures (run once; the outputs are checked in).
set -eu
cd "$(dirname "$0")"
DAYS=36500
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }
ca() { # name subject
  key "$1.key"
  openssl req -x509 -new -key "$1.key" -sha256 -days $DAYS -subj "/CN=$2" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    -out "$1.crt"
}
leaf() { # name subject ca san eku
  key "$1.key"
  openssl req -new -key "$1.key" -subj "/CN=$2" -out "$1.csr"
  printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=%s\n%s\n' "$5" "$4" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$3.crt" -CAkey "$3.key" -CAcreateserial -sha256 \
    -days $DAYS -extfile "$1.ext" -out "$1.crt"
  rm -f "$1.csr" "$1.ext" "$3.srl"
}
ca ca "Vigil Test CA"
ca other-ca "Vigil Other Test CA"
leaf server "localhost" ca "subjectAltName=DNS:localhost,DNS:vigil.test,IP:127.0.0.1" serverAuth
leaf client "vigil-scraper" ca "" clientAuth
rm -f ca.key other-ca.key
