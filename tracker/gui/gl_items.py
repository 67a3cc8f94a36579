"""OpenGL items for pyqtgraph's GLViewWidget: a shaded translucent mesh, its wireframe, points, a video quad.

Each item keeps its data in vertex buffers and uploads only what changed since the last paint. Data comes in
ready to draw (float32 positions and normals computed by the worker thread); paint() only issues GL calls.
The shaders are GLSL 1.10/1.20 (legacy ``attribute``/``varying``), which every compatibility context runs.
"""

from __future__ import annotations

import numpy as np
from OpenGL import GL
from OpenGL.GL import shaders as gl_shaders
from pyqtgraph.opengl import GLGraphicsItem
from PyQt6 import QtOpenGL

_MESH_VS = """
uniform mat4 u_mvp;
uniform mat3 u_normal;
attribute vec3 a_position;
attribute vec3 a_normal;
varying vec3 v_normal;
void main() {
    v_normal = u_normal * a_normal;
    gl_Position = u_mvp * vec4(a_position, 1.0);
}
"""

# Two-sided Lambert + a little Blinn specular, light from the viewer's side (abs() makes it independent of the
# eye-space handedness, which differs between the pinhole overlay and the orbit view).
_MESH_FS = """
uniform vec4 u_color;
uniform vec3 u_light;
varying vec3 v_normal;
void main() {
    float len = length(v_normal);  // zero at degenerate triangles: shade those as facing the light
    float d = len > 1e-6 ? abs(dot(v_normal / len, u_light)) : 1.0;
    float s = pow(d, 24.0);
    vec3 rgb = u_color.rgb * (0.30 + 0.70 * d) + vec3(0.25) * s;
    gl_FragColor = vec4(rgb, u_color.a);
}
"""

_FLAT_VS = """
uniform mat4 u_mvp;
uniform float u_point_size;
attribute vec3 a_position;
attribute vec4 a_color;
varying vec4 v_color;
void main() {
    v_color = a_color;
    gl_PointSize = u_point_size;
    gl_Position = u_mvp * vec4(a_position, 1.0);
}
"""

_FLAT_FS = """
varying vec4 v_color;
void main() {
    gl_FragColor = v_color;
}
"""

_LINE_VS = """
uniform mat4 u_mvp;
attribute vec3 a_position;
void main() {
    gl_Position = u_mvp * vec4(a_position, 1.0);
}
"""

_LINE_FS = """
uniform vec4 u_color;
void main() {
    gl_FragColor = u_color;
}
"""

_QUAD_VS = """
attribute vec2 a_position;
attribute vec2 a_texcoord;
varying vec2 v_texcoord;
void main() {
    v_texcoord = a_texcoord;
    gl_Position = vec4(a_position, 0.0, 1.0);
}
"""

_QUAD_FS = """
uniform sampler2D u_texture;
varying vec2 v_texcoord;
void main() {
    gl_FragColor = vec4(texture2D(u_texture, v_texcoord).rgb, 1.0);
}
"""

def _program(item, name: str, vs: str, fs: str, attributes: tuple[str, ...]) -> int:
    """Compile once per view (each view has its own GL context); attribute locations fixed by ``attributes``."""
    view = item.view()
    cache = view.__dict__.setdefault("_gl_programs", {})
    prog = cache.get(name)
    if prog is None:
        prog = gl_shaders.compileProgram(gl_shaders.compileShader(vs, GL.GL_VERTEX_SHADER),
                                         gl_shaders.compileShader(fs, GL.GL_FRAGMENT_SHADER))
        for i, attr in enumerate(attributes):
            GL.glBindAttribLocation(prog, i, attr)
        GL.glLinkProgram(prog)
        cache[name] = prog
    return prog


