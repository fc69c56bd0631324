"""Trial figure labels: subgroups read as words, not identifiers (``hr_positive=False``)."""

import pytest

from her2sim.trial.plots import subgroup_label


@pytest.mark.parametrize("text, label", [
    ("hr_positive=True", "HR-positive"), ("hr_positive=False", "HR-negative"),
    ("pik3ca=True", "PIK3CA mutant"), ("brain_mets=False", "no brain metastases"),
    ("cd16a=FF", "CD16A F/F"), ("her2=low", "HER2-low"), ("overall", "overall"),
    ("new_feature=x", "new feature x"),
])
def test_subgroup_labels_are_words(text, label):
    assert subgroup_label(text) == label
