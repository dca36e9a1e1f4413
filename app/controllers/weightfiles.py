"""Weight files: one way in for File ▸ Open, Open recent, drag-and-drop and the Models tab, and saving.

``load(path)`` reads a file in the background (engine.weightfiles.recognise.load_weights) and makes
its network the current one; ``load(path, as_model=True)`` adds it to the session's extra models
instead (the Models tab). A file that cannot be read changes nothing and says why. The test
accuracy of a loaded network is measured in the background, again when the dataset changes.

Requests are numbered. For the current network the last one asked for wins: an older request
still waiting is dropped, one being read is cancelled and its result ignored, whichever file
happens to finish last. At most ``MAX_PARALLEL_LOADS`` files are read at once; a burst of opens
(200 dropped files) waits in line rather than starting a thread each.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from app.controllers import Host
from app.session import Session
from app.settings import AppSettings
from app.threads import BackgroundTask, TaskRegistry, describe_error, describe_file_error
from engine.data.dataset import DIGIT_CLASSES
from engine.train.evaluation import EvaluationCancelled, evaluate_model
from engine.weightfiles.probe import pixels_name
from engine.weightfiles.recognise import LoadedWeights, load_weights
from engine.weightfiles.save import SUFFIX_FORMATS, save_weights
from widgets.plain_text import line

PROBE_SIZE = 500  # test images used to guess a file's activation and pixel scale
MAX_PARALLEL_LOADS = 2  # weight files read at once: more would only compete for the same cores and memory
MODEL_NAME_LENGTH = 60  # characters of a file name kept as a model's display name


@dataclass
class LoadRequest:
    number: int  # requests are numbered in the order they were made
    path: str
    as_model: bool
    task: BackgroundTask | None = None


class WeightFileController(QObject):
    recentChanged = Signal()  # the recent-files list changed
    modelAdded = Signal(str, str)  # display name and summary of a file opened as an extra model
    loadFailed = Signal(str, object)  # the path and the exception
    loadSuperseded = Signal(str)  # a file read for the current network arrived after a newer request: dropped

    def __init__(self, session: Session, tasks: TaskRegistry, settings: AppSettings, host: Host,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session, self.tasks, self.settings, self.host = session, tasks, settings, host
        self.loaded: LoadedWeights | None = None  # the last file that became the current network
        self._count = 0  # requests made so far
        self._wanted = 0  # the number of the newest request for the current network
        self._waiting: deque[LoadRequest] = deque()
        self._reading: list[LoadRequest] = []
        self._evaluation: BackgroundTask | None = None
        session.datasetChanged.connect(lambda _dataset: self._evaluate_if_loaded())

    def recent_files(self) -> list[str]:
        return self.settings.recent_files()

    # ----- opening -----
    def open(self, as_model: bool = False) -> LoadRequest | None:
        """Ask for a file and load it."""
        path = self.host.ask_open_path()
        return self.load(path, as_model) if path else None

    def load(self, path, as_model: bool = False) -> LoadRequest:
        """Read a weight file in the background; on success it becomes the current network (or an extra model).

        For the current network, the newest request wins: older ones are dropped or their results ignored.
        """
        self._count += 1
        request = LoadRequest(self._count, str(path), as_model)
        if not as_model:
            self._wanted = request.number
            self._waiting = deque(r for r in self._waiting if r.as_model)  # older current-network requests: stale
            for older in self._reading:
                if not older.as_model and older.task is not None:
                    older.task.cancel()
        self._waiting.append(request)
        self.host.show_status(f"Reading {line(request.path)}…")
        self._start_waiting()
        return request

    def pending(self) -> int:
        """Requests waiting or being read."""
        return len(self._waiting) + len(self._reading)

    def _start_waiting(self) -> None:
        if self.tasks.closed:
            self._waiting.clear()
            return
        while self._waiting and len(self._reading) < MAX_PARALLEL_LOADS:
            self._start(self._waiting.popleft())

    def _start(self, request: LoadRequest) -> None:
        path = request.path
        dataset = self.session.dataset
        probe = None
        if dataset is not None and list(dataset.classes) == DIGIT_CLASSES and len(dataset.x_test):  # digits only
            probe = (dataset.x_test[:PROBE_SIZE], dataset.t_test[:PROBE_SIZE])

        def run(ctx):
            return None if ctx.is_cancelled() else load_weights(path, probe=probe)

        task = request.task = self.tasks.create(run, f"open {Path(path).name}")
        task.succeeded.connect(lambda loaded: self._loaded(request, loaded))
        task.failed.connect(lambda exc: self._failed(request, exc))
        task.finished.connect(lambda: self._finished(request))
        self._reading.append(request)
        self.tasks.start(task)

    def _finished(self, request: LoadRequest) -> None:
        if request in self._reading:
            self._reading.remove(request)
        self._start_waiting()

    def _loaded(self, request: LoadRequest, loaded: LoadedWeights | None) -> None:
        path, as_model = request.path, request.as_model
        name = Path(path).name
        if loaded is None:
            return  # cancelled before it was read
        if as_model:
            shown = self._model_name(Path(path).stem)
            self.session.add_model(shown, loaded.network)
            self.host.show_status(f"Opened {shown} as an extra model: {line(loaded.architecture)}", 5000)
            self.modelAdded.emit(shown, loaded.summary())
            return
        if request.number != self._wanted:
            self.host.show_status(f"Not using {line(name, 80)}: a file opened after it replaces it")
            self.loadSuperseded.emit(path)
            return
        self.loaded = loaded
        details = (f"{loaded.kind}; activation {loaded.activation} ({loaded.activation_source}), "
                   f"pixels {pixels_name(loaded.input_scale, loaded.input_shift)} ({loaded.scale_source})")
        self.session.set_network(loaded.network, f"{name}: {loaded.architecture}", details)
        self.settings.add_recent_file(path)
        self.recentChanged.emit()
        self.host.show_status(f"Loaded {line(name, 80)}: {line(loaded.architecture)}, activation {loaded.activation} "
                              f"({loaded.activation_source})")
        self._evaluate_if_loaded()

    def _model_name(self, stem: str) -> str:
        stem = line(stem, MODEL_NAME_LENGTH)
        taken = set(self.session.models) | {self.session.network_label}
        name, n = stem, 2
        while name in taken:
            name, n = f"{stem} ({n})", n + 1
        return name

    def _failed(self, request: LoadRequest, exc: BaseException) -> None:
        """Shown even for a request a newer one replaced: the person asked for that file."""
        path, as_model = request.path, request.as_model
        self.host.show_status(f"Could not open {line(Path(path).name, 80)}")
        if not Path(path).exists() and path in self.settings.recent_files():
            self.settings.remove_recent_file(path)
            self.recentChanged.emit()
        unchanged = "No model was added." if as_model else "The current network is unchanged."
        self.loadFailed.emit(path, exc)
        self.host.show_error("Could not open the weight file", f"{describe_file_error(path, exc)}\n\n{unchanged}")

    # ----- test accuracy of a loaded network -----
    def _evaluate_if_loaded(self) -> None:
        network, dataset = self.session.network, self.session.dataset
        if self.loaded is None or network is not self.loaded.network or dataset is None or not len(dataset.x_test):
            return

        def run(ctx):
            evaluation = evaluate_model(network, dataset.x_test, dataset.t_test, cancel=ctx.cancelled)
            return evaluation.loss, evaluation.accuracy

        if self._evaluation is not None:
            self._evaluation.cancel()  # for a network or dataset no longer current
        task = self._evaluation = self.tasks.create(run, "evaluate")
        task.succeeded.connect(lambda result: self._evaluated(network, dataset, result))
        task.failed.connect(lambda exc: None if isinstance(exc, EvaluationCancelled) else
                            self.host.show_status(f"Could not evaluate: {describe_error(exc)}"))
        self.host.show_status(f"Measuring test accuracy on {line(dataset.name, 80)}…")
        self.tasks.start(task)

    def _evaluated(self, network, dataset, result) -> None:
        if network is not self.session.network or dataset is not self.session.dataset:
            return
        _loss, accuracy = result
        self.session.set_test_accuracy(accuracy)
        self.host.show_status(f"Test accuracy on {line(dataset.name, 80)}: {accuracy:.1%} "
                              f"({len(dataset.x_test):,} images)")

    # ----- saving -----
    def save(self) -> Path | None:
        """Ask where, then save the current network in the format its suffix (or the chosen filter) names."""
        network = self.session.network
        if network is None:
            self.host.show_error("Nothing to save", "There is no network yet: train one or open a weight file.")
            return None
        path, chosen = self.host.ask_save_path()
        if not path:
            return None
        path = Path(path)
        if path.suffix.lower() not in SUFFIX_FORMATS:  # no suffix, or one of no format: the chosen filter's
            path = path.with_name(path.name + _filter_suffix(chosen))
        config = network.info.get("config") if isinstance(network.info.get("config"), dict) else None
        metadata = {"label": self.session.network_label, "training": config}
        try:
            written = save_weights(network.copy(), path, metadata=metadata)
        except (ValueError, OSError) as exc:
            self.host.show_error("Could not save the weights", f"{path}\n\n{exc}")
            return None
        self.settings.add_recent_file(written)
        self.recentChanged.emit()
        self.host.show_status(f"Saved {written}", 5000)
        return Path(written)


def _filter_suffix(chosen: str) -> str:
    """The suffix a Save dialog filter such as "PyTorch state_dict (*.pt *.pth)" stands for; .npz by default."""
    for suffix in SUFFIX_FORMATS:
        if f"*{suffix})" in chosen or f"*{suffix} " in chosen:
            return suffix
    return ".npz"
