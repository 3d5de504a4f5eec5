"""``wandb.Artifact`` backed by local files.

``run.log_artifact(a)`` copies the artifact's files into
``<WANDB_DIR>/wandb/artifacts/<name>/v<N>/`` (a new version each time, numbered as W&B does,
safe against parallel trials) with a ``manifest.json``; ``latest`` and the given aliases point
at it (``aliases.json``). ``run.use_artifact("name:alias")`` (or ``"entity/project/name:v3"``)
finds it there again, also from another trial of the agent, and ``download()`` returns its
folder (or copies it to ``root``). References (``add_reference``) are recorded, not fetched.
"""

import contextlib
import json
import os
import re
import shutil
import tempfile

from wandb.errors import Error


def artifacts_root(run):
    return os.path.join(run._wandb_root, "artifacts")


class ArtifactManifestEntry:
    def __init__(self, artifact, path, local_path=None, ref=None):
        self._artifact = artifact
        self.path = path
        self.local_path = local_path
        self.ref = ref

    def download(self, root=None, skip_cache=None):
        if self.local_path is None:
            raise Error("artifact entry %s is a reference (%s); Sweeper does not fetch references" % (self.path, self.ref))
        if root is None:
            return self.local_path
        dest = os.path.join(root, self.path)
        os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
        shutil.copyfile(self.local_path, dest)
        return dest

    def ref_target(self):
        return self.ref


