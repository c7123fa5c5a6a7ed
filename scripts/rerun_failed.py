"""python scripts/rerun_failed.py ...: the same as `gradtrace rerun-failed ...`."""

import sys

from gradtrace.commands import rerun_failed

if __name__ == "__main__":
    sys.exit(rerun_failed.main(prog=sys.argv[0]))
