"""One module per wizard page; each page edits its part of the spec and nothing else."""
