"""A sweep's output directory: atomic chunk and manifest files, and lazy labelled reading.

Layout (see :mod:`her2sim.sweep.sweep`)::

    manifest.json            what the sweep is (spec, axes, readouts, digest) and its runs
    samples.npy              the sample block's parameter values (if any), one row per sample
    chunks/chunk_0000012.npz readouts (B, R), status (B,), messages of failed members

Every file is written to a temporary name, flushed, fsynced and renamed (:func:`atomic_write`), so
a crash leaves either the whole file or none. :func:`open_sweep` reads the directory back as an
:class:`xarray.Dataset` whose values are loaded from the chunk files only when indexed.
"""

from __future__ import annotations

import json
import os
import sys
import time
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np

from ..io.atomic import atomic_path, atomic_write
from ..solvers.status import Status
from ..errors import DamagedManifestError, SweepDirectoryError
from ..model.network import Network
from .spec import SweepSpec

#: per-condition status codes stored in a sweep: :class:`her2sim.Status` 0-9 (0-4 are
#: the batch integrator's; sweeps run on it only, so the scipy path's ``failed`` never occurs)
STATUS_CODES = {int(o): o.label for o in Status if o <= Status.NOT_RUN}
OK, PREEQUILIBRATION, NO_STEADY_STATE, READOUT_NOT_FINITE, CHUNK_FAILED, NOT_RUN = (
    int(Status.OK), int(Status.PREEQUILIBRATION), int(Status.NO_STEADY_STATE), int(Status.READOUT_NOT_FINITE),
    int(Status.CHUNK_FAILED), int(Status.NOT_RUN))
MANIFEST = "manifest.json"
SAMPLES = "samples.npy"


def chunk_path(out: Path, chunk: int, failed: bool = False) -> Path:
    return out / "chunks" / f"chunk_{chunk:07d}{'.failed' if failed else ''}.npz"


def write_chunk(out: Path, result, digest: str) -> None:
    index = np.array(sorted(result.messages), dtype=np.int64)
    meta = {"chunk": result.chunk, "lo": result.lo, "hi": result.hi, "spec_digest": digest, "failed": result.failed,
            "attempts": result.attempts, "wall_time_s": result.wall_time_s, "steps": result.steps,
            "certificate": getattr(result, "certificate", None)}
    path = chunk_path(out, result.chunk, result.failed)
    atomic_write(path, clean=False, write=lambda f: np.savez(
        f, values=result.values, status=result.status, message_index=index,
        message_text=np.array([result.messages[i] for i in index], dtype=str), meta=np.array(json.dumps(meta))))
    if not result.failed:
        chunk_path(out, result.chunk, True).unlink(missing_ok=True)


def finished_chunks(out: Path) -> set[int]:
    """Chunks with a finished (not failed) file; only the directory listing is read."""
    folder = out / "chunks"
    if not folder.is_dir():
        return set()
    return {int(e.name[6:-4]) for e in os.scandir(folder)
            if e.name.startswith("chunk_") and e.name.endswith(".npz") and ".failed" not in e.name}


def load_chunk(path: Path, keys=("values", "status", "message_index", "message_text")) -> dict:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in keys}


def merge_certificates(parts, lo: int) -> dict | None:
    """One chunk's accuracy certificate from the batch runs in it: ``parts`` is a list of
    (certificate or None, chunk-relative member indices of that run); member indices become
    sweep-wide (``lo +``)."""
    parts = [(c, sel) for c, sel in parts if c is not None]
    if not parts:
        return None
    errors = [e for c, _ in parts for e in c["per_member"]]
    return {"max_rel_error": max(errors) if errors else None,
            "members": [int(lo + sel[i]) for c, sel in parts for i in c["members"]],
            "per_member": errors, "reference": parts[0][0]["reference"], "measure": parts[0][0]["measure"],
            "seconds": sum(c["seconds"] for c, _ in parts)}


