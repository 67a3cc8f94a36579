"""Image sources: splits, 300-W label convention, video frame extraction."""

from __future__ import annotations

import cv2
import numpy as np

from tracker.splits import is_held_out_300w
from tracker.training.data.sources import GT300W_OFFSET_PX, extract_video_frames, items_300w, items_videos


def test_300w_items_follow_the_split_and_shift_labels(shared_data):
    items = items_300w(shared_data)
    assert len(items) == 2012
    for it in items[:50]:
        name = it.path.rsplit("/", 1)[-1]
        assert it.split == ("val" if is_held_out_300w(name) else "train")
        assert it.gt_exact and it.gt68.shape == (68, 2)
    raw = (shared_data / "300w-train" / "landmarks68.csv").read_text().splitlines()[1].split(",")
    first = next(it for it in items if it.path.endswith("/" + raw[0]))
    assert first.gt68[0, 0] == float(raw[1]) + GT300W_OFFSET_PX


def test_video_frames_are_extracted_once(shared_data, tmp_path):
    video = shared_data / "videos" / "lp_d0.mp4"
    files = extract_video_frames(video, tmp_path, step=10)
    n = int(cv2.VideoCapture(str(video)).get(cv2.CAP_PROP_FRAME_COUNT))
    assert len(files) == -(-n // 10)
    assert cv2.imread(str(files[0])).shape[:2] == (512, 512)
    stamp = files[0].stat().st_mtime_ns
    assert extract_video_frames(video, tmp_path, step=10) == files
    assert files[0].stat().st_mtime_ns == stamp


def test_held_out_videos_are_validation(shared_data, tmp_path):
    # a data folder with only two videos: one held out, one not
    data = tmp_path / "data"
    (data / "videos").mkdir(parents=True)
    for name in ("lp_d0.mp4", "vr_3.mp4"):
        (data / "videos" / name).symlink_to(shared_data / "videos" / name)
    items = items_videos(data, tmp_path / "frames", step=25)
    splits = {it.source: it.split for it in items}
    assert splits == {"video:lp_d0.mp4": "train", "video:vr_3.mp4": "val"}
    assert np.all([it.gt68 is None for it in items])
