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
