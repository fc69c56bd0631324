"""The generated parameter table is current and no parameter lacks a value, unit and source."""

from her2sim import load_model
from her2sim.model.load import list_bundled, models_dir
from her2sim.model.report import parameters_markdown


def test_parameter_table_file_is_current():
    committed = (models_dir() / "parameters.md").read_text()
    assert committed == parameters_markdown(), ("regenerate with: python -c \"from her2sim.model.report import parameters_markdown as m; "
                                                   "open('models/parameters.md', 'w').write(m())\"")


def test_every_parameter_has_unit_and_source():
    spec = load_model("default", drugs=[name for name, _ in list_bundled()["drugs"]])
    for p in spec.parameters:
        assert p.source.strip(), p.name
        assert p.unit.strip(), p.name
    for s in spec.species:
        assert s.source.strip(), s.name
