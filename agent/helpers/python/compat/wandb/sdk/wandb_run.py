"""``wandb.run``: a W&B Run that reports to Sweeper and keeps its files locally.

The run's folder is ``<dir>/wandb/run-<YYYYmmdd_HHMMSS>-<id>/`` (``dir``: ``wandb.init(dir=)``,
else WANDB_DIR, else the current folder), as W&B lays it out; ``run.dir`` is its ``files/``:

    files/config.yaml           the config, W&B's format (written at init and at finish)
    files/wandb-summary.json    the summary (at finish)
    files/wandb-metadata.json   program, args, host, sweep and trial ids, exit code
    files/media/...             images, tables, html and other media kept from wandb.log
    history.jsonl               one line per committed row: _step, _runtime, _timestamp, values

Under a Sweeper agent, every committed row's numbers are also sent to the agent, as they are
logged (see sweeper._wandb_rows for W&B's step rules).
"""

import datetime
import json
import math
import os
import re
import socket
import sys
import tempfile
import threading
import time

import wandb
import sweeper
from sweeper import _wandb_rows
from sweeper._wandb_rows import termwarn
from wandb.sdk.data_types.base_types.wb_value import WBValue
from wandb.sdk.wandb_config import Config, ConfigStatic
from wandb.sdk.wandb_summary import Summary


