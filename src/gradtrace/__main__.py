"""python -m gradtrace COMMAND ...: the same as the `gradtrace` command."""

import sys

from gradtrace.commands import main

sys.exit(main())
