"""W&B's run-history rules, shared by Sweeper's ``wandb`` compatibility module and by the bridge
that reports a real ``wandb``'s runs to the agent. Standard library only; Python 3.8+.

The step rules are wandb-core's (``handlePartialHistorySync`` and ``flushPartialHistory`` in
core/internal/stream/handler.go):

- ``log(d)``: ``d`` is added to the current row, and the row is committed.
- ``log(d, commit=False)``: added to the current row, which stays open.
- ``log(d, step=s)``: ``s`` above the current step commits the open row first and moves to ``s``;
  ``s`` below it is dropped with W&B's warning; then ``d`` is added and, unless ``commit=True``,
  the row stays open (an explicit step defaults to ``commit=False``).
- Committing moves to the next step even when the row is empty; an empty row is never written.
- Nested dicts are one value in the row; their leaves are named with ``.`` (``{"a": {"b": 1}}``
  is metric ``a.b``), as W&B names them.

A committed row's numbers go to the agent at once, as one record with the row's step, so
early stopping and the leaderboard see them while the trial runs.
"""

import fnmatch
import math
import numbers
import os
import stat
import sys
import threading

import sweeper

MAX_NAME = 200
MAX_VALUES = 500

_warned = set()


def termwarn(message, once_key=None):
    """W&B's ``wandb: WARNING`` line on stderr; with ``once_key``, only the first time."""
    if once_key is not None:
        if once_key in _warned:
            return
        _warned.add(once_key)
    if os.environ.get("WANDB_SILENT", "").lower() in ("true", "1", "yes"):
        return
    try:
        sys.stderr.write("wandb: WARNING %s\n" % message)
        sys.stderr.flush()
    except Exception:
        pass


def scalar(value):
    """The value as the number Sweeper records (int or float), or None when it is not one.

    Python and numpy numbers, and zero-dimensional arrays and tensors, are numbers; bools are not
    (W&B keeps them as bools), nor are strings, sequences, arrays with elements, or media.
    """
    if isinstance(value, bool) or type(value).__name__ in ("bool_", "bool8"):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value
    if isinstance(value, (str, bytes, bytearray)):
        return None
    if isinstance(value, numbers.Integral):
        try:
            return int(value)
        except Exception:
            return None
    if isinstance(value, numbers.Real):
        try:
            return float(value)
        except Exception:
            return None
    if hasattr(value, "__float__") and getattr(value, "ndim", 0) == 0:
        try:
            dtype = str(getattr(value, "dtype", ""))
            if "bool" in dtype:
                return None
            if "int" in dtype and hasattr(value, "item"):
                return int(value.item())
            return float(value)
        except Exception:
            return None
    return None


class Ref(dict):
    """What a logged image, table or other media became: a reference to the file the run keeps.
    One value in the row, never a metric."""


def leaves(data, prefix=()):
    """(path, value) for every leaf of a nested mapping, in order; empty dicts have no leaves."""
    out = []
    for key, value in data.items():
        path = prefix + (key,)
        if isinstance(value, dict) and not isinstance(value, Ref):
            out.extend(leaves(value, path))
        else:
            out.append((path, value))
    return out


def metric_name(path):
    return ".".join(str(p) for p in path)


def numeric_values(data):
    """The numbers of a nested row, by W&B metric name."""
    values = {}
    for path, value in leaves(data):
        n = scalar(value)
        if n is not None:
            values[metric_name(path)] = n
    return values


class Reporter:
    """Writes rows to the agent's metrics fd; silent when there is none (run by hand)."""

    def __init__(self):
        self.fd = _metrics_fd()

    def send(self, step, values):
        if self.fd is None or not values:
            return
        row = {}
        for name, value in values.items():
            if len(name) > MAX_NAME:
                termwarn("metric %r is longer than %d characters; Sweeper does not record it" % (name[:40] + "...", MAX_NAME), once_key=("long", name))
                continue
            row[name] = value
        items = list(row.items())
        try:
            for i in range(0, len(items), MAX_VALUES):
                sweeper._send_record(self.fd, step, dict(items[i : i + MAX_VALUES]))
        except OSError as err:
            termwarn("cannot report metrics to the Sweeper agent (%s); they are kept in the run's files only" % err, once_key="fd")
            self.fd = None


