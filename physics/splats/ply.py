"""Binary PLY files with a ``vertex`` element, read and written bit-exactly (3DGS scenes).

A 3D Gaussian splatting scene (the INRIA format) is a binary little-endian PLY whose
``vertex`` element holds one row per Gaussian. :class:`PlyFile` keeps the vertex rows as
a numpy structured array (every property, in file order, with its on-disk type) plus
everything else of the file verbatim: header lines before and after the vertex element
(``comment``/``obj_info`` lines, other elements), the property type spellings
(``float`` vs ``float32``) and the bytes of elements stored after the vertex data. So
``write_ply(read_ply(path))`` reproduces the file byte for byte, and a file with the
vertex values changed keeps all of its other properties and their order.

Elements stored *before* ``vertex`` must have fixed-size properties (no lists); ASCII
PLY is not supported (3DGS tools write binary).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["PlyFile", "read_ply", "write_ply", "ply_bytes", "parse_ply"]

# PLY scalar type names (both spellings of the standard) -> numpy kind and size
PLY_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1",
    "short": "i2", "int16": "i2", "ushort": "u2", "uint16": "u2",
    "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}  # fmt: skip
NUMPY_TO_PLY = {"i1": "char", "u1": "uchar", "i2": "short", "u2": "ushort", "i4": "int", "u4": "uint",
                "f4": "float", "f8": "double"}
FORMATS = {"binary_little_endian": "<", "binary_big_endian": ">"}


@dataclass
class PlyFile:
    """A PLY file's ``vertex`` rows plus the rest of the file kept verbatim.

    Attributes:
        vertex: (N,) structured array, one field per vertex property in file order.
        format: ``"binary_little_endian"`` (3DGS) or ``"binary_big_endian"``.
        header_before: header lines between the ``format`` line and ``element vertex``.
        header_after: header lines after the vertex properties, before ``end_header``.
        prefix: bytes of the elements stored before the vertex data.
        suffix: bytes after the vertex data (other elements).
        type_names: spelling of each vertex property's type in the header (default: the
            standard short names ``float``, ``uchar`` ...).
        vertex_notes: other lines inside the vertex element (e.g. comments) with the number
            of property lines before each.
    """

    vertex: np.ndarray
    format: str = "binary_little_endian"
    header_before: list[str] = field(default_factory=list)
    header_after: list[str] = field(default_factory=list)
    prefix: bytes = b""
    suffix: bytes = b""
    type_names: dict[str, str] = field(default_factory=dict)
    vertex_notes: list[tuple[int, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"unsupported PLY format {self.format!r}; allowed: {', '.join(FORMATS)}")
        v = self.vertex
        if not isinstance(v, np.ndarray) or v.dtype.names is None or v.ndim != 1:
            raise ValueError("vertex must be a 1-D numpy structured array (one field per property)")
        for name in v.dtype.names:
            base = v.dtype[name]
            if base.shape != () or base.kind not in "iuf" or f"{base.kind}{base.itemsize}" not in NUMPY_TO_PLY:
                raise ValueError(f"vertex property {name!r} has dtype {base}; "
                                 "allowed: scalar int8..uint32, float32, float64")

    def with_vertex(self, vertex: np.ndarray) -> "PlyFile":
        """A copy of this file with other vertex rows (the rest of the file kept)."""
        return PlyFile(vertex, self.format, list(self.header_before), list(self.header_after), self.prefix, self.suffix,
                       dict(self.type_names), list(self.vertex_notes))

    @property
    def names(self) -> tuple[str, ...]:
        """Vertex property names in file order."""
        return tuple(self.vertex.dtype.names or ())

    def header(self) -> bytes:
        """The header bytes this file is written with (``ply`` ... ``end_header``)."""
        lines = ["ply", f"format {self.format} 1.0", *self.header_before, f"element vertex {len(self.vertex)}"]
        notes = sorted(self.vertex_notes, key=lambda note: note[0])
        for i, name in enumerate(self.names):
            lines += [text for at, text in notes if at == i]
            kind = self.vertex.dtype[name]
            default = NUMPY_TO_PLY[f"{kind.kind}{kind.itemsize}"]
            spelled = self.type_names.get(name, default)
            lines.append(f"property {spelled if PLY_TYPES.get(spelled) == PLY_TYPES[default] else default} {name}")
        lines += [text for at, text in notes if at >= len(self.names)]
        lines += [*self.header_after, "end_header"]
        return ("\n".join(lines) + "\n").encode("ascii")


def _fixed_element_size(props: list[list[str]], line: str) -> int:
    size = 0
    for words in props:
        if words[1] == "list" or words[1] not in PLY_TYPES:
            raise ValueError(f"cannot skip element with property {' '.join(words)!r} before the vertex element "
                             f"({line!r}); only fixed-size properties are supported there")
        size += int(PLY_TYPES[words[1]][1])
    return size


def parse_ply(data: bytes) -> PlyFile:
    """Parse the bytes of a binary PLY file with a ``vertex`` element into a :class:`PlyFile`."""
    if not data.startswith(b"ply\n") and not data.startswith(b"ply\r\n"):
        raise ValueError("not a PLY file: it must start with the line 'ply'")
    if b"\r\n" in data[: data.find(b"end_header") + 12]:
        raise ValueError("PLY headers with CRLF line endings are not supported")
    end = data.find(b"end_header\n")
    if end < 0:
        raise ValueError("PLY header has no 'end_header' line")
    body = end + len(b"end_header\n")
    lines = data[:end].decode("ascii").split("\n")[1:-1]
    if not lines or not lines[0].startswith("format "):
        raise ValueError("PLY header must have a 'format' line right after 'ply'")
    fmt = lines[0].split()[1]
    if fmt not in FORMATS:
        raise ValueError(f"unsupported PLY format {fmt!r}; allowed: {', '.join(FORMATS)} (ASCII PLY is not supported)")
    # group header lines into elements
    elements: list[tuple[str, int, str, list[list[str]], list[str]]] = []  # name, count, line, props, raw lines
    loose: list[str] = []  # lines before the first element
    for line in lines[1:]:
        words = line.split()
        if words and words[0] == "element":
            if len(words) != 3:
                raise ValueError(f"malformed PLY element line {line!r}")
            elements.append((words[1], int(words[2]), line, [], [line]))
        elif words and words[0] == "property":
            if not elements:
                raise ValueError(f"PLY property line {line!r} before any element")
            elements[-1][3].append(words)
            elements[-1][4].append(line)
        elif elements:
            elements[-1][4].append(line)
        else:
            loose.append(line)
    names = [e[0] for e in elements]
    if "vertex" not in names:
        raise ValueError(f"PLY file has no 'vertex' element (elements: {names})")
    iv = names.index("vertex")
    _, count, _, props, raw = elements[iv]
    order = FORMATS[fmt]
    fields, type_names = [], {}
    for words in props:
        if len(words) != 3 or words[1] not in PLY_TYPES:
            raise ValueError(f"vertex property {' '.join(words)!r} is not a scalar PLY property; "
                             f"allowed types: {', '.join(PLY_TYPES)}")
        fields.append((words[2], order + PLY_TYPES[words[1]]))
        type_names[words[2]] = words[1]
    notes, count_props = [], 0
    for line in raw[1:]:
        if line.split()[:1] == ["property"]:
            count_props += 1
        else:
            notes.append((count_props, line))  # e.g. a comment among the properties
    start = body + sum(n * _fixed_element_size(p, ln) for _, n, ln, p, _ in elements[:iv])
    dtype = np.dtype(fields)
    stop = start + count * dtype.itemsize
    if stop > len(data):
        raise ValueError(f"PLY file is truncated: the vertex element needs {stop - start} bytes, "
                         f"{len(data) - start} present")
    vertex = np.frombuffer(data, dtype=dtype, count=count, offset=start).copy()
    before = loose + [ln for e in elements[:iv] for ln in e[4]]
    after = [ln for e in elements[iv + 1 :] for ln in e[4]]
    return PlyFile(vertex, fmt, before, after, data[body:start], data[stop:], type_names, notes)


def read_ply(path: str | os.PathLike) -> PlyFile:
    """Read a binary PLY file (e.g. a 3DGS ``point_cloud.ply``); see :class:`PlyFile`."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"PLY file {str(p)!r} does not exist")
    return parse_ply(p.read_bytes())


def ply_bytes(ply: PlyFile) -> bytes:
    """The bytes of ``ply`` as a file (header, leading elements, vertex rows, trailing elements)."""
    order = FORMATS[ply.format]
    dtype = np.dtype([(n, order + f"{ply.vertex.dtype[n].kind}{ply.vertex.dtype[n].itemsize}") for n in ply.names])
    rows = ply.vertex.astype(dtype, copy=False)
    return ply.header() + ply.prefix + rows.tobytes() + ply.suffix


def write_ply(path: str | os.PathLike, ply: PlyFile) -> Path:
    """Write ``ply`` to ``path`` atomically (temporary file in the same folder, then rename)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=p.name + ".", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(ply_bytes(ply))
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, p)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return p
