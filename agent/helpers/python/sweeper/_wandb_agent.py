"""``wandb.sweep`` and ``wandb.agent`` on a Sweeper controller (W&B's notebook style).

    sweep_id = wandb.sweep(sweep_config, project="demo")     # sweeper create
    wandb.agent(sweep_id, function=train, count=5)           # train() runs here, 5 times

The controller is the one ``sweeper`` commands use: SWEEPER_CONTROLLER (host:port) and
SWEEPER_TOKEN (plus SWEEPER_TLS_CA). Python has no gRPC in its standard library, so both drive
the ``sweeper`` CLI:

- ``wandb.sweep`` writes the config to a temp file, runs ``sweeper create`` and returns the id
  it prints.
- ``wandb.agent`` runs ``sweeper agent SWEEP_ID [--count N]`` as a child process, with
  SWEEPER_RELAY_SOCKET naming a Unix socket in a private temp folder. That agent runs
  sweeper/_relay.py as each trial's process, which hands the trial (its environment and its
  metrics pipe) to this process over the socket. Here the trial's environment is set,
  ``function()`` runs in the main thread, the run is finished, and the exit status goes back to
  the relay: the Node agent sees an ordinary trial, so early stopping, crash accounting, the
  spool and the leaderboard all work as for any trial. A stop (SIGTERM to the relay) interrupts
  ``function`` with KeyboardInterrupt, as W&B's in-process agent does.

The ``sweeper`` command is found as SWEEPER_CLI (a command line), else the ``bin/sweeper.js``
of the Sweeper these helpers belong to (run with ``node``), else ``sweeper`` on PATH.
"""

import array
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import traceback
import _thread

from sweeper._wandb_rows import termwarn


def _sweeper_command():
    if os.environ.get("SWEEPER_CLI"):
        return shlex.split(os.environ["SWEEPER_CLI"])
    here = os.path.dirname(os.path.abspath(__file__))
    bin_js = os.path.normpath(os.path.join(here, "..", "..", "..", "..", "bin", "sweeper.js"))
    node = os.environ.get("SWEEPER_NODE") or shutil.which("node")
    if os.path.isfile(bin_js) and node:
        return [node, bin_js]
    found = shutil.which("sweeper")
    if found:
        return [found]
    raise _error("cannot find the sweeper command: put it on PATH or set SWEEPER_CLI")


def _error(message):
    import wandb

    return wandb.errors.UsageError(message)


def create_sweep(config, entity=None, project=None):
    """``sweeper create`` with the config; the new sweep's id."""
    if callable(config) and not isinstance(config, dict):
        config = config()
    if hasattr(config, "items") and not isinstance(config, dict):
        config = dict(config)
    if not isinstance(config, dict):
        raise _error("wandb.sweep expects the sweep config as a dict")
    folder = tempfile.mkdtemp(prefix="sweeper-sweep-")
    try:
        path = os.path.join(folder, "sweep.json")
        with open(path, "w") as f:
            json.dump(config, f)
        r = subprocess.run(_sweeper_command() + ["create", path], stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if r.stderr:
        sys.stderr.write(r.stderr)
    for line in r.stdout.splitlines():
        if line.startswith("Created sweep "):
            sweep_id = line.split()[2]
            sys.stderr.write("wandb: Created sweep with ID: %s\n" % sweep_id)
            return sweep_id
    raise _error("sweeper create failed (exit %s): %s" % (r.returncode, (r.stderr or r.stdout).strip()))


def run_agent(sweep_id, function=None, count=None):
    """Run ``function`` for trials of ``sweep_id`` until the sweep is over, or ``count`` trials."""
    if function is None:
        raise _error("wandb.agent under Sweeper needs function=...; to run the sweep's program, use 'sweeper agent %s'" % sweep_id)
    if count is not None and (not isinstance(count, int) or count < 1):
        raise _error("count must be a positive integer")
    sweep_id = str(sweep_id).rsplit("/", 1)[-1]
    folder = tempfile.mkdtemp(prefix="sweeper-relay-")
    os.chmod(folder, 0o700)
    path = os.path.join(folder, "relay.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(4)
    server.settimeout(0.2)
    args = _sweeper_command() + ["agent", sweep_id] + (["--count", str(count)] if count else [])
    env = dict(os.environ, SWEEPER_RELAY_SOCKET=path, SWEEPER_RELAY_PYTHON=sys.executable)
    agent = subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL)
    try:
        while True:
            try:
                conn, _ = server.accept()
            except socket.timeout:
                if agent.poll() is not None:
                    break
                continue
            _run_trial(conn, function)
        code = agent.wait()
        if code != 0:
            raise _error("sweeper agent exited with status %d" % code)
    except KeyboardInterrupt:
        agent.send_signal(signal.SIGINT)
        agent.wait()
        raise
    finally:
        if agent.poll() is None:
            agent.terminate()
            agent.wait()
        server.close()
        shutil.rmtree(folder, ignore_errors=True)


def _receive_hello(conn):
    conn.settimeout(30)
    data, fds = b"", []
    while b"\n" not in data:
        msg, ancdata, _, _ = conn.recvmsg(65536, socket.CMSG_LEN(array.array("i", [0]).itemsize))
        if not msg:
            raise OSError("the relay closed the connection")
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                a = array.array("i")
                a.frombytes(payload[: len(payload) - (len(payload) % a.itemsize)])
                fds.extend(a)
        data += msg
    conn.settimeout(None)
    return json.loads(data.split(b"\n", 1)[0]), fds


def _run_trial(conn, function):
    import wandb

    try:
        hello, fds = _receive_hello(conn)
    except (OSError, ValueError) as err:
        termwarn("a trial could not be handed over by its relay: %s" % err)
        conn.close()
        return
    metrics_fd = fds[0] if fds else None
    saved = {k: os.environ.get(k) for k in list(hello["env"]) + ["SWEEPER_METRICS_FD"]}
    os.environ.update(hello["env"])
    if metrics_fd is not None:
        os.environ["SWEEPER_METRICS_FD"] = str(metrics_fd)
    stopping = threading.Event()
    done = threading.Event()
    # Held while interrupting and while marking the function done: no interrupt after that.
    lock = threading.Lock()

    def watch_for_stop():
        buf = b""
        while not done.is_set():
            try:
                chunk = conn.recv(4096)
            except OSError:
                chunk = b""
            if not chunk or b"stop" in (buf + chunk):
                with lock:
                    if not done.is_set():
                        stopping.set()
                        _thread.interrupt_main()
                return
            buf += chunk

    watcher = threading.Thread(target=watch_for_stop, name="sweeper-relay", daemon=True)
    watcher.start()
    trial = hello["env"].get("SWEEPER_TRIAL_ID")
    exit_code = 0
    try:
        sys.stderr.write("wandb: Agent Starting Run: %s with config: %s\n" % (trial, hello["env"].get("SWEEPER_PARAMS")))
        try:
            function()
        finally:
            with lock:
                done.set()
        wandb.finish()
    except KeyboardInterrupt:
        if not stopping.is_set():
            raise
        exit_code = 1
        wandb.finish(exit_code=exit_code)
        sys.stderr.write("wandb: Run %s was stopped\n" % trial)
    except Exception:
        exit_code = 1
        traceback.print_exc()
        wandb.finish(exit_code=exit_code)
    finally:
        with lock:
            done.set()
        try:
            conn.sendall(('{"exit": %d}\n' % exit_code).encode())
        except OSError:
            pass
        conn.close()
        if metrics_fd is not None:
            os.close(metrics_fd)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
