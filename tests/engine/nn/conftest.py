"""Fixtures that run a convolution test once per way the engine can take."""
import pytest

import engine.nn.im2col as im2col
from engine.nn import conv_rows


@pytest.fixture(params=["one chunk", "one image per chunk"])
def chunking(request, monkeypatch):
    """Run each test as it runs by default, and again with the batch cut into chunks of one image."""
    if request.param != "one chunk":
        monkeypatch.setattr(im2col, "CHUNK_BYTES", 1)
    return request.param


@pytest.fixture(params=["as chosen", "im2col only", "by rows when it can"])
def path(request, monkeypatch):
    """Run each test with the convolution's own choice of method, and again forcing each of the two."""
    if request.param != "as chosen":
        limit = 0 if request.param == "im2col only" else 1e9  # else: every stride-1 convolution
        monkeypatch.setattr(conv_rows, "LIMIT", limit)
        monkeypatch.setattr(conv_rows, "MAX_DEPTH", limit)
        monkeypatch.setattr(conv_rows, "MIN_K", 0 if limit else 1e9)
    return request.param
