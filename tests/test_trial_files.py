"""Bundled trial data files load; bad regimen/PK/trial files give clear errors."""

from pathlib import Path

import pytest

from her2sim.errors import ModelFileError, UnknownNameError
from her2sim.trial import load_pk, load_population, load_regimen, load_trial, load_tumour
from her2sim.trial.files import trial_models_dir

ROOT = trial_models_dir()


@pytest.mark.parametrize("path", sorted((ROOT / "trials").glob("*.toml")), ids=lambda p: p.stem)
def test_bundled_trial_specs_load(path):
    spec = load_trial(path)
    assert spec.role in ("calibration", "held_out")
    if spec.role == "held_out":
        assert not spec.targets  # held-out trials carry no outcomes


@pytest.mark.parametrize("path", sorted((ROOT / "pk").glob("*.toml")), ids=lambda p: p.stem)
def test_bundled_pk_files_load(path):
    pk = load_pk(path)
    assert pk.values["CL"] > 0 and pk.molecular_weight > 0


def test_tumour_and_populations_load():
    tp = load_tumour()
    assert tp.signal_scale > 0 and tp.payload_scale > 0 and tp.chemo_scale > 0 and tp.resistance_rate > 0
    for name in ("her2_mbc_first_line", "her2_mbc_pretreated", "her2_low_mbc", "hr_positive_her2_negative_mbc"):
        load_population(name)


BAD_REGIMENS = [
    ("missing_source", ('[regimen]\nname="x"\ndrug="trastuzumab"\nroute="iv"\n[[regimen.phase]]\ndose="6 mg/kg"\n'
                       'interval="21 day"\nsource="s"\n'), "source"),
    ("dose_without_unit", ('[regimen]\nname="x"\ndrug="trastuzumab"\nroute="iv"\nsource="s"\n[[regimen.phase]]\n'
                          'dose="6"\ninterval="21 day"\nsource="s"\n'), "dose"),
    ("interval_not_a_time", ('[regimen]\nname="x"\ndrug="trastuzumab"\nroute="iv"\nsource="s"\n[[regimen.phase]]\n'
                            'dose="6 mg/kg"\ninterval="21 mg"\nsource="s"\n'), "interval"),
    ("unknown_route", ('[regimen]\nname="x"\ndrug="trastuzumab"\nroute="nasal"\nsource="s"\n[[regimen.phase]]\n'
                      'dose="6 mg/kg"\ninterval="21 day"\nsource="s"\n'), "route"),
    ("typo_key", ('[regimen]\nname="x"\ndrug="trastuzumab"\nroute="iv"\nsource="s"\n[[regimen.phase]]\n'
                 'dose="6 mg/kg"\nintervall="21 day"\nsource="s"\n'), "unknown key"),
    ("days_on_without_cycle", ('[regimen]\nname="x"\ndrug="capecitabine"\nroute="oral"\nsource="s"\n[[regimen.phase]]\n'
                              'dose="1000 mg/m2"\ninterval="12 h"\ndays_on="14 day"\nsource="s"\n'), "cycle"),
    ("no_header", 'name="x"\n', "[regimen]"),
    ("malformed_toml", '[regimen\nname=', "malformed TOML"),
]


@pytest.mark.parametrize("text, match", [c[1:] for c in BAD_REGIMENS], ids=[c[0] for c in BAD_REGIMENS])
def test_bad_regimen_files(tmp_path: Path, text, match):
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(ModelFileError, match=match.replace("[", r"\[")) as info:
        load_regimen(f)
    assert "bad.toml" in str(info.value)


def _trial(extra: str, arms: str | None = None) -> str:
    arms = arms if arms is not None else ('[[trial.arm]]\nname="A"\nregimens=["tdm1_3.6mgkg_q3w"]\n'
                                          '[[trial.arm]]\nname="B"\nregimens=["tdxd_5.4mgkg_q3w"]\ncontrol=true\n')
    return ('[trial]\nname="t"\nsource="s"\nrole="held_out"\npopulation="her2_mbc_pretreated"\n'
            'follow_up="12 month"\nassessment_interval="6 week"\n' + extra + arms)


BAD_TRIALS = [
    ("held_out_with_outcomes", _trial('', '[[trial.arm]]\nname="A"\nregimens=["tdm1_3.6mgkg_q3w"]\ncontrol=true\n'
                                          '[[trial.observed]]\nmetric="median_pfs"\narm="A"\nvalue="9 month"\n'
                                          'source="s"\n'), "only allowed in calibration"),
    ("unknown_regimen", _trial('', '[[trial.arm]]\nname="A"\nregimens=["herceptin_weekly"]\n'), "regimen"),
    ("two_controls", _trial('', '[[trial.arm]]\nname="A"\nregimens=["tdm1_3.6mgkg_q3w"]\ncontrol=true\n'
                                '[[trial.arm]]\nname="B"\nregimens=["tdxd_5.4mgkg_q3w"]\ncontrol=true\n'), "exactly one"),
    ("unknown_subgroup", _trial('subgroups=["zodiac"]\n'), "subgroup"),
    ("bad_eligibility", _trial('[trial.eligibility.brain_mets]\nvalue=1.5\nsource="s"\n'), "probability"),
    ("assessment_longer_than_follow_up", _trial('').replace('assessment_interval="6 week"',
                                                              'assessment_interval="2 year"'), "shorter"),
]


@pytest.mark.parametrize("text, match", [c[1:] for c in BAD_TRIALS], ids=[c[0] for c in BAD_TRIALS])
def test_bad_trial_files(tmp_path: Path, text, match):
    f = tmp_path / "trial.toml"
    f.write_text(text)
    with pytest.raises(ModelFileError, match=match):
        load_trial(f)


def test_unknown_bundled_name_suggests_close_match():
    with pytest.raises(UnknownNameError, match="tucatinib_300mg_bid"):
        load_regimen("tucatinib_300mg_bd")
