"""Trials on any model: the trial layer drives what the model file's [virtual_trial] table declares."""

import argparse
import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from her2sim.errors import InvalidArgument, ModelFileError
from her2sim.model.load import models_dir
from her2sim.trial import load_trial, run_trial
from her2sim.trial.cli import add_parser, handle
from her2sim.trial.exposure import Background, compute_table
from her2sim.trial.hooks import load_hooks

#: names the trial layer drives, renamed in the copy (species, parameter): nothing in Python may name them
RENAMES = {"viable_cells": "tumour_cells_copy", "HER2_expression": "erbb2_level_copy"}


def _copy_models(tmp_path: Path, *, declarations: bool = True, renames=RENAMES) -> Path:
    """Every bundled model file copied to tmp_path/models, default.toml renamed to renamed.toml
    (model name "renamed") and the ``renames`` applied as whole words in every copied file."""
    dst = tmp_path / "models"
    shutil.copytree(models_dir(), dst, ignore=shutil.ignore_patterns("calibration", "*.md", "*.csv"))
    for f in dst.rglob("*.toml"):
        text = f.read_text()
        for old, new in renames.items():
            text = re.sub(rf"\b{old}\b", new, text)
        f.write_text(text)
    text = (dst / "default.toml").read_text().replace('name = "default"', 'name = "renamed"', 1)
    if not declarations:
        text = text[:text.index("[virtual_trial]")]
    (dst / "renamed.toml").write_text(text)
    (dst / "default.toml").unlink()
    return dst / "renamed.toml"


def _trial_on(tmp_path: Path, model: Path, name: str = "emilia_like") -> Path:
    """The bundled trial spec ``name`` with model = the given model file (a path next to the spec)."""
    text = (models_dir() / "trials" / f"{name}.toml").read_text()
    text = text.replace("[trial]\n", f"[trial]\nmodel = \"{model.name}\"\n", 1)
    spec = model.parent / f"{name}_on_copy.toml"
    spec.write_text(text)
    return spec


@pytest.mark.slow
def test_a_renamed_copy_of_the_model_gives_the_identical_trial(tmp_path):
    """EMILIA-like (T-DM1: ADC payload and bystander channels; lapatinib + capecitabine: signalling
    and chemotherapy channels) on the bundled model and on a renamed copy in which the tumour-cell
    species and the HER2 parameter are renamed too: the same patients table, bit for bit."""
    model = _copy_models(tmp_path)
    spec = load_trial(_trial_on(tmp_path, model))
    assert spec.model == str(model.resolve())
    hooks = load_hooks(spec.model)
    assert (hooks.tumour_cells, hooks.her2_parameter) == ("tumour_cells_copy", "erbb2_level_copy")
    ref = run_trial("emilia_like", patients=40, seed=3)
    copy = run_trial(spec, patients=40, seed=3)
    assert len(ref.patients) == 40 and ref.patients.progressed.any()
    assert copy.patients.equals(ref.patients)
    assert copy.summary["arms"] == ref.summary["arms"]


def test_exposure_table_on_a_renamed_copy_is_identical(tmp_path):
    model = _copy_models(tmp_path)
    bgs = [Background("high", "wt", False), Background("low", "pik3ca", True)]
    kw = dict(hosts=[("VF", "positive")], multiples=(0.0, 1.0))
    a = compute_table(["tdm1"], [36.0], bgs, **kw)
    b = compute_table(["tdm1"], [36.0], bgs, model=model, **kw)
    np.testing.assert_array_equal(a.values, b.values)
    assert np.isfinite(a.values).all() and (a.values[..., 1, 1] > 0).all()    # T-DM1 on: a payload kill


