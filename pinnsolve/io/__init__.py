"""What goes in and out of a run: the TOML config schema, the run folder (checkpoints, status),
evaluation on the export mesh, results, files (VTU/XDMF, PNG, CSV, JSON) and progress output.
Knows problems, objectives and optimizer settings; nothing of training or exploring."""
