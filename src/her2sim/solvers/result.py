"""Labelled simulation results: (condition, time, species/observable) arrays plus a per-member
:class:`~her2sim.solvers.status.Status` and message."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import InvalidArgument, OptionalDependencyError, UnknownNameError
from .status import Status, StatusMessage, status_message

__all__ = ["Result", "Status", "StatusMessage", "status_message"]


@dataclass(frozen=True)
class Result:
    """Trajectories of a set of conditions.

    Attributes
    ----------
    time : (T,) hours after dosing (pre-equilibration is not included).
    species : (C, T, n_species) nM, except relative counts (``species_units`` 'dimensionless').
    observables : (C, T, n_observables) in ``observable_units``.
    conditions : per-condition labels, e.g. ``{"lapatinib": 1000.0}`` (doses in nM).
    status : per-condition :class:`Status` (ints or :class:`StatusMessage` pairs are accepted and
        split); failed members hold NaN.  messages : per-condition reason ('' where it succeeded).
    """

    time: np.ndarray
    species: np.ndarray
    observables: np.ndarray
    species_names: tuple
    observable_names: tuple
    observable_units: tuple
    conditions: tuple = ()
    status: tuple = ()
    attrs: dict = field(default_factory=dict)
    species_units: tuple = ()
    messages: tuple = ()

    def __post_init__(self) -> None:
        codes, messages = [], []
        for k, s in enumerate(self.status):
            if isinstance(s, tuple):  # a StatusMessage, e.g. from BatchResult.status
                code, message = s
            else:
                code, message = s, ""
            try:
                codes.append(Status(int(code)))
            except (TypeError, ValueError):
                raise InvalidArgument(f"status[{k}] must be a her2sim.Status, got {s!r}") from None
            messages.append(str(message))
        if self.messages:
            if len(self.messages) != len(codes):
                raise InvalidArgument(f"messages: {len(self.messages)} messages for {len(codes)} statuses")
            messages = [str(m) for m in self.messages]
        object.__setattr__(self, "status", tuple(codes))
        object.__setattr__(self, "messages", tuple(messages))

    @property
    def n_conditions(self) -> int:
        return self.species.shape[0]

    def values(self, name: str) -> np.ndarray:
        """(C, T) trajectory of an observable or species."""
        if name in self.observable_names:
            return self.observables[:, :, self.observable_names.index(name)]
        if name in self.species_names:
            return self.species[:, :, self.species_names.index(name)]
        raise UnknownNameError("observable", name, self.observable_names + self.species_names)

    def __getitem__(self, name: str) -> np.ndarray:
        """(T,) trajectory for a single-condition result, else (C, T)."""
        v = self.values(name)
        return v[0] if self.n_conditions == 1 else v

    def final(self, name: str) -> np.ndarray | float:
        """Value at the last time point: float for one condition, else (C,)."""
        v = self.values(name)[:, -1]
        return float(v[0]) if self.n_conditions == 1 else v

    def at(self, name: str, t_h: float) -> np.ndarray | float:
        """Linear interpolation at ``t_h`` hours: float for one condition, else (C,)."""
        v = np.array([np.interp(t_h, self.time, row) for row in self.values(name)])
        return float(v[0]) if self.n_conditions == 1 else v

    def unit_of(self, name: str) -> str:
        if name in self.observable_names:
            return self.observable_units[self.observable_names.index(name)]
        if name in self.species_names and self.species_units:
            return self.species_units[self.species_names.index(name)]
        return "nM"

    def _labels(self) -> list[str]:
        labels = []
        for i, cond in enumerate(self.conditions or [{}] * self.n_conditions):
            text = ", ".join(f"{k}={v:g}" if isinstance(v, (int, float)) else f"{k}={v}" for k, v in cond.items())
            labels.append(text or f"condition {i}")
        return labels

    # -- conversions ------------------------------------------------------------------------
    def to_dataframe(self, observe: Sequence[str] | None = None, *, wide: bool | None = None):
        """pandas DataFrame. Wide (``time_h`` + one column per name) for one condition,
        long (condition, time_h, name, value) otherwise unless ``wide=True`` (then a
        ``condition`` column is added)."""
        import pandas as pd

        names = list(observe) if observe else list(self.observable_names)
        wide = self.n_conditions == 1 if wide is None else wide
        if wide:
            frames = []
            for c, label in enumerate(self._labels()):
                data = {"time_h": self.time}
                for n in names:
                    data[n] = self.values(n)[c]
                df = pd.DataFrame(data)
                if self.n_conditions > 1:
                    df.insert(0, "condition", label)
                frames.append(df)
            return pd.concat(frames, ignore_index=True)
        rows = []
        for c, label in enumerate(self._labels()):
            for n in names:
                rows.append(pd.DataFrame({"condition": label, "time_h": self.time, "name": n,
                                          "value": self.values(n)[c], "unit": self.unit_of(n)}))
        return pd.concat(rows, ignore_index=True)

    def to_xarray(self):
        """xarray Dataset with dims (condition, time, species) and (condition, time, observable)."""
        try:
            import xarray as xr
        except ImportError:
            raise OptionalDependencyError("xarray", "xarray", "Result.to_xarray") from None
        ds = xr.Dataset(
            {
                "species": (("condition", "time", "species_name"), self.species,
                            {"long_name": "species amounts; unit per species in species_unit (nM, or "
                             "dimensionless for relative counts)"}),
                "observables": (("condition", "time", "observable"), self.observables),
            },
            coords={
                "condition": np.arange(self.n_conditions),
                "condition_label": ("condition", self._labels()),
                "time": ("time", self.time, {"long_name": "time after dosing", "unit": "h"}),
                "species_name": list(self.species_names),
                "observable": list(self.observable_names),
                "observable_unit": ("observable", list(self.observable_units)),
                "species_unit": ("species_name", [self.unit_of(n) for n in self.species_names]),
                "status": ("condition", [s.label for s in self.status] or ["ok"] * self.n_conditions),
                "status_message": ("condition", list(self.messages) or [""] * self.n_conditions),
            },
            attrs={k: str(v) for k, v in self.attrs.items()},
        )
        return ds

    def to_csv(self, path: str | Path, observe: Sequence[str] | None = None) -> Path:
        """Write a wide CSV: ``time_h`` then one column per observable (a ``condition`` column
        first when there are several conditions)."""
        from ..io.atomic import atomic_path

        path = Path(path)
        frame = self.to_dataframe(observe, wide=True)  # unknown names fail before anything is written
        with atomic_path(path) as tmp:
            frame.to_csv(tmp, index=False)
        return path

    def to_netcdf(self, path: str | Path) -> Path:
        """Write the xarray Dataset to netCDF (scipy backend, no extra dependency)."""
        from ..io.atomic import atomic_path

        path = Path(path)
        ds = self.to_xarray()
        with atomic_path(path) as tmp:
            ds.to_netcdf(tmp, engine="scipy")
        return path

    def plot(self, observe: Sequence[str] | None = None, *, ax=None):
        """Time courses of the chosen observables (one panel each); returns the Figure."""
        from ..plot import plot_timecourses

        return plot_timecourses(self, observe, ax=ax)

    def summary(self, observe: Sequence[str] | None = None) -> str:
        """A short text table: value at t=0 and at the end, per condition."""
        names = list(observe) if observe else list(self.observable_names)
        lines = []
        for c, label in enumerate(self._labels()):
            if self.n_conditions > 1 or label != "condition 0":
                lines.append(f"# {label}" + ("" if not self.status or self.status[c].is_successful
                                                else f"  [FAILED: {self.messages[c]}]"))
            lines.append(f"{'observable':<22}{'t=0 h':>12}{f't={self.time[-1]:g} h':>12}  unit")
            for n in names:
                v = self.values(n)[c]
                lines.append(f"{n:<22}{v[0]:>12.4g}{v[-1]:>12.4g}  {self.unit_of(n)}")
        return "\n".join(lines)
