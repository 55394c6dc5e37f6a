"""Distill panel: a checkpoint and a data folder in, the decoded held-out scenes as layers out."""

import dataclasses

import pytest
import torch

from lyra.distill.make_data import make_synthetic_data
from lyra.errors import InputDataError, SceneFileError
from lyra.model import LyraDecoder, LyraDecoderConfig, save_decoder


@pytest.fixture
def checkpoint_and_data(tmp_path):
    data = make_synthetic_data(tmp_path / "data", train_scenes=0, eval_scenes=2, width=48, height=32,
                               trajectories=("left", "right"), seed=3, rank=0, world=1)
    config = dataclasses.replace(
        LyraDecoderConfig.official("static"), enc_depth=2, llrm_7m1t_index=2, enc_embed_dim=32, enc_num_heads=2,
        mamba_d_state=8, mamba_headdim=16, mamba_chunk_size=16, gaussians_prune_ratio=0.0, dfar=8.0,
    )
    torch.manual_seed(0)
    return save_decoder(LyraDecoder(config), tmp_path / "ckpt"), data


@pytest.mark.slow
def test_decoded_held_out_scenes_open_as_layers(app, checkpoint_and_data, tmp_path):
    checkpoint, data = checkpoint_and_data
    app.paths.add(tmp_path)
    panel = app.panel("distill")
    panel.checkpoint.value, panel.data.value = str(checkpoint), str(data)
    request = panel._request()
    from lyra.distill.evaluate import held_out_scenes

    layers = panel.show(held_out_scenes(**request), str(checkpoint))
    assert layers == ["scene_1000003 (student)", "scene_1000004 (student)"]
    assert app.state.layer_info(layers[0]).splats == 9 * 4 * 6  # one view: 9 frames of a 4x6 latent grid


@pytest.mark.slow
def test_paths_outside_the_served_folders_are_refused(app, checkpoint_and_data):
    checkpoint, data = checkpoint_and_data
    panel = app.panel("distill")
    panel.checkpoint.value, panel.data.value = str(checkpoint), str(data)
    with pytest.raises(SceneFileError):  # not confined to a served folder: refused before touching it
        panel._request()
    panel.checkpoint.value = ""
    with pytest.raises(InputDataError, match="checkpoint"):
        panel._request()
