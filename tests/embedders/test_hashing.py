import numpy as np
import pytest

from ragmem import ConfigurationError, HashingEmbedder
from ragmem.testing import EmbedderContract


class TestHashingEmbedder(EmbedderContract):
    @pytest.fixture
    def embedder(self):
        return HashingEmbedder(dimensions=64, batch_size=8)


def test_same_vector_across_instances_and_seeds():
    a = HashingEmbedder(32).embed(["stable"])
    b = HashingEmbedder(32).embed(["stable"])
    c = HashingEmbedder(32, seed=1).embed(["stable"])
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_invalid_dimensions():
    with pytest.raises(ConfigurationError):
        HashingEmbedder(0)
