"""Tiny random GEN3C transformers, tokenizers and official-style state dicts for the teacher tests."""

import torch

TINY_CONFIG = dict(
    in_channels=81,
    out_channels=16,
    num_attention_heads=2,
    attention_head_dim=32,
    num_layers=2,
    mlp_ratio=2.0,
    text_embed_dim=32,
    adaln_lora_dim=16,
    max_size=(16, 32, 32),
    patch_size=(1, 2, 2),
    rope_scale=(2.0, 1.0, 1.0),
    concat_padding_mask=True,
    extra_pos_embed_type="learnable",
)


def official_keys(num_blocks: int) -> list[str]:
    """The official ``net.*`` key names of GEN3C_SPEC.md section 6.1, written out from its table."""
    keys = [
        "net.x_embedder.proj.1.weight",
        "net.pos_embedder.seq",
        "net.extra_pos_embedder.pos_emb_h",
        "net.extra_pos_embedder.pos_emb_w",
        "net.extra_pos_embedder.pos_emb_t",
        "net.t_embedder.1.linear_1.weight",
        "net.t_embedder.1.linear_2.weight",
        "net.affline_norm.weight",
        "net.final_layer.linear.weight",
        "net.final_layer.adaLN_modulation.1.weight",
        "net.final_layer.adaLN_modulation.2.weight",
        "logvar.0.freqs",
        "logvar.0.phases",
        "logvar.1.weight",
    ]
    for i in range(num_blocks):
        b = f"net.blocks.block{i}.blocks"
        keys += [f"{b}.0.block.attn.{p}.0.weight" for p in ("to_q", "to_k", "to_v", "to_out")]
        keys += [f"{b}.0.block.attn.{p}.1.weight" for p in ("to_q", "to_k")]
        keys += [f"{b}.1.block.attn.{p}.0.weight" for p in ("to_q", "to_k", "to_v", "to_out")]
        keys += [f"{b}.1.block.attn.{p}.1.weight" for p in ("to_q", "to_k")]
        keys += [f"{b}.2.block.layer1.weight", f"{b}.2.block.layer2.weight"]
        keys += [f"{b}.{s}.adaLN_modulation.{j}.weight" for s in range(3) for j in (1, 2)]
    return keys


def diffusers_name(official: str) -> str | None:
    """Hand-written expectations for the spec's worked examples and the structural rules (independent of the table)."""
    if official.startswith("logvar.") or official == "net.pos_embedder.seq":
        return None
    fixed = {
        "net.x_embedder.proj.1.weight": "patch_embed.proj.weight",
        "net.t_embedder.1.linear_1.weight": "time_embed.t_embedder.linear_1.weight",
        "net.t_embedder.1.linear_2.weight": "time_embed.t_embedder.linear_2.weight",
        "net.affline_norm.weight": "time_embed.norm.weight",
        "net.final_layer.linear.weight": "proj_out.weight",
        "net.final_layer.adaLN_modulation.1.weight": "norm_out.linear_1.weight",
        "net.final_layer.adaLN_modulation.2.weight": "norm_out.linear_2.weight",
    }
    if official in fixed:
        return fixed[official]
    if official.startswith("net.extra_pos_embedder."):
        return official.replace("net.extra_pos_embedder.", "learnable_pos_embed.")
    parts = official.split(".")  # net blocks blockI blocks S ...
    i, s, rest = parts[2][len("block") :], parts[4], parts[5:]
    prefix = f"transformer_blocks.{i}"
    if rest[0] == "adaLN_modulation":
        return f"{prefix}.norm{int(s) + 1}.linear_{rest[1]}.weight"
    if rest[1] == "attn":
        proj, idx = rest[2], rest[3]
        attn = "attn1" if s == "0" else "attn2"
        if proj == "to_out":
            return f"{prefix}.{attn}.to_out.0.weight"
        return f"{prefix}.{attn}.{proj if idx == '0' else 'norm_' + proj[-1]}.weight"
    return f"{prefix}.ff.{'net.0.proj' if rest[1] == 'layer1' else 'net.2'}.weight"


def random_transformer(seed: int = 0, **overrides):
    """A tiny CosmosTransformer3DModel with every parameter random (no zero / one initialisations left)."""
    from diffusers import CosmosTransformer3DModel

    torch.manual_seed(seed)
    model = CosmosTransformer3DModel(**{**TINY_CONFIG, **overrides})
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * (0.2 if p.dim() > 1 else 0.1) + (1.0 if p.dim() == 1 else 0.0))
    return model.eval()


def official_state_dict(model) -> dict:
    """An official-style state dict holding ``model``'s weights (the inverse of the rename, from the spec's table)."""
    diff = model.state_dict()
    num_blocks = len(model.transformer_blocks)
    out = {}
    for key in official_keys(num_blocks):
        name = diffusers_name(key)
        if name is None:
            out[key] = torch.arange(4.0)
        else:
            out[key] = diff[name].clone()
    return out


T5_WORDS = ["<pad>", "</s>", "<unk>", "a", "red", "car", "the", "video", "ugly", "scenes"]


def tiny_t5(width: int = 32, seed: int = 0):
    """A word-level T5 tokenizer (EOS appended, like T5's) and a random 2-layer T5 encoder."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast, T5Config, T5EncoderModel

    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(T5_WORDS)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")
    torch.manual_seed(seed)
    config = T5Config(vocab_size=len(T5_WORDS), d_model=width, d_kv=8, d_ff=64, num_layers=2, num_heads=4)
    return tokenizer, T5EncoderModel(config).eval()
