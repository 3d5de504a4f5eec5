#!/usr/bin/env bash
# Packs what scripts/gpu-check.sh needs on a GPU host that has Python and PyTorch but no Node.js
# and no internet: this machine's node binary and nats-server, the compiled CLI and its
# production dependencies. Output: .gpu-bundle/ (git-ignored), about 30 MB, compressed with xz.
# The same as `sweeper bundle` (see cli/commands/bundle.ts), which also works from an installed
# package; this script is kept for checkouts.
#
#   bash scripts/make-gpu-bundle.sh
set -euo pipefail
cd "$(dirname "$0")/.."
node scripts/bootstrap.mjs --nats
node dist/cli/run.js bundle --out .gpu-bundle
