"""engine.weightfiles.torch_read/torch_write: PyTorch files read and written without torch, nothing from them run.

Fixtures come from our own writers (torch_fixtures.py) so CI needs no torch; when torch is installed the
last tests round-trip through the real torch.save/torch.load.
"""
from __future__ import annotations

import importlib.util
import io
import json
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.errors import UnsafePickleError, WeightFileError
from engine.weightfiles.torch_read import is_legacy_torch, is_torch_zip, read_torch
from engine.weightfiles.torch_write import Build, Call, Global, torch_zip, write_torch_state_dict

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("torch_fixtures", HERE / "torch_fixtures.py")
fx = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fx)

RNG = np.random.default_rng(14)
MLP = {"0.weight": (RNG.standard_normal((16, 784)) / 28).astype(np.float32),  # scaled like torch's initialisation
       "0.bias": (RNG.standard_normal(16) / 28).astype(np.float32),
       "2.weight": (RNG.standard_normal((10, 16)) / 4).astype(np.float32), "2.bias": (RNG.standard_normal(10) / 4).astype(np.float32)}


def written(state, digitlab_json=None) -> bytes:
    buf = io.BytesIO()
    write_torch_state_dict(buf, state, digitlab_json)
    return buf.getvalue()


def assert_same(params: dict, expected: dict) -> None:
    assert list(params) == list(expected)
    for name, value in expected.items():
        assert params[name].dtype == value.dtype and params[name].shape == value.shape, name
        assert params[name].tobytes() == np.ascontiguousarray(value).tobytes(), name  # to the bit
        assert params[name].flags.c_contiguous and params[name].dtype.isnative


# ----- our writer, our reader
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, np.int64, np.uint8, np.bool_])
def test_state_dict_round_trips_exactly_in_every_dtype(dtype):
    state = {"fc1.weight": (RNG.standard_normal((3, 5)) * 4).astype(dtype), "fc1.bias": np.arange(3).astype(dtype),
             "n": np.array(7).astype(dtype), "empty": np.zeros((0, 4), dtype)}
    got = read_torch(written(state), "w.pt")
    assert got.kind == "PyTorch state_dict (zip format)"
    assert_same(got.params, state)
    assert got.metadata == {} and got.classes == [] and got.notes == []


def test_written_records_are_stored_uncompressed_at_64_byte_offsets_under_archive():
    data = written(MLP)
    zf = zipfile.ZipFile(io.BytesIO(data))
    assert zf.namelist()[0] == "archive/data.pkl" and "archive/version" in zf.namelist()
    assert zf.read("archive/byteorder") == b"little"
    for info in zf.infolist():
        start = info.header_offset + 30 + int.from_bytes(data[info.header_offset + 26:info.header_offset + 28], "little") \
            + int.from_bytes(data[info.header_offset + 28:info.header_offset + 30], "little")
        assert info.compress_type == zipfile.ZIP_STORED and start % 64 == 0, info.filename


def test_digitlab_metadata_rides_in_the_state_dicts_metadata():
    spec = {"format": "digitlab-weights", "spec": {"input_shape": [784]}}
    got = read_torch(written(MLP, json.dumps(spec)), "w.pt")
    assert got.metadata == spec
    assert_same(got.params, MLP)


def test_bad_digitlab_metadata_is_refused_with_its_name():
    with pytest.raises(WeightFileError, match=r"w\.pt: the digitlab entry is not valid JSON metadata"):
        read_torch(written(MLP, "{not json"), "w.pt")


def test_bfloat16_is_widened_to_float32_and_float16_stays():
    values = np.array([1.5, -2.25, 3.0e4, 1.0e-3], np.float32)
    s = fx.Storages()
    key = s.storage("0", "BFloat16Storage", fx.bfloat16_bits(values).tobytes(), 4)
    half = s.tensor(values.astype(np.float16))
    got = read_torch(fx.zip_file(OrderedDict([("b", s.view(key, 0, (2, 2), (2, 1))), ("h", half)]), s), "bf.pt")
    truncated = (values.view(np.uint32) & 0xFFFF0000).view(np.float32)  # what bfloat16 keeps of each value
    assert got.params["b"].dtype == np.float32 and np.array_equal(got.params["b"], truncated.reshape(2, 2))
    assert got.params["h"].dtype == np.float16 and np.array_equal(got.params["h"], values.astype(np.float16))


