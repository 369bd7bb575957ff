"""Intents: a text classifier trained from the admins' example phrases.

The model
---------
TF-IDF features of two kinds, concatenated: word unigrams and bigrams, and character
n-grams of 2 to 5 inside word boundaries (``char_wb``, which copes with plurals,
tenses and typos such as "refund"/"refunded"/"refnd"), both sublinear and
L2-normalised; then a multinomial logistic regression (scikit-learn, ``C=30``,
balanced class weights). Logistic regression gives calibrated-enough class
probabilities, which we need for the confidence: the top probability is stored on
the conversation, and below `INTENT_MIN_CONFIDENCE` (default 0.5) the intent is
"unknown". A linear SVM scores a point or two higher on tiny sets but has no
probabilities; naive Bayes is over-confident on short texts.

Training happens when a flow is published (`train_and_store`), and only when the
examples changed since the live model (a sha256 of the sorted examples). The
model is stored as plain JSON (`IntentModel.parameters`: vocabularies, idf weights,
coefficients), never pickled, so a worker on any machine loads it from the database
without executing anything; prediction (`Classifier.predict`) rebuilds the same
tokenisers with scikit-learn and does the sparse dot product with numpy, cheap
enough for every new conversation. Workers cache the newest model by id.

What is classified is the subject plus the *visible* body: the quoted history and
the signature of a reply are cut off first (`visible_text`, mail-parser-reply), so a
long quoted thread cannot drown the customer's new sentence.
"""
from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import os
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import current_app
from sqlalchemy import select

from app.extensions import db
from app.models.flows import Intent, IntentModel

# numpy, scikit-learn and scipy are imported where the classifier trains or runs: a process
# loads them when it first trains or classifies, not at start.
if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

UNKNOWN = "unknown"
ALGORITHM = ("TF-IDF (word 1-2-grams + char_wb 2-5-grams, sublinear, L2) "
             "+ multinomial logistic regression (C=30, balanced), scikit-learn")
_VECTORIZERS = (
    {"analyzer": "word", "ngram_range": (1, 2), "lowercase": True, "sublinear_tf": True,
     "strip_accents": "unicode", "token_pattern": r"(?u)\b\w+\b"},
    {"analyzer": "char_wb", "ngram_range": (2, 5), "lowercase": True, "sublinear_tf": True,
     "strip_accents": "unicode"},
)
MIN_INTENTS = 2
MIN_EXAMPLES = 2
MAX_VISIBLE = 4000


class NotEnoughExamples(ValueError):
    """Training needs at least two intents with at least two examples each."""


def normalise_name(name: str) -> str:
    return " ".join((name or "").strip().lower().split())


@functools.lru_cache(maxsize=1)
def _reply_parser():
    from mailparser_reply import EmailReplyParser  # with its languages' patterns: only where mail is classified

    return EmailReplyParser(languages=["en", "de", "fr", "es", "it", "nl"])


def visible_text(subject: str, body: str) -> str:
    """Subject and the customer's new words: quoted history and signature removed."""
    body = body or ""
    try:
        visible = _reply_parser().parse_reply(text=body)
    except Exception:  # noqa: BLE001 - a parser failure must not lose the mail's text
        visible = body
    return f"{subject or ''}\n{(visible or body)[:MAX_VISIBLE]}".strip()


def examples_of(intents: list[Intent]) -> list[tuple[str, str]]:
    """(text, intent name) pairs for training."""
    return [(e, i.name) for i in intents for e in (i.examples or []) if e.strip()]


def digest(pairs: list[tuple[str, str]]) -> str:
    return hashlib.sha256(json.dumps(sorted(pairs), ensure_ascii=False).encode()).hexdigest()


def _sklearn_vectorizer(spec: dict):
    from sklearn.feature_extraction.text import TfidfVectorizer  # scikit-learn: only where the classifier runs

    return TfidfVectorizer(**spec)


