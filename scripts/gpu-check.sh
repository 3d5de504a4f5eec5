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
[ "$status" -eq 0 ] || exit "$status"

# ---- An agent SIGKILLed while its trials train -----------------------------------------------
# The trials must die with it (no process left holding a GPU), the controller must count them
# crashed and run their parameters again, and a second agent must finish the sweep, publishing
# whatever the first one had journaled in the spool but not sent.
kill_cap=$(( run_cap / 2 > 2 ? run_cap / 2 : 2 ))
kdir="$work/kill"
mkdir -p "$kdir"
# Longer trials and no early stopping, so there is training going on to interrupt.
sed -e "s/^run_cap: .*/run_cap: $kill_cap/" -e 's/^    value: 27$/    value: 60/' -e '/^early_terminate:/,/^  eta:/d' \
  examples/pytorch/sweep.yaml > examples/pytorch/.gpu-kill.yaml
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
ctl="127.0.0.1:$port"
node dist/cli/run.js server --port "$port" --nats-port -1 --no-dashboard --heartbeat-timeout 5 --data "$kdir/server" > "$kdir/server.log" 2>&1 &
server=$!
trap 'kill "$sampler" "$server" 2>/dev/null || true; rm -rf "$work" examples/pytorch/.gpu-kill.yaml' EXIT
sweep=""
for _ in $(seq 1 100); do
  sweep=$(node dist/cli/run.js create examples/pytorch/.gpu-kill.yaml --controller "$ctl" 2>/dev/null | sed -n 's/.*Created sweep \([a-z0-9]*\).*/\1/p') && [ -n "$sweep" ] && break
  sleep 0.3
done
# Call it in a subshell (or with &): it becomes the agent process, so $! is the agent's pid.
agent() { cd examples/pytorch && exec node ../../dist/cli/run.js agent "$sweep" --controller "$ctl" --gpus all --per-gpu "$per_gpu" --spool-dir "$kdir/spool" --agent-id "$1" --grace 2; }
# Trials running with at least 3 points.
running() {
  node dist/cli/run.js watch "$sweep" --once --json --controller "$ctl" 2>/dev/null |
    python3 -c 'import json,sys; print(sum(1 for t in json.load(sys.stdin)["trials"] if t["state"] == "running" and t["points"] >= 3))'
}
gpu_pids() { nvidia-smi --query-compute-apps=pid --format=csv,noheader 2>/dev/null | grep -c . || true; }

echo
echo "## Agent SIGKILLed mid-training: sweep of $kill_cap trials, --per-gpu $per_gpu"
echo
agent gpu-a > "$kdir/agent-a.log" 2>&1 &
first=$!
for _ in $(seq 1 300); do [ "$(running)" -ge 1 ] && break; sleep 0.2; done
echo "- before the kill: $(running) trials running with metrics; compute processes on the GPUs: $(gpu_pids)"
kill -KILL "$first"
sleep 3
echo "- 3 s after SIGKILL of the agent: compute processes on the GPUs: $(gpu_pids) (want 0)"
(agent gpu-b) > "$kdir/agent-b.log" 2>&1
echo "- second agent: $(grep -c 'trial starting' "$kdir/agent-b.log") trials run; spool: $(grep -o 'publishing metric points that dead agents left in the spool.*' "$kdir/agent-b.log" | head -n 1 || true)"
echo
echo '```'
node dist/cli/run.js watch "$sweep" --once --controller "$ctl" 2>&1 | tail -n 20
echo '```'
kill "$server" 2>/dev/null || true
wait "$server" 2>/dev/null || true
