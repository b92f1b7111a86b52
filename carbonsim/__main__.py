"""``python -m carbonsim`` runs the command-line interface."""

import sys

from carbonsim.cli import main

sys.exit(main())