def train(pairs: list[tuple[str, str]]) -> dict:
    """Train on (text, label) pairs; the model as JSON-able parameters.

    Raises `NotEnoughExamples` below two labels with two examples each.
    """
    counts: dict[str, int] = {}
    for _, label in pairs:
        counts[label] = counts.get(label, 0) + 1
    usable = {label for label, n in counts.items() if n >= MIN_EXAMPLES}
    if len(usable) < MIN_INTENTS:
        raise NotEnoughExamples(f"training needs at least {MIN_INTENTS} intents with "
                                f"{MIN_EXAMPLES} examples or more each")
    # scipy and scikit-learn's solvers: only when there is something to train
    from scipy.sparse import hstack
    from sklearn.linear_model import LogisticRegression

    pairs = [(t, label) for t, label in pairs if label in usable]
    texts = [t for t, _ in pairs]
    labels = [label for _, label in pairs]
    vectorizers = [_sklearn_vectorizer(spec) for spec in _VECTORIZERS]
    matrix = hstack([v.fit_transform(texts) for v in vectorizers]).tocsr()
    model = LogisticRegression(C=30.0, max_iter=2000, class_weight="balanced")
    model.fit(matrix, labels)
    return {
        "vectorizers": [
            {"spec": {**spec, "ngram_range": list(spec["ngram_range"])},
             "vocabulary": {term: int(i) for term, i in v.vocabulary_.items()},
             "idf": [round(float(x), 6) for x in v.idf_]}
            for spec, v in zip(_VECTORIZERS, vectorizers)
        ],
        "classes": [str(c) for c in model.classes_],
        "coef": [[round(float(x), 6) for x in row] for row in model.coef_],
        "intercept": [round(float(x), 6) for x in model.intercept_],
    }


