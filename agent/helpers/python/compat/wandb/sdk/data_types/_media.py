"""W&B's media and table types, kept as files where that is cheap.

What ``wandb.log`` keeps in the run's folder (``<run.dir>/media/...``) and what it ignores:

- Image: a file path is copied; a PIL image is saved as PNG; a matplotlib figure is saved with
  ``savefig``; a numpy array or tensor is saved as PNG when PIL and numpy are installed (W&B's
  normalisation: floats in [0, 1] are scaled to 0-255). Captions are kept in the reference.
- Table: written as ``<key>_<step>_<n>.table.json`` (``{"columns": [...], "data": [[...]]}``), also
  from a pandas DataFrame.
- Histogram: its counts and bin edges go into the history file (no file).
- Html: the text is written as ``.html`` (a path is copied).
- Audio, Video, Object3D, Molecule: a file path is copied; arrays and other data are ignored.
- Plotly, Graph, plots from ``wandb.plot``: a plot made from a Table writes the table; others are
  ignored.
Nothing here ever raises from ``wandb.log``: a value that cannot be kept is left out of the files.
"""

import json
import os
import shutil

from wandb.sdk.data_types.base_types.wb_value import Media, WBValue

__all__ = [
    "WBValue",
    "Media",
    "Image",
    "Table",
    "Histogram",
    "Audio",
    "Video",
    "Html",
    "Object3D",
    "Molecule",
    "Plotly",
    "Graph",
    "Classes",
    "BoundingBoxes2D",
    "ImageMask",
    "JoinedTable",
    "PartitionedTable",
]


def _media_path(run, kind, key, step, ext):
    safe_key = "/".join(p for p in str(key).replace("\\", "/").split("/") if p not in ("", ".", ".."))
    n = run._next_media_number()
    rel = os.path.join("media", kind, "%s_%d_%d%s" % (safe_key or "value", step, n, ext))
    full = os.path.join(run.dir, rel)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    return rel, full


def _copy(run, kind, key, step, src):
    ext = os.path.splitext(src)[1]
    rel, full = _media_path(run, kind, key, step, ext)
    shutil.copyfile(src, full)
    return rel


class _PathMedia(Media):
    _kind = "media"
    _log_type = "file"

    def __init__(self, data_or_path=None, caption=None, **kwargs):
        self._data = data_or_path
        self._caption = caption
        self._extra = kwargs

    def _save(self, run, key, step):
        if isinstance(self._data, (str, os.PathLike)) and os.path.isfile(self._data):
            ref = {"_type": self._log_type, "path": _copy(run, self._kind, key, step, os.fspath(self._data))}
            if self._caption is not None:
                ref["caption"] = self._caption
            return ref
        return None


class Image(_PathMedia):
    _kind = "images"
    _log_type = "image-file"

    def __init__(self, data_or_path=None, mode=None, caption=None, grouping=None, classes=None, boxes=None, masks=None, file_type=None, normalize=True):
        super().__init__(data_or_path, caption)
        self._mode = mode
        self._normalize = normalize

    def _save(self, run, key, step):
        ref = super()._save(run, key, step)
        if ref is not None:
            return ref
        data = self._data
        rel, full = None, None
        if hasattr(data, "savefig"):
            rel, full = _media_path(run, "images", key, step, ".png")
            data.savefig(full)
        elif hasattr(data, "save") and hasattr(data, "size") and hasattr(data, "mode"):
            rel, full = _media_path(run, "images", key, step, ".png")
            data.save(full, format="PNG")
        else:
            pil = _array_to_pil(data, self._mode, self._normalize)
            if pil is not None:
                rel, full = _media_path(run, "images", key, step, ".png")
                pil.save(full, format="PNG")
        if rel is None:
            return None
        ref = {"_type": "image-file", "path": rel, "format": "png"}
        if self._caption is not None:
            ref["caption"] = self._caption
        return ref


def _array_to_pil(data, mode, normalize):
    try:
        import numpy as np
        from PIL import Image as PILImage
    except ImportError:
        return None
    if hasattr(data, "detach") and hasattr(data, "cpu"):
        data = data.detach().cpu().numpy()
        if data.ndim == 3 and data.shape[0] in (1, 3, 4):
            data = data.transpose(1, 2, 0)
    arr = np.asarray(data)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3):
        return None
    if normalize and arr.dtype.kind == "f":
        if arr.min() >= 0 and arr.max() <= 1:
            arr = arr * 255
        arr = np.clip(arr, 0, 255)
    return PILImage.fromarray(arr.astype(np.uint8), mode=mode)