class _Buffer:
    """A QOpenGLBuffer that is (re)allocated only when the size changes."""

    def __init__(self, kind=QtOpenGL.QOpenGLBuffer.Type.VertexBuffer):
        self.vbo = QtOpenGL.QOpenGLBuffer(kind)
        self.count = 0

    def release(self) -> None:
        """Free the GL buffer (the view's context must be current)."""
        if self.vbo.isCreated():
            self.vbo.destroy()
        self.count = 0

    def upload(self, arr: np.ndarray) -> None:
        arr = np.ascontiguousarray(arr)
        if not self.vbo.isCreated():
            self.vbo.create()
        self.vbo.bind()
        if self.vbo.size() != arr.nbytes:
            self.vbo.allocate(arr, arr.nbytes)
        else:
            self.vbo.write(0, arr, arr.nbytes)
        self.vbo.release()
        self.count = int(arr.shape[0]) if arr.ndim else 0


def _blend_over() -> None:
    """Alpha blending that keeps the framebuffer opaque (destination alpha stays 1), so grabbed images
    (premultiplied) show the colours seen on screen."""
    GL.glBlendFuncSeparate(GL.GL_SRC_ALPHA, GL.GL_ONE_MINUS_SRC_ALPHA, GL.GL_ONE, GL.GL_ONE_MINUS_SRC_ALPHA)


def _mat(m) -> np.ndarray:
    return np.array(m.data(), dtype=np.float32)


