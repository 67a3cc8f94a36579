"""The desktop app (PyQt6 + pyqtgraph): the video with the fitted head drawn over it, panels, recording, replay.

Modules: ``main_window`` (wiring only), ``views`` (the pinhole overlay and the orbitable head, OpenGL),
``gl_items`` (the GL drawables), ``panels`` (pose, expressions, speed, plots), ``worker`` (the QThread that
tracks, records and prepares frames), ``display`` (TrackedFrame -> what is drawn, no Qt), ``geometry`` (numpy:
normals, projection, colours, angles), ``backend`` (sources, pipeline, replay, recorder), ``settings``
(QSettings), ``source_dialog``, ``bench`` (the app's frame rate), ``app`` (starting it).
Nothing here runs at import time; the pipeline never imports Qt.
"""