def accuracy_summary(out: Path, chunks) -> dict:
    """The sweep's accuracy certificate (manifest ``summary.accuracy``): the largest certified
    error over the finished ``chunks`` (None if no member was checked) and how many members it
    rests on."""
    worst, members, seconds, how = None, 0, 0.0, None
    for c in chunks:
        cert = json.loads(str(load_chunk(chunk_path(out, c), ("meta",))["meta"])).get("certificate")
        if not cert or not cert["per_member"]:
            continue
        worst = cert["max_rel_error"] if worst is None else max(worst, cert["max_rel_error"])
        members += len(cert["members"])
        seconds += cert["seconds"]
        how = how or {"reference": cert["reference"], "measure": cert["measure"]}
    return {"max_rel_error": worst, "members_checked": members, "chunks": len(chunks), "seconds": seconds,
            **(how or {})}


def _certified(manifest: dict) -> float:
    """The manifest's certified error (NaN if none yet: a NetCDF attribute cannot be None)."""
    value = ((manifest.get("summary") or {}).get("accuracy") or {}).get("max_rel_error")
    return float("nan") if value is None else float(value)


def read_manifest(out_dir: str | Path) -> dict:
    """The manifest of a sweep directory (raises SweepDirectoryError if there is none, or if it
    is damaged: not JSON, not a her2sim sweep manifest)."""
    path = Path(out_dir) / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SweepDirectoryError(f"{out_dir}: no {MANIFEST}: not a her2sim sweep directory (or the sweep never "
                                  "started)") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise DamagedManifestError(f"{path} is damaged ({type(exc).__name__}: {exc}); with --resume and the same "
                                   "spec it is rebuilt from the spec and the chunk files") from None
    keys = {"format", "spec_digest", "chunk", "n_chunks", "n_conditions", "runs"}
    if not isinstance(manifest, dict) or not keys <= set(manifest) or manifest.get("format") != "her2sim-sweep":
        raise DamagedManifestError(f"{path} is damaged or not a her2sim sweep manifest (missing "
                                   f"{sorted(keys - set(manifest)) if isinstance(manifest, dict) else 'everything'}); "
                                   "with --resume and the same spec it is rebuilt from the spec and the chunk files")
    return manifest


def verify_chunks(out: Path, spec: SweepSpec, chunks) -> tuple[dict, dict]:
    """Open each finished chunk file of ``chunks`` and check it against ``spec`` (readable, the
    spec's digest, the right number of conditions and readouts).

    Returns ({chunk: status array} of the good ones, {chunk: reason} of the damaged ones); a
    damaged file is renamed to ``*.npz.damaged`` so that the chunk runs again.
    """
    good, damaged = {}, {}
    for c in sorted(chunks):
        path = chunk_path(out, c)
        lo, hi = spec.chunk_bounds(c)
        try:
            if not zipfile.is_zipfile(path):
                raise ValueError("not an .npz archive (truncated or overwritten)")
            z = load_chunk(path, ("values", "status", "meta"))
            meta = json.loads(str(z["meta"]))
            if meta.get("spec_digest") != spec.digest:
                raise ValueError("it belongs to a different spec")
            if z["values"].shape != (hi - lo, len(spec.readouts)) or z["status"].shape != (hi - lo,):
                raise ValueError(f"shape {z['values'].shape}, expected {(hi - lo, len(spec.readouts))}")
            good[c] = z["status"]
        except Exception as exc:  # any unreadable content: BadZipFile, KeyError, ValueError, OSError, EOFError
            damaged[c] = f"{type(exc).__name__}: {str(exc)[:120]}"
            try:
                os.replace(path, path.with_name(path.name + ".damaged"))
            except OSError:
                pass
    return good, damaged


def write_manifest(out: Path, manifest: dict) -> None:
    text = json.dumps(manifest, indent=1).encode()
    atomic_write(out / MANIFEST, lambda f: f.write(text))


def readout_units(spec: SweepSpec, network: Network) -> list[str]:
    units = []
    for r in spec.readouts:
        u = (network.observable_units[network.observable_names.index(r.target)]
             if r.target in network.observable_names
             else network.species_units[network.species_names.index(r.target)])
        units.append(("h" if u == "dimensionless" else f"{u}*h") if r.kind == "auc" else u)
    return units


