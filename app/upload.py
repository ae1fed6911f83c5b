"""A file upload that survives any file: chunked, and capped in the browser and on the server."""

from __future__ import annotations

import itertools
import math
from typing import ClassVar

import panel as pn
import param

from gmmot.worker import SHOW_NOTICE_JS

__all__ = ["BOX_JS", "ChunkedUpload", "upload_hooks", "upload_hooks_on"]

# calls f(view) for each upload box's view (FilePond) among the page's views
_EACH_POND_JS = """
function each_pond(f) {
  const walk = (view) => {
    if (view._file_pond) f(view);
    for (const child of view.children()) walk(child);
  };
  for (const root of Bokeh.index.roots) walk(root);
}
"""
# empty this widget's FilePond list
_CLEAR_JS = (
    _EACH_POND_JS
    + """
each_pond((view) => { if (view.model === cb_obj) view._file_pond.removeFiles(); });
"""
)
# Run on every box once the document is ready:
# - FilePond's image preview registers itself on every box of the page once its script is
#   loaded (``previews=[]`` does not keep it out); on completion it laid a green-to-dark
#   gradient over the picture, which read as a black box. It is turned off (the app draws
#   what it read).
# - A box made with a ``notice`` shows in that notice, at once, that a file is on its way:
#   the server hears of it only when the file has arrived (seconds for a large one). The
#   notice is found by the mark both carry; the server's notices replace the text, and a
#   file FilePond refuses (too large) hides it again.
BOX_JS = (
    _EACH_POND_JS
    + SHOW_NOTICE_JS
    + """
each_pond((view) => {
  if (view._gmmot_box) return;  // set up once (this runs again for boxes made later)
  view._gmmot_box = true;
  const pond = view._file_pond;
  pond.setOptions({allowImagePreview: false});
  const tag = view.model.css_classes.find((c) => c.startsWith("gmmot-tells-"));
  if (tag === undefined) return;
  const mark = "gmmot-notice-" + tag.slice("gmmot-tells-".length);
  let notice;
  for (const m of view.model.document.all_models)
    if (m.css_classes !== undefined && m.css_classes.includes(mark)) notice = m;
  if (notice === undefined) return;
  const tell = (file) => {
    const mib = (file.size / 2 ** 20).toFixed(1);
    show_notice(notice, `receiving ${file.name} (${mib} MiB) from the browser (the view ` +
      "below is from before it)");
  };
  // the file as it is picked or dropped: FilePond's own "addfilestart" comes ~0.6 s later
  pond.element.addEventListener("change", (e) => {
    if (e.target.files && e.target.files.length) tell(e.target.files[0]);
  }, true);
  pond.element.addEventListener("drop", (e) => {
    if (e.dataTransfer && e.dataTransfer.files.length) tell(e.dataTransfer.files[0]);
  }, true);
  pond.on("addfile", (error) => { if (error) notice.visible = false; });
  pond.on("processfile", (error) => { if (error) notice.visible = false; });
});
"""
)


# :data:`BOX_JS` again for boxes made after the page: they come a server round trip after
# the change that makes them (tried until 8 s later; a box is set up once)
LATER_BOX_JS = (
    "for (const ms of [300, 1000, 2500, 5000, 8000]) setTimeout(() => {\n" + BOX_JS + "\n}, ms);"
)


def upload_hooks(doc) -> None:
    """Set up every upload box of ``doc`` once it is shown (:data:`BOX_JS`)."""
    from bokeh.models import CustomJS

    doc.js_on_event("document_ready", CustomJS(code=BOX_JS))


def upload_hooks_on(tabs: pn.Tabs) -> None:
    """Set up the upload boxes a tab's first opening makes (:data:`LATER_BOX_JS`)."""
    tabs.jscallback(active=LATER_BOX_JS)


class ChunkedUpload(pn.widgets.FileDropper):
    """Panel's ``FileDropper`` (FilePond) reduced to one file at a time, with a byte cap.

    ``FileInput`` sends a whole file base64-encoded in one websocket message, so a file
    over the server's message cap closes the connection and the session is lost. Here the
    browser sends 4 MB chunks, FilePond refuses a file over ``max_bytes`` before sending
    it ("File is too large"), and the server drops a file whose chunks pass the cap (a
    client that skips the check), so the cap holds either way.

    ``value`` is the last file received in full (``bytes``), ``filename`` its name; a file
    refused on the server sets ``refused`` to the reason instead. Only the file being
    received is held; nothing is kept per name. :meth:`clear` empties the box in the
    browser: a file the app rejected must not stay there as "Upload complete" in green.
    """

    value = param.Parameter(default=None, doc="Bytes of the last file received in full.")
    filename = param.String(default=None, allow_None=True, doc="Name of that file.")
    refused = param.String(default="", doc="Why the last file was refused (server check).")
    max_bytes = param.Integer(default=50 * 2**20, bounds=(1, None), doc="Byte cap per file.")
    notice = param.Parameter(
        default=None, doc="An Alert that tells, from the browser, of a file on its way."
    )

    _rename: ClassVar[dict] = {
        "value": None, "filename": None, "refused": None, "max_bytes": None, "notice": None
    }  # fmt: skip
    _marks = itertools.count()

    def __init__(self, **params):
        params.setdefault("chunk_size", 4_000_000)
        params.setdefault("previews", [])
        params.setdefault("layout", "compact")
        super().__init__(**params)
        if self.notice is not None:  # the mark by which BOX_JS finds the notice
            mark = next(self._marks)
            self.css_classes = [*self.css_classes, f"gmmot-tells-{mark}"]
            self.notice.css_classes = [*self.notice.css_classes, f"gmmot-notice-{mark}"]
        # FilePond's sizes are in units of 1000 bytes: round up so the server decides the
        # last few hundred bytes and the two checks agree
        self.max_file_size = f"{math.ceil(self.max_bytes / 1000)}KB"
        self._name: str | None = None
        self._chunks: list[bytes] = []
        self._size = 0
        self._clears = 0
        # ``mime_type`` is FileDropper's only other synced property this subclass leaves
        # unused (``_process_event`` is ours): a change of it is the browser's cue
        self.jscallback(mime_type=_CLEAR_JS)

    def clear(self) -> None:
        """Remove the file shown in the box (the data already read are not touched)."""
        self._clears += 1
        self.mime_type = {"cleared": str(self._clears)}

    def _process_event(self, event) -> None:
        if event.event_name != "upload_event":  # a file removed from the list: keep the data
            return
        data = event.data
        if data["chunk"] == 1:
            self._name, self._chunks, self._size = data["name"], [], 0
        elif data["name"] != self._name:  # the rest of a file refused or replaced
            return
        chunk = bytes(data["data"])
        self._size += len(chunk)
        if self._size > self.max_bytes:
            self._name, self._chunks = None, []
            self.refused = ""  # trigger even when the same reason comes twice
            self.refused = f"file too large (over {self.max_bytes / 2**20:.0f} MiB)"
            return
        self._chunks.append(chunk)
        if data["chunk"] == data["total_chunks"]:
            content = b"".join(self._chunks)
            self._name, self._chunks = None, []
            self.filename = data["name"]
            self.value = None  # the same file uploaded twice still triggers
            self.value = content
