"""tf-frontends: learnable audio frontends (LEAF, SincNet, ...) for TensorFlow 2.

Plain setuptools packaging (no Bazel): `pip install -e .` from the project root.
The exact versions every machine of the project runs are frozen in
constraints.txt (`pip install -e . -c constraints.txt`).
"""
import setuptools

setuptools.setup(
    name="tf-frontends",
    version="0.1.0",
    description="Learnable audio frontends (LEAF, SincNet, ...) for TensorFlow 2",
    packages=setuptools.find_packages(include=[
        "tf_frontends", "tf_frontends.*", "train", "train.*",
        "hub_modules", "hub_modules.*", "export", "export.*"]),
    # Entry points import it before TensorFlow; the library does not.
    py_modules=["legacy_keras"],
    python_requires=">=3.9,<3.14",
    install_requires=[
        # The pinned stack (shared/DESIGN.md): change only with a reason.
        "tensorflow==2.20.0",
        "tf-keras==2.20.1",
        "tf-models-official==2.20.0",
        "tensorflow-hub==0.16.1",
        "absl-py",
        "ml-collections",
        "ai-edge-litert",
        "soundfile",
        "scipy",
        "scikit-learn",
        "matplotlib",
        "numpy",
        "msgpack",        # export.import_audax reads flax checkpoints without flax
    ],
    extras_require={
        "test": ["pytest", "pytest-timeout", "pytest-xdist"],
        # tf_frontends.keras3 on Keras 3's other backends (CPU JAX; PyTorch: its wheel brings
        # GBs of CUDA libraries, so set-up leaves it out: scripts/test_keras3_torch.sh)
        "jax": ["jax"],
        "torch": ["torch"],
    },
    entry_points={"console_scripts": [
        "tf-frontends-demo=train.frontends_demo:run",
        "tf-frontends-train=train.main:run",
        "tf-frontends-export=export.main:run",
    ]},
)
