"""Qt-free engine: cloud targets, plans, the runner, test calls, cleanup, export."""
