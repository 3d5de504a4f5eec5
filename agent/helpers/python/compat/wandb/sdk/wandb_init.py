"""``wandb.init``: starts a Run, with W&B's rules for a sweep's config.

Under a Sweeper agent (WANDB_SWEEP_ID set), as under ``wandb agent``:
- the config is ``config-defaults.yaml`` (when PyYAML is installed), then ``init(config=...)``,
  then the sweep's parameters on top, merged into nested defaults and locked;
- ``project``, ``entity`` and ``id`` are ignored with W&B's warning; the run id is WANDB_RUN_ID,
  Sweeper's trial id.
Every keyword ``wandb.init`` takes is accepted. ``mode`` changes nothing here: there is no
server to be online or offline with, and the run reports to Sweeper in every mode.
"""

import atexit
import json
import os
import sys

import wandb
from sweeper._wandb_rows import termwarn
from wandb.sdk.lib import config_util
from wandb.sdk.wandb_config import parse_config
from wandb.sdk.wandb_settings import Settings

_runs = []
_atexit_installed = False
_exit_code = [0]


def init(
    entity=None,
    project=None,
    dir=None,
    id=None,
    name=None,
    notes=None,
    tags=None,
    config=None,
    config_exclude_keys=None,
    config_include_keys=None,
    allow_val_change=None,
    group=None,
    job_type=None,
    mode=None,
    force=None,
    anonymous=None,
    reinit=None,
    resume=None,
    resume_from=None,
    fork_from=None,
    save_code=None,
    tensorboard=None,
    sync_tensorboard=None,
    monitor_gym=None,
    settings=None,
    **kwargs
):
    from wandb.sdk.wandb_run import Run

    if isinstance(settings, dict):
        settings = Settings(**settings)
    settings = settings or Settings()

    active = wandb.run
    if active is not None and not active._finished:
        how = _reinit_mode(reinit if reinit is not None else settings.reinit)
        if how == "return_previous":
            return active
        if how == "finish_previous":
            active.finish()

    env = os.environ
    sweep_id = env.get("WANDB_SWEEP_ID") or env.get("SWEEPER_SWEEP_ID") or None
    if sweep_id:
        for key, value in (("project", project), ("entity", entity), ("id", id)):
            if value:
                termwarn("Ignored wandb.init() arg %s when running a sweep" % key)
        project, entity, id = None, None, None
    run_id = id or env.get("WANDB_RUN_ID") or env.get("SWEEPER_TRIAL_ID") or wandb.util.generate_id()

    merged = {}
    defaults = config_util.dict_from_config_file("config-defaults.yaml")
    if defaults:
        merged.update(defaults)
    for extra in (env.get("WANDB_CONFIG_PATHS") or "").split(","):
        if extra.strip():
            merged.update(config_util.dict_from_config_file(extra.strip()) or {})
    if config is not None:
        merged.update(parse_config(config, exclude=config_exclude_keys, include=config_include_keys))

    root = dir or settings.dir or settings.root_dir or env.get("WANDB_DIR") or os.getcwd()
    mode = mode or settings.mode or env.get("WANDB_MODE") or "online"
    if env.get("WANDB_DISABLED", "").lower() in ("true", "1", "yes"):
        mode = "disabled"
    if isinstance(tags, str):
        tags = (tags,)
    if tags is None and env.get("WANDB_TAGS"):
        tags = tuple(t for t in env["WANDB_TAGS"].split(",") if t)

    run = Run(
        run_id=run_id,
        name=name or env.get("WANDB_NAME") or run_id,
        project=project or env.get("WANDB_PROJECT") or "uncategorized",
        entity=entity or env.get("WANDB_ENTITY"),
        group=group or env.get("WANDB_RUN_GROUP"),
        job_type=job_type or env.get("WANDB_JOB_TYPE"),
        tags=tags,
        notes=notes or env.get("WANDB_NOTES"),
        sweep_id=sweep_id,
        root_dir=os.path.abspath(root),
        mode=mode,
        config=merged,
        sweep_config=_sweep_config() if sweep_id else None,
        allow_val_change=allow_val_change,
        settings=settings,
    )
    _runs.append(run)
    _set_globals(run)
    _install_exit_hooks()
    if not (settings.silent or env.get("WANDB_SILENT", "").lower() in ("true", "1", "yes") or settings.quiet):
        why = "SWEEPER_WANDB=compat" if env.get("SWEEPER_WANDB", "").strip().lower() == "compat" else "the wandb package is not installed"
        sys.stderr.write("wandb: Sweeper's wandb compatibility module (%s): run %s, files in %s\n" % (why, run.id, run._run_dir))
    return run


def _reinit_mode(reinit):
    if reinit is True:
        return "finish_previous"
    if reinit in (None, False, "default", "return_previous"):
        return "return_previous"
    if reinit in ("finish_previous", "create_new"):
        return reinit
    raise wandb.errors.UsageError("Invalid reinit setting: %r" % (reinit,))


def _sweep_config():
    """The trial's parameters: SWEEPER_PARAMS (floats kept as floats), else W&B's parameter file."""
    raw = os.environ.get("SWEEPER_PARAMS")
    if raw:
        return json.loads(raw)
    path = os.environ.get("WANDB_SWEEP_PARAM_PATH")
    if path:
        return config_util.dict_from_config_file(path, must_exist=True) or {}
    return {}


def _set_globals(run):
    wandb.run = run
    wandb.config = run.config
    wandb.summary = run.summary
    for name in ("log", "define_metric", "mark_preempting", "log_artifact", "use_artifact", "link_artifact", "log_code"):
        setattr(wandb, name, getattr(run, name))


def _unset_globals():
    from wandb.sdk.lib import preinit

    wandb.run = None
    wandb.config = preinit.PreInitObject("wandb.config")
    wandb.summary = preinit.PreInitObject("wandb.summary")
    for name in ("log", "define_metric", "mark_preempting", "log_artifact", "use_artifact", "link_artifact", "log_code"):
        setattr(wandb, name, preinit.PreInitCallable("wandb.%s" % name))


def _finished(run):
    if run in _runs:
        _runs.remove(run)
    if wandb.run is run:
        if _runs:
            _set_globals(_runs[-1])
        else:
            _unset_globals()


def _install_exit_hooks():
    global _atexit_installed
    if _atexit_installed:
        return
    _atexit_installed = True
    previous = sys.excepthook

    def excepthook(exc_type, exc, tb):
        _exit_code[0] = 255 if issubclass(exc_type, KeyboardInterrupt) else 1
        previous(exc_type, exc, tb)

    sys.excepthook = excepthook
    atexit.register(_finish_all)


def _finish_all():
    """At exit, as W&B does: every unfinished run is finished (its open row committed)."""
    for run in list(_runs):
        try:
            run.finish(exit_code=_exit_code[0])
        except Exception:
            pass
