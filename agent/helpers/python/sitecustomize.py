"""Sweeper's start-up hook for Python trials.

This folder is on PYTHONPATH under a Sweeper agent (and wherever you put it yourself:
``PYTHONPATH=$(sweeper python-path) python notebook.py``), so Python imports this module at
start-up. It does three small things and imports nothing heavy:

1. Makes Sweeper's ``wandb`` compatibility module importable as a *fallback*. The module lives in
   ``compat/`` beside this file, and that folder is appended to the END of ``sys.path``.
   Why not simply put ``compat/`` on PYTHONPATH? PYTHONPATH entries come before site-packages,
   so the compatibility module would shadow a real ``wandb`` the user installed. A ``.pth`` file
   cannot do it either: Python reads those only in site-packages folders, never in PYTHONPATH
   ones. A sitecustomize runs after site-packages (and the user site, and ``.pth`` files) are on
   ``sys.path``, so appending here puts the fallback after every installed package: an
   installed ``wandb`` always wins. ``SWEEPER_WANDB=compat`` asks for the compatibility module
   explicitly (it then goes first); ``SWEEPER_WANDB=off`` turns all of this off.

2. Under an agent (SWEEPER_METRICS_FD set), when ``import wandb`` finds a real ``wandb``, wraps
   its loader so that right after the package is imported, ``sweeper._wandb_bridge`` wraps
   ``Run.log``, ``Run.finish`` and ``Run.__exit__``: the run still works as W&B's, and what it
   logs is also reported to the agent. Nothing else is imported until then.

3. Chains to the sitecustomize this one shadows (the next one on ``sys.path``, such as a
   distribution's), so adding this folder never takes away what another one did.
"""

import os
import sys


def _sweeper_start():
    here = os.path.dirname(os.path.abspath(__file__))
    seen = sys.__dict__.setdefault("_sweeper_site_dirs", [])
    first_time = not seen
    seen.append(here)
    if first_time:
        choice = os.environ.get("SWEEPER_WANDB", "").strip().lower()
        if choice != "off":
            compat = os.path.join(here, "compat")
            if choice == "compat":
                sys.path.insert(0, compat)
            elif compat not in sys.path:
                sys.path.append(compat)
            if choice != "compat" and os.environ.get("SWEEPER_METRICS_FD"):
                sys.meta_path.insert(0, _RealWandbFinder(compat))
    return seen


class _RealWandbFinder:
    """Finds ``wandb`` with the other finders; when it is not Sweeper's, wraps its loader."""

    def __init__(self, compat):
        self._compat = os.path.normcase(compat) + os.sep

    def find_spec(self, name, path=None, target=None):
        if name != "wandb":
            return None
        spec = None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec = find(name, path, target)
            if spec is not None:
                break
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        if os.path.normcase(spec.origin or "").startswith(self._compat):
            return spec
        spec.loader = _ReportingLoader(spec.loader)
        return spec


class _ReportingLoader:
    """Delegates everything to the real loader; after exec_module, installs the bridge."""

    def __init__(self, inner):
        self._inner = inner

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def create_module(self, spec):
        create = getattr(self._inner, "create_module", None)
        return create(spec) if create else None

    def exec_module(self, module):
        self._inner.exec_module(module)
        try:
            from sweeper import _wandb_bridge

            _wandb_bridge.install(module)
        except Exception as err:  # never break the user's import over reporting
            sys.stderr.write("sweeper: not reporting wandb.log to the agent: %r\n" % (err,))


def _sweeper_chain(seen):
    """Run the sitecustomize that the first Sweeper folder on sys.path hides, if any."""
    import importlib.machinery
    import importlib.util

    skip = {os.path.normcase(d) for d in seen}
    rest = [p for p in sys.path if os.path.normcase(os.path.abspath(p or os.curdir)) not in skip]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    # The shadowed module takes this one's place, as if Python had imported it itself.
    sys.modules["sitecustomize"] = module
    spec.loader.exec_module(module)


try:
    _seen = _sweeper_start()
except Exception as _err:  # a broken hook must not stop the interpreter
    sys.stderr.write("sweeper: sitecustomize failed: %r\n" % (_err,))
    _seen = [os.path.dirname(os.path.abspath(__file__))]
_sweeper_chain(_seen)
