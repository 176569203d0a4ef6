"""Controller messages become plain sentences, with the raw text kept beside them."""

from butler_portal.explain import Said, explain


def test_a_known_message_becomes_its_sentence_and_keeps_the_raw_text() -> None:
    said = explain(
        "KubeadmConfig status.initialization.dataSecretCreated is false", fallback="Starting."
    )
    assert said == Said(
        "Preparing the worker's bootstrap configuration.",
        "KubeadmConfig status.initialization.dataSecretCreated is false",
    )


def test_an_unknown_message_falls_back_to_the_callers_sentence() -> None:
    said = explain("spec.foo.bar: something odd", fallback="Installing the add-on.")
    assert said.text == "Installing the add-on."
    assert said.raw == "spec.foo.bar: something odd"


def test_no_message_says_nothing() -> None:
    assert not explain("", fallback="Installing the add-on.")
    assert not explain(None, fallback="Installing the add-on.")
