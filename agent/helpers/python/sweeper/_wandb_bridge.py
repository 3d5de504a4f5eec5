"""Reports a real ``wandb``'s runs to the Sweeper agent.

Installed by Sweeper's sitecustomize right after ``import wandb`` found an installed wandb
(only under an agent). It wraps methods of ``wandb.sdk.wandb_run.Run`` and changes nothing else:
each wrapper calls W&B's own method, so the run behaves exactly as W&B's does.

- ``Run.log``: after W&B's own, the call is replayed through W&B's step rules
  (sweeper._wandb_rows.History, W&B's warning left to W&B), and every committed row's numbers go
  to the agent as metrics while the run is going.
- ``Run.finish`` and ``Run.__exit__``: the open row is committed and reported, then W&B's own.
At interpreter exit, runs that were never finished have their open row reported too.
``Run.mark_preempting`` is left alone: committing the open row there would put the replayed
steps out of step with W&B's, and the agent has no preemption state a trial could report.

The config needs nothing: W&B loads the sweep's parameters from WANDB_SWEEP_PARAM_PATH itself,
and Sweeper already knows them.
"""

import atexit
import functools
import threading

from sweeper import _wandb_rows

_states = {}
_lock = threading.Lock()
_installed = False


class _RunState:
    def __init__(self):
        self.reporter = _wandb_rows.Reporter()
        self.history = _wandb_rows.History(self._on_row, warn=False)

    def _on_row(self, row, step):
        self.reporter.send(step, _wandb_rows.numeric_values(row))


def _state(run):
    with _lock:
        st = _states.get(id(run))
        if st is None:
            st = _states[id(run)] = _RunState()
        return st


def _commit(run):
    with _lock:
        st = _states.get(id(run))
    if st is not None:
        st.history.commit()


def install(wandb):
    global _installed
    if _installed or not getattr(wandb, "__file__", None):
        return
    from wandb.sdk import wandb_run  # noqa: the real package's module layout

    Run = wandb_run.Run
    _wrap(Run, "log", _after_log)
    _wrap(Run, "finish", _before_finish, before=True)
    _wrap(Run, "__exit__", _before_finish, before=True)
    atexit.register(_commit_all)
    _installed = True


def _wrap(cls, name, hook, before=False):
    original = cls.__dict__.get(name)
    if original is None or getattr(original, "_sweeper_wrapped", False):
        return

    if before:

        @functools.wraps(original)
        def wrapper(self, *args, **kwargs):
            _quietly(hook, self, args, kwargs)
            return original(self, *args, **kwargs)

    else:

        @functools.wraps(original)
        def wrapper(self, *args, **kwargs):
            result = original(self, *args, **kwargs)
            _quietly(hook, self, args, kwargs)
            return result

    wrapper._sweeper_wrapped = True
    setattr(cls, name, wrapper)


def _quietly(hook, run, args, kwargs):
    try:
        hook(run, args, kwargs)
    except Exception as err:  # reporting must never break the user's run
        _wandb_rows.termwarn("Sweeper could not report this call to the agent: %r" % (err,), once_key=("bridge", type(err)))


def _after_log(run, args, kwargs):
    data = args[0] if args else kwargs.get("data")
    step = args[1] if len(args) > 1 else kwargs.get("step")
    commit = args[2] if len(args) > 2 else kwargs.get("commit")
    if getattr(run, "_is_finished", False):
        return
    data, step = _wandb_rows.check_log_args(data, step, commit)
    _state(run).history.log(data, step, commit)


def _before_finish(run, args, kwargs):
    _commit(run)


def _commit_all():
    with _lock:
        states = list(_states.values())
    for st in states:
        try:
            st.history.commit()
        except Exception:
            pass
