import os
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")

TEST_MODELS = Path(__file__).parent / "models"


@pytest.fixture
def test_models() -> Path:
    return TEST_MODELS
