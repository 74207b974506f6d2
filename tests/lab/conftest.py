import pytest

from tests.lab.lab import Lab, require_lab


@pytest.fixture
def lab(tmp_path):
    require_lab()
    lab = Lab(tmp_path)
    lab.up()
    try:
        yield lab
    finally:
        lab.down()
