"""Report metrics to a Sweeper agent from a training script.

    import sweeper
    cfg = sweeper.params()            # {"lr": 0.001, "optimizer": {"name": "adam"}}
    sweeper.log({"loss": 0.25, "acc": 0.9}, step=3)

Under an agent, each call writes one JSON line to the file descriptor named by
SWEEPER_METRICS_FD, so metrics never mix with the script's own output. Run by
hand, it prints ``loss=0.25 acc=0.9 step=3`` to stdout instead, which the agent
would also understand. No dependencies; Python 3.8+.
"""

import json
import math
import os
import select
import threading

__all__ = ["log", "params", "trial_id", "sweep_id"]

_lock = threading.Lock()
_params_cache = None


def params():
    """The trial's parameters (from SWEEPER_PARAMS); {} outside an agent."""
    global _params_cache
    if _params_cache is None:
        raw = os.environ.get("SWEEPER_PARAMS")
        _params_cache = json.loads(raw) if raw else {}
    return _params_cache


def trial_id():
    return os.environ.get("SWEEPER_TRIAL_ID")


def sweep_id():
    return os.environ.get("SWEEPER_SWEEP_ID")


def log(values, step=None):
    """Record one row of metrics. Values must be numbers; NaN and infinities are allowed."""
    if not isinstance(values, dict):
        raise TypeError("sweeper.log expects a dict of metric values, got %s" % type(values).__name__)
    if step is not None:
        if isinstance(step, bool) or not isinstance(step, int):
            raise TypeError("step must be an int, got %s" % type(step).__name__)
        if step < 0:
            raise ValueError("step must not be negative, got %d" % step)
    row = {}
    for name, value in values.items():
        if not isinstance(name, str) or not name:
            raise TypeError("metric names must be non-empty strings, got %r" % (name,))
        row[name] = _number(name, value)

    fd = os.environ.get("SWEEPER_METRICS_FD")
    if fd:
        _send_record(int(fd), step, row)
    else:
        parts = ["%s=%r" % (k, v) for k, v in row.items()]
        if step is not None:
            parts.append("step=%d" % step)
        print(" ".join(parts), flush=True)


def mark_preempting():
    """Tell the agent this trial is being preempted (its host is going away): if the program then
    exits non-zero, the trial is continued later, under the same id, with SWEEPER_RESUME=1 and
    the same SWEEPER_CHECKPOINT_DIR, instead of counting as failed. W&B's ``run.mark_preempting``."""
    fd = os.environ.get("SWEEPER_METRICS_FD")
    if fd:
        _write_all(int(fd), b'{"preempting": true}\n')


def _send_record(fd, step, row):
    """One metrics-fd record; also used by Sweeper's wandb module and its bridge to a real wandb."""
    record = {"step": step, "values": {k: _json_number(v) for k, v in row.items()}}
    line = json.dumps(record, allow_nan=False) + "\n"
    _write_all(fd, line.encode("utf-8"))


def _number(name, value):
    # bool is an int in Python, but logging True as 1 hides a mistake.
    if isinstance(value, bool):
        raise TypeError("metric %r is a bool, not a number" % name)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value
    # numpy scalars and one-element tensors convert themselves; strings do not.
    if hasattr(value, "__float__") and not isinstance(value, (str, bytes)):
        return float(value)
    raise TypeError("metric %r must be a number, got %s" % (name, type(value).__name__))


def _json_number(v):
    if isinstance(v, float) and not math.isfinite(v):
        if math.isnan(v):
            return "NaN"
        return "Infinity" if v > 0 else "-Infinity"
    return v


def _write_all(fd, data):
    # One lock so rows logged from several threads never interleave within a line.
    with _lock:
        view = memoryview(data)
        while view:
            try:
                n = os.write(fd, view)
            except BlockingIOError:
                # Only if the program made the fd non-blocking: wait for the agent to read.
                select.select([], [fd], [])
                continue
            except InterruptedError:
                continue
            view = view[n:]
