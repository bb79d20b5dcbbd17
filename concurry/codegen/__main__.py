"""``python -m concurry.codegen ARGS`` is ``concurry codegen ARGS``."""

import sys

from concurry.codegen.cli import main

sys.exit(main(["codegen", *sys.argv[1:]]))