class Run:
    def __init__(self, *, run_id, name, project, entity, group, job_type, tags, notes, sweep_id, root_dir, mode, config, sweep_config, allow_val_change, settings):
        self._lock = threading.RLock()
        self._id = run_id
        self._name = name
        self._project = project
        self._entity = entity
        self._group = group
        self._job_type = job_type
        self._tags = tuple(tags or ())
        self._notes = notes
        self._sweep_id = sweep_id
        self._mode = mode
        self._settings = settings
        self._start_time = time.time()
        self._finished = False
        self._exit_code = None
        self._preempting = False
        self._media_n = 0
        self._artifacts_used = []

        self._reporter = _wandb_rows.Reporter()
        self._metrics = _wandb_rows.Metrics()
        self._history = _wandb_rows.History(self._on_row, prepare=self._prepare)
        self._summary = Summary(self)

        self._config = Config()
        object.__setattr__(self._config, "_allow_val_change", allow_val_change)
        config = dict(config or {})
        config.setdefault("_wandb", {})
        self._config._update(config, allow_val_change=True, ignore_locked=True)
        if sweep_config:
            self._config.merge_locked(sweep_config, user="sweep", _allow_val_change=True)
        self._config._set_callback(self._config_changed)

        self._make_dirs(root_dir)
        self._history_file = None
        try:
            self._history_file = open(os.path.join(self._run_dir, "history.jsonl"), "a", encoding="utf-8")
        except OSError as err:
            termwarn("cannot write the run's history file: %s" % err)
        self._write_config_file()
        self._write_metadata()

    def _make_dirs(self, root_dir):
        stamp = datetime.datetime.fromtimestamp(self._start_time).strftime("%Y%m%d_%H%M%S")
        for root in (root_dir, tempfile.gettempdir()):
            wandb_root = os.path.join(root, "wandb")
            run_dir = os.path.join(wandb_root, "run-%s-%s" % (stamp, self._id))
            try:
                os.makedirs(os.path.join(run_dir, "files"), exist_ok=True)
            except OSError as err:
                termwarn("cannot create the run's folder in %s (%s); using %s" % (root, err, tempfile.gettempdir()))
                continue
            self._wandb_root = wandb_root
            self._run_dir = run_dir
            return
        raise wandb.Error("cannot create a folder for the run")

    # -- attributes -----------------------------------------------------------------------------

    @property
    def id(self):
        return self._id

    @property
    def name(self):
        return self._name

    @name.setter
    def name(self, value):
        self._name = value

    @property
    def display_name(self):
        return self._name

    @property
    def notes(self):
        return self._notes

    @notes.setter
    def notes(self, value):
        self._notes = value

    @property
    def tags(self):
        return self._tags

    @tags.setter
    def tags(self, value):
        self._tags = tuple(value)

    @property
    def group(self):
        return self._group

    @property
    def job_type(self):
        return self._job_type

    @property
    def project(self):
        return self._project

    def project_name(self):
        return self._project

    @property
    def entity(self):
        return self._entity or ""

    @property
    def sweep_id(self):
        return self._sweep_id

    @property
    def path(self):
        return "/".join(p for p in (self._entity, self._project, self._id) if p)

    @property
    def dir(self):
        return os.path.join(self._run_dir, "files")

    @property
    def config(self):
        return self._config

    @property
    def config_static(self):
        return ConfigStatic(self._config)

    @property
    def summary(self):
        return self._summary

    @property
    def step(self):
        return self._history.step

    @property
    def starting_step(self):
        return 0

    @property
    def start_time(self):
        return self._start_time

    @property
    def resumed(self):
        # A preempted trial continued by another agent: same run id, SWEEPER_RESUME=1, and its
        # checkpoints in SWEEPER_CHECKPOINT_DIR.
        return os.environ.get("SWEEPER_RESUME") == "1" and os.environ.get("SWEEPER_TRIAL_ID") == self.id

    @property
    def offline(self):
        return True

    @property
    def disabled(self):
        return self._mode == "disabled"

    @property
    def mode(self):
        return self._mode

    @property
    def settings(self):
        return self._settings

    @property
    def url(self):
        return None

    def get_url(self):
        return None

    def get_project_url(self):
        return None

    def get_sweep_url(self):
        return None

    def __repr__(self):
        return "<Run %s (sweeper)>" % (self.path,)

    # -- logging --------------------------------------------------------------------------------

    def log(self, data, step=None, commit=None, sync=None):
        """W&B's ``run.log``: see sweeper._wandb_rows for the step rules."""
        if self._finished:
            termwarn("Run (%s) is finished. The call to `log` will be ignored." % self._id, once_key=("finished-log", self._id))
            return
        data, step = _wandb_rows.check_log_args(data, step, commit)
        self._history.log(data, step, commit)

    def _prepare(self, data, step):
        """Media and tables become references to files in the run's folder."""
        return {k: self._keep(k, v, step) for k, v in data.items()}

    def _keep(self, key, value, step):
        if isinstance(value, WBValue):
            ref = None
            try:
                ref = value._save(self, key, step)
            except Exception as err:
                termwarn("could not keep %s %r in the run's files (%r); it is left out" % (type(value).__name__, key, err), once_key=("media", type(value).__name__))
            return _wandb_rows.Ref(ref if ref is not None else {"_type": type(value).__name__, "kept": False})
        if isinstance(value, dict):
            return {k: self._keep("%s.%s" % (key, k), v, step) for k, v in value.items()}
        if isinstance(value, (list, tuple)) and any(isinstance(v, WBValue) for v in value):
            return [self._keep(key, v, step) for v in value]
        return value

    def _next_media_number(self):
        with self._lock:
            n = self._media_n
            self._media_n += 1
            return n

    def _on_row(self, row, step):
        row = self._metrics.sync_steps(row)
        self._reporter.send(step, _wandb_rows.numeric_values(row))
        now = time.time()
        if self._history_file is not None:
            line = {"_step": step, "_runtime": now - self._start_time, "_timestamp": now}
            line.update(row)
            try:
                self._history_file.write(json.dumps(line, default=_json_default) + "\n")
                self._history_file.flush()
            except (OSError, ValueError):
                pass
        for path, value in self._metrics.summary_updates(row):
            _wandb_rows.set_path(self._summary._items, path, value)

    def _summary_write(self, path, value):
        with self._lock:
            kept = self._keep(_wandb_rows.metric_name(path), value, self._history.step)
            _wandb_rows.set_path(self._summary._items, path, kept)
            if not self._finished:
                values = {}
                for p, v in _wandb_rows.leaves({path[-1]: value}, path[:-1]):
                    n = _wandb_rows.scalar(v)
                    if n is not None:
                        values[_wandb_rows.metric_name(p)] = n
                self._reporter.send(self._history.step, values)

    def define_metric(self, name, step_metric=None, step_sync=None, hidden=None, summary=None, goal=None, overwrite=None, **kwargs):
        try:
            return self._metrics.define(name, step_metric, step_sync, hidden, summary, goal, overwrite)
        except ValueError as err:
            raise wandb.Error(str(err)) from None

    def _config_changed(self, key=None, val=None, data=None):
        if not self._finished:
            self._write_config_file()

    # -- the rest of the Run API ----------------------------------------------------------------

    def finish(self, exit_code=None, quiet=None):
        with self._lock:
            if self._finished:
                return
            self._history.commit()
            self._finished = True
            self._exit_code = 0 if exit_code is None else exit_code
        self._write_config_file()
        self._write_json("wandb-summary.json", self._summary._items)
        self._write_metadata()
        if self._history_file is not None:
            try:
                self._history_file.close()
            except OSError:
                pass
        from wandb.sdk import wandb_init

        wandb_init._finished(self)

    join = finish

    def mark_preempting(self):
        """As in W&B: if the program then exits non-zero, the run is requeued. Under a Sweeper agent
        the trial is reported preempted and continued, under this run's id with ``resumed`` true,
        by the next agent (a host's own preemption, SIGUSR1 then SIGTERM, does the same)."""
        self._preempting = True
        self._write_metadata()
        sweeper.mark_preempting()

    def save(self, glob_str=None, base_path=None, policy="live"):
        return []

    def restore(self, name, run_path=None, replace=False, root=None):
        return None

    def watch(self, models=None, criterion=None, log="gradients", log_freq=1000, idx=None, log_graph=False):
        return None

    def unwatch(self, models=None):
        return None

    def alert(self, title, text, level=None, wait_duration=None):
        return None

    def log_code(self, root=".", name=None, include_fn=None, exclude_fn=None):
        return None

    def log_artifact(self, artifact_or_path, name=None, type=None, aliases=None, tags=None):
        from wandb.sdk.artifacts.artifact import Artifact

        artifact = artifact_or_path
        if not isinstance(artifact, Artifact):
            path = str(artifact_or_path)
            artifact = Artifact(name or "run-%s-%s" % (self._id, os.path.basename(path.rstrip("/"))), type or "unspecified")
            if os.path.isdir(path):
                artifact.add_dir(path)
            else:
                artifact.add_file(path)
        if isinstance(aliases, str):
            aliases = [aliases]
        return artifact._log(self, aliases)

    def use_artifact(self, artifact_or_name, type=None, aliases=None, use_as=None):
        from wandb.sdk.artifacts.artifact import Artifact

        if isinstance(artifact_or_name, Artifact):
            if artifact_or_name.version is None:
                artifact_or_name._log(self, aliases)
            a = artifact_or_name
        else:
            a = Artifact._load(self, str(artifact_or_name), type)
        self._artifacts_used.append(a.name)
        return a

    def link_artifact(self, artifact, target_path, aliases=None):
        return artifact

    def upsert_artifact(self, artifact_or_path, name=None, type=None, aliases=None, distributed_id=None):
        return self.log_artifact(artifact_or_path, name, type, aliases)

    def _label(self, code=None, repo=None, code_version=None, **kwargs):
        pass

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_val, exc_tb):
        self.finish(exit_code=0 if exc_type is None else 1)
        return False

    # -- files ----------------------------------------------------------------------------------

    def _write_json(self, name, obj):
        path = os.path.join(self.dir, name)
        try:
            with open(path + ".tmp", "w", encoding="utf-8") as f:
                json.dump(obj, f, indent=2, default=_json_default)
            os.replace(path + ".tmp", path)
        except (OSError, ValueError, TypeError) as err:
            termwarn("cannot write %s: %s" % (path, err), once_key=("write", name))

    def _write_config_file(self):
        lines = ["wandb_version: 1", ""]
        for key, value in self._config._items.items():
            lines.append("%s:" % _yaml_scalar(str(key)))
            lines.append("  desc: null")
            lines.append("  value: %s" % _yaml_flow(value))
        try:
            path = os.path.join(self.dir, "config.yaml")
            with open(path + ".tmp", "w", encoding="utf-8") as f:
                f.write("\n".join(lines) + "\n")
            os.replace(path + ".tmp", path)
        except OSError:
            pass

    def _write_metadata(self):
        self._write_json(
            "wandb-metadata.json",
            {
                "program": os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else None,
                "args": sys.argv[1:],
                "host": socket.gethostname(),
                "startedAt": datetime.datetime.fromtimestamp(self._start_time, datetime.timezone.utc).isoformat(),
                "runId": self._id,
                "sweepId": self._sweep_id,
                "sweeperTrialId": os.environ.get("SWEEPER_TRIAL_ID"),
                "wandbModule": "sweeper-compat",
                "exitCode": self._exit_code,
                "preempting": self._preempting,
                "artifactsUsed": self._artifacts_used,
            },
        )


def _json_default(obj):
    n = _wandb_rows.scalar(obj)
    if n is not None:
        return n
    if hasattr(obj, "tolist"):
        try:
            return obj.tolist()
        except Exception:
            pass
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    return repr(obj)


_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_./-]*")
_YAML_WORDS = {"y", "n", "yes", "no", "true", "false", "on", "off", "null"}


def _yaml_scalar(s):
    if _PLAIN_KEY.fullmatch(s) and s.lower() not in _YAML_WORDS:
        return s
    return json.dumps(s, ensure_ascii=False)


def _yaml_flow(v):
    """A YAML flow value PyYAML reads back as the same Python value."""
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return ".nan"
        if math.isinf(v):
            return ".inf" if v > 0 else "-.inf"
        text = repr(v).lower()
        if "." not in text and "e" in text:
            text = text.replace("e", ".0e", 1)
        return text
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, dict):
        return "{%s}" % ", ".join("%s: %s" % (json.dumps(str(k), ensure_ascii=False), _yaml_flow(x)) for k, x in v.items())
    if isinstance(v, (list, tuple)):
        return "[%s]" % ", ".join(_yaml_flow(x) for x in v)
    return json.dumps(str(v), ensure_ascii=False)