class Classifier:
    """Prediction from stored parameters (no pickle, no refit)."""

    def __init__(self, parameters: dict) -> None:
        import numpy as np  # only where the classifier runs (see the imports above)
        self.classes = list(parameters["classes"])
        self.coef = np.asarray(parameters["coef"], dtype=np.float64)
        self.intercept = np.asarray(parameters["intercept"], dtype=np.float64)
        self._parts = []
        offset = 0
        for part in parameters["vectorizers"]:
            spec = dict(part["spec"])
            spec["ngram_range"] = tuple(spec["ngram_range"])
            analyzer = _sklearn_vectorizer(spec).build_analyzer()
            vocabulary = part["vocabulary"]
            idf = np.asarray(part["idf"], dtype=np.float64)
            self._parts.append((analyzer, vocabulary, idf, offset, bool(spec.get("sublinear_tf"))))
            offset += len(idf)

    def features(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """(column indices, values) of the text's TF-IDF vector."""
        import numpy as np  # only where the classifier runs (see the imports above)
        all_idx: list[np.ndarray] = []
        all_val: list[np.ndarray] = []
        for analyzer, vocabulary, idf, offset, sublinear in self._parts:
            counts: dict[int, int] = {}
            for term in analyzer(text):
                i = vocabulary.get(term)
                if i is not None:
                    counts[i] = counts.get(i, 0) + 1
            if not counts:
                continue
            idx = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
            tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
            if sublinear:
                tf = np.log(tf) + 1.0
            values = tf * idf[idx]
            norm = math.sqrt(float(values @ values))
            if norm:
                values = values / norm
            all_idx.append(idx + offset)
            all_val.append(values)
        if not all_idx:
            return np.empty(0, dtype=np.int64), np.empty(0)
        return np.concatenate(all_idx), np.concatenate(all_val)

    def probabilities(self, text: str, features: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, float]:
        """Each intent's probability; `features` are the text's when the caller has them already."""
        import numpy as np  # only where the classifier runs (see the imports above)
        idx, values = features if features is not None else self.features(text)
        scores = self.coef[:, idx] @ values + self.intercept
        if len(self.classes) == 2 and scores.shape[0] == 1:  # binary: one decision function
            p = 1.0 / (1.0 + math.exp(-float(scores[0])))
            return {self.classes[0]: 1.0 - p, self.classes[1]: p}
        scores = scores - scores.max()
        exp = np.exp(scores)
        probs = exp / exp.sum()
        return {c: float(p) for c, p in zip(self.classes, probs)}

    def predict(self, text: str, threshold: float = 0.5) -> tuple[str, float]:
        """(intent, confidence); "unknown" when the text has no known words or the best is below `threshold`."""
        features = self.features(text)
        if len(features[0]) == 0:
            return UNKNOWN, 0.0
        probs = self.probabilities(text, features)
        best = max(probs, key=probs.get)
        confidence = probs[best]
        return (best if confidence >= threshold else UNKNOWN), confidence


# --- stored models ------------------------------------------------------------------------------

@dataclass
class TrainResult:
    model: IntentModel | None
    trained: bool  # False: the live model already had these examples (or nothing to train)
    message: str


def all_intents() -> list[Intent]:
    return list(db.session.scalars(select(Intent).order_by(Intent.name)))


def live_model() -> IntentModel | None:
    return db.session.scalar(select(IntentModel).order_by(IntentModel.id.desc()).limit(1))


def has_unpublished_changes() -> bool:
    model = live_model()
    pairs = examples_of(all_intents())
    if model is None:
        return bool(pairs)
    return digest(pairs) != model.examples_sha256


def train_and_store(user_id: int | None) -> TrainResult:
    """Train from the current intents unless the live model has the same examples.

    Never raises for too few examples: the result says why nothing was trained. The
    caller commits.
    """
    pairs = examples_of(all_intents())
    sha = digest(pairs)
    current = live_model()
    if current is not None and current.examples_sha256 == sha:
        return TrainResult(current, False, "intent model unchanged")
    try:
        parameters = train(pairs)
    except NotEnoughExamples as exc:
        return TrainResult(current, False, f"intent model not trained: {exc}")
    model = IntentModel(created_by_id=user_id, algorithm=ALGORITHM, labels=parameters["classes"],
                        parameters=parameters, example_count=len(pairs), examples_sha256=sha)
    db.session.add(model)
    db.session.flush()
    return TrainResult(model, True, f"intent model trained on {len(pairs)} examples of "
                                    f"{len(parameters['classes'])} intents")


_cache_lock = threading.Lock()
_cache: dict[str, tuple[int, Classifier]] = {}


def current_classifier() -> Classifier | None:
    """The newest stored model, loaded once per process (and again when a newer one appears)."""
    model_id = db.session.scalar(select(IntentModel.id).order_by(IntentModel.id.desc()).limit(1))
    if model_id is None:
        return None
    key = current_app.config["SQLALCHEMY_DATABASE_URI"]
    cached = _cache.get(key)
    if cached and cached[0] == model_id:
        return cached[1]
    parameters = db.session.scalar(select(IntentModel.parameters).where(IntentModel.id == model_id))
    classifier = Classifier(parameters)
    with _cache_lock:
        _cache[key] = (model_id, classifier)
    log.info("intent model %s loaded in process %s", model_id, os.getpid())
    return classifier


def preload() -> None:
    """Import what classifying needs (numpy, scikit-learn, the reply parser) and load the live model.

    `flask worker` calls it once, before it forks work horses or worker processes, so a flow job
    finds all of it in memory instead of paying the imports (most of a second of CPU) each time.
    Needs an app context; a database without the model yet only does the imports.
    """
    import numpy  # noqa: F401 - the heavy imports this function exists to pay once
    _sklearn_vectorizer(dict(_VECTORIZERS[0])).build_analyzer()
    _reply_parser()
    current_classifier()


def classify(subject: str, body: str) -> tuple[str, float] | None:
    """(intent, confidence) for a new conversation, or None when no model was trained yet."""
    classifier = current_classifier()
    if classifier is None:
        return None
    threshold = float(current_app.config.get("INTENT_MIN_CONFIDENCE", 0.5))
    return classifier.predict(visible_text(subject, body), threshold)
