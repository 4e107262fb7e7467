"""model.variable_shapes: the sizes a config promises, known before anything is built."""

import math
import types

import pytest
import tensorflow as tf

from poetry_rnn.model import network as model_lib
from poetry_rnn.infra.errors import PoetryError
from poetry_rnn.model.network import ModelConfig, PoetryModel


@pytest.mark.parametrize("cell", sorted(model_lib.CELLS))
@pytest.mark.parametrize("features", model_lib.INPUTS)
def test_the_shapes_are_the_built_models_own(cell, features):
    config = ModelConfig(vocab_size=11, cell=cell, input=features, embed_dim=3, units=5, layers=2)
    built = {v.path.split("/", 1)[1]: tuple(v.shape) for v in PoetryModel(config).weights}
    assert model_lib.variable_shapes(config) == built


@pytest.mark.parametrize("cell", sorted(model_lib.CELLS))
def test_a_prompt_bag_adds_exactly_the_weights_it_names(cell):
    plain = ModelConfig(vocab_size=11, cell=cell, embed_dim=3, units=5, layers=2, condition="keywords")
    bagged = ModelConfig(**{**plain.to_dict(), "prompt_bag": True})
    built = {v.path.split("/", 1)[1]: tuple(v.shape) for v in PoetryModel(bagged).weights}
    assert model_lib.variable_shapes(bagged) == built
    assert sorted(set(built) - set(model_lib.variable_shapes(plain))) == sorted(model_lib.ADDED_BY["prompt_bag"])


@pytest.mark.parametrize("units", [5, 3])
def test_a_tied_model_shares_its_embedding_with_the_output(units):
    config = ModelConfig(vocab_size=11, embed_dim=3, units=units, layers=1, tie_embeddings=True)
    model = PoetryModel(config)
    built = {v.path.split("/", 1)[1]: tuple(v.shape) for v in model.weights}
    assert model_lib.variable_shapes(config) == built and "logits/kernel" not in built
    ids = tf.constant([[2, 5, 7]])
    logits, _ = model(ids)
    # Character 9 is not an input: changing its embedding changes its own logit and nothing else,
    # the embedding being the output matrix too.
    model.embedding.embeddings.assign(model.embedding.embeddings + tf.one_hot(9, 11)[:, None] * 10.0)
    changed, _ = model(ids)
    differs = (abs(changed - logits).numpy() > 1e-6).any(axis=(0, 1))
    assert differs.tolist() == [k == 9 for k in range(11)]
    with pytest.raises(PoetryError, match="--tie_embeddings needs --input embedding"):
        ModelConfig(vocab_size=11, input="onehot", tie_embeddings=True)


def test_a_config_past_the_parameter_bound_is_refused_and_one_below_is_not():
    def parameters(units):  # counted on a plain namespace: a ModelConfig past the bound cannot be made
        fields = vars(ModelConfig(vocab_size=7000)) | {"units": units}
        return sum(math.prod(s) for s in model_lib.variable_shapes(types.SimpleNamespace(**fields)).values())

    largest = max(u for u in range(7000, 9000, 10) if parameters(u) <= model_lib.MAX_PARAMETERS)
    assert parameters(largest + 10) > model_lib.MAX_PARAMETERS
    ModelConfig(vocab_size=7000, units=largest)  # the check itself builds nothing
    with pytest.raises(PoetryError, match=f"would have {parameters(largest + 10):,} parameters"):
        ModelConfig(vocab_size=7000, units=largest + 10)
