from setuptools import find_packages, setup

setup(
    name="poetry_rnn",
    version="0.1.0",
    description="Character-level RNN poets (SimpleRNN, LSTM, GRU) for classical Chinese poetry, in TensorFlow/Keras",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="MIT",
    packages=find_packages(include=["poetry_rnn", "poetry_rnn.*"]),
    python_requires=">=3.10",
    install_requires=[
        "tensorflow>=2.16",  # Keras 3
        "numpy",
        "absl-py",
        "tensorboard",
        "opencc",
        "pypinyin",
        "matplotlib",
    ],
    extras_require={"test": ["pytest", "hypothesis"]},
)
