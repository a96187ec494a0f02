"""``avwatch bench architecture``: the design avwatch rests on, measured against the one
Prime Video's monitoring service started from, on the same clip and detectors in one run.

- **in memory** (avwatch): one process decodes the stream and hands each analysis
  picture and audio block to every detector by reference, as a monitor does.
- **object store** (the distributed design): a converter actor decodes and puts every
  analysis picture and audio block into Ray's object store; an actor per detector
  fetches what it reads (pictures or sound); an orchestrator, this process, sequences
  them: each step (by default one picture and the sound that came with it) goes to
  every detector, in order.

Both find the same incidents (the run checks it), so the figures compare like with
like: CPU seconds per stream-hour (every process that takes part: this one, Ray's own,
the actors), bytes fetched from the object store per stream-second (nothing in memory:
references), and streams per core by CPU. Ray runs on this machine, one node: across
machines the object store's bytes would cross the network too, which costs more still.
"""

from __future__ import annotations

import pickle
import resource
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from avwatch.analysis.analyzer import StreamAnalyzer
from avwatch.analysis.check import make_reader
from avwatch.config import EngineConfig
from avwatch.detectors.base import available_detectors
from avwatch.input.source import close_input, open_input
from avwatch.lab.bench.ray_backend import ray_cluster, ray_processes, sample_processes
from avwatch.types import AudioBlock, MediaTime, Sample, StreamInfo, VideoFrame

__all__ = ["ArchitectureResult", "Design", "bench_architecture"]

IN_FLIGHT = 8  # steps the orchestrator lets run ahead of the slowest detector


@dataclass(frozen=True)
class Design:
    name: str
    media_s: float
    cpu_s: float
    wall_s: float
    bytes_moved: int
    incidents: list[tuple[str, float]]
    """(type, start) of each incident found: the two designs must agree."""

    @property
    def cpu_s_per_stream_hour(self) -> float:
        return self.cpu_s / self.media_s * 3600

    @property
    def bytes_per_stream_s(self) -> float:
        return self.bytes_moved / self.media_s

    @property
    def streams_per_core(self) -> float:
        return self.media_s / self.cpu_s

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "cpu_s_per_stream_hour": round(self.cpu_s_per_stream_hour, 1),
            "bytes_per_stream_s": round(self.bytes_per_stream_s),
            "streams_per_core": round(self.streams_per_core, 2),
        }


@dataclass(frozen=True)
class ArchitectureResult:
    clip: str
    detectors: list[str]
    step: str
    in_memory: Design
    object_store: Design

    @property
    def cost_ratio(self) -> float:
        """CPU of the object-store design per CPU of the in-memory one."""
        return self.object_store.cpu_s / self.in_memory.cpu_s

    @property
    def same_incidents(self) -> bool:
        return self.in_memory.incidents == self.object_store.incidents

    def as_dict(self) -> dict[str, Any]:
        return {
            "clip": self.clip,
            "detectors": self.detectors,
            "step": self.step,
            "in_memory": self.in_memory.as_dict(),
            "object_store": self.object_store.as_dict(),
            "cost_ratio": round(self.cost_ratio, 2),
            "saving": round(1 - 1 / self.cost_ratio, 3),
            "same_incidents": self.same_incidents,
        }


def steps(clip: str, engine: EngineConfig, seconds: float, batch: int) -> Iterator[list[Sample]]:
    """The clip's samples up to ``seconds`` of media, ``batch`` pictures a step (each
    with the sound and decoder issues that came before it)."""
    container = open_input(clip, open_timeout_s=engine.open_timeout_s)
    try:
        reader = make_reader(container, clip, engine)
        step: list[Sample] = []
        pictures = 0
        for sample in reader.samples():
            if sample.time >= seconds:
                break
            step.append(sample)
            if isinstance(sample, VideoFrame):
                pictures += 1
                if pictures == batch:
                    yield step
                    step, pictures = [], 0
        if step:
            yield step
    finally:
        close_input(container)


def clip_info(clip: str, engine: EngineConfig) -> StreamInfo:
    container = open_input(clip, open_timeout_s=engine.open_timeout_s)
    try:
        return make_reader(container, clip, engine).info
    finally:
        close_input(container)


def _own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _found(analyzer: StreamAnalyzer) -> list[tuple[str, float]]:
    return [(i.type, round(i.start, 2)) for i in analyzer.tracker.sorted()]


def in_memory(clip: str, engine: EngineConfig, keys: list[str], seconds: float) -> Design:
    """Decode and analyse in this process: each sample handed on by reference."""
    info = clip_info(clip, engine)
    analyzer = StreamAnalyzer(info, engine, keys)
    wall0, cpu0 = time.perf_counter(), _own_cpu_s()
    for step in steps(clip, engine, seconds, batch=1):
        analyzer.feed_batch(step)
    analyzer.flush()
    cpu, wall = _own_cpu_s() - cpu0, time.perf_counter() - wall0
    return Design("in memory", analyzer.stats.end, cpu, wall, 0, _found(analyzer))


