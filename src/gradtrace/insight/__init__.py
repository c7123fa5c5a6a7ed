"""Gradient insight: check every gradient, explain every update, picture the optimiser's path.

    closed_form.py   dL/dparam written out by hand for the built-in models and losses
    gradcheck.py     autograd vs. central finite differences (float64) and the closed forms
    explain.py       a table of the first steps: value, gradient, update applied, new value
    trajectory.py    the logged parameters, kept in memory (bounded) for the picture
    landscape.py     the loss along one parameter or on a 2-D slice, with the trajectory
    picture.py       draws what landscape.py computes (matplotlib, Agg, no pyplot)

Each is computation only; the instruments that call them from the loop are in gradtrace.instruments.
"""
