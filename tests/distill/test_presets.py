"""Shipped presets load; the official ones carry the official numbers."""

import pytest

from lyra.distill.config import load_config, preset_names
from lyra.errors import InputDataError


def test_presets_are_shipped():
    assert {"tiny-cpu", "lyra-static", "lyra-dynamic"} <= set(preset_names())


@pytest.mark.parametrize("name", ["tiny-cpu", "lyra-static", "lyra-dynamic"])
def test_preset_loads(name):
    config = load_config(name)
    assert config.name == name
    assert config.stages[-1].steps_to == config.total_steps


def test_lyra_static_is_the_official_table():
    config = load_config("lyra-static")
    table = [(s.steps_to, s.resolution, s.frames, s.views, s.prune_ratio) for s in config.stages]
    assert table == [
        (10000, (176, 320), 17, 1, 0.0), (12500, (176, 320), 49, 1, 0.0), (15000, (352, 640), 49, 1, 0.0),
        (17500, (704, 1280), 49, 1, 0.0), (75000, (704, 1280), 121, 1, 0.0), (82000, (704, 1280), 121, 6, 0.0),
        (83000, (704, 1280), 121, 6, 0.8),
    ]
    assert (config.optim.lr, config.optim.warmup_steps, config.optim.grad_clip) == (1e-4, 100, 1.0)
    assert (config.loss.mse, config.loss.lpips, config.loss.depth, config.loss.opacity) == (1.0, 0.5, 0.05, 0.1)
    assert config.model.enc_depth == 16 and config.model.kind == "static"
    assert config.stage_at(0).frames == 17 and config.stage_at(82500).prune_ratio == 0.8


def test_lyra_dynamic_turns_on_time_conditioning():
    config = load_config("lyra-dynamic")
    assert config.model.kind == "dynamic" and all(s.dynamic for s in config.stages)


def test_bad_config_names_the_key(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("optim: {learning_rate: 1}\n")
    with pytest.raises(InputDataError, match="learning_rate"):
        load_config(path)
    with pytest.raises(InputDataError, match="unknown preset"):
        load_config("no-such-preset")