class Converter:
    """Decodes the clip; each step goes to the object store three ways (its pictures,
    its sound, the whole step), so that a detector fetches only what it reads (a Ray
    actor)."""

    def __init__(self, clip: str, engine: dict[str, Any], seconds: float, batch: int) -> None:
        self._steps = steps(clip, EngineConfig.model_validate(engine), seconds, batch)

    def next_step(
        self,
    ) -> tuple[list[Sample], list[Sample], list[Sample], tuple[dict[str, int], float, bool]]:
        """A step's pictures, its sound (each with the decoder's issues), the whole step,
        and what the orchestrator needs: their sizes, where the media ends, whether it
        has."""
        step = next(self._steps, None)
        if step is None:
            return [], [], [], ({}, 0.0, True)
        pictures: list[Sample] = [s for s in step if not isinstance(s, AudioBlock)]
        sound: list[Sample] = [s for s in step if not isinstance(s, VideoFrame)]
        end = max(_end(s) for s in step)
        sizes = {"video": _size(pictures), "audio": _size(sound), "both": _size(step)}
        return pictures, sound, step, (sizes, end, False)


def _reads(kinds: frozenset[str]) -> str:
    if {"video", "audio"} <= kinds:
        return "both"
    return "video" if "video" in kinds else "audio"


def _end(sample: Sample) -> MediaTime:
    if isinstance(sample, VideoFrame):
        return sample.time + sample.duration
    return sample.end if isinstance(sample, AudioBlock) else sample.time


def _size(samples: list[Sample]) -> int:
    """Bytes the object store holds for ``samples`` (pickle 5, arrays out of band)."""
    buffers: list[pickle.PickleBuffer] = []
    head = pickle.dumps(samples, protocol=5, buffer_callback=buffers.append)
    return len(head) + sum(b.raw().nbytes for b in buffers)


class DetectorActor:
    """One detector, fed steps from the object store (a Ray actor)."""

    def __init__(self, key: str, info: StreamInfo, engine: dict[str, Any]) -> None:
        self.analyzer = StreamAnalyzer(info, EngineConfig.model_validate(engine), [key])

    def ready(self) -> bool:
        return True

    def feed(self, samples: list[Sample]) -> int:
        self.analyzer.feed_batch(samples)
        return len(samples)

    def finish(self, end: MediaTime) -> list[tuple[str, float]]:
        self.analyzer.flush(end)
        return _found(self.analyzer)


def object_store(
    clip: str, engine: EngineConfig, keys: list[str], seconds: float, batch: int
) -> Design:
    """The distributed design on Ray: converter, object store, detector actors, and this
    process as the orchestrator."""
    import ray

    info = clip_info(clip, engine)
    settings = engine.model_dump(mode="json")
    # No CPU reserved: every part must fit on this machine at once, as a serverless
    # platform would give each its own.
    converter: Any = ray.remote(num_cpus=0)(Converter).remote(clip, settings, seconds, batch)
    classes = available_detectors()
    # What each detector fetches: pictures, sound, or the whole step (the loss detectors
    # and lip sync read both).
    reads = {k: _reads(classes[k].reads or classes[k].needs) for k in keys}
    actors: dict[str, Any] = {
        k: ray.remote(num_cpus=0)(DetectorActor).remote(k, info, settings) for k in keys
    }
    ray.get([a.ready.remote() for a in actors.values()])
    theirs = ray_processes(set())
    ray_cpu0, _ = sample_processes(theirs)
    wall0, cpu0 = time.perf_counter(), _own_cpu_s()
    moved, end = 0, 0.0
    pending: list[Any] = []
    while True:
        pictures, sound, step, meta = converter.next_step.options(num_returns=4).remote()
        refs = {"video": pictures, "audio": sound, "both": step}
        for key, actor in actors.items():
            pending.append(actor.feed.remote(refs[reads[key]]))
        sizes, step_end, done = ray.get(meta)
        if done:
            break
        end = max(end, step_end)
        moved += sum(sizes[reads[k]] for k in keys)
        if len(pending) > IN_FLIGHT * len(actors):
            _, pending = ray.wait(pending, num_returns=len(pending) - IN_FLIGHT * len(actors))
    ray.get(pending)
    finishes = [a.finish.remote(end) for a in actors.values()]
    found = sorted({f for result in ray.get(finishes) for f in result})
    wall = time.perf_counter() - wall0
    ray_cpu1, _ = sample_processes(theirs)
    cpu = _own_cpu_s() - cpu0 + ray_cpu1 - ray_cpu0
    for actor in [converter, *actors.values()]:
        ray.kill(actor)
    return Design("object store", 0.0, cpu, wall, moved, found)


def bench_architecture(
    clip: Path,
    *,
    seconds: float = 20.0,
    detectors: list[str] | None = None,
    batch: int = 1,
    cpus: int = 2,
) -> ArchitectureResult:
    engine = EngineConfig(decoder_threads=1)  # as the service runs many streams
    keys = detectors or sorted(available_detectors())
    memory = in_memory(str(clip), engine, keys, seconds)
    shutdown = ray_cluster(cpus)
    try:
        store = object_store(str(clip), engine, keys, seconds, batch)
    finally:
        shutdown()
    # The media both analysed: the in-memory run's count of it.
    store = Design(
        store.name, memory.media_s, store.cpu_s, store.wall_s, store.bytes_moved, store.incidents
    )
    step = "one picture" if batch == 1 else f"{batch} pictures"
    return ArchitectureResult(str(clip), keys, step, memory, store)