def new_manifest(spec: SweepSpec, network: Network) -> dict:
    from .. import __version__

    axes = []
    for a in spec.axes:
        axes.append({"name": a.name, "kind": a.kind, "size": a.size, "values": list(a.values), "unit": a.unit,
                     "relative": a.relative, "sets": [list(s) for s in a.sets]})
    readouts = [{"name": r.label, "kind": r.kind, "target": r.target, "t0": r.t0, "t1": r.t1, "unit": u}
                for r, u in zip(spec.readouts, readout_units(spec, network))]
    samples = None
    if spec.samples is not None:
        s = spec.samples
        samples = {"file": SAMPLES, "method": s.method, "n": s.n, "seed": s.seed,
                   "parameters": [{"name": p.name, "low": p.low, "high": p.high, "scale": p.scale,
                                   "relative": p.relative, "unit": p.unit} for p in s.parameters]}
    return {"format": "her2sim-sweep", "version": 1, "name": spec.name, "description": spec.description,
            "spec_digest": spec.digest, "spec": spec.canonical(), "spec_source": spec.source, "spec_text": spec.text,
            "her2sim_version": __version__, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "n_conditions": spec.n_conditions, "chunk": spec.chunk, "n_chunks": spec.n_chunks,
            "dims": list(spec.dims), "shape": list(spec.shape), "axes": axes, "samples": samples,
            "readouts": readouts, "status_codes": {str(k): v for k, v in STATUS_CODES.items()},
            "state": "running", "runs": []}


def write_samples(out: Path, spec: SweepSpec, block_rows: int = 65536) -> None:
    """samples.npy, written in blocks (memory O(block_rows * d)) through a memory map."""
    path = out / SAMPLES
    if spec.samples is None:
        return
    s = spec.samples
    if path.exists():  # a resumed sweep: keep it only if it is whole
        try:
            ok = np.load(path, mmap_mode="r").shape == (s.size, len(s.parameters))
        except (OSError, ValueError, EOFError):
            ok = False
        if ok:
            return
        print(f"her2sim sweep: {path} is damaged; it is written again from the spec", file=sys.stderr)
    d = len(s.parameters)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:  # plain writes, no memory map: a full disk is
        np.lib.format.write_array_header_1_0(f, {"descr": "<f8", "fortran_order": False,  # an OSError, not SIGBUS
                                                 "shape": (s.size, d)})
        for lo in range(0, s.size, block_rows):
            hi = min(s.size, lo + block_rows)
            f.write(np.ascontiguousarray(s.points(np.arange(lo, hi)), dtype="<f8").tobytes())
        f.flush()


# ----------------------------------------------------------------------------- reading
class _ChunkStore:
    """Gathers values of any conditions from the chunk files, loading each needed chunk once
    (a few recent chunks are kept); conditions of missing chunks read as NaN / not_run."""

    def __init__(self, out: Path, manifest: dict, keep: int = 8):
        self.out, self.chunk, self.n = out, int(manifest["chunk"]), int(manifest["n_conditions"])
        self.n_readouts = len(manifest["readouts"])
        self.keep = keep
        self._cache: OrderedDict = OrderedDict()

    def _chunk(self, c: int):
        if c in self._cache:
            self._cache.move_to_end(c)
            return self._cache[c]
        for failed in (False, True):
            path = chunk_path(self.out, c, failed)
            if path.exists():
                data = load_chunk(path)
                self._cache[c] = data
                if len(self._cache) > self.keep:
                    self._cache.popitem(last=False)
                return data
        return None

    def gather(self, column, flat: np.ndarray) -> np.ndarray:
        if column == "status":
            out = np.full(flat.shape, NOT_RUN, dtype=np.int8)
        elif column == "message":
            out = np.empty(flat.shape, dtype=object)
            out[...] = ""
        else:
            out = np.full(flat.shape, np.nan)
        if not flat.size:
            return out
        chunks = flat // self.chunk
        for c in np.unique(chunks):
            sel = chunks == c
            data = self._chunk(int(c))
            local = flat[sel] - c * self.chunk
            if data is None:
                if column == "message":
                    out[sel] = f"not run: chunk {c} has no file (rerun the sweep with --resume)"
                continue
            if column == "status":
                out[sel] = data["status"][local]
            elif column == "message":
                texts = np.empty(len(data["status"]), dtype=object)
                texts[...] = ""
                texts[data["message_index"]] = data["message_text"].astype(object)
                out[sel] = texts[local]
            else:
                out[sel] = data["values"][local, column]
        return out


