"""`dynatable demo persistency` runs start to finish with every check passing."""
import io

import pytest
from rich.console import Console

from tools.demo_persistency import run_demo

pytestmark = pytest.mark.slow


def test_persistency_demo_passes():
    out = io.StringIO()
    assert run_demo(Console(file=out, width=200)), out.getvalue()
    text = out.getvalue()
    assert "Killed the space process with SIGKILL" in text and "every check passed" in text