class MeshItem(GLGraphicsItem.GLGraphicsItem):
    """A triangle mesh drawn shaded and translucent (depth pre-pass, so only the nearest layer blends), and/or
    its wireframe. Positions in the view's model coordinates."""

    def __init__(self, color=(0.45, 0.78, 1.0, 0.5), edge_color=(0.35, 0.85, 1.0, 0.45),
                 light=(0.25, -0.35, 0.9), parentItem=None):
        super().__init__(parentItem=parentItem)
        self.color = tuple(float(c) for c in color)
        self.edge_color = tuple(float(c) for c in edge_color)
        light = np.asarray(light, dtype=np.float32)
        self.light = light / np.linalg.norm(light)
        self.draw_faces = True
        self.draw_edges = False
        #: winding of front faces on screen (GL.GL_CCW / GL.GL_CW) to cull back faces, None: draw both sides
        self.front_face = None
        #: translucent: a depth-only pass first so exactly the nearest layer blends (costs a second pass)
        self.depth_prepass = True
        self._pos = _Buffer()
        self._nrm = _Buffer()
        self._tri = _Buffer(QtOpenGL.QOpenGLBuffer.Type.IndexBuffer)
        self._edg = _Buffer(QtOpenGL.QOpenGLBuffer.Type.IndexBuffer)
        self._faces: np.ndarray | None = None
        self._edges: np.ndarray | None = None
        self._verts: np.ndarray | None = None
        self._norms: np.ndarray | None = None
        self._dirty_topology = False
        self._dirty_vertices = False
        self._n_vertices = 0

    def set_topology(self, faces: np.ndarray, edges: np.ndarray | None = None) -> None:
        """faces (F, 3) and edges (E, 2) indices into the vertex array given to ``set_vertices``."""
        self._faces = np.ascontiguousarray(faces, dtype=np.uint32)
        self._edges = None if edges is None else np.ascontiguousarray(edges, dtype=np.uint32)
        self._dirty_topology = True
        self.update()

    def set_vertices(self, vertices: np.ndarray | None, normals: np.ndarray | None = None) -> None:
        """vertices (N, 3), normals (N, 3) float32; None hides the mesh."""
        if vertices is None:
            self._verts = None
            self._n_vertices = 0
        else:
            self._verts = np.ascontiguousarray(vertices, dtype=np.float32)
            self._norms = (np.zeros_like(self._verts) if normals is None
                           else np.ascontiguousarray(normals, dtype=np.float32))
            self._n_vertices = self._verts.shape[0]
            self._dirty_vertices = True
        self.update()

    def release_gl(self) -> None:
        """Free the GL buffers (context current); the next paint uploads everything again."""
        for b in (self._pos, self._nrm, self._tri, self._edg):
            b.release()
        self._dirty_topology = self._faces is not None
        self._dirty_vertices = self._verts is not None

    def has_geometry(self) -> bool:
        return self._verts is not None and self._faces is not None

    def paint(self) -> None:
        if not self.has_geometry() or not (self.draw_faces or self.draw_edges):
            return
        if self._dirty_topology:
            self._tri.upload(self._faces)
            if self._edges is not None:
                self._edg.upload(self._edges)
            self._dirty_topology = False
        if self._dirty_vertices:
            self._pos.upload(self._verts)
            self._nrm.upload(self._norms)
            self._dirty_vertices = False
        mvp = _mat(self.mvpMatrix())
        GL.glEnable(GL.GL_DEPTH_TEST)
        GL.glDisable(GL.GL_CULL_FACE)
        GL.glDepthFunc(GL.GL_LEQUAL)
        if self.draw_edges and self._edges is not None:
            # faces pushed back a little so the edges on them win the depth test (no z-fighting); without
            # shaded faces they are drawn into the depth buffer only, hiding the edges behind them
            GL.glEnable(GL.GL_POLYGON_OFFSET_FILL)
            GL.glPolygonOffset(1.0, 2.0)
            if not self.draw_faces:
                GL.glColorMask(GL.GL_FALSE, GL.GL_FALSE, GL.GL_FALSE, GL.GL_FALSE)
                self._paint_faces(mvp, depth_only=True)
                GL.glColorMask(GL.GL_TRUE, GL.GL_TRUE, GL.GL_TRUE, GL.GL_TRUE)
        if self.draw_faces:
            self._paint_faces(mvp)
        GL.glDisable(GL.GL_POLYGON_OFFSET_FILL)
        if self.draw_edges and self._edges is not None:
            self._paint_edges(mvp)
        GL.glDepthMask(GL.GL_TRUE)
        GL.glDepthFunc(GL.GL_LESS)
        GL.glDisable(GL.GL_BLEND)

    def _paint_faces(self, mvp: np.ndarray, depth_only: bool = False) -> None:
        prog = _program(self, "mesh", _MESH_VS, _MESH_FS, ("a_position", "a_normal"))
        nmat = _mat(self.modelViewMatrix().normalMatrix())
        GL.glUseProgram(prog)
        try:
            GL.glUniformMatrix4fv(GL.glGetUniformLocation(prog, "u_mvp"), 1, False, mvp)
            GL.glUniformMatrix3fv(GL.glGetUniformLocation(prog, "u_normal"), 1, False, nmat)
            GL.glUniform4f(GL.glGetUniformLocation(prog, "u_color"), *self.color)
            GL.glUniform3f(GL.glGetUniformLocation(prog, "u_light"), *self.light)
            self._pos.vbo.bind()
            GL.glVertexAttribPointer(0, 3, GL.GL_FLOAT, False, 0, None)
            self._nrm.vbo.bind()
            GL.glVertexAttribPointer(1, 3, GL.GL_FLOAT, False, 0, None)
            self._nrm.vbo.release()
            GL.glEnableVertexAttribArray(0)
            GL.glEnableVertexAttribArray(1)
            self._tri.vbo.bind()
            n = int(self._faces.size)
            if self.front_face is not None:  # draw only the faces turned towards the viewer
                GL.glEnable(GL.GL_CULL_FACE)
                GL.glCullFace(GL.GL_BACK)
                GL.glFrontFace(self.front_face)
            if depth_only:
                GL.glDisable(GL.GL_BLEND)
            elif self.color[3] < 1.0 and not self.depth_prepass:
                # one pass, nearest first wins the depth test; with back faces culled only folds (nose
                # sides) can blend twice
                GL.glEnable(GL.GL_BLEND)
                _blend_over()
            elif self.color[3] < 1.0:
                # pass 1: depth only, so pass 2 blends just the front-most surface (no doubled layers)
                GL.glDisable(GL.GL_BLEND)
                GL.glColorMask(GL.GL_FALSE, GL.GL_FALSE, GL.GL_FALSE, GL.GL_FALSE)
                GL.glDrawElements(GL.GL_TRIANGLES, n, GL.GL_UNSIGNED_INT, None)
                GL.glColorMask(GL.GL_TRUE, GL.GL_TRUE, GL.GL_TRUE, GL.GL_TRUE)
                GL.glEnable(GL.GL_BLEND)
                _blend_over()
                GL.glDepthMask(GL.GL_FALSE)
            else:
                GL.glDisable(GL.GL_BLEND)
            GL.glDrawElements(GL.GL_TRIANGLES, n, GL.GL_UNSIGNED_INT, None)
            GL.glDepthMask(GL.GL_TRUE)
            GL.glDisable(GL.GL_CULL_FACE)
            self._tri.vbo.release()
            GL.glDisableVertexAttribArray(0)
            GL.glDisableVertexAttribArray(1)
            self._pos.vbo.release()
        finally:
            GL.glUseProgram(0)

    def _paint_edges(self, mvp: np.ndarray) -> None:
        prog = _program(self, "line", _LINE_VS, _LINE_FS, ("a_position",))
        GL.glUseProgram(prog)
        try:
            GL.glUniformMatrix4fv(GL.glGetUniformLocation(prog, "u_mvp"), 1, False, mvp)
            GL.glUniform4f(GL.glGetUniformLocation(prog, "u_color"), *self.edge_color)
            GL.glEnable(GL.GL_BLEND)
            _blend_over()
            GL.glDepthMask(GL.GL_FALSE)
            self._pos.vbo.bind()
            GL.glVertexAttribPointer(0, 3, GL.GL_FLOAT, False, 0, None)
            GL.glEnableVertexAttribArray(0)
            self._edg.vbo.bind()
            GL.glDrawElements(GL.GL_LINES, int(self._edges.size), GL.GL_UNSIGNED_INT, None)
            self._edg.vbo.release()
            GL.glDisableVertexAttribArray(0)
            self._pos.vbo.release()
        finally:
            GL.glUseProgram(0)