class Table(Media):
    _log_type = "table-file"

    def __init__(self, columns=None, data=None, rows=None, dataframe=None, dtype=None, optional=True, allow_mixed_types=False, log_mode=None):
        if dataframe is not None:
            columns = [str(c) for c in dataframe.columns]
            data = dataframe.values.tolist()
        data = data if data is not None else rows
        data = [list(r) for r in (data or [])]
        if columns is None:
            columns = ["Column %d" % (i + 1) for i in range(len(data[0]))] if data else []
        self.columns = list(columns)
        self.data = data

    def add_data(self, *row):
        if len(row) != len(self.columns):
            raise ValueError("This table expects %d columns: %s, found %d" % (len(self.columns), self.columns, len(row)))
        self.data.append(list(row))

    def add_column(self, name, data, optional=False):
        if self.data and len(data) != len(self.data):
            raise ValueError("Expected length %d, found %d" % (len(self.data), len(data)))
        self.columns.append(name)
        if not self.data:
            self.data = [[v] for v in data]
        else:
            for row, v in zip(self.data, data):
                row.append(v)

    def get_column(self, name, convert_to=None):
        i = self.columns.index(name)
        return [row[i] for row in self.data]

    def get_index(self):
        return list(range(len(self.data)))

    def iterrows(self):
        for i, row in enumerate(self.data):
            yield i, row

    def _to_json(self):
        return {"columns": self.columns, "data": self.data}

    def _save(self, run, key, step):
        rel, full = _media_path(run, "table", key, step, ".table.json")
        with open(full, "w") as f:
            json.dump(self._to_json(), f, default=_json_default)
        return {"_type": "table-file", "path": rel, "ncols": len(self.columns), "nrows": len(self.data)}


def _json_default(obj):
    if isinstance(obj, WBValue):
        return {"_type": type(obj).__name__}
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    return str(obj)


class JoinedTable(Media):
    def __init__(self, table1, table2, join_key):
        self._tables = (table1, table2, join_key)


class PartitionedTable(Media):
    def __init__(self, parts_path):
        self._parts_path = parts_path


class Histogram(WBValue):
    _log_type = "histogram"
    MAX_LENGTH = 512

    def __init__(self, sequence=None, np_histogram=None, num_bins=64):
        if np_histogram is not None:
            counts, bins = np_histogram
            self.histogram = [float(c) if not float(c).is_integer() else int(c) for c in _tolist(counts)]
            self.bins = [float(b) for b in _tolist(bins)]
            return
        values = [float(v) for v in _flat(sequence)]
        try:
            import numpy as np

            counts, bins = np.histogram(values, bins=num_bins)
            self.histogram, self.bins = [int(c) for c in counts], [float(b) for b in bins]
            return
        except ImportError:
            pass
        lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
        if lo == hi:
            lo, hi = lo - 0.5, hi + 0.5
        width = (hi - lo) / num_bins
        self.bins = [lo + i * width for i in range(num_bins)] + [hi]
        self.histogram = [0] * num_bins
        for v in values:
            self.histogram[min(int((v - lo) / width), num_bins - 1)] += 1

    def _save(self, run, key, step):
        return {"_type": "histogram", "values": self.histogram, "bins": self.bins}


def _tolist(x):
    return x.tolist() if hasattr(x, "tolist") else list(x)


def _flat(seq):
    if hasattr(seq, "detach") and hasattr(seq, "cpu"):
        seq = seq.detach().cpu().numpy()
    if hasattr(seq, "ravel"):
        return seq.ravel().tolist()
    out = []
    for v in seq:
        if isinstance(v, (list, tuple)):
            out.extend(_flat(v))
        else:
            out.append(v)
    return out


class Audio(_PathMedia):
    _kind = "audio"
    _log_type = "audio-file"

    def __init__(self, data_or_path, sample_rate=None, caption=None):
        super().__init__(data_or_path, caption)


class Video(_PathMedia):
    _kind = "videos"
    _log_type = "video-file"

    def __init__(self, data_or_path, caption=None, fps=None, format=None):
        super().__init__(data_or_path, caption)


class Object3D(_PathMedia):
    _kind = "object3D"
    _log_type = "object3D-file"

    def __init__(self, data_or_path, caption=None, **kwargs):
        super().__init__(data_or_path, caption)


class Molecule(_PathMedia):
    _kind = "molecule"
    _log_type = "molecule-file"

    def __init__(self, data_or_path, caption=None, **kwargs):
        super().__init__(data_or_path, caption)


class Html(Media):
    _log_type = "html-file"

    def __init__(self, data, inject=True, data_is_not_path=False):
        self._path = None
        self._html = None
        if hasattr(data, "read"):
            self._html = data.read()
        elif isinstance(data, (str, os.PathLike)) and not data_is_not_path and os.path.isfile(data):
            self._path = os.fspath(data)
        else:
            self._html = str(data)

    def _save(self, run, key, step):
        if self._path is not None:
            return {"_type": "html-file", "path": _copy(run, "html", key, step, self._path)}
        rel, full = _media_path(run, "html", key, step, ".html")
        with open(full, "w", encoding="utf-8") as f:
            f.write(self._html)
        return {"_type": "html-file", "path": rel}


class Plotly(Media):
    _log_type = "plotly-file"

    def __init__(self, val):
        self._val = val


class Graph(Media):
    def __init__(self, format="keras"):
        self.format = format


class Classes(Media):
    def __init__(self, class_set):
        self._class_set = class_set


class BoundingBoxes2D(Media):
    def __init__(self, val, key):
        self._val = val


class ImageMask(Media):
    def __init__(self, val, key):
        self._val = val
