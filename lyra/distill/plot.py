"""The loss-curve PNG of a run, drawn with Pillow (no plotting dependency for two lines).

Training loss (light: per step; dark: running mean) on a log scale on the left axis, held-out
PSNR (dots, dB) on the right axis, over steps.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from PIL import Image, ImageDraw

from lyra.fileio import atomic_write

SIZE = (720, 420)
MARGIN = (60, 20, 60, 40)  # left, top, right, bottom


def write_loss_curve(metrics_path: str | os.PathLike, png_path: str | os.PathLike) -> Path:
    records = [json.loads(line) for line in Path(metrics_path).read_text().splitlines() if line.strip()]
    train = [(r["step"], r["loss"]) for r in records if r.get("split") == "train" and r.get("loss", 0) > 0]
    evals = [(r["step"], r["psnr"]) for r in records if r.get("split") == "eval" and "psnr" in r]
    image = Image.new("RGB", SIZE, "white")
    draw = ImageDraw.Draw(image)
    left, top, right, bottom = MARGIN[0], MARGIN[1], SIZE[0] - MARGIN[2], SIZE[1] - MARGIN[3]
    draw.rectangle([left, top, right, bottom], outline="black")
    max_step = max([s for s, _ in train] + [s for s, _ in evals] + [1])
    x_of = lambda s: left + (right - left) * s / max_step  # noqa: E731
    if train:
        logs = [math.log10(v) for _, v in train]
        low, high = min(logs), max(logs) + 1e-9
        y_of = lambda v: bottom - (bottom - top) * (math.log10(v) - low) / (high - low)  # noqa: E731
        draw.line([(x_of(s), y_of(v)) for s, v in train], fill=(170, 190, 230), width=1)
        window, smooth = max(1, len(train) // 30), []
        for i in range(len(train)):
            chunk = train[max(0, i - window + 1) : i + 1]
            smooth.append((train[i][0], sum(v for _, v in chunk) / len(chunk)))
        draw.line([(x_of(s), y_of(v)) for s, v in smooth], fill=(20, 60, 160), width=2)
        draw.text((4, top), f"{10**high:.3g}", fill=(20, 60, 160))
        draw.text((4, bottom - 10), f"{10**low:.3g}", fill=(20, 60, 160))
        draw.text((left + 4, top + 4), "train loss (log)", fill=(20, 60, 160))
    if evals:
        low, high = min(v for _, v in evals) - 0.5, max(v for _, v in evals) + 0.5
        y_of = lambda v: bottom - (bottom - top) * (v - low) / (high - low)  # noqa: E731
        for s, v in evals:
            x, y = x_of(s), y_of(v)
            draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=(200, 60, 20))
        if len(evals) > 1:
            draw.line([(x_of(s), y_of(v)) for s, v in evals], fill=(200, 60, 20), width=1)
        draw.text((right + 4, top), f"{high:.1f} dB", fill=(200, 60, 20))
        draw.text((right + 4, bottom - 10), f"{low:.1f} dB", fill=(200, 60, 20))
        draw.text((right - 150, top + 4), "held-out PSNR", fill=(200, 60, 20))
    draw.text((left, bottom + 8), "step 0", fill="black")
    draw.text((right - 60, bottom + 8), f"step {max_step}", fill="black")
    path = Path(png_path)
    with atomic_write(path, "wb") as handle:
        image.save(handle, format="PNG")
    return path
