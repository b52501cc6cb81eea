"""Shared fixtures: one executor for the contract tests, and real guests
compiled from the repository's ``guest-tasks``."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from wasmpool import WasmPoolExecutor

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def executor() -> Iterator[WasmPoolExecutor]:
    """Two workers, a time-out and a memory cap, as a careful user sets."""
    with WasmPoolExecutor(max_workers=2, timeout=20, max_memory=256 << 20) as ex:
        yield ex


@pytest.fixture(scope="session")
def rust_task() -> object:
    """The path of a Rust example guest, built for wasm32-wasip2."""
    built: dict[str, Path] = {}

    def build(name: str) -> Path:
        if name not in built:
            subprocess.run(
                [
                    "cargo",
                    "build",
                    "--quiet",
                    "--release",
                    "--target",
                    "wasm32-wasip2",
                    "--manifest-path",
                    str(REPO / "guest-tasks" / "Cargo.toml"),
                    "-p",
                    name,
                ],
                check=True,
            )
            release = REPO / "guest-tasks/target/wasm32-wasip2/release"
            # A library keeps its name with underscores, a program as it is.
            library = release / (name.replace("-", "_") + ".wasm")
            built[name] = library if library.is_file() else release / f"{name}.wasm"
        return built[name]

    return build
