"""mlcache-deploy: serve a trained model on Azure Functions with Redis in front of it."""

__version__ = "0.1.0"
