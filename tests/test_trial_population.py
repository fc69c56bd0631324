"""Virtual populations: prevalences reproduced within sampling error, determinism, eligibility."""

import numpy as np
import pytest

from her2sim.trial.population import load_population, sample_population


def test_prevalences_within_sampling_error():
    spec = load_population("her2_mbc_pretreated")
    n = 20000
    c = sample_population(spec, n, seed=11)
    for f, p in spec.bernoulli.items():
        if f == "occult_brain":
            p = p * (1 - spec.bernoulli["brain_mets"])  # occult only without known brain metastases
        se = np.sqrt(max(p * (1 - p), 1e-12) / n)
        assert abs(c[f].mean() - p) < 4 * se + 1e-12, f
    for level, p in spec.categorical["cd16a"].items():
        assert abs((c["cd16a"] == level).mean() - p) < 4 * np.sqrt(p * (1 - p) / n)
    med, _cv = spec.continuous["weight"]
    assert np.median(c["weight"]) == pytest.approx(med, rel=0.02)


def test_same_seed_same_cohort():
    spec = load_population("her2_mbc_first_line")
    a, b = sample_population(spec, 50, 3), sample_population(spec, 50, 3)
    for k in a.features:
        np.testing.assert_array_equal(a[k], b[k])


def test_eligibility_overrides_prevalence():
    spec = load_population("her2_mbc_pretreated").with_eligibility({"hr_positive": 1.0, "brain_mets": 0.0})
    c = sample_population(spec, 500, 1)
    assert c["hr_positive"].all() and not c["brain_mets"].any()
    with pytest.raises(KeyError, match="unknown population feature"):
        load_population("her2_mbc_pretreated").with_eligibility({"hr_postive": 1.0})


def test_prior_therapy_targets_decide_cross_resistance():
    from her2sim.trial.population import cross_resistant

    assert cross_resistant(("HER2 domain IV", "CD16A (Fc)"), ("HER2",))      # trastuzumab after trastuzumab
    assert cross_resistant(("EGFR", "HER2"), ("HER2",))                       # lapatinib
    assert not cross_resistant(("EGFR", "HER2", "HER4"), ("HER",))            # a prefix must be a whole word
    assert not cross_resistant(("mTORC1",), ("aromatase",))                   # everolimus after an AI
    assert cross_resistant(("aromatase (CYP19A1)",), ("aromatase",))


def test_bundled_populations_name_their_prior_therapy():
    assert load_population("her2_mbc_pretreated").prior_targets == ("HER2",)
    assert load_population("hr_positive_her2_negative_mbc").prior_targets == ("aromatase",)
    first = load_population("her2_mbc_first_line")
    assert not first.pretreated and first.prior_targets == ()


def _population_file(tmp_path, prior: str, pretreated: str = "true"):
    from pathlib import Path

    from her2sim.trial.files import trial_models_dir

    text = (Path(trial_models_dir()) / "populations" / "her2_mbc_first_line.toml").read_text()
    text = text.replace("pretreated = false", f"pretreated = {pretreated}\n\n{prior}")
    path = tmp_path / "pop.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("prior, pretreated, message", [
    ('[population.prior_therapy]\ntargets = ["HER7"]\nsource = "x"', "true", r"no bundled drug has target\(s\) \['HER7'\]"),
    ('[population.prior_therapy]\ntargets = []\nsource = "x"', "true", "non-empty list"),
    ('[population.prior_therapy]\ntargets = ["HER2"]', "true", "source"),
    ('[population.prior_therapy]\ntargets = ["HER2"]\nsource = "x"', "false", "needs pretreated = true"),
])
def test_bad_prior_therapy_is_a_clear_error(tmp_path, prior, pretreated, message):
    from her2sim.errors import ModelFileError

    with pytest.raises(ModelFileError, match=message):
        load_population(_population_file(tmp_path, prior, pretreated))


def test_only_drugs_on_a_prior_target_are_scaled():
    """BOLERO-2-like: exemestane (aromatase) is cross-resistant, everolimus is not."""
    from her2sim.trial.trial import cross_columns

    pop = load_population("hr_positive_her2_negative_mbc")
    assert cross_columns(("everolimus", "letrozole"), pop) == (1,)
    assert cross_columns(("everolimus", "letrozole"), load_population("her2_mbc_first_line")) == ()
    legacy = pop.__class__(**{**pop.__dict__, "prior_targets": ()})
    assert cross_columns(("everolimus", "letrozole"), legacy) == (0, 1)   # pre-treated, no prior_therapy: all
