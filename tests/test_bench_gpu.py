"""bench/gpu.py, the GPU acceptance run: its --smoke mode runs every section's code on the CPU (CI)."""

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "gpu.py"


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_gpu", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_smoke_run_prints_every_section_as_json_and_exits_zero(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LYRA_STUDIO_CACHE": str(tmp_path / "cache")}
    result = subprocess.run([sys.executable, str(SCRIPT), "--smoke"], capture_output=True, text=True, env=env,
                            timeout=900, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report["mode"] == "smoke" and report["failed"] == []
    assert report["machine"]["device"] == "cpu"

    render = report["render"]
    assert render["ok"] and render["splats"] == 2000 and render["cameras"] == 3
    # No gsplat on a CPU: said plainly, and the self-comparison is exact.
    assert render["reference_backend"] == "torch" and "compared with itself" in render["gsplat_unavailable"]
    for mode in ("ewa", "3dgut"):
        assert render[mode]["psnr_reference_vs_torch_db"] == "inf"
        assert render[mode]["torch_ms_per_frame"] > 0

    gen3c = report["gen3c"]
    assert gen3c["ok"] and gen3c["latent_shape"] == [1, 16, 2, 8, 12] and gen3c["video"] == [9, 64, 96]
    assert [gen3c[p]["offload"] for p in ("full", "24gb", "16gb")] == ["none", "model", "model"]
    assert [gen3c[p]["fp8_storage"] for p in ("full", "24gb", "16gb")] == [False, False, True]
    for preset in ("full", "24gb", "16gb"):
        assert gen3c[preset]["ok"] and gen3c[preset]["output_finite"] and gen3c[preset]["dtype"] == "bfloat16"
        assert gen3c[preset]["seconds_per_step"] > 0
        assert gen3c[preset]["peak_gpu_gb"] is None  # no GPU: no GPU figure invented
    assert "onload_seconds" in gen3c["24gb"] and "onload_seconds" not in gen3c["full"]

    decoder = report["decoder"]
    agreement = decoder["bf16_vs_fp32"]
    assert decoder["ok"] and 0 < agreement["relative_l2_error"] < 0.05 and agreement["cosine"] > 0.999

    trainer = report["trainer"]
    assert trainer["ok"] and trainer["steps_run"] == trainer["steps"] == 3 and trainer["losses_finite"]
    assert math.isfinite(trainer["first_loss"]) and trainer["precision"].startswith("fp32")

    ddp = report["ddp"]
    assert ddp["ok"] and ddp["backend"] == "gloo" and ddp["all_reduce_ok"]
    assert ddp["max_gradient_difference_vs_no_ddp_relative"] <= 1e-4


@pytest.mark.slow
def test_a_failing_section_is_reported_and_the_others_still_run(monkeypatch, capsys):
    bench = load_bench()

    def broken(sizes, out):
        out["measured_before_failing"] = 1.5
        raise RuntimeError("CUDA out of memory (pretend)")

    monkeypatch.setitem(bench.SECTIONS, "decoder", broken)
    status = bench.main(["--smoke", "--only", "decoder", "ddp"])
    report = json.loads(capsys.readouterr().out)
    assert status == 1 and report["failed"] == ["decoder"]
    assert report["decoder"]["ok"] is False and "CUDA out of memory (pretend)" in report["decoder"]["error"]
    assert report["decoder"]["measured_before_failing"] == 1.5  # partial figures are kept
    assert report["ddp"]["ok"] is True and "render" not in report


def test_the_full_run_refuses_plainly_without_cuda(capsys):
    bench = load_bench()
    if bench.torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the full run would start")
    assert bench.main(["--only", "ddp"]) == 1
    assert "no CUDA device" in json.loads(capsys.readouterr().out)["error"]
