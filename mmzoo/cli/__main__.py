"""``python -m mmzoo.cli``: the ``mmzoo`` command."""

import sys

from mmzoo.cli.main import main

sys.exit(main())