def test_big_endian_records_are_read_in_native_order():
    got = read_torch(fx.state_dict_file(MLP, big_endian=True), "big.pt")
    assert_same(got.params, MLP)


def test_views_with_offsets_and_strides_share_one_storage():
    base = np.arange(24, dtype=np.float64)
    s = fx.Storages()
    key = s.array(base)
    views = OrderedDict([("t", s.view(key, 0, (4, 6), (1, 4))), ("tail", s.view(key, 20, (4,), (1,))),
                         ("every_other", s.view(key, 1, (3, 2), (8, 2))), ("same", s.view(key, 5, (2, 3), (0, 1)))])
    got = read_torch(fx.zip_file(views, s), "views.pt")
    assert np.array_equal(got.params["t"], base[:24].reshape(6, 4).T)
    assert np.array_equal(got.params["tail"], base[20:])
    assert np.array_equal(got.params["every_other"], [[1, 3], [9, 11], [17, 19]])
    assert np.array_equal(got.params["same"], [[5, 6, 7], [5, 6, 7]])
    assert all(p.flags.c_contiguous and p.flags.writeable for p in got.params.values())


def test_any_top_folder_and_a_missing_byteorder_record_are_fine():
    got = read_torch(fx.state_dict_file(MLP, top="my_model", byteorder=None), "m.pt")
    assert_same(got.params, MLP)


def test_dispatch_helpers_tell_torch_files_apart():
    assert is_torch_zip(zipfile.ZipFile(io.BytesIO(written(MLP))).namelist())
    assert not is_torch_zip(["W1.npy", "b1.npy", "__digitlab__.npy"]) and not is_torch_zip(["a/b/data.pkl"])
    s = fx.Storages(legacy=True)
    assert is_legacy_torch(fx.legacy_file(s.state(MLP), s))
    assert not is_legacy_torch(written(MLP)) and not is_legacy_torch(b"\x80\x02}q\x00.") and not is_legacy_torch(b"")


# ----- checkpoints, whole modules, legacy files
def test_checkpoint_gives_the_state_dict_and_names_what_it_skipped():
    s = fx.Storages()
    checkpoint = {"epoch": 3, "model_state_dict": s.state(MLP),
                  "optimizer_state_dict": {"state": {0: {"step": s.tensor(np.array(3.0, np.float32))}},
                                           "param_groups": [{"lr": 0.01, "betas": (0.9, 0.999), "params": [0, 1]}]},
                  "loss": [0.5, 0.25]}
    got = read_torch(fx.zip_file(checkpoint, s), "ckpt.pt")
    assert got.kind == "PyTorch checkpoint, state_dict under 'model_state_dict' (zip format)"
    assert_same(got.params, MLP)
    assert got.notes == ["skipped 'epoch', 'optimizer_state_dict', 'loss'"]


def test_checkpoint_key_order_prefers_the_conventional_names():
    s = fx.Storages()
    got = read_torch(fx.zip_file({"ema": s.state({"x": np.ones(2, np.float32)}), "state_dict": s.state(MLP)}, s), "c.pt")
    assert got.kind.startswith("PyTorch checkpoint, state_dict under 'state_dict'") and list(got.params) == list(MLP)


def net_module(s: fx.Storages) -> fx.Build:
    """A custom Net(fc1, Dropout, body=Sequential(Linear, ReLU, BatchNorm1d)) with a None bias and a non-persistent buffer."""
    w1, b1, w2 = (np.full(shape, v, np.float32) for shape, v in (((4, 3), 1.0), ((4,), 2.0), ((2, 4), 3.0)))
    bn = fx.module("torch.nn.modules.batchnorm.BatchNorm1d", s, {"weight": np.ones(2, np.float32),
                   "bias": np.zeros(2, np.float32)}, {"running_mean": np.zeros(2, np.float32),
                   "running_var": np.ones(2, np.float32), "num_batches_tracked": np.array(5, np.int64),
                   "scratch": np.zeros(9, np.float32)}, non_persistent=("scratch",))
    body = fx.plain("container.Sequential", s, children={"0": fx.linear(s, w2, None),
                                                         "1": fx.plain("activation.ReLU", s), "2": bn})
    return fx.module("__main__.Net", s, children={"fc1": fx.linear(s, w1, b1), "drop": fx.plain("dropout.Dropout", s, p=0.5),
                                                  "body": body, "gone": None})


