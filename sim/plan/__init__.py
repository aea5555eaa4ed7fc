"""Plans: many what-ifs of one scenario simulated at once, with common random numbers.

:mod:`sim.plan.spec` reads a plan file and expands it into cells, each an ordinary
scenario; :mod:`sim.plan.execute` simulates the cells (on Dask workers), keeps each as it
finishes so an interrupted plan resumes, and builds the table of cells.
"""
