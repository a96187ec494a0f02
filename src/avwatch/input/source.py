"""Open a file or URL with timeouts, turning every failure into one clear InputError.

PyAV (libavformat) does the protocol work: file, http(s), HLS, udp, rtp, srt,
rtmp, rtsp. Timeouts use PyAV's interrupt callback, so an unreachable host or a
silent UDP port fails within ``open_timeout_s`` instead of hanging.
"""

from __future__ import annotations

import functools
import io
import logging
import os
import socket
import urllib.error
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import av
import av.container

from avwatch.errors import InputError, InputNotFound, InputUnreachable, InputUnreadable, reason
from avwatch.input.gateway import GatewayPipe, gateway_ffmpeg
from avwatch.input.hls import HlsTsReader, NotPlainTs, is_hls_url
from avwatch.input.httpts import HttpTsReader, NotTs
from avwatch.input.tap import TsTap, looks_like_ts
from avwatch.input.udp import UdpTsReader
from avwatch.transport.analyser import TsAnalyzer

__all__ = [
    "NETWORK_SCHEMES",
    "check_url",
    "close_input",
    "flush_tap",
    "input_supported",
    "open_input",
    "protocol_supported",
    "redact",
    "redact_options",
]

log = logging.getLogger(__name__)

NETWORK_SCHEMES = frozenset(
    {"http", "https", "udp", "rtp", "srt", "rist", "rtmp", "rtmps", "rtsp", "tcp"}
)

# Reads through a TsTap cross into Python once per buffer: 32 KiB (PyAV's
# default) is a call per frame of an SD stream; 512 KiB makes it one in sixteen.
TAP_BUFFER_BYTES = 512 * 1024

# Options per scheme that a monitor wants: keep reading through a late
# consumer instead of failing, and prefer TCP for RTSP (no NAT trouble, no loss).
_SCHEME_OPTIONS: dict[str, dict[str, str]] = {
    "udp": {"overrun_nonfatal": "1", "fifo_size": "278876", "buffer_size": "4194304"},
    "rtp": {"buffer_size": "4194304"},
    "rtsp": {"rtsp_transport": "tcp"},
}


# What PyAV reads through but does not close: id(container) -> the file object it reads.
_OWNED: dict[int, io.RawIOBase] = {}


def input_supported(scheme: str) -> bool:
    """PyAV reads it, or an ffmpeg CLI can receive it for PyAV (the gateway)."""
    return protocol_supported(scheme) or gateway_ffmpeg(scheme) is not None


# Words that mark a secret in a URL's query or an input option (SRT's passphrase,
# tokens, keys): their values are never shown, logged or sent.
SECRET_WORDS = ("pass", "secret", "token", "key", "auth")


def _secret(name: str) -> bool:
    return any(word in name.lower() for word in SECRET_WORDS)


def redact(url: str) -> str:
    """``url`` as it may be shown, logged or sent: a password in it (or credentials
    without one) and the values of secret query parameters replaced by ``***``."""
    parts = urlsplit(url)
    if len(parts.scheme) <= 1:
        return url  # a path
    netloc = parts.netloc
    if "@" in netloc:
        credentials, host = netloc.rsplit("@", 1)
        user, has_password, _ = credentials.partition(":")
        netloc = f"{user}:***@{host}" if has_password else f"***@{host}"
    query = parts.query
    pairs = parse_qsl(query, keep_blank_values=True)
    if any(_secret(k) for k, _ in pairs):
        query = urlencode([(k, "***" if _secret(k) else v) for k, v in pairs], safe="*")
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def redact_options(options: dict[str, str]) -> dict[str, str]:
    return {k: "***" if _secret(k) else v for k, v in options.items()}


def _redacted(url: str, exc: InputError) -> InputError:
    """The same error, its message showing ``url`` redacted."""
    shown = redact(url)
    return exc if shown == url else type(exc)(str(exc).replace(url, shown))


