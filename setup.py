from setuptools import find_packages, setup

# The shipped default model (checkpoints/default in a checkout) travels inside the
# package as poetry_rnn/default_model, its ci model (checkpoints/default/ci) as
# poetry_rnn/default_model/ci and its critic of drafts (checkpoints/default/critic) as
# poetry_rnn/default_model/critic, with its over-use table, so a wheel or `pip install .` has them too.
MODEL_FILES = ["config.json", "vocab.txt", "weights.npz", "training_poems.npy", "overuse.npz", "README.md"]
SCRIPTS = ["prepare", "train", "write", "evaluate", "export", "compare", "serve", "critic"]

setup(
    name="poetry_rnn",
    version="0.2.0",
    description="Character-level RNN poets (SimpleRNN, LSTM, GRU) for classical Chinese poetry, in TensorFlow/Keras",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="MIT",
    packages=find_packages(include=["poetry_rnn", "poetry_rnn.*"]) + ["poetry_rnn.default_model",
                                                                      "poetry_rnn.default_model.ci",
                                                                      "poetry_rnn.default_model.critic"],
    package_dir={"poetry_rnn": "poetry_rnn", "poetry_rnn.default_model": "checkpoints/default",
                 "poetry_rnn.default_model.ci": "checkpoints/default/ci",
                 "poetry_rnn.default_model.critic": "checkpoints/default/critic"},
    package_data={"poetry_rnn": ["data/*"], "poetry_rnn.serving": ["static/*.html"], "poetry_rnn.default_model": MODEL_FILES,
                  "poetry_rnn.default_model.ci": MODEL_FILES,
                  "poetry_rnn.default_model.critic": ["config.json", "weights.npz"]},
    python_requires=">=3.10",
    # What `write` needs; the rest is in extras, and each command names its extra when it is missing.
    install_requires=[
        "tensorflow>=2.16",  # Keras 3
        "numpy",
        "absl-py",
        "tensorboard",
        "opencc",
        "pypinyin",
    ],
    extras_require={
        "plots": ["matplotlib"],  # compare's loss curves, benchmarks' figures
        "serve": ["fastapi", "uvicorn"],  # python -m poetry_rnn.serve
        "test": ["pytest", "hypothesis", "httpx", "selenium", "build", "setuptools", "wheel",
                 "matplotlib", "fastapi", "uvicorn"],
    },
    entry_points={"console_scripts": [f"poetry-{name}=poetry_rnn.console:{name}" for name in SCRIPTS]},
)
