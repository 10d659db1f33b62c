"""Training hyper-parameters (TF-free, so the CLI can show defaults without loading TF)."""

from dataclasses import dataclass

# tf.distribute strategies TrainConfig.distribution may name.
DISTRIBUTIONS = ("auto", "default", "mirrored", "multi_worker")


@dataclass(frozen=True)
class TrainConfig:
    embedding_dim: int = 32
    num_layers: int = 2
    steps: int = 200  # full-graph steps
    learning_rate: float = 0.01
    l2: float = 1e-5
    # Share of training pairs that, on each step, are hidden from message passing and used as
    # positives. Scoring pairs the model can also see as edges teaches it to echo its input.
    supervision_fraction: float = 0.3
    negatives: int = 4  # sampled negative nonprofits per positive pair
    # Share of nonprofits that, on each step, lose all their donation edges (all their pairs
    # become supervised): the model must then score them from causes and region alone, as it
    # must score a new nonprofit. Without it cold nonprofits never reach a top 20.
    cold_nonprofit_dropout: float = 0.1
    seed: int = 0
    # Donors in the graph training steps run on: a seeded uniform sample when there are more
    # (graph_model.split.sample_donors), so a step costs the same at 1M donors as at 50k; the
    # trained model then embeds every donor.
    train_donors: int = 50_000
    holdout_fraction: float = 0.2
    k: int = 20  # cut-off of the reported Recall@k / NDCG@k
    eval_every: int = 50  # steps between evaluations recorded in history.json and TensorBoard
    # Test donors every evaluation scores (a seeded sample, the same one each time; all of them
    # when there are fewer): the cost of an evaluation stops growing with the graph.
    eval_donors: int = 20_000
    # Compare the GNN with the other candidates of graph_model.candidates on the holdout and
    # serve the winner (the GNN unless one beats it beyond the evaluation's noise).
    candidates: bool = True
    gf_cf_rank: int = 64  # rank of the graph filter candidate's factorisation
    mf_epochs: int = 20  # BPR-MF candidate's epochs
    # "auto": MultiWorkerMirroredStrategy when TF_CONFIG is set, MirroredStrategy with several
    # GPUs, else the default (single-device) strategy.
    distribution: str = "auto"
    # Fewer test donors than this after the temporal split and the model is registered as
    # unevaluated, never promoted automatically (graph_model.evaluability).
    min_test_donors: int = 20

    def __post_init__(self) -> None:
        if self.distribution not in DISTRIBUTIONS:
            raise ValueError(
                f"distribution must be one of {DISTRIBUTIONS}, got {self.distribution!r}"
            )
        if min(self.steps, self.eval_every, self.eval_donors, self.train_donors) < 1:
            raise ValueError("steps, eval_every, eval_donors and train_donors must be at least 1")