NET_KEYS = ["fc1.weight", "fc1.bias", "body.0.weight", "body.2.weight", "body.2.bias", "body.2.running_mean",
            "body.2.running_var", "body.2.num_batches_tracked"]


def test_whole_module_gives_the_keys_state_dict_would_in_its_order():
    s = fx.Storages()
    got = read_torch(fx.zip_file(net_module(s), s), "net.pt")
    assert got.kind == "PyTorch whole module __main__.Net (zip format)"
    assert list(got.params) == NET_KEYS
    assert got.params["body.0.weight"].shape == (2, 4) and got.params["body.2.num_batches_tracked"].dtype == np.int64
    assert "torch.nn.modules.dropout.Dropout" in got.classes and "__main__.Net" in got.classes


def test_checkpoint_holding_a_whole_module():
    s = fx.Storages()
    got = read_torch(fx.zip_file({"model": net_module(s), "epoch": 9}, s), "c.pt")
    assert got.kind == "PyTorch checkpoint, whole module __main__.Net under 'model' (zip format)"
    assert list(got.params) == NET_KEYS and got.notes == ["skipped 'epoch'"]


def test_legacy_format_state_dict_checkpoint_and_byte_order():
    s = fx.Storages(legacy=True)
    got = read_torch(fx.legacy_file(s.state(MLP), s, keys=["3", "1", "0", "2"]), "old.pt")
    assert got.kind == "PyTorch state_dict (legacy format)"
    assert_same(got.params, MLP)
    s = fx.Storages(legacy=True, big_endian=True)
    got = read_torch(fx.legacy_file({"net": s.state(MLP)}, s, little_endian=False), "old.pt")
    assert got.kind == "PyTorch checkpoint, state_dict under 'net' (legacy format)"
    assert_same(got.params, MLP)


# ----- refusals, each with its message
@pytest.mark.parametrize("name", list(fx.hostile_torch_cases()))
def test_hostile_cases_are_refused_with_their_message(name):
    data, message = fx.hostile_torch_cases()[name]
    with pytest.raises(UnsafePickleError) as info:
        read_torch(data, name)
    assert str(info.value).startswith(f"{name}: refused") and message in str(info.value)
    assert "\n" not in str(info.value)


def one_tensor(replace) -> bytes:
    s = fx.Storages()
    key = s.array(np.zeros(4, np.float32))
    return fx.zip_file(OrderedDict([("w", replace(s, key))]), s)


@pytest.mark.parametrize("replace, message", [
    (lambda s, key: Call(Global("torch._utils", "_rebuild_sparse_tensor"), (s.view(key, 0, (4,), (1,)),)),
     "sparse tensors are not supported"),
    (lambda s, key: Call(Global("torch._utils", "_rebuild_nested_tensor"), (s.view(key, 0, (4,), (1,)),)),
     "nested tensors are not supported"),
    (lambda s, key: Call(Global("torch._tensor", "_rebuild_from_type_v2"), (fx.REBUILD,)),
     "tries to call torch._tensor._rebuild_from_type_v2"),
    (lambda s, key: s.view(key, 0, (4,), (1,), storage_type="QInt8Storage"), "storage of type torch.QInt8Storage is not"),
    (lambda s, key: fx.Persistent(("module", "os")), "a persistent id that is not a tensor storage"),
    (lambda s, key: s.view("nope", 0, (1,), (1,), storage_type="FloatStorage") if s.numel.setdefault("nope", 1) else None,
     "no record 'archive/data/nope' (a missing record)"),
    (lambda s, key: s.view(key, -1, (1,), (1,)), "invalid storage offset"),
    (lambda s, key: s.view(key, 0, (2,), (-1,)), "invalid stride"),
    (lambda s, key: s.view(key, 0, (2, 2), (1,)), "2 sizes but 1 strides"),
    (lambda s, key: Build(s.view(key, 0, (4,), (1,)), {"x": 1}), "BUILD state on a tensor"),
    (lambda s, key: Call(Global("torch", "FloatStorage"), (10 ** 9,)), "tries to call a torch storage constructor"),
])
def test_tensors_other_than_plain_strided_arrays_are_refused(replace, message):
    with pytest.raises(WeightFileError, match="^t.pt: ") as info:
        read_torch(one_tensor(replace), "t.pt")
    assert message in str(info.value)


