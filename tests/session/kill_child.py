"""Child process of the hard-kill test: records frames of a real clip at ~30 fps until it is killed.

Prints "frame <index> <timestamp_ns>" after each write (the timestamp is CLOCK_MONOTONIC, shared with the
parent), so the parent knows what was handed to the writer and when.
"""

import sys
import time

import numpy as np

from tests.session.helpers import fake_tracked
from tracker.camera.sources import VideoSource
from tracker.session.writer import SessionWriter
from tracker.types import Frame

video, out = sys.argv[1], sys.argv[2]
rng = np.random.default_rng(1)
with VideoSource(video, loop=True) as src:
    writer = SessionWriter(out, fps=30.0, camera=src.description)
    for frame in src:
        stamped = Frame(frame.image, time.monotonic_ns(), frame.index)
        writer.write(fake_tracked(stamped, rng))
        print("frame", stamped.index, stamped.timestamp_ns, flush=True)
        time.sleep(1 / 30)
