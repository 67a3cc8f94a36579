"""``bench fit`` end to end on a few frames (the figures themselves come from the full run)."""

from __future__ import annotations

import argparse
import json

from tracker.fitting import bench


def test_bench_fit_runs_and_reports_every_mode():
    p = argparse.ArgumentParser()
    bench.add_arguments(p)
    args = p.parse_args(["--quick", "--sequences", "1", "--frames", "4", "--keyframes", "6"])
    res = bench.run(args)
    json.dumps(res)  # JSON-able
    assert res["landmarks"] == 320
    for mode in ("tracking", "tracking_1px", "tracking_mean_identity", "keyframes", "offline"):
        r = res[mode]
        assert r["frames"] > 0 and r["failed_frames"] == 0
        for key in ("cpu_ms_per_frame_median", "wall_ms_per_frame_p90", "iterations_mean", "landmark_rmse_px_mean",
                    "vertex_error_mm_mean", "expression_mae_mean", "rotation_error_deg_mean",
                    "translation_error_mm_mean", "focal_error_pct_mean"):
            assert r[key] >= 0.0, (mode, key)
    assert res["tracking_1px"]["landmark_rmse_px_mean"] < 1.0
    assert res["keyframes"]["sequence_focal_std_px_mean"] > 0.0