def test_a_model_without_declarations_is_refused_in_one_line(tmp_path, capsys):
    model = _copy_models(tmp_path, declarations=False, renames={})
    spec = _trial_on(tmp_path, model)
    with pytest.raises(ModelFileError, match=r"renamed\.toml.*no \[virtual_trial\] table") as info:
        load_trial(spec)
    assert "\n" not in str(info.value)
    with pytest.raises(ModelFileError, match="virtual_trial"):
        compute_table(["tdm1"], [36.0], [Background("high", "wt", False)], model=model)
    ap = argparse.ArgumentParser()
    add_parser(ap.add_subparsers())
    assert handle(ap.parse_args(["trial", str(spec), "--patients", "10"])) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "virtual_trial" in err and "renamed.toml" in err


@pytest.mark.parametrize("old, new, key", [
    ('tumour_cells = "viable_cells"', 'tumour_cells = "no_such_cells"', "virtual_trial.tumour_cells"),
    ('parameter = "PDL1_level"', 'parameter = "PDL1_levl"', "virtual_trial.hosts.pdl1.parameter"),
    ('[virtual_trial.in_vivo.NK_activity]', '[virtual_trial.in_vivo.NK_activty]', "virtual_trial.in_vivo.NK_activty"),
])
def test_declared_names_are_checked_against_the_network_before_any_integration(tmp_path, old, new, key):
    model = _copy_models(tmp_path, renames={})
    text = model.read_text()
    assert old in text
    model.write_text(text.replace(old, new, 1))
    with pytest.raises(ModelFileError, match=re.escape(f"[{key}]")):
        compute_table(["tdm1"], [36.0], [Background("high", "wt", False)], model=model)


@pytest.mark.parametrize("old, new, match", [
    ("levels = { high = 1.0, low = 0.05, zero = 0.01 }", "levels = { high = 1.0, zero = 0.01 }",
     r"\[virtual_trial.her2.levels\]: levels must cover the cohort's \['high', 'low'\]; missing \['low'\]"),
    ('lower = { high = "low", low = "zero", zero = "zero" }', 'lower = { high = "medium", low = "zero", zero = "zero" }',
     r"\[virtual_trial.her2.lower\]: lower.high must be one of the levels"),
    ("negative = 0.01", "negative = -1", r"\[virtual_trial.er.negative\]: must be a finite number >= 0"),
    ('pten_loss = ["pten_loss"]', 'pten_los = ["pten_loss"]', r"\[virtual_trial.pi3k\]: unknown key"),
])
def test_malformed_declarations_name_file_and_key(tmp_path, old, new, match):
    model = _copy_models(tmp_path, renames={})
    text = model.read_text()
    assert old in text
    model.write_text(text.replace(old, new, 1))
    with pytest.raises(ModelFileError, match=match):
        load_hooks(model)


def test_undeclared_background_or_host_is_refused():
    with pytest.raises(InvalidArgument, match="backgrounds"):
        compute_table(["tdm1"], [36.0], [Background("medium", "wt", False)])
    with pytest.raises(InvalidArgument, match="hosts"):
        compute_table(["tdm1"], [36.0], [Background("high", "wt", False)], hosts=[("VF", "unknown")])


def test_workers_is_a_deprecated_alias_of_scheduler():
    from her2sim.trial.exposure import scheduler_for

    assert scheduler_for(None, None) is None and scheduler_for(1, "local") == "local"
    with pytest.warns(DeprecationWarning, match="scheduler='processes'"):
        assert scheduler_for(2, None) == "processes"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert scheduler_for(1, None) is None
    with pytest.raises(InvalidArgument, match="workers"):
        scheduler_for(0, None)


def test_cli_workers_option_maps_to_scheduler(capsys):
    from her2sim.trial.cli import scheduler_option

    assert scheduler_option(None, 2) == "processes"
    assert scheduler_option(None, 1) is None and scheduler_option("processes", 3) == "processes"
    with pytest.raises(InvalidArgument, match="contradicts"):
        scheduler_option("local", 2)
    ap = argparse.ArgumentParser()
    add_parser(ap.add_subparsers())
    with pytest.raises(SystemExit):
        ap.parse_args(["trial", "--help"])
    assert "deprecated alias of --scheduler" in " ".join(capsys.readouterr().out.split())
