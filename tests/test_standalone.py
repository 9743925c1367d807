"""tfnas.standalone: an arch trained from scratch with the ``standalone`` recipe."""

import pytest

from configs import fmnist
from tfnas import search_space as ss
from tfnas import standalone as standalone_lib

SPACE = ss.get_space("fmnist")


@pytest.mark.parametrize("zero_init", [False, True])
def test_recipe_builds_the_plain_model_it_names(monkeypatch, zero_init):
    seen = {}
    build = standalone_lib.static.build_static_model

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return build(*args, **kwargs)

    monkeypatch.setattr(standalone_lib.static, "build_static_model", spy)
    config = fmnist.get_config("tiny")
    config.standalone.zero_init_residual = zero_init
    acc, seconds, _ = standalone_lib.train_standalone(config, SPACE.smallest(), seed=0)
    assert seen["zero_init_residual"] is zero_init and 0.0 <= acc <= 1.0 and seconds > 0


def test_recipe_is_everything_but_the_seed():
    config = fmnist.get_config("tiny")
    recipe = standalone_lib.recipe(config)
    assert set(recipe) == {"space", "data", "standalone"}
    assert "seed" not in recipe["standalone"]
    config.standalone.seed = 5
    assert standalone_lib.recipe(config) == recipe
    config.standalone.epochs = 9
    assert standalone_lib.recipe(config)["standalone"]["epochs"] == 9
