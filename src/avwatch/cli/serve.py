"""``avwatch serve`` (the service) and ``avwatch demo`` (it, on synthetic live channels)."""

from __future__ import annotations

import argparse
from pathlib import Path

from avwatch.cli.common import EXIT_OK, Commands, seconds
from avwatch.config import load_model
from avwatch.errors import AvwatchError


def register(sub: Commands) -> None:
    sv = sub.add_parser("serve", help="monitor the configured live streams; API at /docs")
    sv.add_argument("--config", metavar="FILE", help="service YAML (streams, store, alerts)")
    sv.add_argument("--host", help="listen address (default: from config, 127.0.0.1)")
    sv.add_argument("--port", type=int, help="listen port (default: from config, 8470)")
    sv.add_argument("--db", metavar="URL", help="SQLAlchemy URL of the store")
    sv.add_argument(
        "--profile",
        choices=["live", "qc"],
        help="operating point of every stream without its own (default: the config's, live)",
    )
    sv.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="run the workers as actors of this Ray cluster (auto, or ray://HOST:PORT)",
    )
    sv.set_defaults(run=run_serve)

    dm = sub.add_parser(
        "demo", help="a plant of live channels (real recordings) with scheduled defects, and serve"
    )
    dm.add_argument("--port", type=int, default=8470, help="API port (default 8470)")
    dm.add_argument("--dir", default=".cache/demo", help="clips and the SQLite file go here")
    dm.add_argument("--duration", type=seconds, metavar="S", help="stop after S seconds")
    dm.set_defaults(run=run_demo)


def run_serve(args: argparse.Namespace) -> int:
    from avwatch.service.config import ServiceConfig
    from avwatch.service.core import Service
    from avwatch.service.server import serve_forever

    config = load_model(ServiceConfig, args.config)
    if args.profile:
        engine = config.engine.model_copy(update={"profile": args.profile})
        config = config.model_copy(update={"engine": engine})
    if args.ray:
        cluster = config.cluster.model_copy(update={"backend": "ray", "address": args.ray})
        config = config.model_copy(update={"cluster": cluster})
    host = args.host or config.host
    port = config.port if args.port is None else args.port
    serve_forever(Service(config, database=args.db), host, port)
    return EXIT_OK


def run_demo(args: argparse.Namespace) -> int:
    import secrets
    import socket
    import time

    from avwatch.lab.demo import CHANNELS, CLIP_S, UdpSender, demo_config, make_demo_clips
    from avwatch.lab.plant import plant_clips
    from avwatch.service.core import Service
    from avwatch.service.server import BackgroundServer

    directory = Path(args.dir)
    print(f"making the demo channels in {directory} (once; a minute or so) ...", flush=True)
    titles: dict[str, str] = {}
    try:
        # Real recordings in colour, in a plant's formats; the line-up is synthetic.
        plant = plant_clips(directory)
        titles = {name: title for name, (title, _) in plant.items()}
        clips = {name: path for name, (_, path) in plant.items()}
        lineup = make_demo_clips(directory, only=["lineup"])
        clips.update(lineup)
        titles["lineup"] = "Line-up · flash and beep"
    except AvwatchError as exc:
        print(f"real recordings unavailable ({exc}): synthetic channels instead", flush=True)
        clips = make_demo_clips(directory, only=list(CHANNELS))
    # Bound first, so that no channel's port is the senders' own (ephemeral) one.
    sending = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sending.bind(("127.0.0.1", 0))
    ports = {}
    for name in clips:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            ports[name] = probe.getsockname()[1]
    senders = [
        UdpSender(path, ports[name], seconds=CLIP_S, sock=sending).start()
        for name, path in clips.items()
    ]
    token = secrets.token_urlsafe(16)
    database = f"sqlite:///{(directory / 'demo.db').resolve()}"
    server = BackgroundServer(Service(demo_config(ports, database, token, titles)), port=args.port)
    try:
        server.start()
        print(
            f"avwatch demo: {len(clips)} live UDP channels, defects every {CLIP_S:g} s\n"
            f"  API      {server.url}/docs\n"
            f"  streams  curl {server.url}/api/streams\n"
            f"  incidents curl '{server.url}/api/incidents?open=true'\n"
            f"  token    {token}   (for changes: -H 'Authorization: Bearer {token}')\n"
            "Ctrl-C stops it.",
            flush=True,
        )
        deadline = None if args.duration is None else time.monotonic() + args.duration
        while deadline is None or time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        # The service first: senders that stop before it would show up as input loss.
        if server.server.started:
            server.stop()
        for sender in senders:
            sender.stop()
        sending.close()
    return EXIT_OK
