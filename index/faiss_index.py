"""FAISS nearest-neighbour indexes over the store's vectors, chosen by store size.

Plain functions over numpy arrays return ``(D, I)`` like ``faiss.contrib``: D are
inner products (= cosine, the vectors are unit length), I are ids (-1 when fewer
than k neighbours exist). `VectorIndex` wraps one FAISS index with its id mapping
(position in the index -> store row id) and persists both next to the store.

How the index is chosen (FAISS wiki, "Guidelines to choose an index"):

* up to `FLAT_MAX` vectors: exact ``IndexFlatIP`` (no training, exact results);
* below ~2M: ``IVF{K},Flat`` with K the power of two nearest 4*sqrt(N) (the guide
  says 4*sqrt(N) .. 16*sqrt(N)) trained on 39*K sampled vectors (FAISS warns below
  39 points per centroid; the guide asks 30*K .. 256*K);
* 2M .. 10M: ``IVF65536_HNSW32,Flat`` (the guide's choice for 1M-10M, an HNSW coarse
  quantiser because brute force over 65k centroids per query is too slow);
* 10M .. 100M: ``IVF262144_HNSW32``; beyond: ``IVF1048576_HNSW32``;
* the vector codes stay ``Flat`` while the raw float32 vectors fit `flat_budget_bytes`
  (default 8 GiB), then ``SQ8`` (d bytes per vector) up to 16 GiB of codes, then
  ``PQ{d/8}`` (d/8 bytes: 32 B for 256-d). Candidates are re-scored from the stored
  vectors by the head, so PQ only decides which neighbours are retrieved.

nprobe is tuned at build time on a sample of the indexed vectors against the same
index searched exhaustively (nprobe = nlist, exact over the stored codes) up to a
target recall@10. The parameters go into ``index.json`` and the store manifest.
The *size class* (the factory string) changes every time K doubles, i.e. every
4x growth of N; `sync_index` rebuilds then and adds incrementally otherwise.

GPU: when ``faiss.get_num_gpus() > 0`` (faiss-gpu from the ``gpu`` extra) the
index is trained on GPU 0 and searched on all visible GPUs (`to_gpus`); the HNSW
coarse quantiser is replaced by a flat one there (GPU brute force over the
centroids is cheap). Persisted indexes are always CPU indexes.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from index.store import FigureStore, StoreMismatchError, write_json_atomic

if TYPE_CHECKING:  # faiss is imported lazily: importing this module does no work
    import faiss

logger = logging.getLogger(__name__)

FLAT_MAX = 50_000
FLAT_BUDGET_BYTES = 8 << 30
SQ8_BUDGET_BYTES = 16 << 30
INDEX_FILE = "faiss.index"
IDS_FILE = "ids.npy"
META_FILE = "index.json"


def _faiss() -> Any:
    import faiss

    return faiss


def gpu_count() -> int:
    """Number of GPUs FAISS can use (0 with faiss-cpu)."""
    faiss = _faiss()
    get = getattr(faiss, "get_num_gpus", None)
    return int(get()) if get is not None else 0


def set_threads(n: int | None) -> None:
    """Set FAISS's OpenMP thread count (None: one per CPU this process may use).

    Under Ray, pass the worker's CPU allocation so workers do not oversubscribe.
    """
    faiss = _faiss()
    if n is None:
        n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    faiss.omp_set_num_threads(max(1, int(n)))


@dataclass(frozen=True)
class IndexSpec:
    """How an index is built and searched; saved with it and in the store manifest."""

    factory: str          # faiss.index_factory string, e.g. "Flat", "IVF4096,Flat"
    dim: int
    nlist: int = 0        # 0 for flat indexes
    nprobe: int = 0       # lists visited per query (tuned at build time)
    train_size: int = 0   # vectors sampled for k-means
    quantizer_ef: int = 0  # efSearch of an HNSW coarse quantiser (0: none)

    @property
    def size_class(self) -> str:
        """Indexes of the same size class can take incremental adds; another class means rebuild."""
        return self.factory

    @property
    def is_ivf(self) -> bool:
        return self.nlist > 0

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "size_class": self.size_class}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IndexSpec:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def _pow2_near(x: float) -> int:
    return int(2 ** round(math.log2(max(x, 1.0))))


def choose_index_spec(
    n: int,
    dim: int,
    *,
    flat_max: int = FLAT_MAX,
    flat_budget_bytes: int = FLAT_BUDGET_BYTES,
    gpu: bool = False,
) -> IndexSpec:
    """The index for a store of `n` vectors of dimension `dim` (see the module doc)."""
    if n <= flat_max:
        return IndexSpec(factory="Flat", dim=dim)
    if n < 2_000_000:
        nlist, quantizer = _pow2_near(4 * math.sqrt(n)), ""
        cap = max(1, n // 39)  # at least 39 training points per centroid
        if nlist > cap:
            nlist = 2 ** int(math.log2(cap))
    elif n < 10_000_000:
        nlist, quantizer = 65536, "_HNSW32"
    elif n <= 100_000_000:
        nlist, quantizer = 262144, "_HNSW32"
    else:
        nlist, quantizer = 1048576, "_HNSW32"
    if gpu:
        quantizer = ""
    raw = n * dim * 4
    if raw <= flat_budget_bytes:
        codes = "Flat"
    elif n * dim <= SQ8_BUDGET_BYTES:
        codes = "SQ8"
    else:
        m = max(1, dim // 8)
        while dim % m:
            m -= 1
        codes = f"PQ{m}"
    train_size = min(n, 39 * nlist)
    nprobe = max(1, nlist // 512)
    return IndexSpec(
        factory=f"IVF{nlist}{quantizer},{codes}",
        dim=dim,
        nlist=nlist,
        nprobe=nprobe,
        train_size=train_size,
        quantizer_ef=64 if quantizer else 0,
    )


def new_index(spec: IndexSpec) -> faiss.Index:
    """An empty (untrained) CPU index for `spec`, inner-product metric."""
    faiss = _faiss()
    return faiss.index_factory(spec.dim, spec.factory, faiss.METRIC_INNER_PRODUCT)


def apply_search_params(index: faiss.Index, spec: IndexSpec) -> None:
    """Set nprobe (and the HNSW quantiser's efSearch) on a CPU or GPU index."""
    if not spec.is_ivf:
        return
    faiss = _faiss()
    params = faiss.GpuParameterSpace() if _is_gpu(index) else faiss.ParameterSpace()
    params.set_index_parameter(index, "nprobe", int(spec.nprobe))
    if spec.quantizer_ef and not _is_gpu(index):
        params.set_index_parameter(index, "quantizer_efSearch", int(max(spec.quantizer_ef, 2 * spec.nprobe)))


def _is_gpu(index: faiss.Index) -> bool:
    return "Gpu" in type(index).__name__ or type(index).__name__ in ("IndexShards", "IndexReplicas")


def to_gpus(index: faiss.Index, *, shard: bool = True) -> faiss.Index:
    """Clone a CPU index to all visible GPUs (sharded across them), float16 codes for IVF.

    Only called when `gpu_count() > 0`; the CPU index stays the persisted one.
    """
    faiss = _faiss()
    co = faiss.GpuMultipleClonerOptions()
    co.shard = shard
    co.useFloat16 = True
    co.useFloat16CoarseQuantizer = False
    return faiss.index_cpu_to_all_gpus(index, co=co)


def train_index(spec: IndexSpec, sample: np.ndarray, *, use_gpu: bool | None = None, seed: int = 1234) -> faiss.Index:
    """A trained, empty CPU index for `spec` (k-means on `sample` for IVF; GPU 0 when present)."""
    faiss = _faiss()
    index = new_index(spec)
    if not spec.is_ivf:
        return index
    x = np.ascontiguousarray(sample, dtype=np.float32)
    if len(x) < spec.nlist:
        raise ValueError(f"{spec.factory} needs at least {spec.nlist} training vectors, got {len(x)}")
    ivf = faiss.extract_index_ivf(index)
    ivf.cp.seed = seed
    use_gpu = gpu_count() > 0 if use_gpu is None else use_gpu
    t = time.perf_counter()
    if use_gpu:
        res = faiss.StandardGpuResources()
        gpu_index = faiss.index_cpu_to_gpu(res, 0, index)
        gpu_index.train(x)
        index = faiss.index_gpu_to_cpu(gpu_index)
    else:
        index.train(x)
    logger.info("trained %s on %d vectors in %.1f s", spec.factory, len(x), time.perf_counter() - t)
    return index


def search(
    index: faiss.Index, queries: np.ndarray, k: int, *, batch_size: int = 16384
) -> tuple[np.ndarray, np.ndarray]:
    """(D, I) of `index.search` over `queries` in batches (bounded memory for big query sets)."""
    xq = np.ascontiguousarray(queries, dtype=np.float32)
    n = len(xq)
    D = np.empty((n, k), dtype=np.float32)
    I = np.empty((n, k), dtype=np.int64)
    for s in range(0, n, batch_size):
        D[s:s + batch_size], I[s:s + batch_size] = index.search(xq[s:s + batch_size], k)
    return D, I


def exact_knn(queries: np.ndarray, base: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force inner-product (D, I) of `queries` against `base` (positions into `base`)."""
    faiss = _faiss()
    return faiss.knn(np.ascontiguousarray(queries, dtype=np.float32),
                     np.ascontiguousarray(base, dtype=np.float32), k, metric=faiss.METRIC_INNER_PRODUCT)


def exact_knn_blocks(
    queries: np.ndarray, blocks: Iterable[tuple[np.ndarray, np.ndarray]], k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force inner-product (D, I) over a stream of (ids, vectors) blocks; I are those ids.

    Lets exact search run over a store one file at a time (bounded memory), like
    `faiss.contrib.exhaustive_search.knn_ground_truth` but keeping the store's ids.
    """
    faiss = _faiss()
    xq = np.ascontiguousarray(queries, dtype=np.float32)
    heap = faiss.ResultHeap(len(xq), k, keep_max=True)
    for ids, vecs in blocks:
        if len(ids) == 0:
            continue
        D, pos = exact_knn(xq, vecs, min(k, len(ids)))
        I = np.where(pos >= 0, np.asarray(ids, dtype=np.int64)[np.clip(pos, 0, None)], -1)
        if D.shape[1] < k:  # pad a short block
            D = np.hstack([D, np.full((len(D), k - D.shape[1]), -np.inf, np.float32)])
            I = np.hstack([I, np.full((len(I), k - I.shape[1]), -1, np.int64)])
        heap.add_result(np.ascontiguousarray(D, dtype=np.float32), np.ascontiguousarray(I, dtype=np.int64))
    heap.finalize()
    return heap.D, heap.I


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean |found_i ∩ truth_i| / |truth_i| over rows (ids; -1 entries ignored)."""
    hits, total = 0, 0
    for f, t in zip(found, truth):
        tset = set(int(x) for x in t if x >= 0)
        hits += len(tset.intersection(int(x) for x in f if x >= 0))
        total += len(tset)
    return hits / total if total else 1.0


def tune_nprobe(
    index: faiss.Index,
    spec: IndexSpec,
    queries: np.ndarray,
    *,
    k: int = 10,
    target_recall: float = 0.97,
    max_nprobe: int | None = None,
    truth: np.ndarray | None = None,
    truth_sims: np.ndarray | None = None,
    query_positions: np.ndarray | None = None,
    min_sim: float | None = None,
) -> tuple[IndexSpec, float]:
    """Smallest power-of-two nprobe whose recall@k reaches `target_recall` on `queries`.

    `truth` is the exact top-(k+1) of each query as positions in `index`; without
    it the same index is searched exhaustively (nprobe = nlist: exact over the
    stored codes, no second copy of the vectors needed, but slower than BLAS).
    Queries should be indexed vectors (the self-join case): each query's own hit is
    dropped from both lists (by `query_positions` when given, else the first hit).
    With `min_sim`, only true neighbours at cosine >= `min_sim` count (what a
    self-join with that floor needs: for a panel with no duplicate its top-k are
    unrelated pictures whose order does not matter). Returns the updated spec and
    the recall reached.
    """
    if not spec.is_ivf or len(queries) == 0:
        return spec, 1.0
    max_nprobe = min(spec.nlist, max_nprobe or spec.nlist)
    if truth is None:
        truth_spec = dataclasses.replace(spec, nprobe=spec.nlist, quantizer_ef=max(spec.quantizer_ef, spec.nlist) if spec.quantizer_ef else 0)
        apply_search_params(index, truth_spec)
        truth_sims, truth = search(index, queries, k + 1)
    if min_sim is not None:
        if truth_sims is None:
            raise ValueError("min_sim needs the similarities of the ground truth")
        truth = np.where(truth_sims >= min_sim, truth, -1)
    gt = _drop_self(truth, k, query_positions)
    if min_sim is not None and not (gt >= 0).any():
        logger.info("no neighbour at cosine >= %.3f among %d tuning queries: keeping nprobe %d",
                    min_sim, len(queries), spec.nprobe)
        apply_search_params(index, spec)
        return spec, 1.0
    nprobe, recall = 1, 0.0
    while True:
        trial = dataclasses.replace(spec, nprobe=nprobe)
        apply_search_params(index, trial)
        _, found = search(index, queries, k + 1)
        recall = recall_at_k(_drop_self(found, k, query_positions), gt)
        logger.debug("nprobe %d: recall@%d %.4f", nprobe, k, recall)
        if recall >= target_recall or nprobe >= max_nprobe:
            break
        nprobe = min(2 * nprobe, max_nprobe)
    apply_search_params(index, trial)
    logger.info("tuned %s: nprobe %d gives recall@%d %.4f on %d queries", spec.factory, nprobe, k, recall, len(queries))
    if nprobe * 4 > spec.nlist:
        logger.warning("%s needs nprobe %d of %d lists for recall %.2f: these vectors have little cluster "
                       "structure and IVF saves little over exact search (tune with a similarity floor, "
                       "or use a Flat index)", spec.factory, nprobe, spec.nlist, target_recall)
    return trial, recall


def _drop_self(I: np.ndarray, k: int, query_ids: np.ndarray | None = None) -> np.ndarray:
    """Top-k of each row without the query itself (its id if known, else the first hit)."""
    if query_ids is None:
        return I[:, 1:k + 1]
    out = np.full((len(I), k), -1, dtype=np.int64)
    for r, (row, q) in enumerate(zip(I, np.asarray(query_ids))):
        rest = row[row != q][:k]
        out[r, :len(rest)] = rest
    return out


class VectorIndex:
    """A FAISS index plus its id mapping (position -> store row id) and build parameters."""

    def __init__(self, index: faiss.Index, ids: np.ndarray, spec: IndexSpec, *, model_id: str,
                 files: Iterable[str] = (), info: dict[str, Any] | None = None) -> None:
        if index.ntotal != len(ids):
            raise ValueError(f"index holds {index.ntotal} vectors but {len(ids)} ids")
        self.index = index                  # CPU index (persisted)
        self.ids = np.asarray(ids, dtype=np.int64)
        self.spec = spec
        self.model_id = model_id
        self.files = list(files)            # store files already added
        self.info = dict(info or {})        # tuning results, timings
        self._search_index: Any = None      # GPU clone when GPUs are present
        apply_search_params(self.index, spec)

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    @property
    def dim(self) -> int:
        return self.spec.dim

    # ---------------------------------------------------------------- building
    @classmethod
    def empty(cls, spec: IndexSpec, sample: np.ndarray | None, *, model_id: str,
              use_gpu: bool | None = None) -> VectorIndex:
        """A trained index holding nothing yet (IVF needs `sample` to train)."""
        if spec.is_ivf:
            if sample is None:
                raise ValueError("an IVF index needs a training sample")
            index = train_index(spec, sample, use_gpu=use_gpu)
        else:
            index = new_index(spec)
        return cls(index, np.zeros(0, np.int64), spec, model_id=model_id)

    @classmethod
    def build(cls, ids: np.ndarray, vectors: np.ndarray, *, model_id: str, spec: IndexSpec | None = None,
              use_gpu: bool | None = None, tune: bool = True, seed: int = 0) -> VectorIndex:
        """Choose (unless given), train and fill an index over in-memory `vectors` with `ids`."""
        x = np.ascontiguousarray(vectors, dtype=np.float32)
        use_gpu = gpu_count() > 0 if use_gpu is None else use_gpu
        spec = spec or choose_index_spec(len(x), x.shape[1], gpu=use_gpu)
        rng = np.random.default_rng(seed)
        sample = x[np.sort(rng.choice(len(x), spec.train_size, replace=False))] if spec.is_ivf else None
        vi = cls.empty(spec, sample, model_id=model_id, use_gpu=use_gpu)
        vi.add(ids, x)
        if tune:
            vi.tune(seed=seed, base=lambda: [(np.asarray(ids, dtype=np.int64), x)])
        return vi

    def add(self, ids: np.ndarray, vectors: np.ndarray, *, file: str | None = None) -> None:
        """Append vectors (unit length, shape (n, dim)) with their store row ids."""
        x = np.ascontiguousarray(vectors, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise StoreMismatchError(f"index holds {self.dim}-d vectors; refusing shape {x.shape}")
        if len(ids) != len(x):
            raise ValueError(f"{len(ids)} ids but {len(x)} vectors")
        if len(x):
            self.index.add(x)
            self.ids = np.concatenate([self.ids, np.asarray(ids, dtype=np.int64)])
        if file is not None:
            self.files.append(file)
        self._search_index = None

    def tune(self, *, n_queries: int = 1000, k: int = 10, target_recall: float = 0.97, seed: int = 0,
             base: Callable[[], Iterable[tuple[np.ndarray, np.ndarray]]] | None = None,
             min_sim: float | None = None) -> float:
        """Tune nprobe on `n_queries` indexed vectors (see `tune_nprobe`); returns the recall.

        `base` re-reads the indexed (ids, vectors) in blocks (e.g. from the store) for
        an exact BLAS ground truth; without it the index is searched exhaustively.
        """
        if not self.spec.is_ivf or self.ntotal == 0:
            return 1.0
        faiss = _faiss()
        rng = np.random.default_rng(seed)
        pos = np.sort(rng.choice(self.ntotal, min(n_queries, self.ntotal), replace=False))
        queries = _reconstruct(faiss, self.index, pos)
        t = time.perf_counter()
        truth = truth_sims = None
        if base is not None:
            truth_sims, truth_ids = exact_knn_blocks(queries, base(), k + 1)
            truth = self.positions(truth_ids)
        self.spec, recall = tune_nprobe(self.index, self.spec, queries, k=k, target_recall=target_recall, truth=truth,
                                           truth_sims=truth_sims, query_positions=pos, min_sim=min_sim)
        self.info["tuning"] = {"queries": int(len(pos)), "k": k, "target_recall": target_recall,
                               "recall": round(float(recall), 5), "nprobe": self.spec.nprobe, "min_sim": min_sim,
                               "seconds": round(time.perf_counter() - t, 2)}
        self._search_index = None
        return recall

    def positions(self, ids: np.ndarray) -> np.ndarray:
        """Index positions of store row ids (-1 for ids not in the index)."""
        order = np.argsort(self.ids, kind="stable")
        sorted_ids = self.ids[order]
        ids = np.asarray(ids, dtype=np.int64)
        at = np.clip(np.searchsorted(sorted_ids, ids), 0, max(len(sorted_ids) - 1, 0))
        hit = (len(sorted_ids) > 0) & (sorted_ids[at] == ids) if len(sorted_ids) else np.zeros(ids.shape, bool)
        return np.where(hit, order[at] if len(order) else -1, -1)

    # --------------------------------------------------------------- searching
    def _searcher(self) -> Any:
        if self._search_index is None:
            if gpu_count() > 0:
                self._search_index = to_gpus(self.index)
                apply_search_params(self._search_index, self.spec)
            else:
                self._search_index = self.index
        return self._search_index

    def search(self, queries: np.ndarray, k: int, *, batch_size: int = 16384) -> tuple[np.ndarray, np.ndarray]:
        """(D, I) with I as store row ids (-1 where fewer than k results)."""
        q = np.asarray(queries)
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise StoreMismatchError(f"index holds {self.dim}-d vectors; refusing queries of shape {q.shape}")
        D, pos = search(self._searcher(), q, k, batch_size=batch_size)
        I = np.where(pos >= 0, self.ids[np.clip(pos, 0, None)] if len(self.ids) else -1, -1)
        return D, I

    # ------------------------------------------------------------- persistence
    def metadata(self) -> dict[str, Any]:
        return {"spec": self.spec.to_dict(), "ntotal": self.ntotal, "model_id": self.model_id,
                "files": list(self.files), "info": self.info,
                "saved": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}

    def save(self, directory: str | os.PathLike[str]) -> None:
        """Write index, ids and index.json to temporary names, then rename (index.json last)."""
        faiss = _faiss()
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        pid = os.getpid()
        tmp_index, tmp_ids = d / f".{INDEX_FILE}.tmp-{pid}", d / f".{IDS_FILE}.tmp-{pid}.npy"
        faiss.write_index(self.index, str(tmp_index))
        np.save(tmp_ids, self.ids)
        os.replace(tmp_index, d / INDEX_FILE)
        os.replace(tmp_ids, d / IDS_FILE)
        write_json_atomic(d / META_FILE, self.metadata())

    @classmethod
    def load(cls, directory: str | os.PathLike[str], *, mmap: bool = False) -> VectorIndex:
        """Read an index saved by `save`; checks that the three files agree."""
        faiss = _faiss()
        d = Path(directory)
        meta = json.loads((d / META_FILE).read_text(encoding="utf-8"))
        flags = faiss.IO_FLAG_MMAP if mmap else 0
        index = faiss.read_index(str(d / INDEX_FILE), flags)
        ids = np.load(d / IDS_FILE)
        if index.ntotal != meta["ntotal"] or len(ids) != meta["ntotal"]:
            raise ValueError(f"{d}: index ({index.ntotal}), ids ({len(ids)}) and {META_FILE} "
                             f"({meta['ntotal']}) disagree: an interrupted save; rebuild the index")
        return cls(index, ids, IndexSpec.from_dict(meta["spec"]), model_id=meta["model_id"],
                   files=meta.get("files", []), info=meta.get("info"))


def _reconstruct(faiss: Any, index: faiss.Index, positions: np.ndarray) -> np.ndarray:
    """Stored vectors at `positions` (IVF needs a direct map for reconstruction)."""
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None and ivf.direct_map.type == faiss.DirectMap.NoMap:
        ivf.make_direct_map()
        try:
            return np.vstack([index.reconstruct(int(p)) for p in positions])
        finally:
            ivf.set_direct_map_type(faiss.DirectMap.NoMap)
    return np.vstack([index.reconstruct(int(p)) for p in positions])


def sync_index(
    store: FigureStore,
    *,
    directory: str | os.PathLike[str] | None = None,
    include_noise: bool = False,
    use_gpu: bool | None = None,
    flat_max: int = FLAT_MAX,
    tune: bool = True,
    tune_min_sim: float | None = None,
    seed: int = 0,
) -> VectorIndex:
    """Bring the store's index up to date and save it; returns the index.

    Loads the saved index when it exists, belongs to the store's model and is of
    the size class the store now calls for, then adds only the store files it has
    not seen (the nightly increment). Otherwise rebuilds: trains on a sample read
    file by file, adds every file, tunes nprobe. Noise records (tiny, uniform,
    boilerplate) are left out unless `include_noise`. nprobe is tuned for recall@10
    (or, with `tune_min_sim`, for the recall of neighbours above that cosine floor).
    Records the spec in the store manifest.
    """
    directory = Path(directory) if directory is not None else store.index_dir
    use_gpu = gpu_count() > 0 if use_gpu is None else use_gpu
    n_match = store.num_rows - (0 if include_noise else int(store.manifest.get("num_noise", 0)))
    want = choose_index_spec(max(n_match, 1), store.dim, flat_max=flat_max, gpu=use_gpu)
    current: VectorIndex | None = None
    if (directory / META_FILE).exists():
        current = VectorIndex.load(directory)
        if current.model_id != store.model_id or current.dim != store.dim:
            logger.info("index belongs to model %s (%d-d); rebuilding for %s", current.model_id, current.dim, store.model_id)
            current = None
        elif current.spec.size_class != want.size_class:
            logger.info("store grew to %d vectors: size class %s -> %s, rebuilding", n_match,
                        current.spec.size_class, want.size_class)
            current = None
        elif current.info.get("include_noise", False) != include_noise:
            current = None
        elif not set(current.files) <= set(store.files):
            logger.warning("index lists files the store does not have; rebuilding")
            current = None
    t0 = time.perf_counter()
    if current is None:
        sample = store.sample_vectors(int(want.train_size * 1.05) + 1, seed=seed, include_noise=include_noise) if want.is_ivf else None
        if sample is not None and len(sample) > want.train_size:
            sample = sample[:want.train_size]
        current = VectorIndex.empty(want, sample, model_id=store.model_id, use_gpu=use_gpu)
        current.info["include_noise"] = include_noise
        current.info["built"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        current.info["train_seconds"] = round(time.perf_counter() - t0, 2)
        rebuilt = True
    else:
        rebuilt = False
    new_files = [f for f in store.files if f not in set(current.files)]
    t1 = time.perf_counter()
    for rel, ids, vecs in store.iter_vectors(new_files, include_noise=include_noise):
        current.add(ids, vecs, file=rel)
    current.info["last_add_seconds"] = round(time.perf_counter() - t1, 2)
    if rebuilt and tune:
        current.tune(seed=seed, min_sim=tune_min_sim, base=lambda: ((ids, vecs) for _, ids, vecs in
                                                                  store.iter_vectors(include_noise=include_noise)))
    current.save(directory)
    store.set_index_info({**current.spec.to_dict(), "ntotal": current.ntotal, "directory": str(directory),
                          "tuning": current.info.get("tuning")})
    logger.info("index %s: %d vectors (%s, %d new file(s))", current.spec.factory, current.ntotal,
                "rebuilt" if rebuilt else "incremental", len(new_files))
    return current
