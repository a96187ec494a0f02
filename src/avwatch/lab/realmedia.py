"""Real recordings for the corpus, taken from Debian packages (docs/media.md lists them).

Only package registries are reachable here, so real media comes out of .deb
files: ``apt-get download`` the package, extract the one file with
``dpkg --fsys-tarfile``, and cache it. Nothing large is committed.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from avwatch.errors import AvwatchError

__all__ = ["SPEECH", "VTEST", "fetch"]

# (package, path inside the package): OpenCV's 768x576 10 fps pedestrian camera, 79 s.
VTEST = ("opencv-doc", "usr/share/doc/opencv-doc/examples/data/vtest.avi")
# A woman reading Asterisk's demo instructions: 73 s of 8 kHz speech with natural pauses.
SPEECH = (
    "asterisk-core-sounds-en-wav",
    "usr/share/asterisk/sounds/en_US_f_Allison/demo-instruct.wav",
)


def fetch(item: tuple[str, str], cache: Path) -> Path:
    """The cached file, extracted from its Debian package on first use.

    Raises:
        AvwatchError: apt-get or dpkg is missing, or the package cannot be had.
    """
    package, member = item
    target = cache / Path(member).name
    if target.exists():
        return target
    if not (shutil.which("apt-get") and shutil.which("dpkg")):
        raise AvwatchError(f"{package}: needs apt-get and dpkg to fetch {member}")
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        download = subprocess.run(
            ["apt-get", "download", package], cwd=work, capture_output=True, text=True, timeout=600
        )
        debs = list(Path(work).glob(f"{package}_*.deb"))
        if download.returncode != 0 or not debs:
            reason = download.stderr.strip().splitlines()[-1:] or ["no .deb"]
            raise AvwatchError(f"{package}: apt-get download failed ({reason[0]})")
        # The context closes dpkg's end of the pipe and waits for it, whatever tar did.
        with subprocess.Popen(
            ["dpkg", "--fsys-tarfile", str(debs[0])], stdout=subprocess.PIPE
        ) as unpack:
            extracted = subprocess.run(
                ["tar", "-x", "-O", f"./{member}"],
                stdin=unpack.stdout,
                capture_output=True,
                timeout=600,
            )
        if extracted.returncode != 0 or not extracted.stdout:
            raise AvwatchError(f"{package}: {member} not found in the package")
        partial = target.with_suffix(".part")
        partial.write_bytes(extracted.stdout)
        partial.replace(target)
    return target
