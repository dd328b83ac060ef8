"""GenICam / GigE Vision / USB3 Vision cameras through ``harvesters`` (optional extra).

Install with ``pip install ltm-inspector[genicam]`` and point ``--source genicam:PRODUCER.cti`` at
the GenTL producer your camera vendor ships (or ``genicam:PRODUCER.cti#SERIAL``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from inspector.line.sources.base import BadFrame, Frame, FrameSource, SourceDisconnected, SourceError

INSTALL_HINT = "GenICam cameras need the optional extra: pip install 'ltm-inspector[genicam]'"


class GenICamSource(FrameSource):
    reconnectable = True
    fixed_shape = True

    def __init__(self, producer: str | Path, serial: str | None = None, timeout_s: float = 3.0) -> None:
        super().__init__()
        self.producer = Path(producer)
        self.serial = serial
        self.timeout_s = timeout_s
        self.name = f"GenICam {serial or 'camera 0'}"
        self.harvester: Any = None
        self.acquirer: Any = None

    def open(self) -> None:
        try:
            from harvesters.core import Harvester
        except ImportError:
            raise SourceError(INSTALL_HINT) from None
        if not self.producer.is_file() or self.producer.suffix.lower() != ".cti":
            raise SourceError(
                f"{self.producer}: no GenTL producer (.cti) file there; the camera vendor ships one"
            )
        harvester = Harvester()
        try:
            harvester.add_file(str(self.producer))
            harvester.update()
            if not harvester.device_info_list:
                raise SourceError(f"{self.producer}: the producer sees no camera (unplugged or powered off?)")
            self.acquirer = harvester.create({"serial_number": self.serial} if self.serial else 0)
            self.acquirer.start()
        except SourceError:
            harvester.reset()
            raise
        except Exception as exc:  # harvesters and the GenTL producer raise their own exception types
            harvester.reset()
            raise SourceError(f"{self.name}: cannot open ({str(exc).splitlines()[0]})") from None
        self.harvester = harvester

    def read(self) -> Frame | None:
        if self.acquirer is None:
            raise SourceDisconnected(f"{self.name}: not open")
        try:
            with self.acquirer.fetch(timeout=self.timeout_s) as buffer:
                component = buffer.payload.components[0]
                height, width = int(component.height), int(component.width)
                channels = int(getattr(component, "num_components_per_pixel", 1) or 1)
                data = np.asarray(component.data)
                if data.size != height * width * channels:
                    raise BadFrame("wrong_size", f"{data.size} values for {width}x{height}x{channels}")
                image = data.reshape(height, width, channels) if channels > 1 else data.reshape(height, width)
                image = image.copy()  # the buffer goes back to the camera when the block ends
        except BadFrame:
            raise
        except Exception as exc:
            reason = str(exc).splitlines()[0] if str(exc) else "no frame"
            raise SourceDisconnected(f"{self.name}: {reason}") from None
        return Frame(self.next_index(), image, meta={"source": self.name})

    def close(self) -> None:
        for step in (
            lambda: self.acquirer and self.acquirer.stop(),
            lambda: self.acquirer and self.acquirer.destroy(),
            lambda: self.harvester and self.harvester.reset(),
        ):
            try:
                step()
            except Exception:  # closing a lost camera must never raise
                pass
        self.acquirer = self.harvester = None
