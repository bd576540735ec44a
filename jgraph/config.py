"""Typed configuration schema: every yaml under jgraph/conf/ is validated against these dataclasses.

Hydra composes `conf/train.yaml` on top of `TrainConfig` (registered as `train_schema`), so an unknown
key or a wrong type is an error before anything heavy starts. The engine receives these dataclasses,
never a `DictConfig` (`to_config` converts). This module imports no jax.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import MISSING, DictConfig, OmegaConf

from jgraph.errors import ConfigError

DEFAULT_ENTITY_TYPE = "entity"
# the shipped Hydra configs (train.yaml, experiment/, data/, ...): package data, so a wheel has them
CONF_DIR = Path(__file__).resolve().parent / "conf"


@dataclass
class EntityConfig:
    """One entity type (PBG `EntitySchema`)."""

    num_partitions: int = 1  # P: the type's rows are split into P partitions (1 = unpartitioned)
    featurized: bool = False  # embedding = weighted mean of its features' rows (docs/training.md)
    features: str | None = None  # featurized: entity<TAB>feature[<TAB>weight] TSV or Parquet file
    encoder_hidden: int = 0  # featurized: width of a learned MLP on the mean (flax); 0 = off


@dataclass
class RelationConfig:
    """Per-relation settings (PBG `RelationSchema`); relations not listed get the defaults.

    With `model.reciprocal` every relation shares the template below (PBG `dynamic_relations`).
    """

    name: str = MISSING  # relation name as it appears in the data
    lhs: str = DEFAULT_ENTITY_TYPE  # entity type of the head
    rhs: str = DEFAULT_ENTITY_TYPE  # entity type of the tail
    weight: float = 1.0  # multiplier on this relation's loss
    operator: str | None = None  # None = model.operator


@dataclass
class ToyConfig:
    """The built-in generated knowledge graph (no download): a planted low-rank complex model."""

    num_entities: int = 2000
    num_relations: int = 20
    num_edges: int = 150_000
    rank: int = 8  # complex rank of the hidden model
    temperature: float = 0.2  # lower = sharper (more learnable) tail distributions
    top_k: int = 64  # tails are drawn among the top_k most plausible entities
    valid_fraction: float = 0.05
    test_fraction: float = 0.05
    seed: int = 0


@dataclass
class WalksConfig:  # train on (node, context) pairs of random walks: jgraph/data/walks.py, docs/data.md
    per_node: int = 0  # walks from every node; 0 = off (train on the edges themselves)
    length: int = 40  # nodes per walk
    window: int = 5  # a node is paired with the next `window` nodes of its walk
    p: float = 1.0  # node2vec: weight 1/p back to the previous node, 1/q away; p = q = 1: DeepWalk
    q: float = 1.0
    seed: int = 0


@dataclass
class DataConfig:
    """Where the edges come from.

    `format: tsv` reads `root/path/{train,valid,test}` (TSV/CSV, plain or gzip). Rows are
    `head<TAB>relation<TAB>tail` (3 columns), `src<TAB>dst` (2 columns, one relation named
    `relation_name`), or what `columns` says (roles lhs, rel, rhs, weight, ignore).
    `format: toy` generates the built-in graph (see `ToyConfig`).
    """

    name: str = "toy"
    format: str = "toy"  # toy | tsv
    root: str = "${oc.env:JGRAPH_DATA,data}"
    path: str = ""  # dataset folder under root
    train: str = "train.tsv.gz"
    valid: str | None = "valid.tsv.gz"
    test: str | None = "test.tsv.gz"
    delimiter: str = "\t"
    skip_rows: int = 0  # header/comment lines at the top of each file
    columns: list[str] | None = None  # None = by column count (2: lhs,rhs; 3: lhs,rel,rhs; 4: +weight)
    relation_name: str = "edge"  # the relation of 2-column graphs
    symmetric: bool = False  # also train on (tail, rel, head) for undirected graphs
    split_seed: int = 0  # used when valid/test come from a random split of train (fractions below)
    valid_fraction: float = 0.0
    test_fraction: float = 0.0
    download_hint: str = ""  # printed when files are missing
    toy: ToyConfig = field(default_factory=ToyConfig)
    walks: WalksConfig = field(default_factory=WalksConfig)


@dataclass
class ModelConfig:
    """The scorer: relation operator, comparator and embedding shape (PBG semantics, pbg-reference §3)."""

    name: str = "custom"
    operator: str = "none"  # registry name: none, translation, diagonal, complex_diagonal, linear, affine,
    #                         rotate, quate
    comparator: str = "dot"  # registry name: dot, cos, l2, squared_l2
    dimension: int = 100
    bias: bool = False  # coordinate 0 is a bias added to scores
    init_scale: float = 1e-3  # std of the normal init of entity rows
    max_norm: float | None = None  # rows looked up with a larger norm are rescaled to it
    global_emb: bool = False  # a learned vector per entity type added to every embedding
    reciprocal: bool = False  # PBG dynamic relations: separate lhs/rhs operators, both directions
    regularizer: str = "n3"
    regularization_coef: float = 0.0  # 0 = off
    embedding_dtype: str = "float32"  # float32, or bfloat16: entity rows stored (working table and
    #   checkpoints) in half the bytes; computed in float32, written back with stochastic rounding
    compute_dtype: str = "float32"  # float32, or bfloat16: training scores negatives with bfloat16
    #   products and float32 sums (and float32 scores, losses and updates); evaluation in float32
    center_partitions: bool = True  # with partitions: rows are read out (evaluation, export,
    #   prediction, warm starts) shifted per partition: by the calibrated shifts
    #   (training.calibration_steps) or else with each partition's mean row moved to its type's
    #   mean (README: Graphs larger than memory); the trained rows in checkpoints are unchanged


@dataclass
class LossConfig:
    name: str = "ranking"  # registry name: ranking, logistic, softmax, logsigmoid
    margin: float = 0.1  # ranking loss margin; logsigmoid's gamma (RotatE)
    adversarial_temperature: float = 0.0  # > 0: self-adversarial negatives (Sun et al. 2019): each
    #   positive's negatives weighted by softmax(temperature x score) instead of summed / averaged
    #   (ranking, logistic, logsigmoid); 0 = off


@dataclass
class NegativesConfig:
    """PBG negatives: chunks of `num_batch_negs` positives share batch + uniform negatives."""

    num_batch_negs: int = 50  # chunk size; each positive's batch negatives are its chunk's others
    num_uniform_negs: int = 50  # drawn per chunk, uniformly from the bucket's partition
    mode: str = "sampled"  # sampled: PBG's chunks of batch + uniform negatives; all: every entity
    #   of the side's partition is a negative (1-vs-all; with softmax the cross-entropy over all
    #   entities of Lacroix et al. 2018, no sampling error, the query's own entity always among
    #   them); auto: all where the graph is small enough (one partition of at most
    #   assembly.ALL_NEGATIVES_MAX_ROWS = 50,000 rows), sampled otherwise (assembly.negatives_mode)
    all_negs: bool = False  # PBG's name for mode=all (PBG configs and older runs): true = all
    uniform_from: str = "side"  # side: from that side's partition of the bucket (PBG); bucket:
    #   from both of the bucket's partitions of the entity type (lhs and rhs), both resident anyway.
    #   With P partitions, an answer then meets a competitor of another partition in 2/P of the
    #   buckets instead of 1/P (the same with one partition; all_negs keeps the side's partition)
    disable_lhs_negs: bool = False
    disable_rhs_negs: bool = False
    degree_fraction: float = 0.0  # this share of the uniform negatives drawn in proportion to the
    #   entities' training degrees instead (Marius' degree_fraction, DGL-KE's neg_deg_sample), from
    #   the same partition; needs the training edges in memory (not a prepared dataset). 0 = off
    self_negative: bool = True  # the query's own entity is one more negative of every positive
    #   (the tail as a head, the head as a tail, where the relation's two entity types are one;
    #   not where the positive is a self-loop): nothing else teaches a model that (h, r, h) is
    #   false, and ComplEx's Re<h, r, conj h> = sum r_re |h|^2 ranks h first (issue 30)
    self_weight: float = 1.0  # mode=all: the query's own entity counts as this many negatives (its
    #   score raised by log(self_weight) in training), so that it is pushed below the answers
    #   harder than any other candidate; 1 = as any other (mode=sampled: not used)
    self_weight_warmup: int = 0  # log(self_weight) ramped up linearly over this many batches (a
    #   full weight from the start can pull every row to 0 on small graphs: Kinships, Nations)
    logq_correction: bool = False  # softmax only: each sampled negative's logit minus the log of
    #   its expected count among its chunk's negatives (batch ones drawn in proportion to degree,
    #   uniform ones 1/n, degree_fraction ones by degree): the sampled softmax then estimates the
    #   full one instead of pushing popular entities down (Yi et al. 2019); needs the training
    #   edges in memory (not a prepared dataset)


@dataclass
class OptimizerConfig:
    lr: float = 0.01  # row-wise Adagrad on entity rows
    relation_lr: float | None = None  # Adagrad on relation parameters; None = lr
    eps: float = 1e-10
    schedule: str = "constant"  # constant | linear | cosine: both rates (lr, relation_lr) times a
    #   factor of the step (jgraph/core/optim.py lr_factor), decaying to final_lr_ratio at decay_steps
    warmup_steps: int = 0  # linear warm-up over the first batches (any schedule); 0 = none
    decay_steps: int | None = None  # batches until the decay ends; None = the whole run (epochs x
    #   the batches of an epoch)
    final_lr_ratio: float = 0.0  # the factor at the end of the decay


@dataclass
class TrainingConfig:
    num_epochs: int = 1
    batch_size: int = 1000
    batches_per_dispatch: int = 64  # batches run inside one jitted call (lax.fori_loop)
    compute_groups: int = 0  # a batch's chunks in this many independent groups, run concurrently
    #                          by XLA's CPU runtime (0 = auto: CPU cores on CPU, 1 on GPU)
    row_update: str = "auto"  # sparse: Adagrad on the rows a batch gathered, scattered back;
    #   dense: its gradients summed into a table-sized buffer and the whole working table updated
    #   (for a batch that gathers at least as many row ids as the table has rows: many uniform
    #   negatives on a small graph); auto: dense exactly then. Same result either way
    num_edge_chunks: int = 1  # each epoch = this many passes over all buckets, a slice of each
    calibration_steps: int = 100  # with partitions, after training: fit one shift per partition
    #   with the softmax over every entity (jgraph/train/calibrate.py; training edges in memory, one
    #   process); read out instead of plain centering. 0 = off
    seed: int = 0
    rng_impl: str = "threefry"  # the run's jax PRNG key: threefry | rbg | unsafe_rbg; its bits seed each
    #                            batch's hashed draws (negatives, rounding: jgraph.core.hashrng)
    log_every_dispatches: int = 20  # pull metrics to the host (and check for NaN) this often
    divergence_factor: float = 10.0  # stop (before committing) when a bucket's per-edge loss exceeds
    #   this many times the run's highest so far, or the rows' mean |coordinate| this many times its
    #   baseline (jgraph/train/guard.py); 0 = off (a non-finite loss always stops)
    early_stopping_patience: int = 0  # stop after this many periodic evaluations (eval.every_epochs)
    #   without a better validation MRR; the best epoch is kept (snapshots/best) and evaluated. 0 = off
    time_budget_minutes: float = 0.0  # > 0: training stops at the end of the last epoch that is
    #   expected to finish within this many minutes of training (the epochs' mean wall time
    #   predicts the next one); that epoch is committed and the final evaluation runs. 0 = off
    frozen_types: list[str] = field(default_factory=list)  # types never updated (docs/training.md)
    frozen_relations: list[str] = field(default_factory=list)  # relations never updated
    progress: bool = True  # tqdm progress bar
    tensorboard: bool = False  # also TensorBoard event files in <run dir>/tensorboard (tensorboardX)


@dataclass
class EvalConfig:
    """Link-prediction evaluation (ties: see jgraph/core/metrics.py)."""

    splits: list[str] = field(default_factory=lambda: ["valid", "test"])
    protocols: list[str] = field(default_factory=lambda: ["filtered"])  # raw | filtered | sampled
    every_epochs: int = 0  # also evaluate `every_split` every N epochs (0 = only at the end)
    every_split: str = "valid"
    every_max_edges: int | None = 5000  # subsample for the periodic eval
    max_edges: int | None = None  # subsample the final eval (None = all)
    batch_size: int = 256  # queries per dispatch in full ranking
    hits: list[int] = field(default_factory=lambda: [1, 3, 10, 50])
    ties: str = "realistic"  # realistic | pessimistic (PBG) | optimistic
    exclude_self: bool = False  # the query's own entity is never a candidate (graphs without
    #                             self-loops, e.g. social graphs: with dot/cos a node is its own best match)
    num_batch_negs: int = 1000  # sampled protocol
    num_uniform_negs: int = 1000  # sampled protocol
    seed: int = 0


@dataclass
class StorageConfig:
    """Where a run keeps its partitions and checkpoints."""

    checkpoint_dir: str | None = None  # path or kvstore URL; None = <run dir>/checkpoint
    save: bool = True  # commit checkpoints (at every epoch end, and see below)
    checkpoint_every_buckets: int = 0  # also commit after this many buckets (0: off)
    checkpoint_every_seconds: float = 300.0  # also commit when this long has passed since the last
    #   commit (0: off). A commit writes the resident partitions, so every bucket costs IO (at P=16,
    #   2M x 100: 225k edges/s committing every bucket vs 428k at epoch ends only)
    checkpoint_preservation_interval: int | None = None  # keep snapshots/epoch_N every N epochs
    init_path: str | None = None  # warm start from this run's checkpoint (entities matched by name)
    edge_dir: str | None = None  # bucketed edges in TensorStore here (written once), read per
    #                              bucket and edge chunk instead of kept in memory
    bucket_order: str = "inside_out"  # inside_out | outside_in | affinity | random | beta (buffer-aware:
    #   with buffer_partitions > 2 it loads each partition about P / (2 (B - 1)) times per epoch)
    buffer_partitions: int = 2  # B: working-table slots per partitioned type (the partition buffer)
    buffer_memory_gb: float = 0.0  # > 0: B from this budget for resident + in-flight partitions
    #   (memory.buffer_for_budget; at least 2, at most P), instead of buffer_partitions
    prefetch_partitions: bool = True  # read the next bucket's partitions while this one trains
    #   and write evicted ones in the background: IO hidden, at the cost of holding up to two more
    #   partitions. false: swap at the bucket boundary, shard by shard between storage and the
    #   working table: memory = the two resident partitions + a few shards (8 MiB each) of IO buffers.


@dataclass
class DistributedConfig:
    """Several processes (machines) training disjoint buckets at once (jax.distributed).

    Every process runs the same `python -m jgraph.train` with its own process_id; the checkpoint
    (storage.checkpoint_dir) must be storage they all reach. The environment variables
    JGRAPH_NUM_PROCESSES, JGRAPH_PROCESS_ID and JGRAPH_COORDINATOR set the defaults.
    """

    num_processes: int = "${oc.env:JGRAPH_NUM_PROCESSES,1}"  # type: ignore[assignment]
    process_id: int = "${oc.env:JGRAPH_PROCESS_ID,0}"  # type: ignore[assignment]
    coordinator: str = "${oc.env:JGRAPH_COORDINATOR,localhost:12355}"  # host:port of process 0
    timeout_s: float = 600.0  # a process absent this long from a round's barrier stops the job
    heartbeat_s: float = 60.0  # a process silent this long is declared dead


@dataclass
class TrainConfig:
    """The whole run. `python -m jgraph.train` composes conf/train.yaml onto this schema."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    negatives: NegativesConfig = field(default_factory=NegativesConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    entities: dict[str, EntityConfig] = field(
        default_factory=lambda: {DEFAULT_ENTITY_TYPE: EntityConfig()}
    )
    relations: list[RelationConfig] = field(default_factory=list)
    distributed: DistributedConfig = field(default_factory=DistributedConfig)
    plugins: list[str] = field(default_factory=lambda: ["models"])  # modules that register scorers
    experiment: str = ""  # set by conf/experiment/*.yaml; names the run
    recipe: str = ""  # kg: dimension, negatives, N3, learning rate and epochs chosen from the graph's
    #   statistics and training.time_budget_minutes once the data is loaded (jgraph/train/recipe.py);
    #   keys given on the command line are kept. "" = off


