"""Train one configured experiment: python scripts/train.py model=linear optim.lr=0.1

The same as `gradtrace train ...` (gradtrace.commands.train): Hydra composes the config from the
package's configs (and your own config folder: --config-dir); exit codes 0 done, 2 a bad value,
3 NaN/Inf, 4 a strict gradient check failed; a sweep (-m) exits 1 when a job failed.
`torchrun --standalone --nproc_per_node=N scripts/train.py ...` trains one run on N processes.
"""

import sys

from gradtrace.training.signals import catch_early

if __name__ == "__main__":
    catch_early()  # a stop signal while torch and Hydra import is kept for the run
    from gradtrace.commands import train

    train.run(sys.argv[1:], prog=sys.argv[0])