class PointsItem(GLGraphicsItem.GLGraphicsItem):
    """Coloured square points drawn on top of everything (no depth test)."""

    def __init__(self, size: float = 3.0, parentItem=None):
        super().__init__(parentItem=parentItem)
        self.size = float(size)
        self._pos = _Buffer()
        self._col = _Buffer()
        self._data: tuple[np.ndarray, np.ndarray] | None = None
        self._dirty = False
        self._n = 0

    def release_gl(self) -> None:
        self._pos.release()
        self._col.release()
        self._dirty = self._data is not None

    def set_points(self, positions: np.ndarray | None, colors: np.ndarray | None = None) -> None:
        """positions (L, 3), colors (L, 4) float32 RGBA in [0, 1]; None hides them."""
        if positions is None or len(positions) == 0:
            self._n = 0
            self._data = None
        else:
            pos = np.ascontiguousarray(positions, dtype=np.float32)
            col = (np.ones((pos.shape[0], 4), dtype=np.float32) if colors is None
                   else np.ascontiguousarray(colors, dtype=np.float32))
            self._data = (pos, col)
            self._n = pos.shape[0]
            self._dirty = True
        self.update()

    def paint(self) -> None:
        if self._n == 0:
            return
        if self._dirty:
            self._pos.upload(self._data[0])
            self._col.upload(self._data[1])
            self._dirty = False
        prog = _program(self, "flat", _FLAT_VS, _FLAT_FS, ("a_position", "a_color"))
        GL.glDisable(GL.GL_DEPTH_TEST)
        GL.glEnable(GL.GL_BLEND)
        _blend_over()
        GL.glEnable(GL.GL_PROGRAM_POINT_SIZE)
        GL.glUseProgram(prog)
        try:
            GL.glUniformMatrix4fv(GL.glGetUniformLocation(prog, "u_mvp"), 1, False, _mat(self.mvpMatrix()))
            GL.glUniform1f(GL.glGetUniformLocation(prog, "u_point_size"), self.size)
            self._pos.vbo.bind()
            GL.glVertexAttribPointer(0, 3, GL.GL_FLOAT, False, 0, None)
            self._col.vbo.bind()
            GL.glVertexAttribPointer(1, 4, GL.GL_FLOAT, False, 0, None)
            self._col.vbo.release()
            GL.glEnableVertexAttribArray(0)
            GL.glEnableVertexAttribArray(1)
            GL.glDrawArrays(GL.GL_POINTS, 0, self._n)
            GL.glDisableVertexAttribArray(0)
            GL.glDisableVertexAttribArray(1)
            self._pos.vbo.release()
        finally:
            GL.glUseProgram(0)
            GL.glDisable(GL.GL_PROGRAM_POINT_SIZE)
            GL.glDisable(GL.GL_BLEND)
            GL.glEnable(GL.GL_DEPTH_TEST)


