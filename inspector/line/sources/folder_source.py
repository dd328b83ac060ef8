"""A folder of images replayed in file-name order at a set rate, once or looping."""

from __future__ import annotations

from pathlib import Path

from data.images import IMAGE_SUFFIXES
from inspector.line.sources.base import Frame, FrameSource, Pacer, SourceError, read_frame_image


class FolderSource(FrameSource):
    """Images under ``folder`` (recursively). In a folder-per-class tree the class is the truth."""

    def __init__(self, folder: str | Path, fps: float | None = 10.0, loop: bool = False) -> None:
        super().__init__()
        self.folder = Path(folder)
        self.name = f"folder {self.folder}"
        self.fps = fps
        self.loop = loop
        self.files: list[Path] = []
        self.position = 0
        self.pacer = Pacer(fps)

    def open(self) -> None:
        if not self.folder.is_dir():
            raise SourceError(f"{self.folder}: no such folder")
        self.files = sorted(
            p for p in self.folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        )
        if not self.files:
            raise SourceError(f"{self.folder}: no images ({', '.join(IMAGE_SUFFIXES)})")
        self.position = 0

    def read(self) -> Frame | None:
        if self.position >= len(self.files):
            if not self.loop:
                return None
            self.position = 0
        path = self.files[self.position]
        self.position += 1
        self.pacer.wait()
        index = self.next_index()
        image = read_frame_image(path)
        relative = path.relative_to(self.folder)
        truth = relative.parts[0] if len(relative.parts) > 1 else None
        return Frame(index, image, meta={"path": str(path)}, truth=truth)
