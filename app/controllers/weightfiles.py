"""Weight files: one way in for File ▸ Open, Open recent, drag-and-drop and the Models tab, and saving.

``load(path)`` reads a file in the background (engine.weightfiles.recognise.load_weights) and makes
its network the current one; ``load(path, as_model=True)`` adds it to the session's extra models
instead (the Models tab). A file that cannot be read changes nothing and says why. The test
accuracy of a loaded network is measured in the background, again when the dataset changes.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal

from app.controllers import Host
from app.session import Session
from app.settings import AppSettings
from app.threads import BackgroundTask, TaskRegistry, describe_error
from engine.data.dataset import DIGIT_CLASSES
from engine.weightfiles.recognise import LoadedWeights, load_weights
from engine.weightfiles.save import save_weights

PROBE_SIZE = 500  # test images used to guess a file's activation and pixel scale


class WeightFileController(QObject):
    recentChanged = Signal()  # the recent-files list changed
    modelAdded = Signal(str, str)  # display name and summary of a file opened as an extra model
    loadFailed = Signal(str, object)  # the path and the exception

    def __init__(self, session: Session, tasks: TaskRegistry, settings: AppSettings, host: Host,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session, self.tasks, self.settings, self.host = session, tasks, settings, host
        self.loaded: LoadedWeights | None = None  # the last file that became the current network
        session.datasetChanged.connect(lambda _dataset: self._evaluate_if_loaded())

    def recent_files(self) -> list[str]:
        return self.settings.recent_files()

    # ----- opening -----
    def open(self, as_model: bool = False) -> BackgroundTask | None:
        """Ask for a file and load it."""
        path = self.host.ask_open_path()
        return self.load(path, as_model) if path else None

    def load(self, path, as_model: bool = False) -> BackgroundTask:
        """Read a weight file in the background; on success it becomes the current network (or an extra model)."""
        path = str(path)
        dataset = self.session.dataset
        probe = None
        if dataset is not None and list(dataset.classes) == DIGIT_CLASSES and len(dataset.x_test):  # digits only
            probe = (dataset.x_test[:PROBE_SIZE], dataset.t_test[:PROBE_SIZE])

        def run(_ctx):
            return load_weights(path, probe=probe)

        task = self.tasks.create(run, f"open {Path(path).name}")
        task.succeeded.connect(lambda loaded: self._loaded(path, loaded, as_model))
        task.failed.connect(lambda exc: self._failed(path, exc, as_model))
        self.host.show_status(f"Reading {path}…")
        return self.tasks.start(task)

    def _loaded(self, path: str, loaded: LoadedWeights, as_model: bool) -> None:
        name = Path(path).name
        if as_model:
            shown = self._model_name(Path(path).stem)
            self.session.add_model(shown, loaded.network)
            self.host.show_status(f"Opened {shown} as an extra model: {loaded.architecture}", 5000)
            self.modelAdded.emit(shown, loaded.summary())
            return
        self.loaded = loaded
        details = (f"{loaded.kind}; activation {loaded.activation} ({loaded.activation_source}), "
                   f"inputs ×{loaded.input_scale:g} ({loaded.scale_source})")
        self.session.set_network(loaded.network, f"{name}: {loaded.architecture}", details)
        self.settings.add_recent_file(path)
        self.recentChanged.emit()
        self.host.show_status(f"Loaded {name}: {loaded.architecture}, activation {loaded.activation} "
                              f"({loaded.activation_source})")
        self._evaluate_if_loaded()

    def _model_name(self, stem: str) -> str:
        taken = set(self.session.models) | {self.session.network_label}
        name, n = stem, 2
        while name in taken:
            name, n = f"{stem} ({n})", n + 1
        return name

    def _failed(self, path: str, exc: BaseException, as_model: bool) -> None:
        self.host.show_status(f"Could not open {Path(path).name}")
        if not Path(path).exists() and path in self.settings.recent_files():
            self.settings.remove_recent_file(path)
            self.recentChanged.emit()
        unchanged = "No model was added." if as_model else "The current network is unchanged."
        self.loadFailed.emit(path, exc)
        self.host.show_error("Could not open the weight file", f"{path}\n\n{describe_error(exc)}\n\n{unchanged}")

    # ----- test accuracy of a loaded network -----
    def _evaluate_if_loaded(self) -> None:
        network, dataset = self.session.network, self.session.dataset
        if self.loaded is None or network is not self.loaded.network or dataset is None or not len(dataset.x_test):
            return

        def run(_ctx):
            return network.evaluate(dataset.x_test, dataset.t_test)

        task = self.tasks.create(run, "evaluate")
        task.succeeded.connect(lambda result: self._evaluated(network, dataset, result))
        task.failed.connect(lambda exc: self.host.show_status(f"Could not evaluate: {describe_error(exc)}"))
        self.host.show_status(f"Measuring test accuracy on {dataset.name}…")
        self.tasks.start(task)

    def _evaluated(self, network, dataset, result) -> None:
        if network is not self.session.network or dataset is not self.session.dataset:
            return
        _loss, accuracy = result
        self.session.set_test_accuracy(accuracy)
        self.host.show_status(f"Test accuracy on {dataset.name}: {accuracy:.1%} ({len(dataset.x_test):,} images)")

    # ----- saving -----
    def save(self) -> Path | None:
        """Ask where, then save the current network as .npz (with its settings) or a book-style .pkl."""
        network = self.session.network
        if network is None:
            self.host.show_error("Nothing to save", "There is no network yet: train one or open a weight file.")
            return None
        path, chosen = self.host.ask_save_path()
        if not path:
            return None
        path = Path(path)
        pickle = path.suffix.lower() in (".pkl", ".pickle") or (not path.suffix and "pkl" in chosen)
        if not path.suffix:
            path = path.with_suffix(".pkl" if pickle else ".npz")
        config = network.info.get("config") if isinstance(network.info.get("config"), dict) else None
        metadata = {"label": self.session.network_label, "training": config}
        try:
            written = save_weights(network.copy(), path, format="pickle" if pickle else "npz", metadata=metadata)
        except (ValueError, OSError) as exc:
            self.host.show_error("Could not save the weights", f"{path}\n\n{exc}")
            return None
        self.settings.add_recent_file(written)
        self.recentChanged.emit()
        self.host.show_status(f"Saved {written}", 5000)
        return Path(written)