def test_a_file_without_tensors_says_what_it_holds():
    s = fx.Storages()
    with pytest.raises(WeightFileError, match=r"a PyTorch file holding a dict, not a state_dict: its entries \(epoch, "
                                              r"loss\) hold no dict of tensors or module"):
        read_torch(fx.zip_file({"epoch": 3, "loss": [0.5]}, s), "x.pt")
    with pytest.raises(WeightFileError, match="holding a list, not a state_dict"):
        read_torch(fx.zip_file([1, 2], s), "x.pt")


def test_truncated_or_missing_legacy_records_are_refused():
    s = fx.Storages(legacy=True)
    state = s.state(MLP)
    with pytest.raises(WeightFileError, match=r"^old.pt: the record of storage 3 needs 40 bytes but only 30 remain "
                                              r"\(a truncated record\)$"):
        read_torch(fx.legacy_file(state, s)[:-10], "old.pt")
    with pytest.raises(WeightFileError, match="^old.pt: the pickle names storage 3 but the file has no record for it"):
        read_torch(fx.legacy_file(state, s, keys=["0", "1", "2"]), "old.pt")
    with pytest.raises(WeightFileError, match="^old.pt: the list of storage keys names 9, which the pickle never uses"):
        s.storage("9", "FloatStorage", b"", 0)
        read_torch(fx.legacy_file(state, s, keys=["0", "1", "2", "3", "9"]), "old.pt")


def test_torchscript_archives_and_compression_methods_are_named():
    data = torch_zip(b"\x80\x02}.", {}, top="m")
    with zipfile.ZipFile(buf := io.BytesIO(data), "a") as zf:
        zf.writestr("m/constants.pkl", b"")
    with pytest.raises(WeightFileError, match=r"a TorchScript archive \(torch.jit.save\)"):
        read_torch(buf.getvalue(), "jit.pt")


# ----- fuzz: truncations and byte flips only ever give WeightFileError
VALID = fx.state_dict_file({"0.weight": np.arange(6, dtype=np.float32).reshape(2, 3), "0.bias": np.ones(2, np.float32)})
_legacy = fx.Storages(legacy=True)
VALID_LEGACY = fx.legacy_file(_legacy.state({"w": np.arange(6, dtype=np.float32)}), _legacy)


def read_or_refuse(data: bytes) -> None:
    try:
        got = read_torch(data, "fuzz.pt")
    except WeightFileError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("fuzz.pt: ")
    else:
        assert all(isinstance(v, np.ndarray) for v in got.params.values())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([VALID, VALID_LEGACY]), st.data())
def test_truncations_and_byte_flips_only_raise_weight_file_errors(data, draw):
    cut = draw.draw(st.integers(0, len(data)))
    read_or_refuse(data[:cut])
    flipped = bytearray(data)
    for _ in range(draw.draw(st.integers(1, 4))):
        flipped[draw.draw(st.integers(0, len(data) - 1))] ^= draw.draw(st.integers(1, 255))
    read_or_refuse(bytes(flipped))


# ----- with torch installed: through the real torch.save / torch.load
@pytest.fixture
def torch():
    return pytest.importorskip("torch", reason="torch is not installed: the round trip through real "
                                               "torch.save/torch.load is skipped")


