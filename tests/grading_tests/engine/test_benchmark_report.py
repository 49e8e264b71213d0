"""The benchmark's markdown: what a CUDA run did not measure shows as "-", not "nan"."""

from __future__ import annotations

import math

from grading.engine.benchmark import speed_markdown


def test_a_cuda_speed_report_has_no_floor_and_says_so() -> None:
    report = {
        "input_size": 128,
        "throughput": {},
        "results": {
            "ours": {
                "params_m": 0.44,
                "gflops_per_hip": 0.322,
                "float32_b1_ms": 6.7,
                "float32_b16_ms": 1.4,
                "float32_b16_network_ms": 0.1,
                "float32_floor_ms": math.nan,
                "cuda_slices_per_s": 907.0,
            }
        },
    }
    table = speed_markdown(report)
    row = next(line for line in table.splitlines() if line.startswith("| ours"))
    assert "nan" not in table
    assert row == "| ours | 0.44 | 0.322 | 6.7 | 1.4 | 0.1 | - | 907 |"
    assert "CUDA slices/s" in table.splitlines()[0]
