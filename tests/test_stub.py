"""The committed stub lfm25_kernels/_C.pyi is the one tools/gen_stub.py generates from the built module."""
from tools import gen_stub


def test_stub_is_current():
    assert gen_stub.STUB.read_text() == gen_stub.stub(), (
        "lfm25_kernels/_C.pyi differs from the built module: run `python tools/gen_stub.py`")
