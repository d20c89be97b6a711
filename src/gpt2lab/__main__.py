"""`python -m gpt2lab …` (and `torchrun -m gpt2lab …`) run the CLI."""

import sys

from gpt2lab.cli import main

sys.exit(main())
