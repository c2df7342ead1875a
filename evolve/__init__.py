"""Search: objectives, the pymoo problem, NSGA-II and baselines, Pareto fronts, plots, the hwnas CLI."""