def check_url(url: str, *, resolve_host: bool = False) -> str:
    """Refuse, with the reason, what cannot be opened: a missing file or a directory, an
    unknown scheme, a protocol neither PyAV nor an ffmpeg CLI can receive, and (with
    ``resolve_host``) a host name that does not resolve. Returns the scheme, "" for a
    local path. ``open_input`` and the service's stream validation both ask it.

    Raises:
        InputNotFound: a local file that does not exist.
        InputUnreadable: a directory, or a scheme avwatch cannot read.
        InputUnreachable: (``resolve_host``) the host name is not known.
    """
    try:
        return _check_url(url, resolve_host)
    except InputError as exc:
        raise _redacted(url, exc) from None


def _check_url(url: str, resolve_host: bool) -> str:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in ("", "file") or len(scheme) == 1:  # "C:" on Windows
        path = _local_path(url)
        if not os.path.exists(path):
            raise InputNotFound(f"{url}: no such file")
        if os.path.isdir(path):
            raise InputUnreadable(f"{url}: is a directory, not a media file")
        if not os.path.isfile(path):
            # A FIFO or a device: opening or reading one waits with no deadline.
            raise InputUnreadable(
                f"{url}: not a regular file (a FIFO or a device); "
                "send a live stream to avwatch over udp://, rtp:// or srt:// instead"
            )
        return ""
    if scheme not in NETWORK_SCHEMES:
        raise InputUnreadable(
            f"{url}: unsupported scheme {scheme!r}; use a path or one of "
            + ", ".join(sorted(NETWORK_SCHEMES))
        )
    if not input_supported(scheme):
        raise InputUnreadable(
            f"{url}: {scheme} is not supported by this FFmpeg build, and no ffmpeg "
            "command with it was found (pip install imageio-ffmpeg)"
        )
    if resolve_host and parts.hostname and not _resolves(parts.hostname):
        raise InputUnreachable(f"{url}: host {parts.hostname!r} not found")
    return scheme


def _local_path(url: str) -> str:
    return url[len("file://") :] if url[:7].lower() == "file://" else url


def _resolves(host: str) -> bool:
    try:
        socket.getaddrinfo(host, None)
    except (OSError, UnicodeError):
        return False
    return True


def _open_through_gateway(
    url: str,
    scheme: str,
    options: dict[str, str],
    open_timeout_s: float,
    read_timeout_s: float,
    analyzer: TsAnalyzer | None,
    batch_s: float,
) -> av.container.InputContainer:
    exe = gateway_ffmpeg(scheme)
    assert exe is not None  # check_url refused the scheme otherwise
    if options:  # the CLI takes protocol options in the URL
        url += ("&" if "?" in url else "?") + urlencode(options)
    pipe = GatewayPipe(exe, url, open_timeout_s, read_timeout_s, batch_s)
    # The gateway hands on the bytes as sent: the TS analyser reads them on the way.
    # A gateway that fails at once could not reach the source.
    return _open_mpegts(
        pipe, analyzer, url, open_timeout_s, failure=InputUnreachable, why="cannot be reached"
    )


def _open_mpegts(
    raw: GatewayPipe | UdpTsReader | HlsTsReader | HttpTsReader,
    analyzer: TsAnalyzer | None,
    url: str,
    open_timeout_s: float,
    failure: type[InputError] = InputUnreadable,
    why: str = "not MPEG-TS avwatch can read",
) -> av.container.InputContainer:
    """PyAV demuxing MPEG-TS from a file object of avwatch's own, through the TS tap
    when there is an analyser."""
    source: io.RawIOBase = raw
    if analyzer is not None:
        source = TsTap(raw, analyzer)
    try:
        return _open_owned(source, format="mpegts")
    except (av.error.FFmpegError, OSError) as exc:
        if isinstance(exc, TimeoutError):
            raise InputUnreachable(f"{url}: no data within {open_timeout_s:g} s") from exc
        raise failure(f"{url}: {why} ({reason(exc)})") from exc


