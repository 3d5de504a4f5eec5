"""Sweeper's stand-in for the ``wandb`` package: W&B sweep scripts run unchanged under Sweeper.

Python finds this package only as a fallback, when the real ``wandb`` is not installed (see
Sweeper's sitecustomize.py, beside the ``compat`` folder this lives in); ``SWEEPER_WANDB=compat``
asks for it explicitly. No dependencies; Python 3.8+.

It implements what sweep scripts and the common integrations use, with W&B's semantics:
``wandb.init`` (every keyword; a context manager), ``wandb.config`` with the sweep's values
locked on top of the defaults, ``wandb.log`` with W&B's step rules, ``wandb.summary``,
``define_metric``, ``finish``, media and tables kept as files, artifacts kept locally, and the
import paths integrations check (``wandb.sdk``, ``wandb.wandb_run.Run``, ``wandb.errors``).
Under a Sweeper agent, the numbers each committed row holds go to the agent as metrics as they
are logged, through the same channel as the ``sweeper`` helper: early stopping and the
leaderboard see them while the trial runs. There is no W&B server: nothing is uploaded.
"""

__version__ = "0.19.0+sweeper"

from wandb import errors  # noqa: E402
from wandb.errors import CommError, Error, UsageError  # noqa: E402,F401
from wandb import env, util  # noqa: E402,F401
from wandb import sdk  # noqa: E402
from wandb.sdk import wandb_init as _wandb_init  # noqa: E402
from wandb.sdk.lib import preinit as _preinit  # noqa: E402
from wandb.sdk.wandb_settings import Settings  # noqa: E402,F401
from wandb.sdk.wandb_config import Config  # noqa: E402,F401
from wandb.sdk.wandb_summary import Summary  # noqa: E402,F401
from wandb.sdk.wandb_run import Run  # noqa: E402,F401
from wandb.sdk.artifacts.artifact import Artifact  # noqa: E402,F401
from wandb.sdk.data_types._media import (  # noqa: E402,F401
    Audio,
    BoundingBoxes2D,
    Classes,
    Graph,
    Histogram,
    Html,
    Image,
    ImageMask,
    JoinedTable,
    Molecule,
    Object3D,
    PartitionedTable,
    Plotly,
    Table,
)
from wandb import data_types, plot, wandb_run  # noqa: E402,F401
from wandb.apis import Api  # noqa: E402,F401

wandb_sdk = sdk
init = _wandb_init.init

run = None
config = _preinit.PreInitObject("wandb.config")
summary = _preinit.PreInitObject("wandb.summary")
log = _preinit.PreInitCallable("wandb.log")
define_metric = _preinit.PreInitCallable("wandb.define_metric")
mark_preempting = _preinit.PreInitCallable("wandb.mark_preempting")
log_artifact = _preinit.PreInitCallable("wandb.log_artifact")
use_artifact = _preinit.PreInitCallable("wandb.use_artifact")
link_artifact = _preinit.PreInitCallable("wandb.link_artifact")
log_code = _preinit.PreInitCallable("wandb.log_code")

patched = {"tensorboard": [], "keras": [], "gym": []}


def finish(exit_code=None, quiet=None):
    """Finish the current run, if any."""
    if run is not None:
        run.finish(exit_code=exit_code, quiet=quiet)


join = finish


def teardown(exit_code=None):
    finish(exit_code=exit_code)


def setup(settings=None):
    return None


def login(anonymous=None, key=None, relogin=None, host=None, force=None, timeout=None, verify=False, **kwargs):
    """Nothing to log in to: always succeeds."""
    return True


def save(glob_str=None, base_path=None, policy="live"):
    """Accepted and ignored (files the script writes into ``run.dir`` stay there anyway)."""
    return []


def restore(name, run_path=None, replace=False, root=None):
    return None


def watch(models=None, criterion=None, log="gradients", log_freq=1000, idx=None, log_graph=False):
    """Accepted and ignored: no gradients or parameters are recorded."""
    return None


def unwatch(models=None):
    return None


def alert(title, text, level=None, wait_duration=None):
    """Accepted and ignored: there is nobody to alert."""
    return None


def require(requirement=None, experiment=None):
    return None


def termlog(string="", newline=True, repeat=True, prefix=True):
    import sys

    sys.stderr.write(("wandb: " if prefix else "") + str(string) + ("\n" if newline else ""))


def termwarn(string, newline=True, repeat=True, prefix=True):
    from sweeper._wandb_rows import termwarn as _warn

    _warn(str(string), once_key=None if repeat else ("termwarn", str(string)))


def termerror(string, newline=True, repeat=True, prefix=True):
    import sys

    sys.stderr.write("wandb: ERROR " + str(string) + ("\n" if newline else ""))


def termsetup(settings, logger):
    pass


def sweep(sweep, entity=None, project=None, prior_runs=None):
    """Create a sweep on the Sweeper controller named by SWEEPER_CONTROLLER (see sweeper._wandb_agent)."""
    from sweeper import _wandb_agent

    return _wandb_agent.create_sweep(sweep, entity=entity, project=project)


def agent(sweep_id, function=None, entity=None, project=None, count=None):
    """Run ``function`` for trials of a Sweeper sweep in this process (see sweeper._wandb_agent)."""
    from sweeper import _wandb_agent

    return _wandb_agent.run_agent(sweep_id, function=function, count=count)


def controller(sweep_id_or_config=None, entity=None, project=None):
    raise UsageError("wandb.controller() drives W&B's local controller; with Sweeper the controller is 'sweeper server'")
