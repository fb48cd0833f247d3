"""Shared fixtures: paths to the repo's test build and the shared data, a torch ``device``."""

from pathlib import Path

import pytest

TRAINING_ROOT = Path(__file__).resolve().parents[1]
REPO_ROOT = TRAINING_ROOT.parents[1]
FIXTURE_TOML = REPO_ROOT / "tests" / "data" / "fixture.toml"
SHARED_DATA = (TRAINING_ROOT / "../../../shared/data").resolve()


def pytest_collection_modifyitems(config, items):
    try:
        import torch

        has_gpu = torch.cuda.is_available()
    except ImportError:
        has_gpu = False
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords and not has_gpu:
            item.add_marker(skip)


@pytest.fixture
def fixture_toml() -> Path:
    assert FIXTURE_TOML.exists(), f"{FIXTURE_TOML} is missing: it is part of the repository"
    return FIXTURE_TOML


@pytest.fixture
def shared_data() -> Path:
    marker = SHARED_DATA / "hg38" / "genome" / "loci.bed"
    assert marker.exists(), f"{SHARED_DATA} is missing: the tests read ../shared/data"
    return SHARED_DATA


@pytest.fixture(params=["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def device(request):
    torch = pytest.importorskip("torch")
    return torch.device(request.param)
