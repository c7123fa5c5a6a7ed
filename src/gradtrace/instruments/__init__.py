"""gradtrace's built-in instruments, written as a user's would be (gradtrace.training.instruments):
each is an option of the `instruments` config group (configs/instruments/<name>.yaml).

    elements.py     every parameter and gradient element (norms of large tensors), grad_norm/total
    histograms.py   histograms of the tensors too large for per-element scalars
    validation.py   loss/val on every validation sample
    gradcheck.py    autograd against finite differences and closed forms (gradtrace.insight)
    explain.py      a table of what each of the first steps did
    landscape.py    the optimiser's path, and the loss landscape around it at the end
    checkpoints.py  the run's whole state now and then (always on: built from trainer.checkpoint)
"""