class LinesItem(GLGraphicsItem.GLGraphicsItem):
    """Line segments in one colour (a floor grid). positions: (2K, 3), each pair one segment."""

    def __init__(self, positions: np.ndarray, color=(0.5, 0.5, 0.55, 0.35), parentItem=None):
        super().__init__(parentItem=parentItem)
        self.color = tuple(float(c) for c in color)
        self._data = np.ascontiguousarray(positions, dtype=np.float32)
        self._pos = _Buffer()
        self._dirty = True

    def release_gl(self) -> None:
        self._pos.release()
        self._dirty = True

    @classmethod
    def grid(cls, size: float, spacing: float, y: float, **kwargs) -> "LinesItem":
        """A square grid in the plane at height ``y`` (model axes: +y up), centred on the origin."""
        ticks = np.arange(-size / 2, size / 2 + 1e-6, spacing)
        seg = [((t, y, -size / 2), (t, y, size / 2)) for t in ticks]
        seg += [((-size / 2, y, t), (size / 2, y, t)) for t in ticks]
        return cls(np.array(seg, dtype=np.float32).reshape(-1, 3), **kwargs)

    def paint(self) -> None:
        if self._dirty:
            self._pos.upload(self._data)
            self._dirty = False
        prog = _program(self, "line", _LINE_VS, _LINE_FS, ("a_position",))
        GL.glEnable(GL.GL_DEPTH_TEST)
        GL.glEnable(GL.GL_BLEND)
        _blend_over()
        GL.glUseProgram(prog)
        try:
            GL.glUniformMatrix4fv(GL.glGetUniformLocation(prog, "u_mvp"), 1, False, _mat(self.mvpMatrix()))
            GL.glUniform4f(GL.glGetUniformLocation(prog, "u_color"), *self.color)
            self._pos.vbo.bind()
            GL.glVertexAttribPointer(0, 3, GL.GL_FLOAT, False, 0, None)
            GL.glEnableVertexAttribArray(0)
            GL.glDrawArrays(GL.GL_LINES, 0, self._pos.count)
            GL.glDisableVertexAttribArray(0)
            self._pos.vbo.release()
        finally:
            GL.glUseProgram(0)
            GL.glDisable(GL.GL_BLEND)


