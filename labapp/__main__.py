"""``python -m labapp`` is the ``labapp`` command."""
import sys

from labapp.cli import main

sys.exit(main())
