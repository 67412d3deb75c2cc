"""Several solutions from one initialization: the explorer (rounds of searches, polish, judging,
the catalogue), its strategies (one class each, looked up by name), deflation, side-by-side
deflated searches, continuation and bifurcation detection. Sits above training: it runs its
searches as the trainer's phases."""