def custom_net(torch):
    """A module subclass as users write them; made importable under this module's name so torch.save can pickle it."""
    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc1, self.drop, self.fc2 = torch.nn.Linear(784, 16), torch.nn.Dropout(0.2), torch.nn.Linear(16, 10)

        def forward(self, x):
            return self.fc2(self.drop(torch.relu(self.fc1(x))))

    Net.__module__, Net.__qualname__ = __name__, "Net"
    globals()["Net"] = Net
    return Net()


def mlp(torch):
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(784, 16), torch.nn.ReLU(), torch.nn.Linear(16, 10))


def cnn(torch):
    torch.manual_seed(1)
    return torch.nn.Sequential(torch.nn.Conv2d(1, 4, 5), torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Flatten(),
                               torch.nn.Linear(4 * 12 * 12, 10))


def numpy_state(model) -> dict:
    return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


def saved(torch, obj, path: Path, **kwargs) -> bytes:
    torch.save(obj, path, **kwargs)
    return path.read_bytes()


@pytest.mark.parametrize("zipped", [True, False])
def test_real_torch_state_dicts_read_to_the_bit(torch, tmp_path, zipped):
    model = torch.nn.Sequential(torch.nn.Linear(784, 16), torch.nn.BatchNorm1d(16), torch.nn.ReLU(),
                                torch.nn.Linear(16, 10).to(torch.float64))
    data = saved(torch, model.state_dict(), tmp_path / "sd.pt", _use_new_zipfile_serialization=zipped)
    got = read_torch(data, "sd.pt")
    assert got.kind == f"PyTorch state_dict ({'zip' if zipped else 'legacy'} format)"
    assert_same(got.params, numpy_state(model))


def test_real_torch_checkpoint_with_optimizer_state(torch, tmp_path):
    model = mlp(torch)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.rand(2, 784)).sum().backward()
    optimizer.step()
    data = saved(torch, {"model_state_dict": model.state_dict(), "optimizer_state_dict": optimizer.state_dict(),
                         "epoch": 3}, tmp_path / "ckpt.pt")
    got = read_torch(data, "ckpt.pt")
    assert got.kind == "PyTorch checkpoint, state_dict under 'model_state_dict' (zip format)"
    assert got.notes == ["skipped 'optimizer_state_dict', 'epoch'"]
    assert_same(got.params, numpy_state(model))


@pytest.mark.parametrize("make", [mlp, custom_net])
def test_real_torch_whole_modules_give_their_state_dict(torch, tmp_path, make):
    model = make(torch)
    got = read_torch(saved(torch, model, tmp_path / "model.pt"), "model.pt")
    assert got.kind.startswith(f"PyTorch whole module {type(model).__module__}.{type(model).__qualname__}")
    assert_same(got.params, numpy_state(model))
    assert "torch.nn.modules.linear.Linear" in got.classes


def test_our_file_loads_into_nn_sequential_with_weights_only(torch, tmp_path):
    path = tmp_path / "ours.pt"
    with open(path, "wb") as f:
        write_torch_state_dict(f, MLP, json.dumps({"format": "digitlab-weights"}))
    model = mlp(torch)
    state = torch.load(path, weights_only=True)
    assert model.load_state_dict(state, strict=True) is not None
    x = np.random.default_rng(5).random((8, 784), dtype=np.float32)
    w = {k: v.astype(np.float64) for k, v in MLP.items()}  # the reference forward in float64
    expected = np.maximum(x @ w["0.weight"].T + w["0.bias"], 0) @ w["2.weight"].T + w["2.bias"]
    with torch.no_grad():
        out = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-6)


def test_cnn_state_dict_round_trips_through_torch_and_our_writer(torch, tmp_path):
    model = cnn(torch)
    got = read_torch(saved(torch, model.state_dict(), tmp_path / "cnn.pt"), "cnn.pt")
    assert_same(got.params, numpy_state(model))
    write_torch_state_dict(tmp_path / "back.pt", got.params)
    again = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 5), torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Flatten(),
                                torch.nn.Linear(4 * 12 * 12, 10))
    again.load_state_dict(torch.load(tmp_path / "back.pt", weights_only=True), strict=True)
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(again(x), model(x))
