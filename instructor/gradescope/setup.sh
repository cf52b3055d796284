#!/usr/bin/env bash
# Gradescope's setup script (autograder zip: this file, run_autograder, and the folders named below).
# The zip holds a copy of the mtssl_nb repository as source/mtssl_nb; the hidden checks come with it (instructor/).
set -euo pipefail
cd /autograder/source/mtssl_nb
apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap  # each notebook's kernel runs in its own sandbox
pip install --quiet torch torchvision --index-url https://download.pytorch.org/whl/cpu
pip install --quiet . ./instructor
rm -rf instructor/solutions  # the hidden checks are installed (and hidden from the kernels); the solutions have no business here
