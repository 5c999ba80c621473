"""llama.cpp's own server (tools/server, in-process through the `xllamacpp` wheel), for bench/vs_llamacpp.py.

Not part of thinkserve and never imported by it: bench/vs_llamacpp.py runs this file with the python of a scratch
virtualenv (~/.cache/thinkserve/bench-peer-venv) that holds `xllamacpp`, so the peer is not a project dependency.
It starts the server, prints one line `READY <base url> <xllamacpp version>` on stdout, and then serves until it is
terminated (SIGTERM / SIGINT end the process; the server's threads go with it).

Run: <venv>/bin/python bench/llamacpp_peer.py --model M.gguf --port P [--threads 1] [--n-ctx 32768] [--parallel 8]
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--n-ctx", type=int, default=32768, help="total KV context, split evenly across the slots")
    parser.add_argument("--parallel", type=int, default=8, help="slots (sequences decoded together)")
    args = parser.parse_args()

    import xllamacpp as xlc

    params = xlc.CommonParams()
    params.model.path = args.model
    params.hostnames = [args.host]
    params.port = args.port
    params.n_ctx = args.n_ctx
    params.n_parallel = args.parallel
    params.kv_unified = False                  # each slot gets n_ctx / n_parallel of its own (llama-server's split)
    params.cont_batching = True
    params.cache_prompt = True                 # the slot keeps its prompt's KV for the next request (prefix reuse)
    params.cpuparams.n_threads = args.threads
    params.cpuparams_batch.n_threads = args.threads
    params.n_threads_http = max(4, args.parallel * 2)
    params.n_predict = -1
    params.warmup = True
    params.endpoint_metrics = True
    server = xlc.Server(params)                # loads the model and starts the HTTP server in the background

    print(f"READY {server.listening_address} {xlc.__version__}", flush=True)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()
    sys.stdout.flush()
    os._exit(0)                                # skip the extension's teardown: the process is going anyway


if __name__ == "__main__":
    main()
