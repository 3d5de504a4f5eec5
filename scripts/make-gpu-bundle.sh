#!/usr/bin/env bash
# Packs what scripts/gpu-check.sh needs on a GPU host that has Python and PyTorch but no Node.js
# and no internet: this machine's node binary and nats-server, the compiled CLI and its
# production dependencies. Output: .gpu-bundle/ (git-ignored), about 40 MB, compressed with xz.
#
#   bash scripts/make-gpu-bundle.sh
set -euo pipefail
cd "$(dirname "$0")/.."
node scripts/bootstrap.mjs --nats
out=.gpu-bundle
rm -rf "$out" && mkdir -p "$out"
nats_bin=$(command -v nats-server || echo /usr/sbin/nats-server)
echo "bundle: node $(node --version) and $("$nats_bin" --version)" >&2
xz -T0 -6 -c "$(command -v node)" > "$out/node.xz"
xz -T0 -6 -c "$nats_bin" > "$out/nats-server.xz"
# Production dependencies only: npm lists the folders they live in.
deps=$(npm ls --omit=dev --all --parseable 2>/dev/null | sed "s#^$PWD/##" | grep '^node_modules/' || true)
tar -cf - dist package.json $deps | xz -T0 -6 > "$out/app.tar.xz"
du -sh "$out"/* >&2
