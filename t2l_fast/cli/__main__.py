"""`python -m t2l_fast.cli ...` is `t2l ...` (what torchrun and subprocess tests launch)."""
import sys

from . import main

sys.exit(main())
