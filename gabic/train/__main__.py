"""``python -m gabic.train ...`` and ``torchrun ... -m gabic.train ...``: the ``gabic train`` command."""

import sys

from gabic.cli import main

sys.exit(main(["train", *sys.argv[1:]]))