class Artifact:
    def __init__(self, name, type, description=None, metadata=None, incremental=False, use_as=None):
        if not re.match(r"^[a-zA-Z0-9_\-.]+$", name or ""):
            raise ValueError("Artifact name may only contain alphanumeric characters, dashes, underscores, and dots. Invalid name: %r" % (name,))
        self._name = name
        self.type = type
        self.description = description
        self.metadata = dict(metadata or {})
        self.aliases = []
        self.version = None
        self._files = {}
        self._refs = {}
        self._staging = None
        self._dir = None

    # -- building -------------------------------------------------------------------------------

    @property
    def name(self):
        return self._name if self.version is None else "%s:%s" % (self._name, self.version)

    @property
    def source_name(self):
        return self.name

    @property
    def qualified_name(self):
        return self.name

    def _stage(self):
        if self._staging is None:
            self._staging = tempfile.mkdtemp(prefix="sweeper-artifact-")
        return self._staging

    def add_file(self, local_path, name=None, is_tmp=False, skip_cache=None, policy=None, overwrite=False):
        if not os.path.isfile(local_path):
            raise ValueError("Path is not a file: %s" % local_path)
        self._files[name or os.path.basename(local_path)] = os.path.abspath(local_path)
        return ArtifactManifestEntry(self, name or os.path.basename(local_path), os.path.abspath(local_path))

    def add_dir(self, local_path, name=None, skip_cache=None, policy=None, merge=None):
        if not os.path.isdir(local_path):
            raise ValueError("Path is not a directory: %s" % local_path)
        for dirpath, _, filenames in os.walk(local_path):
            for fn in filenames:
                full = os.path.join(dirpath, fn)
                rel = os.path.relpath(full, local_path).replace(os.sep, "/")
                self._files[(name.rstrip("/") + "/" + rel) if name else rel] = os.path.abspath(full)

    @contextlib.contextmanager
    def new_file(self, name, mode="x", encoding=None):
        path = os.path.join(self._stage(), name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, mode.replace("x", "w"), encoding=encoding if "b" not in mode else None) as f:
            yield f
        self._files[name] = path

    def add(self, obj, name, overwrite=False):
        from wandb.sdk.data_types._media import Table

        if not isinstance(obj, Table):
            raise ValueError("Sweeper's wandb module adds only Tables to artifacts with add(); use add_file")
        path = os.path.join(self._stage(), name + ".table.json")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            json.dump(obj._to_json(), f, default=str)
        self._files[name + ".table.json"] = path
        return ArtifactManifestEntry(self, name + ".table.json", path)

    def add_reference(self, uri, name=None, checksum=True, max_objects=None):
        self._refs[name or str(uri).rstrip("/").rsplit("/", 1)[-1]] = str(uri)

    def remove(self, item):
        self._files.pop(item, None)
        self._refs.pop(item, None)

    def save(self, project=None, settings=None):
        return self

    def wait(self, timeout=None):
        return self

    def finalize(self):
        pass

    def link(self, target_path, aliases=None):
        pass

    # -- reading --------------------------------------------------------------------------------

    @property
    def manifest(self):
        return {"entries": {**{k: {"path": v} for k, v in self._files.items()}, **{k: {"ref": v} for k, v in self._refs.items()}}}

    def files(self, names=None, per_page=50):
        return [ArtifactManifestEntry(self, k, v) for k, v in self._files.items() if names is None or k in names]

    def get_entry(self, name):
        if name in self._files:
            return ArtifactManifestEntry(self, name, self._files[name])
        if name in self._refs:
            return ArtifactManifestEntry(self, name, ref=self._refs[name])
        raise KeyError(name)

    get_path = get_entry

    def get(self, name):
        from wandb.sdk.data_types._media import Table

        path = self._files.get(name + ".table.json") or self._files.get(name)
        if path is None:
            return None
        if path.endswith(".table.json"):
            with open(path) as f:
                doc = json.load(f)
            return Table(columns=doc["columns"], data=doc["data"])
        return None

    def download(self, root=None, allow_missing_references=False, skip_cache=None, path_prefix=None):
        if self._dir is not None and root is None:
            return self._dir
        root = root or self._dir or self._stage()
        os.makedirs(root, exist_ok=True)
        for rel, src in self._files.items():
            if path_prefix and not rel.startswith(path_prefix):
                continue
            dest = os.path.join(root, rel)
            if os.path.abspath(dest) != os.path.abspath(src):
                os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
                shutil.copyfile(src, dest)
        return root

    def file(self, root=None):
        if len(self._files) != 1:
            raise ValueError("This method is only supported for artifacts with a single file.")
        rel = next(iter(self._files))
        return os.path.join(self.download(root), rel)

    def checkout(self, root=None):
        return self.download(root)

    def verify(self, root=None):
        pass

    def __repr__(self):
        return "<Artifact %s (%s)>" % (self.name, self.type)

    # -- storage --------------------------------------------------------------------------------

    def _log(self, run, aliases=None):
        """Copy the files into a new version folder; point `latest` and the aliases at it."""
        base = os.path.join(artifacts_root(run), self._name)
        os.makedirs(base, exist_ok=True)
        n = 0
        while True:
            target = os.path.join(base, "v%d" % n)
            try:
                os.mkdir(target)
                break
            except FileExistsError:
                n += 1
        for rel, src in list(self._files.items()):
            dest = os.path.join(target, rel)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            shutil.copyfile(src, dest)
            self._files[rel] = dest
        self.version = "v%d" % n
        self.aliases = ["latest"] + [a for a in (aliases or []) if a != "latest"]
        self._dir = target
        manifest = {
            "name": self._name,
            "version": self.version,
            "type": self.type,
            "description": self.description,
            "metadata": self.metadata,
            "files": sorted(self._files),
            "references": self._refs,
            "logged_by": run.id,
        }
        with open(os.path.join(target, "manifest.json.tmp"), "w") as f:
            json.dump(manifest, f, indent=2, default=str)
        os.replace(os.path.join(target, "manifest.json.tmp"), os.path.join(target, "manifest.json"))
        _set_aliases(base, self.aliases, self.version)
        if self._staging is not None:
            shutil.rmtree(self._staging, ignore_errors=True)
            self._staging = None
        return self

    @classmethod
    def _load(cls, run, spec, type=None):
        name, _, alias = spec.rsplit("/", 1)[-1].partition(":")
        alias = alias or "latest"
        base = os.path.join(artifacts_root(run), name)
        version = alias if re.match(r"^v\d+$", alias) else _read_aliases(base).get(alias)
        target = os.path.join(base, version or "", "manifest.json")
        if not version or not os.path.isfile(target):
            raise Error("artifact '%s' not found in %s (Sweeper's wandb module keeps artifacts locally)" % (spec, artifacts_root(run)))
        with open(target) as f:
            manifest = json.load(f)
        a = cls(name, manifest.get("type") or type or "unspecified", manifest.get("description"), manifest.get("metadata"))
        a.version = version
        a._dir = os.path.dirname(target)
        a._files = {rel: os.path.join(a._dir, rel) for rel in manifest.get("files", [])}
        a._refs = manifest.get("references", {})
        a.aliases = sorted(k for k, v in _read_aliases(base).items() if v == version)
        return a


def _read_aliases(base):
    try:
        with open(os.path.join(base, "aliases.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def _set_aliases(base, aliases, version):
    current = _read_aliases(base)
    for a in aliases:
        current[a] = version
    tmp = os.path.join(base, "aliases.json.%d.tmp" % os.getpid())
    with open(tmp, "w") as f:
        json.dump(current, f, indent=2)
    os.replace(tmp, os.path.join(base, "aliases.json"))