def register_configs() -> None:
    """Register the schema in Hydra's ConfigStore (conf/train.yaml lists `train_schema` first)."""
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=TrainConfig)


def to_config(cfg: Any) -> TrainConfig:
    """A composed `DictConfig` (or a `TrainConfig`) as a validated, resolved `TrainConfig`."""
    if isinstance(cfg, TrainConfig):  # a dataclass built in Python: its ${oc.env:...} defaults resolved
        obj = OmegaConf.to_object(OmegaConf.structured(cfg))
        assert isinstance(obj, TrainConfig)
        return obj
    if isinstance(cfg, DictConfig):
        from omegaconf.errors import ConfigKeyError, ValidationError

        try:
            typed = OmegaConf.merge(OmegaConf.structured(TrainConfig), cfg)
            obj = OmegaConf.to_object(typed)
        except ConfigKeyError as e:
            raise ConfigError(unknown_keys_message([e.full_key], asdict(TrainConfig()))) from None
        except ValidationError as e:
            raise ConfigError(f"{e.full_key}: {str(e).splitlines()[0]}") from None
        assert isinstance(obj, TrainConfig)
        # `+key=value` overrides can add keys to a structured config; the schema has the last word
        extra = _unknown_keys(OmegaConf.to_container(cfg, resolve=False), asdict(obj), "")
        if extra:
            raise ConfigError(unknown_keys_message(extra, asdict(obj)))
        return obj
    raise TypeError(f"expected TrainConfig or DictConfig, got {type(cfg).__name__}")


def key_paths(known: Any, path: str = "") -> list[str]:
    """Every dotted key of a config dict (`model.dimension`, ...)."""
    if not isinstance(known, dict):
        return []
    out = []
    for k, v in known.items():
        out.append(f"{path}{k}")
        out += key_paths(v, f"{path}{k}.")
    return out


def unknown_keys_message(extra: list[str], known: dict) -> str:
    """'unknown config key data.folder (did you mean data.root, data.path?)' for each key."""
    import difflib

    paths = key_paths(known)
    parts = []
    for key in extra:
        like = difflib.get_close_matches(key, paths, 3, 0.6)
        parts.append(key + (f" (did you mean {', '.join(like)}?)" if like else ""))
    return f"unknown config key(s): {'; '.join(parts)} (every key: jgraph/config.py)"


def _unknown_keys(given: Any, known: Any, path: str) -> list[str]:
    if not isinstance(given, dict) or not isinstance(known, dict):
        return []
    out = []
    for k, v in given.items():
        if k not in known:
            out.append(f"{path}{k}")
        else:
            out += _unknown_keys(v, known[k], f"{path}{k}.")
    return out