def _metrics_fd():
    text = os.environ.get("SWEEPER_METRICS_FD")
    if not text:
        return None
    try:
        fd = int(text)
        # A child process that inherited the variable but not the pipe (subprocess closes fds by
        # default) must not write into whatever now holds that number. The agent's end is a pipe
        # or a socket (Node makes socketpairs), never a file.
        mode = os.fstat(fd).st_mode
        if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)):
            return None
        return fd
    except (ValueError, OSError):
        return None


class History:
    """The open row and the step, with W&B's rules (see the module docstring).

    ``on_row(row, step)`` is called for each committed, non-empty row. ``prepare(data, step)``, if
    given, is called before data is added to a row, with the step the data lands on; it returns
    the data to add (media turned into file references, say).
    """

    def __init__(self, on_row, prepare=None, starting_step=0, warn=True):
        self.step = starting_step
        self.partial = {}
        self._on_row = on_row
        self._prepare = prepare
        self._warn = warn
        self._lock = threading.RLock()

    def log(self, data, step=None, commit=None):
        """Apply one ``log`` call; False when W&B would drop it (a step below the current one)."""
        with self._lock:
            if step is not None:
                if step > self.step:
                    self._flush(step)
                elif step < self.step:
                    if self._warn:
                        termwarn(
                            "Tried to log to step %d that is less than the current step %d. Steps must be "
                            "monotonically increasing, so this data will be ignored. See "
                            "https://wandb.me/define-metric to log data out of order." % (step, self.step)
                        )
                    return False
            if self._prepare is not None:
                data = self._prepare(data, self.step)
            self.partial.update(data)
            flush = commit if commit is not None else step is None
            if flush:
                self._flush(self.step + 1)
            return True

    def commit(self):
        """Commit the open row, as W&B does when a run finishes."""
        with self._lock:
            if self.partial:
                self._flush(self.step + 1)

    def _flush(self, next_step):
        row, step = self.partial, self.step
        self.partial = {}
        self.step = next_step
        if row:
            self._on_row(row, step)


def check_log_args(data, step, commit):
    """W&B's argument checks for ``log``; returns the step as an int."""
    if not hasattr(data, "items") or not hasattr(data, "keys"):
        raise ValueError("wandb.log must be passed a dictionary")
    if any(not isinstance(key, str) for key in data.keys()):
        raise ValueError("Key values passed to `wandb.log` must be strings.")
    if step is not None:
        if isinstance(step, bool) or not isinstance(step, numbers.Integral):
            if isinstance(step, float) and step.is_integer():
                step = int(step)
            else:
                raise TypeError("step must be an int, got %r" % (step,))
        step = int(step)
    return dict(data), step


SUMMARY_OPS = ("min", "max", "mean", "best", "last", "copy", "none", "first")


class MetricDef:
    """What ``define_metric`` returned; compares by name."""

    def __init__(self, name, step_metric=None, step_sync=None, hidden=None, summary=None, goal=None):
        self.name = name
        self.step_metric = step_metric
        self.step_sync = step_sync
        self.hidden = hidden
        self.summary = summary
        self.goal = goal

    @property
    def _ops(self):
        if not self.summary:
            return ()
        return tuple(s.strip().lower() for s in self.summary.split(",") if s.strip())

    def __repr__(self):
        return "<wandb.Metric %r>" % (self.name,)


