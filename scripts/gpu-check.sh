#!/usr/bin/env bash
# A real sweep of examples/pytorch on this host's GPUs, with nvidia-smi evidence that the trials
# ran on them. Works without Node.js and without internet: it unpacks the node binary, nats-server
# and the compiled CLI from .gpu-bundle/ (made by scripts/make-gpu-bundle.sh on any machine with
# Node). Needs python3 with PyTorch, nvidia-smi, and at least one GPU.
#
#   bash scripts/gpu-check.sh [RUN_CAP] [PER_GPU]   (default 8 trials, 1 trial per GPU; Markdown out)
set -euo pipefail
cd "$(dirname "$0")/.."
run_cap=${1:-8}
per_gpu=${2:-1}
bundle=.gpu-bundle
work=$(mktemp -d "${TMPDIR:-/tmp}/sweeper-gpu-check.XXXXXX")
sampler=""
trap 'kill "$sampler" 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/bin"

# Unpack with Python's lzma and tarfile: xz itself may be missing on the host.
python3 - "$bundle" "$work/bin" <<'PY'
import lzma, os, shutil, sys, tarfile
bundle, bindir = sys.argv[1], sys.argv[2]
for name in ("node", "nats-server"):
    with lzma.open(os.path.join(bundle, name + ".xz")) as src, open(os.path.join(bindir, name), "wb") as dst:
        shutil.copyfileobj(src, dst)
    os.chmod(os.path.join(bindir, name), 0o755)
with lzma.open(os.path.join(bundle, "app.tar.xz")) as src, tarfile.open(fileobj=src) as tar:
    tar.extractall(".")
PY
export PATH="$work/bin:$PATH" SWEEPER_NATS_SERVER="$work/bin/nats-server" NO_COLOR=1

echo "# GPU check"
echo
echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "- host: $(uname -srm); node $(node --version); $(nats-server --version)"
echo "- python: $(python3 -c 'import sys, torch; print(sys.version.split()[0], "torch", torch.__version__, "cuda", torch.cuda.is_available(), torch.version.cuda)')"
echo
echo '```'
nvidia-smi -L
echo '```'

# Evidence: the compute processes on each GPU, every 2 s while the sweep runs.
(
  while true; do
    nvidia-smi --query-compute-apps=timestamp,gpu_uuid,pid,process_name,used_memory --format=csv,noheader 2>/dev/null || true
    sleep 2
  done
) > "$work/smi.log" &
sampler=$!

sed "s/^run_cap: .*/run_cap: $run_cap/" examples/pytorch/sweep.yaml > examples/pytorch/.gpu-check.yaml
echo
echo "## Sweep: examples/pytorch, $run_cap trials, one agent with --gpus all --per-gpu $per_gpu"
echo
echo '```'
node dist/cli/run.js local examples/pytorch/.gpu-check.yaml --gpus all --per-gpu "$per_gpu" --data "$work/data" 2>&1 | tail -n 40
status=${PIPESTATUS[0]}
echo '```'
rm -f examples/pytorch/.gpu-check.yaml
kill "$sampler" 2>/dev/null || true

echo
echo "## nvidia-smi: compute processes seen during the sweep"
echo
echo '```'
sort -u "$work/smi.log" | grep -i python | head -n 40 || echo "(no python process seen on a GPU)"
echo '```'
exit "$status"
