"""The default knowledge-graph recipe (`+experiment=kg`, config `recipe: kg`): dimension, negatives,
batch size, N3, learning rate, epochs and early stopping chosen from the graph's statistics and
training.time_budget_minutes, once the data is loaded.

`kg_recipe` is a pure function of `GraphStats` and the budget; `apply_recipe` writes its choices
into the run's config, keeping every key the user gave on the command line. The rules (issue 30;
measured in experiments/kg_recipe):
  * ComplEx with reciprocal relations, softmax cross-entropy, N3, row-wise Adagrad lr 0.1 and
    init 1e-3 (Lacroix et al. 2018), the recipe that generalised best across FB15k-237, UMLS,
    Kinships and Nations;
  * negatives: every entity (1-vs-all, no sampling error, the query's own entity always a
    negative) where the working table allows it (assembly.negatives_mode), else PBG's chunked
    50 batch + 1000 uniform;
  * the query's own entity as a heavier negative (negatives.self_weight, entities / 3, at most
    50, ramped up over the first fifth of the epochs): the self-outranks share falls from 0.22 to
    about 0.01 on UMLS;
  * dimension: the largest of DIMENSIONS whose MIN_EPOCHS epochs fit in the budget at
    MACS_PER_SECOND (the multiply-adds of an epoch: edges x 2 sides x candidates x dimension x 3
    for the forward and backward passes), at most MAX_DIMENSION;
  * batch: about 100 Adagrad steps an epoch on small graphs (100 to 1000 positives);
  * epochs: as many as the budget holds (at most MAX_EPOCHS); the time budget stops training
    earlier on a slower machine, and early stopping on the validation MRR keeps the best epoch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jgraph.assembly import negatives_mode
from jgraph.config import TrainConfig

# multiply-adds a second of 1-vs-all scoring on the 2-core CPU this was tuned on, idle
# (FB15k-237 at d=200: 4.7e12 in 46 s; shared, much less: training.time_budget_minutes then stops)
MACS_PER_SECOND = 1e11
DIMENSIONS = (400, 300, 200, 128, 64, 32)  # at most 400: d=1000 with the own-entity weight pulled
#                                            every Kinships row to 0 (experiments/kg_recipe)
DEFAULT_BUDGET = 20.0  # minutes, when training.time_budget_minutes is 0
MIN_EPOCHS = 12  # the dimension is the largest that trains this many epochs in the budget
MAX_EPOCHS = 200
EVALUATIONS = 10  # periodic validation evaluations over the planned epochs (early stopping)
SAMPLED_NEGATIVES = (50, 1000)  # batch, uniform per chunk where 1-vs-all is too large


@dataclass(frozen=True)
class GraphStats:
    """What the recipe looks at: entities (the largest entity type's count: a query's candidates),
    relations, training edges, and the working table the run would have (rows, partitions)."""

    entities: int
    relations: int
    edges: int
    rows: int | None = None  # working-table rows; None: entities
    partitions: int = 1


def epoch_macs(stats: GraphStats, dimension: int, mode: str) -> float:
    """Multiply-adds of one epoch: every edge scores both sides (reciprocal) against its
    candidates (every entity, or the sampled ones), forward and backward (x 3)."""
    candidates = stats.entities if mode == "all" else sum(SAMPLED_NEGATIVES)
    return 3.0 * 2 * stats.edges * candidates * dimension


def kg_recipe(stats: GraphStats, budget_minutes: float = 0.0, speed: float = MACS_PER_SECOND
              ) -> dict[str, Any]:
    """The recipe's choices for a graph as dotted config keys -> values (the model and loss are
    the experiment's: conf/experiment/kg.yaml). budget_minutes: of training (0: DEFAULT_BUDGET);
    speed: multiply-adds a second of this machine."""
    budget_minutes = budget_minutes or DEFAULT_BUDGET
    rows = stats.entities if stats.rows is None else stats.rows
    mode = negatives_mode("auto", False, rows, stats.partitions)
    macs = budget_minutes * 60.0 * speed
    dim = next((d for d in DIMENSIONS if MIN_EPOCHS * epoch_macs(stats, d, mode) <= macs),
               DIMENSIONS[-1])
    # about 100 steps an epoch on small graphs (they need steps more than epochs), 1000 positives
    # a batch on large ones; a multiple of the 50-positive chunk
    batch = min(1000, max(100, 50 * round(stats.edges / 100 / 50)))
    epochs = int(max(1, min(MAX_EPOCHS, macs // max(epoch_macs(stats, dim, mode), 1.0))))
    every = -(-epochs // EVALUATIONS)  # at most EVALUATIONS periodic evaluations
    out: dict[str, Any] = {
        "model.dimension": dim, "model.regularizer": "n3", "model.regularization_coef": 0.05,
        "optimizer.lr": 0.1,
        "negatives.mode": mode, "training.batch_size": batch, "training.num_epochs": epochs,
        "eval.every_epochs": every, "training.early_stopping_patience": 3,
    }
    if mode == "all":  # the query's own entity weighs like entities / 3 negatives (at most 50),
        #               ramped up over the first fifth of the epochs (a full weight from the start
        #               can pull every row to 0)
        out["negatives.self_weight"] = float(min(50.0, max(1.0, round(stats.entities / 3))))
        out["negatives.self_weight_warmup"] = max(1, epochs // 5) * -(-stats.edges // batch)
    if mode == "sampled":
        out["negatives.num_batch_negs"], out["negatives.num_uniform_negs"] = SAMPLED_NEGATIVES
    return out


def graph_stats(ds: Any, layout: Any) -> GraphStats:
    """GraphStats of a loaded Dataset and its PartitionLayout (a prepared dataset's training edges
    counted from its buckets' metadata)."""
    counts = [ds.num_entities(t) for t in ds.entity_types]
    train = ds.splits.get("train")
    if train is not None:
        edges = len(train)
    else:
        from jgraph.storage.edges import EdgeBucketStore

        store = EdgeBucketStore(ds.train_buckets)
        edges = int(sum(store.meta["counts"]))
        store.close()
    return GraphStats(max(counts), ds.num_relations, edges, layout.num_rows, layout.num_partitions)


def apply_recipe(cfg: TrainConfig, choices: dict[str, Any], keep: set[str] | frozenset = frozenset()
                 ) -> list[str]:
    """Write `choices` (dotted keys -> values) into `cfg` in place, except the keys in `keep`
    (given by the user); returns the "key=value" lines applied."""
    applied = []
    for key, value in choices.items():
        if key in keep:
            continue
        section, name = key.split(".")
        setattr(getattr(cfg, section), name, value)
        applied.append(f"{key}={value}")
    if not cfg.eval.every_epochs and "training.early_stopping_patience" not in keep:
        cfg.training.early_stopping_patience = 0  # nothing to watch: the periodic evaluation is off
    return applied


def given_keys(overrides: list[str] | tuple[str, ...]) -> frozenset[str]:
    """The dotted config keys of command-line overrides ("model.dimension=100", "+x.y=1"), which
    a recipe keeps; Hydra's own keys and flags left out."""
    keys = (o.split("=", 1)[0].lstrip("+~") for o in overrides if "=" in o and not o.startswith("-"))
    return frozenset(k for k in keys if k != "hydra" and not k.startswith("hydra."))