class Metrics:
    """``define_metric`` definitions, and the summary W&B derives from the history with them."""

    def __init__(self):
        self.defs = {}
        self.globs = []
        self._agg = {}
        self._last_step_value = {}

    def define(self, name, step_metric=None, step_sync=None, hidden=None, summary=None, goal=None, overwrite=None):
        if not isinstance(name, str) or not name:
            raise ValueError("define_metric() requires non-empty string name")
        if step_metric is not None and not isinstance(step_metric, str):
            raise ValueError("step_metric must be a string")
        if summary is not None:
            if not isinstance(summary, str):
                raise ValueError("summary must be a string")
            for op in summary.split(","):
                if op.strip().lower() not in SUMMARY_OPS:
                    raise ValueError("Unhandled define_metric() arg: summary op: %s" % op.strip())
        if goal is not None:
            if not isinstance(goal, str) or goal[:3].lower() not in ("min", "max"):
                raise ValueError("Unhandled define_metric() arg: goal: %s" % (goal,))
        if step_metric is not None and step_sync is None:
            step_sync = True
        old = self.defs.get(name)
        if old is not None and overwrite is False:
            ops = list(old._ops)
            for op in (summary or "").split(","):
                if op.strip() and op.strip().lower() not in ops:
                    ops.append(op.strip().lower())
            summary = ",".join(ops) or None
            step_metric = step_metric if step_metric is not None else old.step_metric
            step_sync = step_sync if step_sync is not None else old.step_sync
            hidden = hidden if hidden is not None else old.hidden
            goal = goal if goal is not None else old.goal
        m = MetricDef(name, step_metric, step_sync, hidden, summary, goal)
        if "*" in name:
            self.globs = [g for g in self.globs if g.name != name] + [m]
        self.defs[name] = m
        return m

    def lookup(self, name):
        m = self.defs.get(name)
        if m is not None and "*" not in m.name:
            return m
        for g in reversed(self.globs):
            if fnmatch.fnmatchcase(name, g.name):
                return g
        return None

    def sync_steps(self, row):
        """step_sync: a row that logs a metric without its step metric gets the step metric's last value."""
        names = {metric_name(p): p for p, _ in leaves(row)}
        for name in list(names):
            m = self.lookup(name)
            if m is None or not m.step_metric or not m.step_sync or m.step_metric == name:
                continue
            if m.step_metric not in names and m.step_metric in self._last_step_value:
                row[m.step_metric] = self._last_step_value[m.step_metric]
                names[m.step_metric] = (m.step_metric,)
        for m in list(self.defs.values()):
            if m.step_metric and m.step_metric in names:
                value = _get_path(row, names[m.step_metric])
                if scalar(value) is not None:
                    self._last_step_value[m.step_metric] = value
        return row

    def summary_updates(self, row, media_value=None):
        """(path, value) pairs a committed row sets in the summary; (path, None) removes nothing."""
        updates = []
        for path, value in leaves(row):
            name = metric_name(path)
            m = self.lookup(name)
            ops = m._ops if m is not None else ()
            if "none" in ops:
                continue
            aggregations = [op for op in ops if op not in ("copy", "none")]
            if not aggregations:
                updates.append((path, value))
                continue
            n = scalar(value)
            if n is None:
                continue
            state = self._agg.setdefault(name, {"count": 0, "sum": 0.0})
            state["count"] += 1
            state["sum"] += n
            if "first" not in state:
                state["first"] = n
            state["last"] = n
            state["min"] = n if "min" not in state else _nan_min(state["min"], n)
            state["max"] = n if "max" not in state else _nan_max(state["max"], n)
            result = {}
            for op in aggregations:
                if op == "mean":
                    result["mean"] = state["sum"] / state["count"]
                elif op == "best":
                    goal = (m.goal or "minimize")[:3].lower()
                    result["best"] = state["max"] if goal == "max" else state["min"]
                else:
                    result[op] = state[op]
            updates.append((path, result))
        return updates


def _nan_min(a, b):
    if _isnan(a) or _isnan(b):
        return float("nan")
    return min(a, b)


def _nan_max(a, b):
    if _isnan(a) or _isnan(b):
        return float("nan")
    return max(a, b)


def _isnan(x):
    return isinstance(x, float) and math.isnan(x)


def _get_path(d, path):
    for p in path:
        d = d[p]
    return d


def set_path(d, path, value):
    for p in path[:-1]:
        nxt = d.get(p)
        if not isinstance(nxt, dict):
            nxt = d[p] = {}
        d = nxt
    d[path[-1]] = value