def _open_owned(
    source: io.RawIOBase,
    *,
    format: str | None = None,
    options: dict[str, str] | None = None,
    timeout: tuple[float, float] | None = None,
) -> av.container.InputContainer:
    """PyAV reading a file object of avwatch's own. PyAV does not close a file object
    it was given: ``close_input()`` does (flushing a tap, stopping a gateway process);
    here, if the open fails."""
    try:
        container = av.open(
            source,
            mode="r",
            format=format,
            options=options,
            timeout=timeout,
            buffer_size=TAP_BUFFER_BYTES,
        )
    except BaseException:
        source.close()
        raise
    _OWNED[id(container)] = source
    return container


def _open_udp_ts(
    url: str,
    options: dict[str, str],
    open_timeout_s: float,
    read_timeout_s: float,
    analyzer: TsAnalyzer,
    batch_s: float,
) -> av.container.InputContainer:
    """UDP or RTP through avwatch's own socket and the TS analyser (input/udp.py)."""
    try:
        rtp = url.lower().startswith("rtp:")
        reader = UdpTsReader(url, open_timeout_s, read_timeout_s, options, rtp=rtp, batch_s=batch_s)
    except (OSError, ValueError) as exc:
        raise InputUnreachable(f"{url}: cannot listen ({reason(exc)})") from exc
    return _open_mpegts(reader, analyzer, url, open_timeout_s)


