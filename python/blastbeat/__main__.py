"""``python3 -m blastbeat``: the same as ``python3 -m blastbeat.wsgi``."""

import sys

from .wsgi import main

sys.exit(main())
