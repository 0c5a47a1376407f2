#!/usr/bin/env bash
# Creates .venv-audax/ (git-ignored): JAX + flax on CPU with audax 0.0.3, only to
# regenerate the audax parity fixtures (tests/fixtures/audax/). Neither the
# project nor its tests import JAX; CI never runs this.
#
#   bash scripts/audax_env.sh && .venv-audax/bin/python tests/fixtures/audax/make_audax_fixtures.py
#   .venv-audax/bin/python tests/fixtures/audax/make_audax_recipe_fixtures.py
#
# audax 0.0.3 declares no requirements. Its model code (audax.models,
# audax.frontends) needs only jax + flax.linen; it still uses `jnp.float_` and
# `jax.tree_map`, which later JAX releases removed, so JAX stays at 0.4.23.
# flax 0.7.5 still writes the single-file msgpack checkpoints audax's runs wrote
# (with `flax_use_orbax_checkpointing` off). audax.training_utils.training_utilities
# (the learning-rate schedule, the log-mel pipeline) also imports scikit-learn, and
# `flax.optim` (flax < 0.6), of which it only names DynamicScale: the recipe fixture
# generator gives it a stub module instead of pinning a flax too old for this JAX.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
if [ ! -x .venv-audax/bin/python ]; then
  "$PYTHON" -m venv .venv-audax
fi
.venv-audax/bin/python -m pip install -q --upgrade pip
.venv-audax/bin/python -m pip install -q \
  "audax==0.0.3" "jax[cpu]==0.4.23" "jaxlib==0.4.23" "flax==0.7.5" \
  "optax==0.1.7" "numpy==1.26.4" "scipy==1.11.4" "ml-collections==0.1.1" "msgpack==1.0.7" \
  "scikit-learn==1.3.2"
.venv-audax/bin/python -c "import audax.models, audax.frontends, flax, jax; print('audax env: jax', jax.__version__, 'flax', flax.__version__)"
