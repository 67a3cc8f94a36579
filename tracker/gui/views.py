"""The two 3D views: the video with the fitted head drawn through the fitted camera, and an orbitable head.

Both only upload what the worker prepared (``DisplayFrame``) and draw; they compute nothing per frame.
They are ``QOpenGLWindow``s (pyqtgraph's ``GLViewMixin``), put in the window with :func:`container`, not
``QOpenGLWidget``s: a QOpenGLWidget makes Qt compose the whole top-level window with OpenGL on every
repaint of any widget, which in a software renderer (Mesa llvmpipe, Xvfb) costs ~60 ms per frame at
1400x900; a native GL child window redraws only itself.
"""

from __future__ import annotations

import numpy as np
from OpenGL import GL
from pyqtgraph.opengl.GLViewWidget import GLViewMixin
from PyQt6 import QtCore, QtGui, QtOpenGL, QtWidgets

from tracker.gui.geometry import letterbox, projection_matrix
from tracker.gui.gl_items import LinesItem, MeshItem, PointsItem, VideoQuadItem
from tracker.types import Intrinsics



class GLView(GLViewMixin, QtOpenGL.QOpenGLWindow):
    """pyqtgraph's 3D view as a native OpenGL window (see the module docstring for why)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        fmt = QtGui.QSurfaceFormat.defaultFormat()
        fmt.setDepthBufferSize(24)  # a QOpenGLWindow has no depth buffer unless asked
        self.setFormat(fmt)
        self._min_size = QtCore.QSize(100, 100)

    def deviceWidth(self) -> int:  # noqa: N802 (pyqtgraph's name)
        return int(self.width() * self.devicePixelRatio())

    def deviceHeight(self) -> int:  # noqa: N802
        return int(self.height() * self.devicePixelRatio())

    def setMinimumSize(self, w: int, h: int) -> None:  # noqa: N802 - applied to the container
        self._min_size = QtCore.QSize(w, h)

    def release_gl(self) -> None:
        """Free every item's GL buffers, textures and shader programs while the context still exists (the
        window is about to close), so nothing is left for destructors to free without a context."""
        if not self.isValid():
            return
        self.makeCurrent()
        try:
            for item in self.items:
                release = getattr(item, "release_gl", None)
                if release is not None:
                    release()
            for prog in self.__dict__.pop("_gl_programs", {}).values():
                GL.glDeleteProgram(prog)
        finally:
            self.doneCurrent()

    def render_image(self) -> QtGui.QImage:
        """Draw the current scene now into an offscreen framebuffer of the view's size and return it
        (what the window shows; QOpenGLWindow's own grab may return a stale buffer). A null image until the
        window has been shown (no GL context yet)."""
        if not self.isValid():
            return QtGui.QImage()
        self.makeCurrent()
        try:
            fmt = QtOpenGL.QOpenGLFramebufferObjectFormat()
            fmt.setAttachment(QtOpenGL.QOpenGLFramebufferObject.Attachment.CombinedDepthStencil)
            fbo = QtOpenGL.QOpenGLFramebufferObject(max(1, self.deviceWidth()), max(1, self.deviceHeight()), fmt)
            fbo.bind()
            GL.glViewport(0, 0, self.deviceWidth(), self.deviceHeight())
            self.paintGL()
            GL.glFinish()
            image = fbo.toImage()
            fbo.release()
        finally:
            self.doneCurrent()
        return image


def container(view: GLView, parent=None) -> QtWidgets.QWidget:
    """The widget that holds a GLView in a layout."""
    w = QtWidgets.QWidget.createWindowContainer(view, parent)
    w.setMinimumSize(view._min_size)
    w.setFocusPolicy(QtCore.Qt.FocusPolicy.ClickFocus)
    return w


class OverlayView(GLView):
    """The video frame as a background, the posed head mesh (camera-space mm) through the pinhole camera.

    The projection is built from the frame's intrinsics (focal, principal point, image size); the viewport is
    letterboxed to the image's aspect ratio, so a camera point lands exactly on its pixel of the video.
    Modes (``set_options``): shaded mesh, wireframe, landmarks (coloured by sigma), each on or off.
    """

    painted = QtCore.pyqtSignal()

    def __init__(self):
        super().__init__()
        self.setBackgroundColor((18, 18, 22))
        self.setMinimumSize(320, 240)
        self.intrinsics: Intrinsics | None = None
        self.video = VideoQuadItem()
        self.mesh = MeshItem()
        # the projection flips y, so faces turned to the camera wind counter-clockwise on screen; culling the
        # others leaves (almost) one layer to blend, without the cost of a depth pre-pass
        self.mesh.front_face = GL.GL_CCW
        self.mesh.depth_prepass = False
        self.landmarks = PointsItem(size=3.0)
        self.landmarks.setDepthValue(1000)
        for item in (self.video, self.mesh, self.landmarks):
            self.addItem(item)
        self.show_mesh = True
        self.show_wireframe = False
        self.show_landmarks = True
        self.paint_count = 0
        self.frames_painted = 0  # paints that showed a new video frame
        self.last_paint_ms = 0.0
        self.paint_ms_total = 0.0

    # -- interaction: the overlay camera is the fitted camera; no orbiting here
    def mousePressEvent(self, ev):
        ev.ignore()

    def mouseMoveEvent(self, ev):
        ev.ignore()

    def wheelEvent(self, ev):
        ev.ignore()

    def set_options(self, mesh: bool | None = None, wireframe: bool | None = None,
                    landmarks: bool | None = None) -> None:
        if mesh is not None:
            self.show_mesh = bool(mesh)
        if wireframe is not None:
            self.show_wireframe = bool(wireframe)
        if landmarks is not None:
            self.show_landmarks = bool(landmarks)
        self.mesh.draw_faces = self.show_mesh
        self.mesh.draw_edges = self.show_wireframe
        self.landmarks.setVisible(self.show_landmarks)
        self.update()

    def set_topology(self, faces: np.ndarray, edges: np.ndarray | None) -> None:
        self.mesh.set_topology(faces, edges)

    def show_frame(self, image_bgr: np.ndarray, intrinsics: Intrinsics, vertices_mm: np.ndarray | None,
                   normals: np.ndarray | None, landmark_points: np.ndarray | None,
                   landmark_colors: np.ndarray | None) -> None:
        """Everything for one frame, already prepared: (H, W, 3) BGR; (N, 3) camera mm; (L, 3) on the
        landmark plane; (L, 4) RGBA."""
        self.intrinsics = intrinsics
        self.video.set_image(image_bgr)
        self.mesh.set_vertices(vertices_mm, normals)
        self.landmarks.set_points(landmark_points, landmark_colors)
        self.update()

    def clear_overlay(self) -> None:
        self.mesh.set_vertices(None)
        self.landmarks.set_points(None)

    # -- the pinhole camera
    def image_viewport(self) -> tuple[int, int, int, int]:
        """(x0, y0, w, h) in device pixels, GL convention (y0 from the bottom), where the image is drawn."""
        if self.intrinsics is None:
            return 0, 0, self.deviceWidth(), self.deviceHeight()
        return letterbox(self.deviceWidth(), self.deviceHeight(), self.intrinsics.width, self.intrinsics.height)

    def image_to_widget(self, points_px: np.ndarray) -> np.ndarray:
        """(K, 2) image pixels -> (K, 2) device pixels of the framebuffer (origin top-left)."""
        x0, y0, w, h = self.image_viewport()
        top = self.deviceHeight() - (y0 + h)
        pts = np.asarray(points_px, dtype=np.float64)
        sx, sy = w / self.intrinsics.width, h / self.intrinsics.height
        return np.stack([x0 + (pts[:, 0] + 0.5) * sx - 0.5, top + (pts[:, 1] + 0.5) * sy - 0.5], axis=1)

    def widget_to_image(self, points: np.ndarray) -> np.ndarray:
        """(K, 2) framebuffer device pixels (origin top-left) -> (K, 2) image pixels."""
        x0, y0, w, h = self.image_viewport()
        top = self.deviceHeight() - (y0 + h)
        pts = np.asarray(points, dtype=np.float64)
        sx, sy = w / self.intrinsics.width, h / self.intrinsics.height
        return np.stack([(pts[:, 0] - x0 + 0.5) / sx - 0.5, (pts[:, 1] - top + 0.5) / sy - 0.5], axis=1)

    def projectionMatrix(self, region, viewport):  # noqa: N802 (pyqtgraph's name)
        if self.intrinsics is None:
            return super().projectionMatrix(region, viewport)
        p = projection_matrix(self.intrinsics)
        return QtGui.QMatrix4x4(*p.astype(np.float32).reshape(-1).tolist())

    def viewMatrix(self):  # noqa: N802
        return QtGui.QMatrix4x4()  # items are in camera coordinates already

    def paintGL(self):  # noqa: N802
        timer = QtCore.QElapsedTimer()
        timer.start()
        GL.glViewport(0, 0, self.deviceWidth(), self.deviceHeight())
        bg = self.opts["bgcolor"]
        GL.glClearColor(*bg)
        GL.glClear(GL.GL_DEPTH_BUFFER_BIT | GL.GL_COLOR_BUFFER_BIT)
        if self.video.has_new_image():
            self.frames_painted += 1
        if self.intrinsics is not None:
            vp = self.image_viewport()
            GL.glViewport(*vp)
            self.paint(region=vp, viewport=vp)
            GL.glViewport(0, 0, self.deviceWidth(), self.deviceHeight())
        self.paint_count += 1
        self.last_paint_ms = timer.nsecsElapsed() / 1e6
        self.paint_ms_total += self.last_paint_ms
        self.painted.emit()


class HeadView(GLView):
    """The fitted head on its own, in model space (cm, +y up), which the user orbits with the mouse."""

    def __init__(self):
        super().__init__(rotationMethod="quaternion")
        self.setBackgroundColor((28, 30, 36))
        self.setMinimumSize(200, 200)
        self.mesh = MeshItem(color=(0.90, 0.76, 0.66, 1.0), edge_color=(0.2, 0.2, 0.25, 0.25),
                             light=(0.3, 0.4, 1.0))
        self.addItem(self.mesh)
        self.addItem(LinesItem.grid(40.0, 5.0, -22.0))  # a floor under the head (cm)
        self.home()

    def home(self) -> None:
        """Front view of the face (model +z towards the viewer, +y up)."""
        self.setCameraPosition(pos=QtGui.QVector3D(0, 0, 0), distance=60.0,
                               rotation=QtGui.QQuaternion.fromEulerAngles(0, 0, 0))
        self.opts["fov"] = 40
        self.update()

    def set_topology(self, faces: np.ndarray, edges: np.ndarray | None) -> None:
        self.mesh.set_topology(faces, edges)

    def show_head(self, vertices_cm: np.ndarray | None, normals: np.ndarray | None) -> None:
        self.mesh.set_vertices(vertices_cm, normals)
