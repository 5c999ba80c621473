"""The forward passes the loop makes (prefill a chunk into a row's slot, one decode step for the decode batch, and a
prompt's images through the vision tower), with the shapes they take. Nothing else here calls the model.

Two runners, one interface (the loop's seam; tests drive the loop with a scripted one; `warm_up` runs on the loop's
thread before it serves):
- `PoolRunner`, for models whose every layer is plain full attention: the KV lives in a preallocated `KVPool`,
  many rows decode in one forward, and prefixes are shared between slots;
- `SingleRowRunner`, for models with sliding-window or linear-attention layers, whose cache transformers must
  make itself: one row at a time in a `DynamicCache`, nothing kept across requests.
"""
from __future__ import annotations

import inspect
import logging
import os
import time
from dataclasses import dataclass

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

from ..model.vision import embed_with_images, image_features
from .attention import use_grouped_attention
from .kv_pool import KVPool, PoolView, probe_layers

log = logging.getLogger(__name__)
# With a compiled decode step, the columns a step reads are rounded up to a multiple of this, so the shapes it sees
# change every 256 tokens rather than every token (the mask hides the extra columns).
COMPILED_LENGTH_STEP = 256
# Columns of a slot a decode step reads before any row wrote them are zeroed this far ahead, once (see decode).
ZERO_AHEAD = 256


@dataclass(frozen=True)
class ChunkImages:
    """What a prefill chunk with image placeholders needs: the placeholder id, the prompt's image features
    ([placeholders, hidden]) and how many placeholders came before the chunk."""
    token_id: int
    features: torch.Tensor
    offset: int


def cache_is_poolable(model) -> bool:
    """Whether every layer of this model's cache is a plain full-attention DynamicLayer (no sliding window, no
    linear attention), so its KV can live in the pool."""
    layers = getattr(DynamicCache(config=model.config), "layers", None)
    return bool(layers) and all(type(layer) is DynamicLayer for layer in layers)


def default_kv_budget(device: torch.device) -> int:
    """A quarter of the machine's RAM on a CPU; on a GPU, 80% of what the weights left free."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free * 0.8)
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4


def build_runner(loaded, settings):
    """The runner for `loaded`: a pool of at most twice `max_batch_size` slots (the idle ones keep prefixes), of
    the context window each, within the KV budget; or one row at a time where the cache cannot be pooled."""
    if not cache_is_poolable(loaded.model):
        return SingleRowRunner(loaded.model, loaded.device, slot_tokens=loaded.context_window)
    budget = settings.kv_budget_bytes or default_kv_budget(loaded.device)
    return PoolRunner(loaded.model, loaded.device, slot_tokens=loaded.context_window, budget_bytes=budget,
                      max_slots=2 * max(1, settings.max_batch_size), compile_decode=settings.compile_decode)


class _Forward:
    """What both runners share: the model call for a chunk of one row, and the vision tower."""

    def __init__(self, model, device: torch.device):
        self.model = model
        self.device = device
        # Most causal LMs can compute the head for the last position only; a prefill then skips [n, vocab] logits.
        self._last_logits_only = "logits_to_keep" in inspect.signature(model.forward).parameters

    def image_features(self, image_inputs: dict) -> torch.Tensor:
        """A prompt's images through the vision tower: [placeholder tokens, hidden]."""
        return image_features(self.model, image_inputs, self.device)

    def _chunk(self, cache, ids: list[int], start: int, images: ChunkImages | None,
               mask: torch.Tensor | None) -> torch.Tensor:
        input_ids = torch.tensor([ids], dtype=torch.long, device=self.device)                   # [1, n]
        positions = torch.arange(start, start + len(ids), device=self.device)[None, :]          # [1, n]
        extra = {"logits_to_keep": 1} if self._last_logits_only else {}
        if images is None:
            extra["input_ids"] = input_ids
        else:
            extra["inputs_embeds"] = embed_with_images(self.model, input_ids, images.token_id, images.features,
                                                       images.offset)                          # [1, n, hidden]
        out = self.model(position_ids=positions, past_key_values=cache, attention_mask=mask, use_cache=True,
                         **extra)
        return out.logits[:, -1, :].float()                                                       # [1, vocab]


