"""The WebAssembly spec test suite (shared/wasm-spec beside the repository), one test per .wast
folder: every integer assert_return / assert_trap / assert_exhaustion / assert_uninstantiable /
action must pass, through the fast loop and through the traced stepper."""

from __future__ import annotations

import pytest

from rasp2d.interpreter_spec.spec_suite import DEFAULT_SPEC_DIR, run_spec_file, spec_folders

FOLDERS = spec_folders(DEFAULT_SPEC_DIR)
ABSENT = pytest.mark.skip(
    reason=f"WebAssembly spec test suite not found at {DEFAULT_SPEC_DIR} "
           "(it sits in shared/wasm-spec beside the repository checkout)")
# Folders whose every command needs floats or only checks module rejection: nothing to run.
NOTHING_TO_RUN = {"const", "type"}

# memory_grow scans whole 64 KiB pages byte by byte (7.5M instructions): half a minute traced.
SLOW_TRACED = {"memory_grow"}


def _params():
    if not FOLDERS:
        return [pytest.param(None, False, marks=ABSENT)]
    out = []
    for f in FOLDERS:
        out.append(pytest.param(f, False, id=f"fast-{f.name}"))
        marks = [pytest.mark.slow] if f.name in SLOW_TRACED else []
        out.append(pytest.param(f, True, id=f"traced-{f.name}", marks=marks))
    return out


@pytest.mark.parametrize("folder, traced", _params())
def test_spec_file(folder, traced):
    report = run_spec_file(folder, traced=traced)
    assert report.failures == [], "\n".join(report.failures)
    assert report.failed == 0
    if folder.name in NOTHING_TO_RUN:
        assert report.passed == 0
    else:
        assert report.passed > 0, f"{folder.name}: nothing ran ({dict(report.skip_reasons)})"
    assert report.skipped_modules == [], report.skipped_modules
