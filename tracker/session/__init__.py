"""Recorded sessions: a folder with the video, per-frame records and metadata.

Layout (``FORMAT_VERSION`` 2)::

    SESSION/
      meta.json          camera, intrinsics, model and landmark-set versions, app version, start/end, status
      records.bin        one record per frame (length, CRC, JSON + float64 arrays), appended as frames
                         arrive (see records.py)
      video/00000000.mp4 the frames ('mp4v'), in short segments named by their first frame number

Why segments and not one ``video.mp4``: an MP4 file is only readable once its index is written at close, and
OpenCV's writer keeps up to a few seconds of encoded frames in memory; a hard kill would lose the whole
video. Segments of half a second are closed (complete, readable files) as the recording runs, so after a
kill everything older than about a second is still there. :class:`~tracker.session.reader.SessionReader`
plays them back as one stream.

Modules: :mod:`.records` (the record and its bytes), :mod:`.writer` (:class:`SessionWriter`, crash-safe, faults
in words), :mod:`.reader` (:class:`SessionReader`, and :class:`SessionSource`, a session as a frame source),
:mod:`.recording` (driving a recording from any TrackedFrame iterator; the progress bar of ``main.py track``),
:mod:`.export` (``main.py export``: Live Link Face CSV, JSON lines, OBJ sequence).
"""

from tracker.session.records import FORMAT_VERSION, SessionError  # noqa: F401
