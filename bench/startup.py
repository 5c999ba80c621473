"""Cold vs warm start of `thinkserve serve` on the default model: seconds until /health says 200.

Cold: an empty data dir, so the GGUF is de-quantized and the converted weights are written to the cache.
Warm: the same data dir again, so the cached safetensors load directly.
Run: python bench/startup.py
"""
import tempfile
from pathlib import Path

from app.launcher import ServerProcess


def time_start(data_dir: str, log: Path) -> float:
    with ServerProcess("--data-dir", data_dir, log_path=log) as server:
        return server.ready_after_s


def main() -> None:
    out = Path("test-output")
    with tempfile.TemporaryDirectory() as data_dir:
        cold = time_start(data_dir, out / "bench-cold.log")
        warm = time_start(data_dir, out / "bench-warm.log")
    print(f"cold start (convert GGUF + cache): {cold:6.1f} s")
    print(f"warm start (cached weights):       {warm:6.1f} s")
    print(f"warm / cold:                       {warm / cold:6.2f}")


if __name__ == "__main__":
    main()
