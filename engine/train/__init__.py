"""Training: the one stepper and loop, run configurations, races, saved runs, evaluation, gradient checks."""
