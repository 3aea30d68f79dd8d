"""The `run` fixture: the `dynatable` command line through click's CliRunner, as a user runs it,
with DYNATABLE_HOME in the test's temporary directory (so clusters and the current-cluster
marker stay there). `run(*args, code=0)` checks the exit code and that no traceback leaked."""
import pytest
from click.testing import CliRunner

from tools.cli import main


@pytest.fixture
def run(tmp_path):
    runner = CliRunner()

    def invoke(*args, code=0):
        result = runner.invoke(main, list(args), env={"DYNATABLE_HOME": str(tmp_path)}, catch_exceptions=False)
        assert result.exit_code == code, result.output
        assert "Traceback" not in result.output
        return result.output
    return invoke