class VideoQuadItem(GLGraphicsItem.GLGraphicsItem):
    """The video frame as a texture filling the whole viewport, drawn first, behind everything."""

    def __init__(self, parentItem=None):
        super().__init__(parentItem=parentItem)
        self.setDepthValue(-1000)  # drawn before the other items
        self._image: np.ndarray | None = None
        self._tex = None
        self._tex_size: tuple[int, int] | None = None
        self._dirty = False
        self._quad = _Buffer()

    def set_image(self, image_bgr: np.ndarray | None) -> None:
        """(H, W, 3) uint8 BGR, or None for none."""
        self._image = None if image_bgr is None else np.ascontiguousarray(image_bgr, dtype=np.uint8)
        self._dirty = self._image is not None
        self.update()

    def release_gl(self) -> None:
        if self._tex is not None:
            GL.glDeleteTextures([self._tex])
            self._tex = None
            self._tex_size = None
        self._quad.release()
        self._dirty = self._image is not None

    def has_new_image(self) -> bool:
        """True when an image was set that has not been drawn yet."""
        return self._dirty

    def paint(self) -> None:
        if self._image is None:
            return
        h, w = self._image.shape[:2]
        if self._tex is None:
            self._tex = GL.glGenTextures(1)
            GL.glBindTexture(GL.GL_TEXTURE_2D, self._tex)
            GL.glTexParameteri(GL.GL_TEXTURE_2D, GL.GL_TEXTURE_MIN_FILTER, GL.GL_LINEAR)
            GL.glTexParameteri(GL.GL_TEXTURE_2D, GL.GL_TEXTURE_MAG_FILTER, GL.GL_LINEAR)
            GL.glTexParameteri(GL.GL_TEXTURE_2D, GL.GL_TEXTURE_WRAP_S, GL.GL_CLAMP_TO_EDGE)
            GL.glTexParameteri(GL.GL_TEXTURE_2D, GL.GL_TEXTURE_WRAP_T, GL.GL_CLAMP_TO_EDGE)
            # (x_ndc, y_ndc, s, t): image row 0 (t = 0) at the top of the viewport
            quad = np.array([[-1, 1, 0, 0], [1, 1, 1, 0], [-1, -1, 0, 1], [1, -1, 1, 1]], dtype=np.float32)
            self._quad.upload(quad)
        GL.glBindTexture(GL.GL_TEXTURE_2D, self._tex)
        if self._dirty:
            GL.glPixelStorei(GL.GL_UNPACK_ALIGNMENT, 1)
            if self._tex_size != (w, h):
                GL.glTexImage2D(GL.GL_TEXTURE_2D, 0, GL.GL_RGB8, w, h, 0, GL.GL_BGR, GL.GL_UNSIGNED_BYTE,
                                self._image)
                self._tex_size = (w, h)
            else:
                GL.glTexSubImage2D(GL.GL_TEXTURE_2D, 0, 0, 0, w, h, GL.GL_BGR, GL.GL_UNSIGNED_BYTE, self._image)
            self._dirty = False
        prog = _program(self, "quad", _QUAD_VS, _QUAD_FS, ("a_position", "a_texcoord"))
        GL.glDisable(GL.GL_DEPTH_TEST)
        GL.glDisable(GL.GL_BLEND)
        GL.glDepthMask(GL.GL_FALSE)
        GL.glUseProgram(prog)
        try:
            GL.glUniform1i(GL.glGetUniformLocation(prog, "u_texture"), 0)
            self._quad.vbo.bind()
            GL.glVertexAttribPointer(0, 2, GL.GL_FLOAT, False, 16, None)
            GL.glVertexAttribPointer(1, 2, GL.GL_FLOAT, False, 16, GL.GLvoidp(8))
            GL.glEnableVertexAttribArray(0)
            GL.glEnableVertexAttribArray(1)
            GL.glDrawArrays(GL.GL_TRIANGLE_STRIP, 0, 4)
            GL.glDisableVertexAttribArray(0)
            GL.glDisableVertexAttribArray(1)
            self._quad.vbo.release()
        finally:
            GL.glUseProgram(0)
            GL.glBindTexture(GL.GL_TEXTURE_2D, 0)
            GL.glDepthMask(GL.GL_TRUE)
            GL.glEnable(GL.GL_DEPTH_TEST)