def _lazy_array(store: _ChunkStore, column, shape: tuple, dtype):
    from xarray.backends import BackendArray
    from xarray.core import indexing

    class _SweepArray(BackendArray):
        def __init__(self):
            self.shape, self.dtype = shape, np.dtype(dtype)

        def __getitem__(self, key):
            return indexing.explicit_indexing_adapter(key, self.shape, indexing.IndexingSupport.OUTER, self._get)

        def _get(self, key: tuple):
            parts, drop = [], []
            for axis, (k, n) in enumerate(zip(key, self.shape)):
                if isinstance(k, slice):
                    parts.append(np.arange(n)[k])
                elif np.ndim(k) == 0:
                    parts.append(np.array([int(k)]))
                    drop.append(axis)
                else:
                    parts.append(np.asarray(k, dtype=np.int64))
            flat = np.ravel_multi_index(np.ix_(*parts), self.shape) if self.shape else np.zeros((), dtype=np.int64)
            out = store.gather(column, np.asarray(flat))
            return out.squeeze(axis=tuple(drop)) if drop else out

    return indexing.LazilyIndexedArray(_SweepArray())


def open_sweep(out_dir: str | Path):
    """The readouts of a sweep as an :class:`xarray.Dataset`, loaded lazily chunk by chunk.

    Dimensions are the sweep's axes in order: ``variant`` (labels of the variant sets), one per
    drug (doses in nM), one per parameter grid, ``sample`` (with one coordinate per sampled
    parameter). Data variables: one per readout (attrs: kind, target, times, unit), ``status``
    (int8, ``flag_meanings`` as in :data:`STATUS_CODES`) and ``message`` (why a condition failed).
    Opening reads only the manifest; values are read from the chunk files when indexed or
    loaded, so a partial sweep opens too (its missing conditions have status ``not_run``).
    """
    import xarray as xr

    out = Path(out_dir)
    manifest = read_manifest(out)
    store = _ChunkStore(out, manifest)
    dims, shape = tuple(manifest["dims"]), tuple(manifest["shape"])
    data = {}
    for r, info in enumerate(manifest["readouts"]):
        attrs = {k: v for k, v in info.items() if v is not None and k != "name"}
        attrs["units"] = attrs.pop("unit")
        data[info["name"]] = xr.Variable(dims, _lazy_array(store, r, shape, float), attrs)
    data["status"] = xr.Variable(dims, _lazy_array(store, "status", shape, np.int8), {
        "flag_values": list(STATUS_CODES), "flag_meanings": " ".join(STATUS_CODES.values())})
    data["message"] = xr.Variable(dims, _lazy_array(store, "message", shape, object),
                                  {"long_name": "why the condition failed (empty when ok)"})
    coords = {}
    for a in manifest["axes"]:
        if a["kind"] == "sample":
            continue
        attrs = {"kind": a["kind"]}
        if a["unit"]:
            attrs["units"] = a["unit"]
        if a["kind"] == "variant":
            attrs["variant_sets"] = json.dumps(a["sets"])
        coords[a["name"]] = xr.Variable((a["name"],), np.asarray(a["values"]), attrs)
    if manifest["samples"]:
        samples = np.load(out / manifest["samples"]["file"], mmap_mode="r")
        for j, p in enumerate(manifest["samples"]["parameters"]):
            coords[p["name"]] = xr.Variable(("sample",), samples[:, j], {
                "units": p["unit"], "scale": p["scale"], "range": [p["low"], p["high"]],
                "sampling": manifest["samples"]["method"]})
    attrs = {"name": manifest["name"], "description": manifest["description"], "spec_digest": manifest["spec_digest"],
             "state": manifest["state"], "n_conditions": manifest["n_conditions"], "chunk": manifest["chunk"],
             "her2sim_version": manifest["her2sim_version"], "solver": json.dumps(manifest["spec"]["solver"]),
             "model": manifest["spec"]["model"],
             "max_rel_error": _certified(manifest)}
    if manifest["samples"]:
        attrs["sample_parameters"] = [p["name"] for p in manifest["samples"]["parameters"]]
    return xr.Dataset(data, coords, attrs)