class PoolRunner(_Forward):
    """Rows hold slots of a KV pool sized once, here, from `budget_bytes`: as many slots of `slot_tokens` (the
    context window) as fit, at most `max_slots`."""

    batchable = True

    def __init__(self, model, device: torch.device, *, slot_tokens: int, budget_bytes: int, max_slots: int,
                 compile_decode: bool = False, cuda_graphs: bool | None = None, pad_batches: bool | None = None):
        """`cuda_graphs` (None: on CUDA): a compiled decode step is replayed as CUDA graphs. `pad_batches` (None:
        with CUDA graphs): a decode step's rows are padded up to a power of two, so few shapes (graphs) exist."""
        super().__init__(model, device)
        use_grouped_attention(model)
        layers = probe_layers(model, device)
        per_slot = (slot_tokens + 1) * sum(layer.bytes_per_token() for layer in layers)
        slots = min(max_slots, budget_bytes // per_slot)
        if slots < 1:
            raise ValueError(f"the KV budget ({budget_bytes / 2**20:.0f} MB) holds no row of the full context "
                             f"window ({slot_tokens} tokens take {per_slot / 2**20:.0f} MB): raise --kv-budget-mb")
        self.pool = KVPool(layers, slots, slot_tokens)
        self.slots, self.slot_tokens, self.nbytes = slots, slot_tokens, self.pool.nbytes
        log.info("KV pool: %d slots of %d tokens, %.0f MB", slots, slot_tokens, self.nbytes / 2**20)
        self._mask_value = torch.finfo(self.pool.keys[0].dtype).min
        self._finite = [0] * slots        # per slot: its columns 0..n-1 hold finite numbers (written, or zeroed)
        self._decode_model = model
        self.cuda_graphs = compile_decode and (cuda_graphs if cuda_graphs is not None else device.type == "cuda")
        self.pad_batches = pad_batches if pad_batches is not None else self.cuda_graphs
        if compile_decode:
            self._compile_decode()

    def prefill(self, slot: int, ids: list[int], start: int, images: ChunkImages | None = None) -> torch.Tensor:
        """Feed one row's tokens at positions start.. into slot `slot` (which holds its KV of 0..start-1).
        With `images`, the chunk's image placeholders read as their image features. Returns the logits after the
        last of them, [1, vocab] float32."""
        end = start + len(ids)
        columns = torch.arange(end, device=self.device)
        queries = torch.arange(start, end, device=self.device)
        mask = self._additive(columns[None, :] <= queries[:, None])[None, None]                # [1, 1, n, end]
        self._written(slot, end)
        return self._chunk(PoolView(self.pool, slot, start, len(ids), end), ids, start, images, mask)

    def decode(self, tokens: list[int], positions: list[int]) -> torch.Tensor:
        """One token for each decoding row, the row in slot i feeding tokens[i] at position positions[i]. Returns
        [rows, vocab] float32."""
        rows = len(tokens)
        longest = max(positions) + 1
        if self._decode_model is not self.model:       # compiled: the KV read grows in steps, not every token
            longest = min(self.slot_tokens, -(-longest // COMPILED_LENGTH_STEP) * COMPILED_LENGTH_STEP)
        # Padding rows (in the slots above the batch) feed token 0 at position 0, see column 0 only, and write their
        # KV into the scratch column, which nothing reads: the real rows' results are those of an unpadded step.
        padding = self._padded_rows(rows) - rows
        input_ids = torch.tensor(tokens + [0] * padding, dtype=torch.long, device=self.device)[:, None]   # [batch, 1]
        position_ids = torch.tensor(positions + [0] * padding, dtype=torch.long, device=self.device)[:, None]
        writes = position_ids[:, 0] if not padding else \
            torch.tensor(positions + [self.pool.scratch] * padding, dtype=torch.long, device=self.device)
        self._zero_unwritten(rows + padding, longest)
        visible = torch.arange(longest, device=self.device)[None, :] <= position_ids            # [batch, longest]
        view = PoolView(self.pool, 0, writes, 1, longest)
        if self.cuda_graphs:
            torch.compiler.cudagraph_mark_step_begin()
        out = self._decode_model(input_ids=input_ids, position_ids=position_ids, past_key_values=view,
                                 attention_mask=self._additive(visible)[:, None, None, :], use_cache=True)
        logits = out.logits[:rows, -1, :].float()                                                 # [rows, vocab]
        # A CUDA graph's next replay overwrites its outputs in place: the loop may still hold these (figures).
        return logits.clone() if self.cuda_graphs else logits

    def _padded_rows(self, rows: int) -> int:
        """The batch size a decode step of `rows` runs at: `rows`, or with padding, the next power of two (at most
        the pool's slot count, since a padding row reads a slot)."""
        return min(self.slots, 1 << (rows - 1).bit_length()) if self.pad_batches else rows

    def _zero_unwritten(self, rows: int, length: int) -> None:
        """A step reads columns 0..length-1 of every decoding slot; a shorter row's columns past its own length are
        masked out, but if no row ever wrote them they hold whatever memory `torch.empty` gave, NaN included, and
        no mask hides a NaN (0 x NaN is NaN). So they are zeroed the first time a step reaches them, a chunk at a
        time. What was written stays finite, whatever row it belonged to, so only columns past everything a slot
        has held are zeroed: its own row's KV is never touched."""
        for slot in range(rows):
            if self._finite[slot] < length:
                end = min(self.slot_tokens, length + ZERO_AHEAD)
                self.pool.zero(slot, self._finite[slot], end)
                self._finite[slot] = end

    def _written(self, slot: int, end: int) -> None:
        self._finite[slot] = max(self._finite[slot], end)

    def _compile_decode(self) -> None:
        """torch.compile the decode forward (inductor, shapes dynamic); `warm_up` compiles it.

        With CUDA graphs (mode="reduce-overhead"), inductor records a graph for each distinct shape the first time
        it runs, then replays it: a step costs one launch instead of one per kernel. Padded batches and lengths
        rounded to COMPILED_LENGTH_STEP bound the graphs to (log2 slots + 1) x (context / 256). The pool is marked
        as a static address, so the graphs write the KV in place, where it lives, rather than skip (inductor does
        not capture a graph that mutates an input it would have to copy)."""
        if self.cuda_graphs:
            from torch import _dynamo
            from torch._inductor import config as inductor_config
            for layer in self.pool.keys + self.pool.values:
                _dynamo.mark_static_address(layer)
            inductor_config.triton.cudagraph_dynamic_shape_warn_limit = None     # many shapes is the plan
        self._decode_model = torch.compile(self.model, dynamic=True,
                                           mode="reduce-overhead" if self.cuda_graphs else None)

    def warm_up(self) -> None:
        """Compile the decode step now, for one row and for several (torch specialises a size of 1), so no request
        waits for it. Writes only the empty pool. Called on the thread that will run every step: a CUDA graph
        belongs to the thread that recorded it (inductor keeps its graphs per thread)."""
        if self._decode_model is self.model:
            return
        started = time.monotonic()
        with torch.inference_mode():
            for rows in (1, 2):
                self.decode([0] * rows, [0] * rows)
        log.info("Compiled the decode step in %.0f s%s", time.monotonic() - started,
                 ", replayed as CUDA graphs" if self.cuda_graphs else "")

    def swap(self, a: int, b: int, length_a: int, length_b: int) -> None:
        self.pool.swap(a, b, length_a, length_b)
        self._written(a, length_b)
        self._written(b, length_a)

    def copy(self, source: int, target: int, length: int) -> None:
        self.pool.copy(source, target, length)
        self._written(target, length)

    def release(self) -> None:
        self.pool = None             # the engine is closed: its KV memory goes back

    def _additive(self, visible: torch.Tensor) -> torch.Tensor:
        mask = torch.zeros(visible.shape, dtype=self.pool.keys[0].dtype, device=self.device)
        return mask.masked_fill_(~visible, self._mask_value)


class SingleRowRunner(_Forward):
    """One slot: the row's own DynamicCache, made fresh for every request."""

    batchable = False
    slots = 1

    def __init__(self, model, device: torch.device, *, slot_tokens: int):
        super().__init__(model, device)
        self.slot_tokens = slot_tokens
        self._cache: DynamicCache | None = None

    def prefill(self, slot: int, ids: list[int], start: int, images: ChunkImages | None = None) -> torch.Tensor:
        if start == 0:
            self._cache = DynamicCache(config=self.model.config)
        return self._chunk(self._cache, ids, start, images, None)

    def decode(self, tokens: list[int], positions: list[int]) -> torch.Tensor:
        out = self.model(input_ids=torch.tensor([tokens], device=self.device),
                         position_ids=torch.tensor([positions], device=self.device), past_key_values=self._cache,
                         use_cache=True)
        return out.logits[:, -1, :].float()

    def warm_up(self) -> None:
        """Nothing to compile."""

    def swap(self, a: int, b: int, length_a: int, length_b: int) -> None:
        raise RuntimeError("one slot: nothing to swap")

    def copy(self, source: int, target: int, length: int) -> None:
        raise RuntimeError("one slot: nothing to copy")

    def release(self) -> None:
        self._cache = None
