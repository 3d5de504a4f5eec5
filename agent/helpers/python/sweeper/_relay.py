"""The trial process of ``wandb.agent(sweep_id, function=...)`` (see sweeper._wandb_agent).

A ``sweeper agent`` started by ``wandb.agent`` runs this instead of the sweep's command for
every trial (agent/command.ts does so when SWEEPER_RELAY_SOCKET is in its environment). It
hands the trial to the Python process that called ``wandb.agent`` and stands in for it:

1. connects to the Unix socket SWEEPER_RELAY_SOCKET names and sends the trial's environment
   (parameters, ids, W&B's variables) with the metrics pipe (fd 3) attached (SCM_RIGHTS), so
   the function's ``wandb.log`` writes straight to this trial's pipe;
2. on SIGTERM (the trial is stopped: early stopping, ``sweeper stop``), tells the caller, which
   interrupts the function as W&B's own agent does (KeyboardInterrupt in the main thread);
3. exits with the exit status the caller sends back when the function is done (1 if it raised).
Standard library only, Python 3.8+ (Unix).
"""

import array
import json
import os
import signal
import socket
import sys

FORWARDED = (
    "SWEEPER_PARAMS",
    "SWEEPER_TRIAL_ID",
    "SWEEPER_SWEEP_ID",
    "WANDB_SWEEP_ID",
    "WANDB_RUN_ID",
    "WANDB_DIR",
    "WANDB_MODE",
    "WANDB_SWEEP_PARAM_PATH",
)


def main():
    path = os.environ.get("SWEEPER_RELAY_SOCKET")
    if not path:
        sys.stderr.write("sweeper relay: SWEEPER_RELAY_SOCKET is not set\n")
        return 2
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError as err:
        sys.stderr.write("sweeper relay: the process that called wandb.agent is gone (%s)\n" % err)
        return 1
    hello = {"env": {k: os.environ[k] for k in FORWARDED if k in os.environ}, "pid": os.getpid()}
    fd = int(os.environ.get("SWEEPER_METRICS_FD", "3"))
    data = (json.dumps(hello) + "\n").encode()
    sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))])

    def on_term(signum, frame):
        try:
            sock.sendall(b'{"stop": true}\n')
        except OSError:
            pass

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    buf = b""
    while True:
        try:
            chunk = sock.recv(4096)
        except InterruptedError:
            continue
        if not chunk:
            sys.stderr.write("sweeper relay: the process that called wandb.agent went away\n")
            return 1
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            msg = json.loads(line)
            if "exit" in msg:
                return int(msg["exit"])


if __name__ == "__main__":
    sys.exit(main())
