"""The intent classifier: trained from examples, stored as JSON, same answers as scikit-learn, threshold."""
from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline, make_union

from app.flows import intents
from app.demo.flows import DEMO_INTENTS

PAIRS = [(e, name) for name, (_, examples) in DEMO_INTENTS.items() for e in examples]


@pytest.fixture(scope="module")
def parameters():
    return intents.train(PAIRS)


def test_parameters_are_plain_json_and_predictions_equal_scikit_learns(parameters):
    restored = intents.Classifier(json.loads(json.dumps(parameters)))
    pipeline = make_pipeline(
        make_union(*[TfidfVectorizer(**spec) for spec in intents._VECTORIZERS]),
        LogisticRegression(C=30.0, max_iter=2000, class_weight="balanced"))
    pipeline.fit([t for t, _ in PAIRS], [label for _, label in PAIRS])
    texts = ["I want my money back, you charged me twice", "Where is my package??", "hello"]
    expected = pipeline.predict_proba(texts)
    for text, row in zip(texts, expected):
        ours = restored.probabilities(text)
        assert np.allclose([ours[c] for c in pipeline.classes_], row, atol=1e-3)


def test_new_sentences_get_the_right_intent(parameters):
    clf = intents.Classifier(parameters)
    assert clf.predict("Please refund the payment you took twice from my card")[0] == "billing"
    assert clf.predict("my parcel is late and the tracking shows nothing")[0] == "delivery"
    assert clf.predict("I want to send back the broken kettle and get a replacement")[0] == "returns"
    assert clf.predict("cannot sign in, the password reset mail never came")[0] == "account access"


def test_below_the_threshold_or_without_known_words_the_intent_is_unknown(parameters):
    clf = intents.Classifier(parameters)
    assert clf.predict("### %%% ~~~") == ("unknown", 0.0)
    label, confidence = clf.predict("Thanks!", threshold=0.99)
    assert label == "unknown" and 0 < confidence < 0.99


def test_two_intents_work_too():
    clf = intents.Classifier(intents.train([("refund my money", "billing"), ("charged twice", "billing"),
                                            ("where is my parcel", "delivery"), ("package is late", "delivery")]))
    assert clf.predict("my package is late", 0.0)[0] == "delivery"


def test_training_needs_two_intents_with_two_examples():
    with pytest.raises(intents.NotEnoughExamples):
        intents.train([("refund", "billing"), ("charged twice", "billing"), ("parcel", "delivery")])


def test_visible_text_drops_the_quoted_history():
    body = ("My parcel never came.\n\nOn Mon, 2 Mar 2026 at 10:00, Acme <support@acme.test> wrote:\n"
            "> Your refund and invoice and billing question\n> was answered.\n")
    text = intents.visible_text("Re: order", body)
    assert "parcel" in text and "invoice" not in text and text.startswith("Re: order")