def _open_http_ts(
    url: str, open_timeout_s: float, read_timeout_s: float, analyzer: TsAnalyzer
) -> av.container.InputContainer | None:
    """HLS with TS segments, or a TS response body, read by avwatch so the TS analyser
    sees the bytes (input/hls.py, input/httpts.py); None for what libavformat must read
    itself (encrypted or fMP4 segments, a body that is not TS)."""
    try:
        if is_hls_url(url):
            reader: HlsTsReader | HttpTsReader = HlsTsReader(url, open_timeout_s, read_timeout_s)
        else:
            reader = HttpTsReader(url, max(open_timeout_s, read_timeout_s))
    except (NotPlainTs, NotTs) as exc:
        log.info("%s; libavformat reads it, without TS analysis", exc)
        return None
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            raise InputNotFound(f"{url}: not found (HTTP 404)") from exc
        raise InputUnreachable(f"{url}: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        why = getattr(exc, "reason", None) or reason(exc)
        raise InputUnreachable(f"{url}: cannot be reached ({why})") from exc
    return _open_mpegts(reader, analyzer, url, open_timeout_s)


def flush_tap(container: av.container.InputContainer) -> None:
    """Hand the TS analyser the bytes its tap still holds (it analyses in batches)."""
    owned = _OWNED.get(id(container))
    if isinstance(owned, TsTap):
        owned.flush_analysis()


def close_input(container: av.container.InputContainer) -> None:
    """Close what ``open_input`` opened, with the gateway process behind it, if any."""
    container.close()
    owned = _OWNED.pop(id(container), None)
    if owned is not None:
        owned.close()


@functools.cache
def protocol_supported(scheme: str) -> bool:
    """Whether PyAV's FFmpeg has this protocol (PyPI's wheels have no libsrt, so no SRT):
    a bogus URL of the scheme fails at once with "protocol not found" if it has not."""
    try:
        av.open(f"{scheme}://127.0.0.1:9/", timeout=(0.2, 0.2)).close()
    except av.error.ProtocolNotFoundError:
        return False
    except (av.error.FFmpegError, OSError):
        pass
    return True


def open_input(
    url: str,
    *,
    open_timeout_s: float = 10.0,
    read_timeout_s: float = 10.0,
    ts_analyzer: TsAnalyzer | None = None,
    options: dict[str, str] | None = None,
    batch_s: float = 0.0,
) -> av.container.InputContainer:
    """Open ``url`` (a path or a URL) for reading.

    With ``ts_analyzer``, a local MPEG-TS file is read through a ``TsTap``: the
    analyser sees every byte once, on its way to the demuxer. ``options`` go to
    libavformat's protocol and demuxer (they may also be given in the URL's query).
    ``batch_s``: a live source that avwatch reads itself (UDP, RTP, the gateway's
    SRT and RIST) is read in batches of up to this long once caught up
    (input/batching.py); libavformat's own protocols are read as data comes.

    Raises:
        InputNotFound: a local file that does not exist.
        InputUnreachable: a network source that did not answer in time.
        InputUnreadable: the bytes are not media that can be demuxed.
    """
    try:
        return _open_input(url, open_timeout_s, read_timeout_s, ts_analyzer, options, batch_s)
    except InputError as exc:
        raise _redacted(url, exc) from exc.__cause__


def _open_input(
    url: str,
    open_timeout_s: float,
    read_timeout_s: float,
    ts_analyzer: TsAnalyzer | None,
    options: dict[str, str] | None,
    batch_s: float,
) -> av.container.InputContainer:
    scheme = check_url(url)
    is_local = scheme == ""
    # libavformat protocol options, e.g. udp/rtp multicast: localaddr (the interface),
    # sources (source-specific multicast); srt: mode=listener.
    options = {**_SCHEME_OPTIONS.get(scheme, {}), **(options or {})}
    if not is_local and not protocol_supported(scheme):
        return _open_through_gateway(
            url, scheme, options, open_timeout_s, read_timeout_s, ts_analyzer, batch_s
        )
    if scheme in ("udp", "rtp") and ts_analyzer is not None:
        return _open_udp_ts(url, options, open_timeout_s, read_timeout_s, ts_analyzer, batch_s)
    if scheme in ("http", "https") and ts_analyzer is not None:
        tapped = _open_http_ts(url, open_timeout_s, read_timeout_s, ts_analyzer)
        if tapped is not None:
            return tapped
    target: str | TsTap = url
    if is_local and ts_analyzer is not None:
        raw = open(_local_path(url), "rb")  # noqa: SIM115 - the tap owns it and closes it
        if looks_like_ts(raw.read(3 * 188)):
            raw.seek(0)
            target = TsTap(raw, ts_analyzer)
        else:
            raw.close()
    try:
        container = _open_target(target, options, open_timeout_s, read_timeout_s)
    except av.error.ProtocolNotFoundError as exc:
        raise InputUnreadable(f"{url}: {scheme} is not supported by this FFmpeg build") from exc
    except av.error.FileNotFoundError as exc:
        raise InputNotFound(f"{url}: not found ({exc.strerror})") from exc
    except av.error.InvalidDataError as exc:
        raise InputUnreadable(f"{url}: not a media file avwatch can read ({exc.strerror})") from exc
    except av.error.ExitError as exc:
        raise InputUnreachable(f"{url}: no answer within {open_timeout_s:g} s") from exc
    except (av.error.FFmpegError, OSError) as exc:
        why = reason(exc)
        if is_local:
            raise InputUnreadable(f"{url}: cannot be read ({why})") from exc
        raise InputUnreachable(f"{url}: cannot be reached ({why})") from exc
    if not container.streams.video and not container.streams.audio:
        close_input(container)
        raise InputUnreadable(f"{url}: has neither video nor audio")
    return container


def _open_target(
    target: str | TsTap, options: dict[str, str], open_timeout_s: float, read_timeout_s: float
) -> av.container.InputContainer:
    """libavformat opens a URL itself, or reads a local TS file through the tap."""
    timeout = (open_timeout_s, read_timeout_s)
    if isinstance(target, TsTap):
        return _open_owned(target, options=options, timeout=timeout)
    return av.open(target, mode="r", options=options, timeout=timeout, buffer_size=TAP_BUFFER_BYTES)
