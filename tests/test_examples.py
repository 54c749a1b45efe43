import subprocess
import sys

from conftest import REPO


def test_library_example_runs(tmp_path, home):
    result = subprocess.run([sys.executable, str(REPO / "examples" / "sign_and_verify.py"), str(tmp_path / "ex")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "render-signed.png: ai-generated (provenance trusted" in result.stdout
